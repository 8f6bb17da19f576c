"""Training data: discovery, pair matching, loading, crop datasets and the eval-set writer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from abpn_cli.training.data import (
    CropSample,
    PairCropDataset,
    PairError,
    SyntheticCropDataset,
    dihedral,
    find_pairs,
    find_photos,
    find_region,
    load_pair,
    load_rgb_float,
    make_eval_set,
)
from tests.factories import gradient_photo, write_rgb


def touch_image(path: Path, w: int = 8, h: int = 6) -> Path:
    return write_rgb(path, np.zeros((h, w, 3), np.uint8))


# --------------------------------------------------------------------------- discovery


def test_find_photos_recursive_sorted_deduplicated(tmp_path: Path) -> None:
    a = touch_image(tmp_path / "b.jpg")
    b = touch_image(tmp_path / "sub" / "a.PNG")
    c = touch_image(tmp_path / "sub" / "deeper" / "c.tiff")
    (tmp_path / "notes.txt").write_text("x")
    touch_image(tmp_path / "._b.jpg")  # macOS resource fork
    found = find_photos([tmp_path, tmp_path / "sub", a])
    assert found == sorted([a, b, c])
    with pytest.raises(FileNotFoundError):
        find_photos([tmp_path / "missing"])


def test_find_pairs_matches_by_relative_path_without_extension(tmp_path: Path) -> None:
    b1 = touch_image(tmp_path / "before" / "x.jpg")
    a1 = touch_image(tmp_path / "after" / "x.png")
    b2 = touch_image(tmp_path / "before" / "s" / "y.png")
    a2 = touch_image(tmp_path / "after" / "s" / "y.tif")
    touch_image(tmp_path / "after" / "y.png")  # same stem, other folder: not a match for s/y
    with pytest.raises(ValueError, match=r"1 in after/ without a match: y\.png"):
        find_pairs(tmp_path)
    assert find_pairs(tmp_path, strict=False) == [(b2, a2), (b1, a1)]  # sorted by 's/y' < 'x'


def test_find_pairs_errors_list_unmatched_and_none(tmp_path: Path) -> None:
    for i in range(7):
        touch_image(tmp_path / "before" / f"only{i}.jpg")
    touch_image(tmp_path / "before" / "ok.jpg")
    touch_image(tmp_path / "after" / "ok.jpg")
    with pytest.raises(ValueError, match=r"7 in before/ without a match: only0\.jpg.*and 2 more"):
        find_pairs(tmp_path)

    empty = tmp_path / "none"
    touch_image(empty / "before" / "a.jpg")
    touch_image(empty / "after" / "b.jpg")
    with pytest.raises(ValueError, match="no before/after pairs"):
        find_pairs(empty)
    with pytest.raises(ValueError, match="missing folder 'before/' and 'after/'"):
        find_pairs(tmp_path / "before")
    touch_image(tmp_path / "half" / "before" / "a.jpg")
    with pytest.raises(ValueError, match="missing folder 'after/' "):
        find_pairs(tmp_path / "half")

    amb = tmp_path / "amb"
    touch_image(amb / "before" / "a.jpg")
    touch_image(amb / "before" / "a.png")
    touch_image(amb / "after" / "a.jpg")
    with pytest.raises(ValueError, match="ambiguous"):
        find_pairs(amb)


def test_load_pair_size_mismatch(tmp_path: Path) -> None:
    b = touch_image(tmp_path / "before" / "p.png", w=40, h=30)
    a = touch_image(tmp_path / "after" / "p.png", w=30, h=40)
    with pytest.raises(PairError, match="size mismatch: before 40x30 vs after 30x40"):
        load_pair(b, a)


# --------------------------------------------------------------------------- loading


def test_load_rgb_float_channel_order_depth_gray_alpha(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    img = load_rgb_float(write_rgb(tmp_path / "red.png", rgb))
    assert img.dtype == np.float32 and img.shape == (4, 5, 3)
    assert np.allclose(img[0, 0], [200 / 255, 0, 0])

    deep = np.zeros((4, 5, 3), np.uint16)
    deep[..., 2] = 1000  # blue, a value no 8-bit file can hold
    cv2.imwrite(str(tmp_path / "deep.png"), deep[:, :, ::-1].copy())
    img16 = load_rgb_float(tmp_path / "deep.png")
    assert img16[0, 0, 2] == pytest.approx(1000 / 65535, abs=1e-7) and img16[0, 0, 0] == 0

    cv2.imwrite(str(tmp_path / "gray.png"), np.full((3, 3), 128, np.uint8))
    gray = load_rgb_float(tmp_path / "gray.png")
    assert gray.shape == (3, 3, 3) and np.allclose(gray, 128 / 255)

    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 1] = 255  # green
    bgra[..., 3] = 7  # nearly transparent: alpha is dropped, colour kept
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    alpha = load_rgb_float(tmp_path / "alpha.png")
    assert alpha.shape == (3, 3, 3) and np.allclose(alpha[0, 0], [0, 1, 0])


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_load_rgb_float_max_side(tmp_path: Path, ext: str) -> None:
    path = write_rgb(tmp_path / f"big.{ext}", gradient_photo(300, 800))
    assert load_rgb_float(path).shape == (300, 800, 3)
    small = load_rgb_float(path, max_side=200)
    assert small.shape == (75, 200, 3) and small.min() >= 0 and small.max() <= 1
    assert load_rgb_float(path, max_side=1000).shape == (300, 800, 3)  # never upscaled


# --------------------------------------------------------------------------- datasets


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return [
        write_rgb(tmp_path / "p0.png", gradient_photo(200, 300, 0)),
        write_rgb(tmp_path / "p1.jpg", gradient_photo(260, 180, 1)),
    ]


def test_dihedral_group() -> None:
    x = np.arange(12).reshape(3, 4)
    outs = {dihedral(x, c).tobytes() + bytes(dihedral(x, c).shape) for c in range(8)}
    assert len(outs) == 8 and np.array_equal(dihedral(x, 0), x)


def test_synthetic_dataset_shapes_locality_determinism(photos: list[Path]) -> None:
    ds = SyntheticCropDataset(photos, crop=128, length=6, seed=3, long_side=(150, 300))
    assert len(ds) == 6 and len(ds.images) == 2
    assert all(min(im.shape[:2]) >= 128 and im.dtype == np.uint8 for im in ds.images)
    sample = ds[1]
    assert isinstance(sample, CropSample)
    assert sample.before.shape == sample.after.shape == (3, 128, 128)
    assert sample.region.shape == (1, 128, 128)
    assert all(t.dtype == torch.float32 for t in sample)
    assert float(sample.before.min()) >= 0 and float(sample.before.max()) <= 1
    outside = sample.region[0] == 0
    assert torch.equal(sample.before[:, outside], sample.after[:, outside])
    assert not torch.equal(sample.before, sample.after)

    again = SyntheticCropDataset(photos, crop=128, length=6, seed=3, long_side=(150, 300))
    assert all(torch.equal(x, y) for x, y in zip(ds[4], again[4], strict=True))
    again.set_epoch(1)
    assert not torch.equal(ds[4].after, again[4].after)
    with pytest.raises(IndexError):
        ds[6]

    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.before.shape == (3, 3, 128, 128) and batch.region.shape == (3, 1, 128, 128)


def test_synthetic_dataset_memory_budget(photos: list[Path]) -> None:
    roomy = SyntheticCropDataset(photos, crop=64, length=2, long_side=(300, 300))
    tight = SyntheticCropDataset(photos, crop=64, length=2, long_side=(300, 300), max_mb=0.15)
    assert tight.nbytes <= 0.15 * 2**20 < roomy.nbytes
    assert all(min(im.shape[:2]) >= 64 for im in tight.images)
    with pytest.warns(UserWarning, match="left out"):
        tiny = SyntheticCropDataset(photos, crop=128, length=2, max_mb=0.1)
    assert len(tiny.images) == 1


def make_local_edit_pair(root: Path) -> tuple[Path, Path]:
    """A 200x1000 pair whose only edit is a 60x60 patch near the right end."""
    after = gradient_photo(200, 1000, 5)
    before = after.copy()
    before[100:160, 880:940] = (before[100:160, 880:940] * 0.7).astype(np.uint8)
    return write_rgb(root / "before" / "e.png", before), write_rgb(root / "after" / "e.png", after)


def hit_rate(ds: PairCropDataset, n: int = 60) -> float:
    return float(np.mean([float(ds[i].region.max()) > 0.5 for i in range(n)]))


def test_pair_dataset_prefers_changed_areas(tmp_path: Path) -> None:
    pair = make_local_edit_pair(tmp_path)
    assert find_pairs(tmp_path) == [pair]
    common = dict(crop=128, length=60, seed=0, scale=(1.0, 1.0))
    focused = PairCropDataset([pair], uniform_fraction=0.3, **common)
    anywhere = PairCropDataset([pair], uniform_fraction=1.0, **common)
    assert focused.images[0][0].dtype == np.uint16
    s = focused[0]
    assert s.before.shape == s.after.shape == (3, 128, 128) and s.region.shape == (1, 128, 128)
    assert all(t.dtype == torch.float32 for t in s)
    rate, base = hit_rate(focused), hit_rate(anywhere)
    assert rate >= 0.55 and base <= 0.35 and rate > base + 0.3, (rate, base)
    # where the region is empty, before and after agree (within the threshold)
    for i in range(10):
        smp = focused[i]
        quiet = smp.region[0] == 0
        assert float((smp.before - smp.after).abs()[:, quiet].amax()) <= 0.02


# --------------------------------------------------------------------------- eval set


def test_make_eval_set_is_byte_deterministic(tmp_path: Path, photos: list[Path]) -> None:
    small = write_rgb(tmp_path / "tiny.png", gradient_photo(90, 120, 7))  # needs upscaling
    srcs = [*photos, small]
    items = make_eval_set(srcs, tmp_path / "e1", size=128, seed=11, count_per_photo=2)
    make_eval_set(srcs, tmp_path / "e2", size=128, seed=11, count_per_photo=2)
    files1 = sorted(p.relative_to(tmp_path / "e1") for p in (tmp_path / "e1").rglob("*"))
    files2 = sorted(p.relative_to(tmp_path / "e2") for p in (tmp_path / "e2").rglob("*"))
    assert files1 == files2 and len(files1) == 3 + 3 * 6 + 1  # 3 folders, 18 PNGs, manifest
    for rel in files1:
        if (tmp_path / "e1" / rel).is_file():
            assert (tmp_path / "e1" / rel).read_bytes() == (tmp_path / "e2" / rel).read_bytes()

    assert [it.upscaled for it in items] == [False, False, False, False, True, True]
    assert items[0].name == "0000_p0_00"
    manifest = json.loads((tmp_path / "e1" / "manifest.json").read_text())
    assert manifest["seed"] == 11 and len(manifest["items"]) == 6

    pairs = find_pairs(tmp_path / "e1")
    assert len(pairs) == 6
    b, a = load_pair(*pairs[0])
    assert b.shape == (128, 128, 3)
    region_path = find_region(tmp_path / "e1", pairs[0][0])
    assert region_path is not None
    region = cv2.imread(str(region_path), cv2.IMREAD_UNCHANGED)
    assert region.shape == (128, 128) and region.dtype == np.uint8
    assert np.abs(b - a)[region == 0].max() <= 1.5 / 255  # untouched outside the region
    assert np.abs(b - a).max() > 0.02

    other = make_eval_set(srcs[:1], tmp_path / "e3", size=128, seed=12)
    assert (tmp_path / "e3" / "before" / f"{other[0].name}.png").read_bytes() != (
        tmp_path / "e1" / "before" / "0000_p0_00.png"
    ).read_bytes()
