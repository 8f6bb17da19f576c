"""Stage-1 dust training: batches, losses, smooth maps, and a tiny run that exports and resumes."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from abpn_cli.engine import ModelCard, load_model, retouch
from abpn_cli.engine.retouch import RetouchOptions
from abpn_cli.training.dust import DustParams
from abpn_cli.training.dust_data import (
    DustBatch,
    DustDataError,
    dust_sources,
    sample_batch,
    smooth_map,
)
from abpn_cli.training.dust_train import DustTrainSettings, false_hits, lrl_losses, train_dust
from abpn_cli.training.thumbs import Thumb
from tests.conftest import TINY
from tests.factories import landscape

TINY_DUST = replace(TINY, thumbnail=128, gate_residual=True, detail_input=True)


def _sources(n: int = 2, side: int = 640) -> list:
    thumbs = [
        Thumb(Path(f"p{i}.png"), side, landscape(side * 2 // 3, side, i).astype(np.float16))
        for i in range(n)
    ]
    return dust_sources(thumbs)


def test_smooth_map_marks_the_sky_not_the_ground():
    sm = smooth_map(landscape(256, 256))
    assert sm[2:10].all() and not sm[20:].any()


def test_batches_are_thumbnail_crops_and_clean_share_one_means_no_dust():
    rng = np.random.default_rng(0)
    b = sample_batch(_sources(), rng, 4, 64, DustParams(), 0.0, 0.6)
    assert b.dusty.shape == (4, 3, 64, 64) and b.dusty.dtype == torch.float32
    assert (b.dusty <= b.clean + 1e-6).all() and (b.dusty < b.clean - 1e-3).any()
    c = sample_batch(_sources(), rng, 4, 64, DustParams(), 1.0 - 1e-12)
    assert torch.equal(c.dusty, c.clean)


def test_zoomed_crops_carry_the_same_dust_twice_as_large():
    def shaded_area(zoom: float) -> int:  # the same draws, so the same spots and crops
        one = DustParams(count=(1, 1), diameter=(0.019, 0.021), fibre_prob=0.0)
        b = sample_batch(_sources(), np.random.default_rng(3), 6, 64, one, 0.0, 0.0, zoom)
        return int((b.dusty < b.clean - 1e-4).sum())

    plain, zoomed = shaded_area(0.0), shaded_area(1.0)
    assert plain > 0 and 2.5 * plain < zoomed < 5.5 * plain  # area: 2^2 = 4x


def test_crops_larger_than_every_photo_are_a_clear_error():
    with pytest.raises(DustDataError, match="short side"):
        sample_batch(_sources(side=200), np.random.default_rng(0), 2, 128, DustParams(), 0.0)


def test_losses_score_doing_nothing_as_all_error_left_and_the_target_as_none():
    b = sample_batch(_sources(), np.random.default_rng(1), 4, 64, DustParams(count=(3, 3)), 0.0)
    mask = torch.full((4, 1, 16, 16), 0.5)
    nothing = lrl_losses(mask, b.dusty, b, 0.5, 1.0)
    perfect = lrl_losses(mask, b.clean, DustBatch(b.dusty, b.clean), 0.5, 1.0)
    base = float((b.dusty - b.clean).square().sum())
    floor = b.clean.numel() * 1e-6  # clean crops must cost something too
    assert float(nothing["left"]) == pytest.approx(base / (base + floor), rel=1e-5)
    assert float(perfect["left"]) == 0.0


def test_false_hits_see_a_confident_spot_away_from_dust_but_not_one_on_it():
    gt = torch.zeros(2, 1, 32, 32)
    gt[:, :, 4:7, 4:7] = 1.0
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 4:7, 4:7] = 0.9  # both crops: confident on the dust itself
    mask[1, :, 20:22, 20:22] = 0.9  # second crop: a 2x2 false spot far from it
    hits = false_hits(mask, gt)
    assert float(hits[0]) == 0.0 and float(hits[1]) == pytest.approx(0.9)
    terms = lrl_losses(
        mask.expand(2, 1, 32, 32),
        torch.zeros(2, 3, 8, 8),
        DustBatch(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8)),
        0.5,
        1.0,
        0.5,
    )
    assert float(terms["false"]) > 1.0  # -log(1 - 0.9) averaged with 0


def _write_photos(folder: Path, n: int) -> tuple[Path, ...]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        p = folder / f"p{i}.png"
        Image.fromarray((landscape(800, 1200, i) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    return tuple(paths)


def test_a_tiny_run_exports_a_model_the_engine_runs_and_resumes_where_it_stopped(tmp_path):
    photos = _write_photos(tmp_path / "photos", 2)
    settings = DustTrainSettings(
        photos=photos,
        holdout=photos[:1],
        out=tmp_path / "run",
        cache_dir=tmp_path / "cache",
        steps=3,
        batch=2,
        crop=64,
        val_every=2,
        val_batches=1,
        compile=False,
        config=TINY_DUST,
    )
    lines: list[str] = []
    score = train_dust(settings, lines.append)
    assert score is not None and score.step == 3
    model = load_model(tmp_path / "run" / "model.pt", "cpu")
    assert model.config.gate_residual and ModelCard.from_meta(model.metadata).kind == "train-dust"
    pixels = (landscape(300, 450) * 255).astype(np.uint8)
    assert retouch(model, pixels, RetouchOptions()).image.shape == pixels.shape
    more = DustTrainSettings(**{**settings.__dict__, "steps": 5})
    lines.clear()
    assert train_dust(more, lines.append).step == 5
    assert any("resumed at step 3" in line for line in lines)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # decoded once, reused


def _saved_base(tmp_path: Path) -> Path:
    """A TINY_DUST model file whose mask head's bias is 0.7 (a mark to find after loading)."""
    from abpn_cli.engine import save_model_file
    from abpn_cli.model import ABPN

    base = ABPN(TINY_DUST)
    with torch.no_grad():
        base.lrl.mask_branch.head.bias.fill_(0.7)
    path = tmp_path / "base.pt"
    save_model_file(base, path, ModelCard(kind="test"))
    return path


def test_init_from_takes_same_weights_in_another_output_form_and_refuses_other_widths(tmp_path):
    from abpn_cli.training.dust_train import DustTrainError, start_run

    path = _saved_base(tmp_path)
    photos = (tmp_path / "unused.jpg",)
    gain = replace(TINY_DUST, multiplicative=True)
    run = start_run(DustTrainSettings(photos, (), tmp_path / "a", init_from=path, config=gain))
    assert run.model.config.multiplicative
    assert run.model.config.thumbnail == TINY_DUST.thumbnail  # the file's scale, not DUST_CONFIG's
    assert float(run.model.lrl.mask_branch.head.bias[0].detach()) == pytest.approx(0.7)
    wider = replace(TINY_DUST, encoder_widths=[8, 8, 16, 16, 16, 32])
    with pytest.raises(DustTrainError, match="another architecture"):
        start_run(DustTrainSettings(photos, (), tmp_path / "b", init_from=path, config=wider))


def test_half_width_cuts_the_init_models_strongest_channels(tmp_path):
    from abpn_cli.training.dust_train import start_run
    from abpn_cli.training.slim import half_widths

    path = _saved_base(tmp_path)
    settings = DustTrainSettings((tmp_path / "unused.jpg",), (), tmp_path / "a", init_from=path)
    run = start_run(replace(settings, half_width=True))
    assert run.model.config == half_widths(TINY_DUST)  # the file's architecture, narrower
    assert run.model.lrl.training  # trainable, not the teacher's eval mode
    assert float(run.model.lrl.mask_branch.head.bias[0].detach()) == pytest.approx(0.7)
    fresh = start_run(replace(settings, init_from=None, half_width=True, config=TINY_DUST))
    assert fresh.model.config.encoder_widths == half_widths(TINY_DUST).encoder_widths


@pytest.mark.parametrize("content", [None, b"not a model"])
def test_an_init_from_that_is_missing_or_no_model_is_a_clear_error(tmp_path, content):
    from abpn_cli.training.dust_train import DustTrainError, start_run

    path = tmp_path / "base.pt"
    if content is not None:
        path.write_bytes(content)
    settings = DustTrainSettings((tmp_path / "unused.jpg",), (), tmp_path / "a", init_from=path)
    with pytest.raises(DustTrainError, match="cannot start from --init-from"):
        start_run(settings)
