"""`abpn learn`: fine-tune a model on a few exemplar before/after pairs of one retouch.

What it does, in order:

1. **Pair checks** (:func:`~abpn_cli.training.pair_checks.check_pairs`; the criteria and the
   measurements behind them are there): unreadable or absurdly large files, different sizes,
   a different photo, the same photo shifted, and no edit at all, each a clear
   :class:`PairCheckError`. Both sides are decoded alike at ``max_side``, and those arrays
   are what the trainer crops (``train(..., exemplars=ExemplarPairs(...))``: no files
   written, no second decode).
2. **Held-out check** (:mod:`~abpn_cli.training.learn_models`): with >= 3 pairs the last one
   (input order; sorted by name for a folder) is held out of training, and the engine's
   output on it (whole image, downscaled to a 1024-px long side, exactly `abpn retouch`'s code
   path) is scored against its `after` before and after learning (PSNR), next to doing nothing.
3. **Fine-tuning** with :func:`abpn_cli.training.trainer.train` from the base model (a dust
   model first made undecided, :func:`~abpn_cli.training.learn_models.open_for_look`): crops
   centred mostly where before and after differ (30 % anywhere, so it also learns to leave the
   rest alone), the 8 flips/rotations, the paper's losses without the GAN, Adam at a constant
   lr that drops to lr/10 at 70 % of the time budget (or of ``steps``). The trainer hands the
   network back in memory.
4. **A normal model file** (atomic write) whose metadata is the model card
   (:mod:`~abpn_cli.training.learn_card`): ``kind: learned``, the base model (path, sha256),
   every exemplar (names, sha256 of both files, role), steps, seconds and the held-out scores;
   plus a human-readable card next to it (``learned.pt`` -> ``learned.md``).

Defaults, measured on this 2-core CPU (shared with a training run, 1 thread), fine-tuning
the default model on 3 'warm the sky' pairs and scoring 10 other photos at 1024 px (mean MSE
to the true edit; doing nothing: 11.2e-4):

- crop 512 at l = 1 keeps the shipped model's 256-px training thumbnail, so the engine picks
  the same levels for the learned model; ~1.7-2.3 s/step at batch 4.
- ``max_side`` 1024 (pairs read at a 1024-px long side): a 512 crop then covers 1/2 to all of
  the photo, and the thumbnail the network learns from shows the scene at about the scale it
  sees at inference (the whole photo at 256 px). 40 steps: 1.04e-4 at 1024 vs 2.35e-4 at 2048
  (which also changed 3.6x more outside the edit).
- lr 1e-3, constant, lr/10 for the last 30 % of the budget: 40 steps: 2.37e-4 at 2e-4, 1.04e-4
  at 5e-4, 0.77e-4 at 1e-3; 120 steps: 0.61e-4 at 5e-4, 0.56e-4 at 1e-3.
- no GAN term (adv 0, like the default model's current training run): a discriminator
  starting from scratch has no time to become useful in ~100 steps and adds its own
  forward/backward pass to every step.

Length: this file is near 400 lines because the decisions above live with the code they
set; the run itself is a list of stages, none over ~35 lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from abpn_cli.batch.fsutil import atomic_write_bytes
from abpn_cli.engine.modelfile import file_sha256
from abpn_cli.model import ABPN
from abpn_cli.training.learn_card import (
    card_markdown,
    card_path_for,
    learn_loss_weights,
    model_card,
)
from abpn_cli.training.learn_errors import LearnError, LearnInterrupted, LearnUsageError
from abpn_cli.training.learn_models import (
    HeldOut,
    at_thumbnail,
    heldout_images,
    load_base,
    open_for_look,
    resolve_base,
    score_base,
    score_learned,
    split_holdout,
)
from abpn_cli.training.learn_settings import LearnSettings
from abpn_cli.training.pair_checks import PairInfo, check_pairs
from abpn_cli.training.train_data import ExemplarPairs
from abpn_cli.training.train_settings import MIN_BATCH

if TYPE_CHECKING:
    from abpn_cli.training.train_settings import TrainSettings
    from abpn_cli.training.trainer import TrainEvent, TrainReport

LEARN_MAX_THUMBNAIL = 256  # crop = this * 2**levels (512 at l = 1, measured ~2 s/step)
# Seconds kept out of the training loop's budget for what runs outside it: dataset build and
# the step-0 validation before the loop; final validation, checkpoint, model rebuild, two
# TorchScript compilations, held-out scoring and the save after it. Measured 12-18 s for the
# default model on the 2-core CPU (more when another process takes half of it: with 15 s the
# 5-minute demo took 301 s, process start included); the report gives the real total.
BUDGET_RESERVE_S = 20.0
MIN_LOOP_S = 10.0


@dataclass
class LearnEvent:
    """Progress for the UI: status lines and training steps."""

    kind: str  # "status" | "step" | "val"
    message: str = ""
    step: int = 0
    total_steps: int | None = None
    elapsed_s: float = 0.0
    budget_s: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0


@dataclass
class LearnReport:
    """Outcome of `learn`: the model file and its card, and how the run went."""

    model_path: Path
    model_sha256: str
    card_path: Path
    run_dir: Path
    base_path: Path
    steps: int
    train_seconds: float
    seconds: float
    heldout: HeldOut | None
    pairs: list[PairInfo]
    out_of_time: bool


LearnProgress = Callable[[LearnEvent], None]


@dataclass(eq=False)
class _Job:
    """One `abpn learn` run: what it was given, and what each stage leaves for the next."""

    settings: LearnSettings
    base: ABPN
    base_dust: bool  # a dust model: opened up before the look is learned
    base_path: Path
    base_sha: str
    out: Path
    start: float  # time.perf_counter() when the command began: the budget's origin
    progress: LearnProgress | None
    infos: list[PairInfo] = field(default_factory=list)  # every checked pair, input order
    held: PairInfo | None = None
    heldout: HeldOut | None = None
    held_images: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def run_dir(self) -> Path:
        return run_dir_for(self.out)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def emit(self, event: LearnEvent) -> None:
        if self.progress is not None:
            self.progress(event)

    def status(self, message: str) -> None:
        self.emit(LearnEvent("status", message, elapsed_s=self.elapsed()))


# --------------------------------------------------------------------------- learn


def run_dir_for(out: Path) -> Path:
    """Where the run's previews (and a Ctrl-C checkpoint) go: `learned.pt` -> `learned.run/`."""
    return out.with_name(out.stem + ".run")


def _validate(settings: LearnSettings) -> None:
    """LearnUsageError for settings no run can follow."""
    if settings.minutes is None and settings.steps is None:
        raise LearnUsageError("give --minutes or --steps (or both)")
    if settings.minutes is not None and settings.minutes <= 0:
        raise LearnUsageError("--minutes must be > 0")
    if settings.steps is not None and settings.steps < 1:
        raise LearnUsageError("--steps must be >= 1")
    if settings.batch < MIN_BATCH:
        raise LearnUsageError(f"--batch must be >= {MIN_BATCH} (BatchNorm)")
    for name in ("threads", "val_size"):
        if getattr(settings, name) < 1:
            raise LearnUsageError(f"{name} must be >= 1")
    if settings.lr <= 0:
        raise LearnUsageError("lr must be > 0")
    if settings.max_side < 128:
        raise LearnUsageError("max_side must be >= 128")
    if Path(settings.out).is_dir():
        raise LearnUsageError(f"--out must be a model file path, not a folder: {settings.out}")


def learn(settings: LearnSettings, progress: LearnProgress | None = None) -> LearnReport:
    """Check the pairs, fine-tune the base model on them, write the model file and its card."""
    start = time.perf_counter() if settings.started_at is None else settings.started_at
    _validate(settings)
    base_path = resolve_base(settings.base)
    out = Path(settings.out)
    protected = {base_path.resolve()} | {Path(p).resolve() for pair in settings.pairs for p in pair}
    if out.resolve() in protected:
        raise LearnUsageError(f"--out {out} would overwrite the base model or an exemplar")
    base = load_base(base_path)
    sha = file_sha256(base_path)
    job = _Job(settings, base.model, base.dust, base_path, sha, out, start, progress)

    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _learn(job)
    finally:
        torch.set_num_threads(threads)


def _learn(job: _Job) -> LearnReport:
    """The stages, in order; the budget left for training is what the checks leave."""
    train_infos = _check_pairs(job)
    if job.held is not None:
        _score_base(job, job.held)
    _prepare_run_dir(job)
    thumb, crop = _crop_size(job.base, job.settings.levels)
    max_seconds = _loop_seconds(job)
    train_settings = _train_settings(job, crop, max_seconds)
    job.status(
        f"learning from {len(train_infos)} pair(s): crop {crop}, l={job.settings.levels}, batch "
        f"{job.settings.batch}, lr {job.settings.lr:g}, "
        + (f"{max_seconds:.0f} s" if max_seconds is not None else f"{job.settings.steps} steps")
        + f", {job.settings.threads} thread(s)"
    )
    exemplars = ExemplarPairs(tuple(info.images for info in train_infos if info.images))
    start = job.base
    if job.base_dust:  # its mask says "no dust", i.e. "no edit", almost anywhere
        start = open_for_look(job.base, [before for before, _ in exemplars.images], thumb)
        job.status("base is a dust model: its mask and edit start undecided")
    report = _run_training(job, train_settings, exemplars, start)
    assert report.model is not None  # _run_training raises otherwise
    model = at_thumbnail(report.model, thumb)
    if job.heldout is not None and job.held_images is not None:
        _score_learned(job, job.heldout, job.held_images, model)
    return _save(job, model, report, crop)


def _check_pairs(job: _Job) -> list[PairInfo]:
    """Check every pair (warnings as status lines) and pick the held-out one; the pairs to
    train on."""
    job.infos = check_pairs(job.settings.pairs, job.settings.max_side, keep_images=True)
    for info in job.infos:
        for w in info.warnings:
            job.status(f"warning: {w}")
    job.status(
        f"{len(job.infos)} pair(s) checked: "
        + ", ".join(f"{i.name} ({i.edited_fraction:.0%} edited)" for i in job.infos)
    )
    job.held, train_infos = split_holdout(job.infos, job.settings.holdout)
    return train_infos


def _score_base(job: _Job, held: PairInfo) -> None:
    """Score doing nothing and the base model on the held-out pair, before any training."""
    job.held_images = heldout_images(held, job.settings.max_side)
    job.heldout = h = score_base(held, job.held_images, job.base, job.base_path, job.base_sha)
    job.status(
        f"held out {held.name}: PSNR to its after {h.psnr_nothing:.2f} dB doing "
        f"nothing, {h.psnr_base:.2f} dB with the base model"
    )


def _score_learned(
    job: _Job, heldout: HeldOut, images: tuple[np.ndarray, np.ndarray], model: ABPN
) -> None:
    """Score the learned model on the held-out pair and say how it compares."""
    score_learned(heldout, images, model, job.out)
    job.status(
        f"held out {heldout.pair}: {heldout.psnr_nothing:.2f} dB nothing, "
        f"{heldout.psnr_base:.2f} dB base, {heldout.psnr_learned:.2f} dB learned"
    )
    if heldout.psnr_learned is not None and heldout.psnr_learned < heldout.psnr_nothing:
        job.status(  # written anyway (the card records it), but not without saying so
            f"warning: on {heldout.pair} the learned look is further from its after than "
            "doing nothing: check that the pairs show one retouch, or give more pairs or time"
        )


def _prepare_run_dir(job: _Job) -> None:
    """A run folder without an earlier run's checkpoints (the pairs stay in memory: the
    trainer crops the checked images themselves, train_data.ExemplarPairs)."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("last.ckpt", "best.ckpt"):
        (job.run_dir / stale).unlink(missing_ok=True)


def _crop_size(base: ABPN, levels: int) -> tuple[int, int]:
    """(thumbnail, crop): crops at the base's thumbnail scale, capped. The dust default's 768
    px thumbnail would mean 1536 px crops, larger than the 1024 px pairs and ~9x the cost per
    step."""
    from abpn_cli.training.train_settings import ENCODER_DEPTH

    thumb = min(base.config.thumbnail, LEARN_MAX_THUMBNAIL)
    multiple = 2 ** (levels + ENCODER_DEPTH)
    return thumb, max(multiple, round(thumb * 2**levels / multiple) * multiple)


def _budget_s(settings: LearnSettings) -> float | None:
    """The whole command's budget in seconds (None: steps alone bound it)."""
    return None if settings.minutes is None else settings.minutes * 60.0


def _loop_seconds(job: _Job) -> float | None:
    """What the budget leaves for the training loop, after what ran and what must still
    run (BUDGET_RESERVE_S); LearnUsageError when that is too little to learn anything."""
    budget_s = _budget_s(job.settings)
    if budget_s is None:
        return None
    max_seconds = budget_s - job.elapsed() - BUDGET_RESERVE_S
    if max_seconds < MIN_LOOP_S:
        raise LearnUsageError(
            f"--minutes {job.settings.minutes:g} leaves {max(0.0, max_seconds):.0f} s to learn "
            f"after checks and saving; give more minutes"
        )
    return max_seconds


def _train_settings(job: _Job, crop: int, max_seconds: float | None) -> TrainSettings:
    """The trainer's settings for fine-tuning the base on the exemplars."""
    from abpn_cli.training.train_settings import TrainSettings

    s = job.settings
    return TrainSettings(
        out=job.run_dir,
        crop=crop,
        levels=s.levels,
        batch=s.batch,
        steps=s.steps,  # None: the time budget alone
        lr=s.lr,
        lr_decay_at=s.lr_decay_at,
        seed=s.seed,
        val_every=None,  # validate at the start and at the end only
        val_size=s.val_size,
        checkpoint_every=None,  # at the end only (or on Ctrl-C, for LearnInterrupted)
        threads=s.threads,
        init_from=job.base_path,
        weights=learn_loss_weights(),
        max_side=s.max_side,
        export=False,
        max_seconds=max_seconds,
    )


def _on_train(job: _Job) -> Callable[[TrainEvent], None]:
    """The trainer's steps and validations as LearnEvents, timed from the command's start."""
    total, budget_s = job.settings.steps, _budget_s(job.settings)

    def on_train(ev: TrainEvent) -> None:
        elapsed = job.elapsed()
        if ev.kind == "step":
            job.emit(LearnEvent("step", "", ev.step, total, elapsed, budget_s, ev.losses, ev.lr))
        elif ev.kind == "val" and ev.val is not None:
            v = ev.val
            message = (
                f"training crops @ step {v.step}: PSNR {v.psnr_input:.2f} dB doing nothing, "
                f"{v.psnr_output:.2f} dB model"
            )
            job.emit(LearnEvent("val", message, v.step, total, elapsed, budget_s))

    return on_train


def _run_training(
    job: _Job, train_settings: TrainSettings, exemplars: ExemplarPairs, start: ABPN
) -> TrainReport:
    """Train; its usage errors are learn's, Ctrl-C is LearnInterrupted (no model written)."""
    from abpn_cli.training.train_settings import TrainUsageError
    from abpn_cli.training.trainer import train

    try:
        report = train(train_settings, _on_train(job), exemplars, start)
    except TrainUsageError as exc:
        raise LearnUsageError(str(exc)) from exc
    if report.interrupted:
        raise LearnInterrupted(
            f"interrupted after {report.steps_done} step(s); no model written", report.checkpoint
        )
    if report.model is None:
        raise LearnError("training ended without a model")
    return report


def _save(job: _Job, model: ABPN, report: TrainReport, crop: int) -> LearnReport:
    """Write the model file and its card, drop the run's checkpoints, report."""
    from abpn_cli.engine import save_model_file

    card = model_card(
        job.settings, job.base_path, job.base_sha, job.infos, job.held, report.steps_done,
        report.wall_s, job.elapsed(), job.heldout, crop,
    )  # fmt: skip
    sha = save_model_file(model, job.out, card)
    card_path = card_path_for(job.out)
    seconds = job.elapsed()
    atomic_write_bytes(card_path, card_markdown(job.out, sha, card, seconds).encode())
    for ckpt in ("last.ckpt", "best.ckpt"):  # the model file is the result; keep the run small
        (job.run_dir / ckpt).unlink(missing_ok=True)
    return LearnReport(
        model_path=job.out,
        model_sha256=sha,
        card_path=card_path,
        run_dir=job.run_dir,
        base_path=job.base_path,
        steps=report.steps_done,
        train_seconds=report.wall_s,
        seconds=seconds,
        heldout=job.heldout,
        pairs=job.infos,
        out_of_time=report.out_of_time,
    )
