import dataclasses

import numpy as np
import pytest
import torch

from abpn_cli.engine import RetouchOptions, load_model, retouch, save_model_file
from abpn_cli.engine.geometry import padded_size, reflect_pad
from tests.conftest import make_tiny_model


@pytest.fixture(scope="module")
def loaded(tiny_model_file):
    return load_model(tiny_model_file, "cpu")


def _dense_reference(model, pixels: np.ndarray, levels: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = float(np.iinfo(pixels.dtype).max)
    padded = reflect_pad(pixels, *padded_size(h, w, levels))
    x = torch.from_numpy(padded.astype(np.float32) / scale).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = model(x, levels).result
    return (out[0].clamp(0, 1) * scale).round().permute(1, 2, 0).numpy()[:h, :w]


@pytest.mark.parametrize("shape", [(777, 1001), (1001, 777), (300, 301), (9, 13)])
def test_odd_sizes_come_back_at_their_own_size(loaded, shape):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    result = retouch(loaded, pixels, RetouchOptions(skip_untouched=False, tile=256))
    assert result.image.shape == pixels.shape and result.image.dtype == np.uint8
    assert not np.array_equal(result.image, pixels)  # the random model really edits


def test_6000x4000_comes_back_at_its_size(tmp_path):
    # a model whose mask is empty everywhere: level 0 is all copied, so this stays fast
    path = tmp_path / "quiet.pt"
    save_model_file(make_tiny_model(mask_bias=-30.0), path)
    quiet = load_model(path, "cpu")
    pixels = np.full((4000, 6000, 3), 128, np.uint8)
    pixels[1000:1100, 2000:2600] = 30
    result = retouch(quiet, pixels, RetouchOptions(want_mask=True))
    assert result.image.shape == pixels.shape
    assert result.mask.shape == (4000, 6000)
    assert result.levels == 7  # tiny model: 64 px thumbnail
    assert np.array_equal(result.image, pixels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiled_equals_whole_frame(loaded, dtype):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, (500, 700, 3), dtype=dtype)
    result = retouch(loaded, pixels, RetouchOptions(skip_untouched=False, tile=128))
    ref = _dense_reference(make_tiny_model(), pixels, result.levels)
    diff = np.abs(result.image.astype(np.float64) - ref)
    assert result.tiles_total >= 20
    assert diff.max() <= 1.0  # at most one rounding step apart
    assert diff.mean() < 0.01


@pytest.mark.parametrize("skip", [False, True])
def test_upsample_only_refiner_equals_whole_frame(tmp_path, skip):
    # the shipped dust model's path: level 0 expands B_l per tile, no intermediate levels
    path = tmp_path / "up.pt"
    save_model_file(make_tiny_model(seed=4, upsample_only=True), path)
    model = load_model(path, "cpu")
    assert model.refine_is_upsample
    pixels = np.random.default_rng(5).integers(0, 256, (600, 900, 3), dtype=np.uint8)
    result = retouch(model, pixels, RetouchOptions(skip_untouched=skip, tile=128))
    ref = _dense_reference(make_tiny_model(seed=4, upsample_only=True), pixels, result.levels)
    diff = np.abs(result.image.astype(np.float64) - ref)
    assert result.levels >= 3 and result.tiles_total >= 20
    if skip:  # copied tiles hold the input; the rest is the dense result
        copied = result.image == pixels
        diff = diff[~copied.all(axis=2)]
    assert diff.max() <= 1.0
    assert diff.mean() < 0.01


@pytest.mark.parametrize("sensitivity", [0.3, 0.5, 0.8])
def test_the_sparse_lrl_gives_the_same_pixels_as_the_dense_one(loaded, sensitivity):
    # coarse_where runs the full-resolution LAMs only where the sensitivity gate can keep
    # an edit: the gated result must not change
    assert loaded.has_coarse_where
    dense = dataclasses.replace(loaded, has_coarse_where=False)
    pixels = np.random.default_rng(6).integers(0, 256, (700, 900, 3), dtype=np.uint8)
    options = RetouchOptions(sensitivity=sensitivity, want_blend=True)
    a, b = retouch(loaded, pixels, options), retouch(dense, pixels, options)
    assert a.tiles_skipped < a.tiles_total  # the random model edits somewhere
    diff = np.abs(a.image.astype(np.int16) - b.image)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float rounding only
    assert np.allclose(a.blend, b.blend, atol=1e-5)


def test_tile_size_does_not_change_the_result(loaded):
    pixels = np.random.default_rng(3).integers(0, 65536, (400, 640, 3), dtype=np.uint16)
    a = retouch(loaded, pixels, RetouchOptions(skip_untouched=False, tile=128, want_blend=True))
    b = retouch(loaded, pixels, RetouchOptions(skip_untouched=False, tile=1024, want_blend=True))
    assert np.abs(a.image.astype(np.int64) - b.image).max() <= 1
    assert np.allclose(a.blend, b.blend, atol=1e-5)


def test_tiles_with_an_empty_mask_are_copied_exactly(tmp_path):
    path = tmp_path / "quiet.pt"
    save_model_file(make_tiny_model(mask_bias=-30.0), path)
    quiet = load_model(path, "cpu")
    pixels = np.random.default_rng(4).integers(0, 65536, (500, 700, 3), dtype=np.uint16)
    result = retouch(quiet, pixels, RetouchOptions(tile=128, want_blend=True))
    assert result.tiles_skipped == result.tiles_total
    assert np.array_equal(result.image, pixels)
    assert np.all(result.blend == 0.5)
    dense = retouch(quiet, pixels, RetouchOptions(tile=128, skip_untouched=False))
    assert not np.array_equal(dense.image, pixels)


def test_a_full_mask_skips_nothing(tmp_path):
    path = tmp_path / "busy.pt"
    save_model_file(make_tiny_model(mask_bias=30.0), path)
    busy = load_model(path, "cpu")
    pixels = np.random.default_rng(5).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    a = retouch(busy, pixels, RetouchOptions(tile=128))
    b = retouch(busy, pixels, RetouchOptions(tile=128, skip_untouched=False))
    assert a.tiles_skipped == 0
    assert np.array_equal(a.image, b.image)


def test_strength_zero_is_exactly_the_input_and_half_is_between(loaded):
    pixels = np.random.default_rng(6).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    zero = retouch(loaded, pixels, RetouchOptions(strength=0.0, skip_untouched=False))
    full = retouch(loaded, pixels, RetouchOptions(strength=1.0, skip_untouched=False))
    half = retouch(loaded, pixels, RetouchOptions(strength=0.5, skip_untouched=False))
    assert np.array_equal(zero.image, pixels)
    expected = (pixels.astype(np.float64) + full.image) / 2
    assert np.abs(half.image - expected).max() <= 1.0


@pytest.mark.parametrize(("shape", "upsample_only"), [((600, 900), False), ((40, 50), True)])
def test_retouching_in_place_gives_the_same_pixels(tmp_path, shape, upsample_only):
    # overlapping tile windows (the refiner's halo) must all read the input before any tile
    # is written back; (40, 50): l = 0
    path = tmp_path / "m.pt"
    save_model_file(make_tiny_model(seed=4, upsample_only=upsample_only), path)
    model = load_model(path, "cpu")
    pixels = np.random.default_rng(6).integers(0, 65536, (*shape, 3), dtype=np.uint16)
    opts = RetouchOptions(tile=128, levels=None if shape[0] > 100 else 0)
    fresh = retouch(model, pixels, opts)
    work = pixels.copy()
    result = retouch(model, work, opts, out=work)
    assert result.image is work and np.array_equal(work, fresh.image)
    assert not np.array_equal(work, pixels) and fresh.tiles_skipped < fresh.tiles_total
    with pytest.raises(ValueError, match="out must be"):
        retouch(model, pixels, opts, out=np.empty((2, 2, 3), np.uint16))


def test_bad_arguments_are_rejected(loaded):
    pixels = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="strength"):
        retouch(loaded, pixels, RetouchOptions(strength=1.5))
    with pytest.raises(ValueError, match="dtype"):
        retouch(loaded, pixels.astype(np.float32), RetouchOptions())
