"""`abpn learn`: pair checks, a short learn run on a tiny model, the model card, CLI exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from abpn_cli.cli import app
from abpn_cli.engine import ModelCard, load_model, save_model_file
from abpn_cli.model import ABPN
from abpn_cli.training import learn as lrn
from abpn_cli.training.learn import learn
from abpn_cli.training.learn_errors import PairCheckError
from abpn_cli.training.learn_settings import LearnSettings
from abpn_cli.training.losses import LossWeights
from abpn_cli.training.pair_checks import check_pair
from abpn_cli.training.train_settings import TrainSettings, lr_at
from abpn_cli.training.trainer import train
from tests.conftest import TINY, make_tiny_model
from tests.factories import scene, write_rgb

H, W = 192, 256


def redden_edit(img: np.ndarray) -> np.ndarray:
    """The local edit to learn: brighten red pixels (soft mask on 'redness')."""
    red = img[..., 0] - np.maximum(img[..., 1], img[..., 2])
    mask = np.clip((red - 0.15) / 0.2, 0, 1)[..., None]
    return np.clip(img + 0.2 * mask, 0, 1)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    for i in range(3):
        img = scene(10 + i)
        write_rgb(root / "before" / f"p{i}.png", img)
        write_rgb(root / "after" / f"p{i}.png", redden_edit(img))
    return root


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained ABPN: its zero-initialised heads make it the identity, like a shipped
    model on an edit it never saw (it leaves the photo alone)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("base") / "base.pt"
    save_model_file(ABPN(TINY), path, ModelCard(kind="test", details={"note": "tiny test base"}))
    return path


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("random") / "random.pt"
    save_model_file(
        make_tiny_model(), path, ModelCard(kind="test", details={"note": "tiny random weights"})
    )
    return path


def _pair(tmp: Path, before: np.ndarray, after: np.ndarray) -> tuple[Path, Path]:
    return write_rgb(tmp / "b.png", before), write_rgb(tmp / "a.png", after)


# --------------------------------------------------------------------------- pair checks


def test_good_pair_passes_with_hashes(pairs_dir: Path) -> None:
    b, a = pairs_dir / "before" / "p0.png", pairs_dir / "after" / "p0.png"
    info = check_pair(b, a)
    assert (info.width, info.height) == (W, H)
    assert info.sha256_before == hashlib.sha256(b.read_bytes()).hexdigest()
    assert info.sha256_after == hashlib.sha256(a.read_bytes()).hexdigest()
    assert info.correlation > 0.8 and 0.01 < info.edited_fraction < 0.5
    assert max(map(abs, info.shift_px)) < 1.0
    assert not info.warnings


def _rotated_90(seed: int) -> tuple[np.ndarray, np.ndarray]:
    img = scene(seed)
    return img, np.ascontiguousarray(np.rot90(redden_edit(img)))


def _rotated_180(seed: int) -> tuple[np.ndarray, np.ndarray]:
    img = scene(seed)
    return img, np.ascontiguousarray(redden_edit(img)[::-1, ::-1])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(
            lambda: _rotated_90(1),
            rf"size mismatch: before {W}x{H} vs after {H}x{W}",
            id="size-mismatch",
        ),
        pytest.param(
            lambda: (scene(1), redden_edit(scene(2))),
            "look like different photos",
            id="different-photo",
        ),
        pytest.param(lambda: _rotated_180(3), "different photos", id="rotated-180"),
        pytest.param(lambda: (scene(5), scene(5)), "nothing to learn", id="identical"),
    ],
)
def test_pair_is_refused(
    tmp_path: Path, make: Callable[[], tuple[np.ndarray, np.ndarray]], match: str
) -> None:
    b, a = _pair(tmp_path, *make())
    with pytest.raises(PairCheckError, match=match):
        check_pair(b, a)


def test_shifted_pair(tmp_path: Path) -> None:
    big = scene(4, H + 10, W + 10)
    before = big[5 : 5 + H, 5 : 5 + W]
    after = redden_edit(big[5 : 5 + H, 2 : 2 + W])  # content moved 3 px to the right
    b, a = _pair(tmp_path, before, after)
    with pytest.raises(
        PairCheckError, match=r"after is shifted by \(\+[23]\.\d, [+-]0\.\d\) px"
    ) as e:
        check_pair(b, a)
    assert "export both from the same crop" in str(e.value)


def test_jpeg_and_lossless_copy_decode_alike(tmp_path: Path) -> None:
    """A JPEG before and a PNG of exactly its pixels: no edit. (Decoding the JPEG at reduced
    DCT scale but the PNG in full would invent a difference along every edge.)"""
    rng = np.random.default_rng(9)  # fine texture: where the two resamplings differ most
    big = cv2.GaussianBlur(rng.uniform(0, 1, (4 * H, 4 * W, 3)).astype(np.float32), (0, 0), 0.7)
    jpg = tmp_path / "b.jpg"
    cv2.imwrite(str(jpg), (big * 255 + 0.5).astype(np.uint8)[:, :, ::-1])
    png = tmp_path / "a.png"
    cv2.imwrite(str(png), cv2.imread(str(jpg), cv2.IMREAD_COLOR))
    with pytest.raises(PairCheckError, match="nothing to learn"):
        check_pair(jpg, png, max_side=W)


def test_missing_file(tmp_path: Path) -> None:
    b = write_rgb(tmp_path / "b.png", scene(6))
    with pytest.raises(PairCheckError, match="after file not found"):
        check_pair(b, tmp_path / "nope.png")


def test_global_edit_warns(tmp_path: Path) -> None:
    img = scene(7)
    b, a = _pair(tmp_path, img, np.clip(img * 0.6 + 0.3, 0, 1))
    assert "global grade" in check_pair(b, a).warnings[0]


# --------------------------------------------------------------------------- time budget


def test_time_budget_stops_training_and_decays_lr(pairs_dir: Path, tmp_path: Path) -> None:
    s = TrainSettings(
        out=tmp_path / "run",
        pairs=pairs_dir,
        crop=128,
        levels=1,
        batch=2,
        steps=10_000,
        lr=1e-3,
        lr_decay_at=0.7,
        val_every=None,  # at the start and at the end only
        val_size=2,
        checkpoint_every=None,  # at the end only
        threads=1,
        model_config=TINY,
        weights=LossWeights(adv=0.0),
        max_seconds=1.0,
        export=False,
    )
    assert lr_at(0, s, 0.5) == 1e-3 and lr_at(0, s, 0.7) == pytest.approx(1e-4)
    assert lr_at(9_000, s) == pytest.approx(1e-4)  # steps still decay without a clock
    report = train(s)
    assert report.out_of_time and not report.interrupted
    assert 1 <= report.steps_done < 10_000
    assert report.wall_s < 10
    assert report.val is not None and report.val.step == report.steps_done  # final validation
    assert report.checkpoint is not None and report.checkpoint.is_file()


# --------------------------------------------------------------------------- learn


def _settings(pairs_dir: Path, base: Path, out: Path, **kw: object) -> LearnSettings:
    pairs = [
        (pairs_dir / "before" / f"p{i}.png", pairs_dir / "after" / f"p{i}.png") for i in (0, 1, 2)
    ]
    base_kw: dict[str, object] = {
        "out": out,
        "pairs": pairs,
        "base": base,
        "minutes": None,
        "steps": 30,
        "lr": 5e-3,
        "threads": 1,
        "val_size": 2,
    }
    return LearnSettings(**{**base_kw, **kw})  # type: ignore[arg-type]


def test_learn_improves_held_out_pair_and_writes_model_card(
    pairs_dir: Path, base_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "learned.pt"
    events: list[lrn.LearnEvent] = []
    report = learn(_settings(pairs_dir, base_model, out), events.append)
    h = report.heldout
    assert h is not None and h.pair == "p2.png"
    assert h.psnr_learned is not None
    # the identity base scores what doing nothing scores; 30 steps learn the edit (~+6 dB)
    assert h.psnr_base == pytest.approx(h.psnr_nothing, abs=0.01)
    assert h.psnr_learned > h.psnr_base + 3.0
    assert report.steps == 30 and not report.out_of_time
    assert [e.step for e in events if e.kind == "step"] == list(range(1, 31))
    assert not [e for e in events if e.kind == "status" and e.message.startswith("warning")]

    loaded = load_model(out, "cpu")  # a normal model file
    card = ModelCard.from_meta(loaded.metadata)
    meta = card.details
    assert card.kind == "learned" and card.init_from == str(base_model)
    assert meta["base_model"]["sha256"] == hashlib.sha256(base_model.read_bytes()).hexdigest()
    assert card.steps == 30 and meta["seconds"] > 0
    ex = meta["exemplars"]
    assert [Path(e["before"]).name for e in ex] == ["p0.png", "p1.png", "p2.png"]
    assert [e["role"] for e in ex] == ["train", "train", "heldout"]
    for e in ex:
        for side in ("before", "after"):
            digest = hashlib.sha256(Path(e[side]).read_bytes()).hexdigest()
            assert e[f"sha256_{side}"] == digest
    assert meta["heldout"]["psnr_learned"] == pytest.approx(h.psnr_learned, abs=0.01)
    assert loaded.config.thumbnail == TINY.thumbnail  # inference picks levels as before
    card = (tmp_path / "learned.md").read_text()
    assert "p2.png" in card and "## Limits" in card and "geometry" in card
    # the exemplars went to the trainer in memory: the run keeps previews, no copies
    assert sorted(p.name for p in (tmp_path / "learned.run").iterdir()) == ["previews"]


def test_learn_without_holdout_uses_all_pairs(
    pairs_dir: Path, base_model: Path, tmp_path: Path
) -> None:
    report = learn(_settings(pairs_dir, base_model, tmp_path / "m.pt", steps=2, holdout=False))
    assert report.heldout is None
    meta = ModelCard.from_meta(load_model(tmp_path / "m.pt", "cpu").metadata).details
    assert meta["heldout"] is None and {e["role"] for e in meta["exemplars"]} == {"train"}


def test_ctrl_c_writes_no_model(pairs_dir: Path, base_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"

    def interrupt(ev: lrn.LearnEvent) -> None:
        if ev.kind == "step" and ev.step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C

    with pytest.raises(lrn.LearnInterrupted) as exc:
        learn(_settings(pairs_dir, base_model, out, steps=50), interrupt)
    assert not out.exists() and not (tmp_path / "m.md").exists()
    assert exc.value.checkpoint is not None and exc.value.checkpoint.is_file()


def test_minutes_too_small(pairs_dir: Path, base_model: Path, tmp_path: Path) -> None:
    with pytest.raises(lrn.LearnUsageError, match="give more minutes"):
        learn(_settings(pairs_dir, base_model, tmp_path / "m.pt", minutes=0.1, steps=None))


# --------------------------------------------------------------------------- CLI


def test_cli_learns_from_before_after_options(
    pairs_dir: Path, base_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cli.pt"
    args = ["learn", "--out", str(out), "--from", str(base_model), "--steps", "2"]
    for i in (0, 1):  # names need not match: pairs are given explicitly
        b, a = tmp_path / f"IMG_{i}.png", tmp_path / f"IMG_{i}-edited.png"
        b.write_bytes((pairs_dir / "before" / f"p{i}.png").read_bytes())
        a.write_bytes((pairs_dir / "after" / f"p{i}.png").read_bytes())
        args += ["--before", str(b), "--after", str(a)]
    result = CliRunner().invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    card = ModelCard.from_meta(load_model(out, "cpu").metadata)
    meta = card.details
    assert len(meta["exemplars"]) == 2 and card.steps == 2
    assert Path(meta["exemplars"][1]["after"]).name == "IMG_1-edited.png"


def test_cli_pair_error_exits_2(tmp_path: Path, base_model: Path) -> None:
    img = scene(8)
    b, a = _pair(tmp_path, img, np.ascontiguousarray(np.rot90(img)))
    args = ["learn", "--before", str(b), "--after", str(a), "--out", str(tmp_path / "m.pt")]
    result = CliRunner().invoke(app, [*args, "--from", str(base_model)])
    assert result.exit_code == 2
    assert "size mismatch" in result.output
    assert not (tmp_path / "m.pt").exists()


def test_cli_usage_errors_exit_2(tmp_path: Path, pairs_dir: Path) -> None:
    runner = CliRunner()
    only_before = ["learn", "--before", str(pairs_dir / "before" / "p0.png"), "--out", "m.pt"]
    assert runner.invoke(app, only_before).exit_code == 2
    assert runner.invoke(app, ["learn", "--out", str(tmp_path / "m.pt")]).exit_code == 2
    empty = tmp_path / "empty"
    (empty / "before").mkdir(parents=True)
    (empty / "after").mkdir()
    assert runner.invoke(app, ["learn", "--pairs", str(empty), "--out", "m.pt"]).exit_code == 2
    one = runner.invoke(app, ["learn", "--pairs", str(pairs_dir), "--out", "m.pt", "--batch", "1"])
    assert one.exit_code == 2 and "--batch must be >= 2" in one.output


def test_cli_missing_base_model_exits_4(tmp_path: Path, pairs_dir: Path) -> None:
    args = ["learn", "--pairs", str(pairs_dir), "--out", str(tmp_path / "m.pt")]
    result = CliRunner().invoke(app, [*args, "--from", str(tmp_path / "missing.pt")])
    assert result.exit_code == 4
    assert "base model not found" in result.output


def test_cli_ctrl_c_exits_130(
    tmp_path: Path, pairs_dir: Path, base_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lrn, "learn", interrupted)
    args = ["learn", "--pairs", str(pairs_dir), "--out", str(tmp_path / "m.pt")]
    result = CliRunner().invoke(app, [*args, "--from", str(base_model)])
    assert result.exit_code == 130
    assert not (tmp_path / "m.pt").exists()


def test_model_card_json_is_plain(pairs_dir: Path, random_model: Path, tmp_path: Path) -> None:
    """The card round-trips through JSON (no Paths, no NaN); any model file can be the base."""
    report = learn(_settings(pairs_dir, random_model, tmp_path / "m.pt", steps=1))
    assert report.heldout is not None and report.heldout.psnr_learned is not None
    meta = load_model(tmp_path / "m.pt", "cpu").metadata
    assert json.loads(json.dumps(meta, allow_nan=False)) == meta
    assert ModelCard.from_meta(meta).details["base_model"]["path"] == str(random_model)


def test_a_look_learned_at_256_px_is_applied_at_256_px_with_the_same_weights():
    from dataclasses import replace

    import torch

    from abpn_cli.model import ABPN
    from abpn_cli.training.learn import LEARN_MAX_THUMBNAIL
    from abpn_cli.training.learn_models import at_thumbnail
    from tests.conftest import TINY

    base = ABPN(replace(TINY, thumbnail=768))
    learned = at_thumbnail(base, LEARN_MAX_THUMBNAIL)
    assert learned.config.thumbnail == 256
    for (name, a), (_, b) in zip(
        base.state_dict().items(), learned.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_pair_named_twice_is_learned_once_and_a_before_with_two_afters_refused(
    tmp_path: Path, pairs_dir: Path
) -> None:
    from abpn_cli.training.commands import learn_settings
    from abpn_cli.training.learn_errors import LearnUsageError

    b, a = pairs_dir / "before" / "p2.png", pairs_dir / "after" / "p2.png"
    fields = {"out": tmp_path / "m.pt", "minutes": None, "steps": 1}
    settings = learn_settings(pairs_dir, [b], [a], **fields)
    assert [p[0].name for p in settings.pairs] == ["p0.png", "p1.png", "p2.png"]
    with pytest.raises(LearnUsageError, match="before of two pairs"):
        learn_settings(pairs_dir, [b], [pairs_dir / "after" / "p0.png"], **fields)


def test_a_look_worse_than_doing_nothing_on_the_held_out_pair_is_said(
    pairs_dir: Path, base_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def worse(heldout, *_args) -> None:
        heldout.psnr_learned = heldout.psnr_nothing - 1.0

    monkeypatch.setattr(lrn, "score_learned", worse)
    events: list[lrn.LearnEvent] = []
    learn(_settings(pairs_dir, base_model, tmp_path / "m.pt", steps=1), events.append)
    said = [e.message for e in events if e.kind == "status"]
    assert any(m.startswith("warning: on p2.png the learned look is further") for m in said), said
    assert (tmp_path / "m.pt").is_file()  # still written: the card records the score
