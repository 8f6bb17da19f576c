"""Training smoke tests on a tiny network: it learns, stops cleanly, resumes exactly."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from abpn_cli.cli import app
from abpn_cli.training.checkpoint import BEST_NAME, LAST_NAME, load_checkpoint
from abpn_cli.training.data import find_pairs, load_pair
from abpn_cli.training.losses import LossWeights
from abpn_cli.training.train_data import ExemplarPairs, build_datasets
from abpn_cli.training.train_settings import (
    TrainInitError,
    TrainSettings,
    TrainUsageError,
    lr_at,
    run_paths,
)
from abpn_cli.training.trainer import TrainEvent, train
from tests.conftest import TINY


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few smooth random 'photos' (bicubic-upsampled noise), 8-bit PNG."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):
        coarse = rng.uniform(0.15, 0.85, size=(6, 8, 3)).astype(np.float32)
        img = cv2.resize(coarse, (320, 240), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"p{i}.png"), (img.clip(0, 1) * 255).astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def tone_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Before/after pairs whose edit is a strong tone change: learnable in a few steps."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(1)
    for side in ("before", "after"):
        (root / side).mkdir()
    for i in range(4):
        coarse = rng.uniform(0.1, 0.9, size=(6, 8, 3)).astype(np.float32)
        img = cv2.resize(coarse, (320, 240), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        for side, pix in (("before", img), ("after", img * 0.7 + 0.2)):
            cv2.imwrite(str(root / side / f"p{i}.png"), (pix * 255 + 0.5).astype(np.uint8))
    return root


def _settings(source: Path, out: Path, **kw: object) -> TrainSettings:
    base: dict[str, object] = {
        "out": out,
        "photos": [source],
        "pairs": None,
        "crop": 128,
        "levels": 1,
        "batch": 4,
        "steps": 30,
        "lr": 2e-3,
        "seed": 3,
        "val_every": 1000,
        "val_size": 4,
        "checkpoint_every": 1000,
        "threads": 1,  # robust when the machine is busy (2 threads on 2 busy cores crawl)
        "model_config": TINY,
        "max_side": 320,
    }
    base.update(kw)
    return TrainSettings(**base)  # type: ignore[arg-type]


def test_synthetic_run_writes_checkpoints_previews_and_model(photos: Path, tmp_path: Path) -> None:
    events: list[TrainEvent] = []
    report = train(_settings(photos, tmp_path / "run", steps=6, val_every=3), events.append)
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(list(e.losses.values())).all() for e in steps)
    assert set(steps[0].losses) == {"mse", "perc", "dice", "tv", "adv", "total", "disc"}
    assert [v.step for v in report.val_history] == [0, 3, 6]
    assert not report.interrupted and report.steps_done == 6
    run = tmp_path / "run"
    assert (run / LAST_NAME).is_file() and (run / BEST_NAME).is_file()
    assert sorted(p.name for p in (run / "previews").iterdir()) == [
        "step0000000.png",
        "step0000003.png",
        "step0000006.png",
    ]
    grid = cv2.imread(str(run / "previews" / "step0000006.png"))
    assert grid.shape == (2 * 128 + 4, 5 * 128 + 4 * 4, 3)
    assert load_checkpoint(run / LAST_NAME).model_config().thumbnail == 64
    assert report.model_path == run / "model.pt" and report.model_path.is_file()


def test_training_reduces_validation_error(tone_pairs: Path, tmp_path: Path) -> None:
    """Fixed held-out batch: the network starts as the identity, so step 0 scores the input;
    after 15 steps on a learnable edit the output must be much closer to the target."""
    s = _settings(
        tone_pairs,
        tmp_path / "run",
        photos=[],
        pairs=tone_pairs,
        steps=15,
        val_every=15,
        weights=LossWeights(adv=0.0),
    )
    events: list[TrainEvent] = []
    report = train(s, events.append)
    first, last = report.val_history[0], report.val_history[-1]
    assert (first.step, last.step) == (0, 15)
    assert first.psnr_output == pytest.approx(first.psnr_input, abs=1e-3)
    assert last.mse_output < 0.7 * first.mse_output
    assert last.psnr_output > first.psnr_output + 1.5
    totals = [e.losses["total"] for e in events if e.kind == "step"]
    assert np.mean(totals[-3:]) < np.mean(totals[:3])


def _interrupt_at(step: int, events: list[TrainEvent]):
    """Progress callback that sends this process a real SIGINT (Ctrl-C) after `step`."""

    def cb(ev: TrainEvent) -> None:
        events.append(ev)
        if ev.kind == "step" and ev.step == step:
            os.kill(os.getpid(), signal.SIGINT)

    return cb


def test_ctrl_c_saves_and_resume_matches_uninterrupted_run(photos: Path, tmp_path: Path) -> None:
    kw = {"steps": 8, "checkpoint_every": 3, "weights": LossWeights(adv=0.1), "export": False}
    straight: list[TrainEvent] = []
    train(_settings(photos, tmp_path / "a", **kw), straight.append)

    first: list[TrainEvent] = []
    report = train(_settings(photos, tmp_path / "b", **kw), _interrupt_at(5, first))
    assert report.interrupted and report.steps_done == 5
    assert load_checkpoint(tmp_path / "b" / LAST_NAME).step == 5

    resumed: list[TrainEvent] = []
    report = train(_settings(photos, tmp_path / "b", resume=True, **kw), resumed.append)
    assert report.resumed_from == 5 and report.steps_done == 8

    def losses(evs: list[TrainEvent]) -> dict[int, dict[str, float]]:
        return {e.step: e.losses for e in evs if e.kind == "step"}

    ref = losses(straight)
    assert losses(first) == {s: ref[s] for s in range(1, 6)}
    assert losses(resumed) == {s: ref[s] for s in range(6, 9)}  # bit-identical, GAN included
    a = load_checkpoint(tmp_path / "a" / LAST_NAME)
    b = load_checkpoint(tmp_path / "b" / LAST_NAME)
    for name, tensor in a.model.items():
        assert torch.equal(tensor, b.model[name]), name
    assert a.discriminator is not None and b.discriminator is not None
    for name, tensor in a.discriminator.items():
        assert torch.equal(tensor, b.discriminator[name]), name


def test_hard_interrupt_between_steps_still_saves(photos: Path, tmp_path: Path) -> None:
    """A KeyboardInterrupt outside a step (e.g. a second Ctrl-C while waiting for data) saves the
    consistent state reached so far."""

    def cb(ev: TrainEvent) -> None:
        if ev.kind == "step" and ev.step == 2:
            raise KeyboardInterrupt

    kw = {"steps": 5, "weights": LossWeights(adv=0.0), "num_workers": 0}
    report = train(_settings(photos, tmp_path / "r", **kw), cb)
    assert report.interrupted and report.steps_done == 2 and report.model_path is None
    assert load_checkpoint(tmp_path / "r" / LAST_NAME).step == 2


def test_fine_tune_from_checkpoint_and_model_file(photos: Path, tmp_path: Path) -> None:
    base = train(_settings(photos, tmp_path / "base.pt", steps=2, weights=LossWeights(adv=0)))
    assert base.run_dir == tmp_path / "base.run" and base.model_path == tmp_path / "base.pt"
    src = load_checkpoint(base.run_dir / LAST_NAME).model
    for init in (base.run_dir / LAST_NAME, tmp_path / "base.pt"):
        out = tmp_path / f"ft-{init.suffix[1:]}"
        seen: list[TrainEvent] = []
        train(
            _settings(photos, out, steps=1, lr=1e-12, init_from=init, export=False),
            seen.append,
        )
        # with a vanishing lr the fine-tuned weights stay those it started from
        tuned = load_checkpoint(out / LAST_NAME).model
        name = "lrl.retouch_branch.head.weight"
        assert torch.allclose(tuned[name], src[name], atol=1e-6)


def test_usage_errors(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainUsageError, match="no training data"):
        train(_settings(photos, tmp_path / "r", photos=[]))
    with pytest.raises(TrainUsageError, match="no training data"):
        train(_settings(tmp_path, tmp_path / "r"))  # a folder without images
    with pytest.raises(TrainUsageError, match="not both"):
        train(_settings(photos, tmp_path / "r", pairs=photos))
    with pytest.raises(TrainUsageError, match="missing folder"):
        train(_settings(photos, tmp_path / "r", photos=[], pairs=photos))
    with pytest.raises(TrainUsageError, match="multiple of"):
        train(_settings(photos, tmp_path / "r", crop=96))
    with pytest.raises(TrainUsageError, match="batch must be >= 2"):
        train(_settings(photos, tmp_path / "r", batch=1))  # BatchNorm, not a traceback
    with pytest.raises(TrainUsageError, match="resume"):
        train(_settings(photos, tmp_path / "r", resume=True))
    with pytest.raises(TrainInitError, match="not found"):
        train(_settings(photos, tmp_path / "r", init_from=tmp_path / "missing.pt"))


def test_decoded_exemplars_give_the_trainer_what_their_folder_gives(
    tone_pairs: Path, tmp_path: Path
) -> None:
    """`abpn learn` hands its checked arrays over instead of writing them out: the crops and
    the validation batch must be the very ones the same pairs read from a folder make."""
    settings = _settings(tone_pairs, tmp_path / "r", photos=[], pairs=tone_pairs)
    from_folder, val_folder = build_datasets(settings)
    images = tuple(load_pair(b, a, settings.max_side) for b, a in find_pairs(tone_pairs))
    in_memory = dataclasses.replace(settings, pairs=None)
    from_memory, val_memory = build_datasets(in_memory, ExemplarPairs(images))
    for k in (0, 5, 17):
        for a, b in zip(from_folder[k], from_memory[k], strict=True):
            assert torch.equal(a, b)
    for a, b in zip(val_folder, val_memory, strict=True):
        assert torch.equal(a, b)
    report = train(dataclasses.replace(in_memory, steps=2), exemplars=ExemplarPairs(images))
    assert report.steps_done == 2 and report.model is not None
    with pytest.raises(TrainUsageError, match="no data folders"):
        train(settings, exemplars=ExemplarPairs(images))
    with pytest.raises(TrainUsageError, match="cannot resume"):
        train(dataclasses.replace(in_memory, resume=True), exemplars=ExemplarPairs(images))


def test_cli_exit_codes(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "no training data" in res.output
    res = runner.invoke(
        app, ["train", "--synthetic", str(photos), "--pairs", str(photos), "--out", "x"]
    )
    assert res.exit_code == 2
    res = runner.invoke(
        app,
        [
            "train",
            "--synthetic",
            str(photos),
            "--out",
            str(tmp_path / "r"),
            "--init-from",
            "nope.pt",
        ],
    )
    assert res.exit_code == 4 and "not found" in res.output


def test_lr_schedule_and_run_paths(tmp_path: Path) -> None:
    s = TrainSettings(out=tmp_path, steps=100, lr=5e-4)
    assert lr_at(0, s) == lr_at(49, s) == 5e-4
    assert lr_at(50, s) == lr_at(99, s) == pytest.approx(5e-5)
    assert run_paths(tmp_path / "m.pt") == (tmp_path / "m.run", tmp_path / "m.pt")
    assert run_paths(tmp_path / "run") == (tmp_path / "run", tmp_path / "run" / "model.pt")


def test_cli_time_budget_ends_run_with_checkpoint_and_model(
    photos: Path, tiny_model_file: Path, tmp_path: Path
) -> None:
    """--max-minutes stops a run long before --steps, and the stop is a clean one: the
    checkpoint holds the steps done and a model file is exported."""
    run = tmp_path / "run"
    common = ["train", "--synthetic", str(photos), "--out", str(run), "--init-from"]
    common += [str(tiny_model_file), "--crop", "128", "--levels", "1", "--batch", "2"]
    common += ["--threads", "1", "--val-every", "1000", "--checkpoint-every", "1000"]
    res = CliRunner().invoke(app, [*common, "--steps", "100000", "--max-minutes", "0.001"])
    assert res.exit_code == 0, res.output
    done = load_checkpoint(run / LAST_NAME).step
    assert 1 <= done < 100000
    assert (run / "model.pt").is_file()
    for bad in (["--lr-decay-at", "0"], ["--lr-decay-at", "1.5"], ["--max-minutes", "0"]):
        res = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "bad"), *bad])
        assert res.exit_code == 2, (bad, res.output)
        assert not (tmp_path / "bad").exists()


def test_lr_decays_at_the_given_fraction_of_the_time_budget(tmp_path: Path) -> None:
    s = TrainSettings(out=tmp_path, steps=10_000, lr=1e-3, lr_decay_at=0.6, max_seconds=100.0)
    assert lr_at(10, s, elapsed_s=59.0) == 1e-3
    assert lr_at(10, s, elapsed_s=60.0) == pytest.approx(1e-4)
    assert lr_at(6000, s, elapsed_s=1.0) == pytest.approx(1e-4)


def test_a_run_bounded_by_time_alone_hands_back_the_trained_network(
    photos: Path, tmp_path: Path
) -> None:
    """steps=None: the budget alone ends the run (how `abpn learn --minutes` trains);
    val_every / checkpoint_every None: only at the start and the end. The report carries the
    network, the same weights as the final checkpoint."""
    s = _settings(
        photos,
        tmp_path / "run",
        steps=None,
        max_seconds=1.0,
        val_every=None,
        checkpoint_every=None,
        batch=2,
        weights=LossWeights(adv=0.0),
        export=False,
    )
    assert lr_at(10**9, s) == s.lr and lr_at(0, s, elapsed_s=0.5) == pytest.approx(s.lr / 10)
    events: list[TrainEvent] = []
    report = train(s, events.append)
    assert report.out_of_time and not report.interrupted and report.total_steps is None
    assert [v.step for v in report.val_history] == [0, report.steps_done]
    assert [e.step for e in events if e.kind == "checkpoint"] == [report.steps_done]
    assert report.model is not None and not report.model.training
    saved = load_checkpoint(tmp_path / "run" / LAST_NAME).model
    for name, value in report.model.state_dict().items():
        assert value.is_contiguous() and torch.equal(value, saved[name]), name
    with pytest.raises(TrainUsageError, match="time budget"):
        train(_settings(photos, tmp_path / "r", steps=None))
