"""Training loop for ABPN on the CPU (no device selection yet), UI-free.

`train(settings, progress)` runs the paper's recipe (Adam, lr 5e-4, batch 8, lr / 10 halfway,
L = mse + 0.1 perc + 0.1 adv + dice + 0.1 tv) on synthetic defects or real before/after pairs,
validates on a fixed held-out batch, keeps `last.ckpt` / `best.ckpt` in the run folder and
exports a model file at the end. Progress goes to a callback so the CLI decides how to show it.

Reproducibility: the data stream is a pure function of (seed, sample index) and the sampler
starts at `step * batch`, the lr is a pure function of the step, and every other piece of state
(model, BN statistics, both optimizers, discriminator, RNGs) is in the checkpoint. So a run
that is stopped and resumed produces the same weights as one that never stopped.

Its pieces: `train_settings` (what a run is and the rules on it), `train_data` (datasets and
loader), `train_model` (the network and optimizers to start from, validation, export); this module
runs the loop.
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from abpn_cli.model import ABPN
from abpn_cli.training.checkpoint import LAST_NAME, Checkpoint, capture_rng, write_run_checkpoint
from abpn_cli.training.discriminator import PatchDiscriminator
from abpn_cli.training.losses import discriminator_loss, generator_losses
from abpn_cli.training.train_data import (
    ExemplarPairs,
    build_datasets,
    cv2_single_thread,
    make_loader,
)
from abpn_cli.training.train_model import (
    DISC_LR,
    ValResult,
    export_model,
    initial_model,
    optimizers,
    restore,
    to_device_layout,
    trained_copy,
    validate,
)
from abpn_cli.training.train_settings import (
    TrainDivergedError,
    TrainSettings,
    TrainUsageError,
    lr_at,
    resume_checkpoint,
    run_paths,
    validate_settings,
)


@dataclass
class TrainEvent:
    """What the progress callback receives."""

    kind: str  # "start" | "step" | "val" | "checkpoint" | "done" | "interrupted"
    step: int
    total_steps: int | None  # None: the time budget alone ends the run
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0
    steps_per_s: float = 0.0
    eta_s: float = 0.0
    val: ValResult | None = None
    path: Path | None = None
    message: str = ""


@dataclass
class TrainReport:
    """Outcome of `train`: where things are and how it went."""

    run_dir: Path
    steps_done: int
    total_steps: int | None  # None: the time budget alone ends the run
    wall_s: float
    s_per_step: float
    final_losses: dict[str, float]
    val: ValResult | None
    val_history: list[ValResult]
    checkpoint: Path | None
    model_path: Path | None
    model_sha256: str | None
    interrupted: bool
    resumed_from: int
    out_of_time: bool = False  # ended by max_seconds before reaching total_steps
    # the trained network, contiguous and in eval mode (None when interrupted): a caller
    # that goes on in memory needs no round trip through the checkpoint
    model: ABPN | None = field(default=None, repr=False, compare=False)


ProgressCallback = Callable[[TrainEvent], None]


@dataclass(eq=False)
class _Run:
    """A run's live state: what the loop updates, what a checkpoint saves, what is reported."""

    settings: TrainSettings
    run_dir: Path
    model: ABPN
    opt: torch.optim.Optimizer
    disc: PatchDiscriminator | None
    d_opt: torch.optim.Optimizer | None
    val_batch: tuple[Tensor, Tensor, Tensor]
    progress: ProgressCallback | None
    start_step: int
    step: int = 0
    best_psnr: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    val_history: list[ValResult] = field(default_factory=list)
    last_ckpt: Path | None = None
    last_ckpt_step: int = 0
    in_step: bool = False  # True while weights/optimizer state may be half-updated
    interrupted: bool = False
    out_of_time: bool = False

    def emit(self, kind: str, **fields: Any) -> None:
        """Tell the progress callback (if any) about the current step."""
        if self.progress is not None:
            self.progress(TrainEvent(kind, self.step, self.settings.steps, **fields))

    def run_validation(self) -> ValResult:
        """Validate on the fixed batch at the current step, with a preview image."""
        val = validate(
            self.model,
            self.val_batch,
            self.settings.levels,
            self.step,
            self.run_dir / "previews" / f"step{self.step:07d}.png",
            self.settings.channels_last,
        )
        self.val_history.append(val)
        self.emit("val", val=val)
        return val

    def checkpoint(self, is_best: bool) -> Path:
        """Save everything a resume needs (last.ckpt; best.ckpt too when `is_best`)."""
        state = Checkpoint(
            step=self.step,
            config=self.settings.model_config.to_dict(),
            model=self.model.state_dict(),
            optimizer=self.opt.state_dict(),
            settings=self.settings.to_dict(),
            discriminator=None if self.disc is None else self.disc.state_dict(),
            disc_optimizer=None if self.d_opt is None else self.d_opt.state_dict(),
            rng=capture_rng(),
            best_psnr=self.best_psnr,
            metrics=self.losses,
        )
        path = write_run_checkpoint(self.run_dir, state, is_best)
        self.last_ckpt, self.last_ckpt_step = path, self.step
        self.emit("checkpoint", path=path)
        return path


# --------------------------------------------------------------------------- setup


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _setup(
    settings: TrainSettings,
    progress: ProgressCallback | None,
    exemplars: ExemplarPairs | None,
    start: ABPN | None,
) -> tuple[_Run, DataLoader]:
    """Everything before the first step, in the order that keeps a resumed run exact: the
    network and optimizers, then the checkpoint's state (RNGs included), then the data."""
    run_dir = run_paths(Path(settings.out))[0]
    torch.set_num_threads(settings.threads)
    _seed_everything(settings.seed)
    ckpt = resume_checkpoint(settings, run_dir)
    model, settings = initial_model(settings, ckpt, start)
    opt, disc, d_opt = optimizers(model, settings)
    start_step, best_psnr = (0, None) if ckpt is None else restore(ckpt, opt, disc, d_opt)
    if settings.steps is not None and start_step >= settings.steps:
        raise TrainUsageError(
            f"--resume: the run already has {start_step} steps; pass a larger --steps to go on"
        )
    dataset, val_batch = build_datasets(settings, exemplars)
    run_dir.mkdir(parents=True, exist_ok=True)
    loader = make_loader(dataset, settings, start_step)
    run = _Run(settings, run_dir, model, opt, disc, d_opt, val_batch, progress, start_step)
    run.step, run.last_ckpt_step, run.best_psnr = start_step, start_step, best_psnr
    return run, loader


# --------------------------------------------------------------------------- loop


@contextmanager
def _deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C sets a flag the loop checks between steps (so a step is never cut in half
    and the checkpoint is consistent); a second Ctrl-C interrupts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def train(
    settings: TrainSettings,
    progress: ProgressCallback | None = None,
    exemplars: ExemplarPairs | None = None,
    start: ABPN | None = None,
) -> TrainReport:
    """Run (or resume) training; returns a TrainReport. Raises TrainUsageError / TrainInitError.

    `exemplars`: decoded before/after pairs to learn from instead of the settings' folders;
    `start`: the network to fine-tune instead of `init_from`'s file (which the card still
    names), e.g. the base `abpn learn` prepared; a checkpoint to resume still wins."""
    validate_settings(settings, exemplars is not None)
    threads = torch.get_num_threads()
    try:
        with cv2_single_thread():
            return _train(settings, progress, exemplars, start)
    finally:
        torch.set_num_threads(threads)  # the caller's process is left as it was


def _train(
    settings: TrainSettings,
    progress: ProgressCallback | None,
    exemplars: ExemplarPairs | None,
    start: ABPN | None,
) -> TrainReport:
    run, loader = _setup(settings, progress, exemplars, start)
    run.emit("start", lr=lr_at(run.start_step, run.settings))
    if run.start_step == 0:
        run.run_validation()  # baseline: the untrained network is (almost) the identity
    wall = _loop(run, loader)
    return _finish(run, wall)


def _loop(run: _Run, loader: DataLoader) -> float:
    """Step until the steps or the time budget run out, or Ctrl-C; the loop's wall time."""
    t_start = time.perf_counter()
    with _deferred_interrupt() as stop_requested:
        try:
            for before, after, _region in loader:
                lr = _step(run, before, after, t_start)
                last = _report_step(run, lr, t_start)
                _validate_and_checkpoint(run, last)
                if run.out_of_time:
                    break
                if stop_requested():
                    run.interrupted = True
                    break
        except KeyboardInterrupt:
            run.interrupted = True  # second Ctrl-C: stop now
        if run.interrupted:
            _keep_interrupted_state(run)
    return time.perf_counter() - t_start


def _step(run: _Run, before: Tensor, after: Tensor, t_start: float) -> float:
    """One optimisation step at the scheduled lr (returned); TrainDivergedError on NaN/Inf."""
    s = run.settings
    run.in_step = True
    lr = lr_at(run.step, s, time.perf_counter() - t_start)
    for group in run.opt.param_groups:
        group["lr"] = lr
    if run.d_opt is not None:
        for group in run.d_opt.param_groups:
            group["lr"] = DISC_LR * lr / s.lr
    run.losses = _train_step(
        run.model,
        run.disc,
        run.opt,
        run.d_opt,
        to_device_layout(before, s.channels_last),
        to_device_layout(after, s.channels_last),
        s,
    )
    run.step += 1
    run.in_step = False
    if not math.isfinite(run.losses["total"]):
        raise TrainDivergedError(
            f"loss is {run.losses['total']} at step {run.step}; lower --lr or resume from "
            f"{run.run_dir / LAST_NAME}"
        )
    return lr


def _report_step(run: _Run, lr: float, t_start: float) -> bool:
    """Rate and ETA to the progress callback; True when this was the run's last step (all
    steps done, or the time budget spent, which sets `out_of_time`)."""
    s = run.settings
    elapsed = time.perf_counter() - t_start
    rate = (run.step - run.start_step) / elapsed if elapsed > 0 else 0.0
    remaining = math.inf if s.steps is None else s.steps - run.step
    eta = remaining / rate if rate > 0 else 0.0
    if s.max_seconds is not None:
        run.out_of_time = elapsed >= s.max_seconds and (s.steps is None or run.step < s.steps)
        eta = min(eta, max(0.0, s.max_seconds - elapsed))
    run.emit("step", losses=run.losses, lr=lr, steps_per_s=rate, eta_s=eta)
    return run.step == s.steps or run.out_of_time


def _due(step: int, every: int | None) -> bool:
    return every is not None and step % every == 0


def _validate_and_checkpoint(run: _Run, last: bool) -> None:
    """Validate every `val_every` steps and checkpoint every `checkpoint_every`; the last step
    does both, and a new best validation PSNR is always checkpointed (best.ckpt)."""
    s = run.settings
    is_best = False
    if _due(run.step, s.val_every) or last:
        val = run.run_validation()
        if run.best_psnr is None or val.psnr_output > run.best_psnr:
            run.best_psnr = val.psnr_output
            is_best = True
    if _due(run.step, s.checkpoint_every) or last or is_best:
        run.checkpoint(is_best)


def _keep_interrupted_state(run: _Run) -> None:
    """After Ctrl-C between steps, checkpoint what is not saved yet. After a hard stop inside
    a step the weights may be half-updated: the last checkpoint on disk stays the run's state
    rather than one that no uninterrupted run would reach."""
    if not run.in_step and (run.last_ckpt is None or run.step > run.last_ckpt_step):
        run.checkpoint(False)
    elif run.in_step and run.last_ckpt is None and (run.run_dir / LAST_NAME).exists():
        run.last_ckpt = run.run_dir / LAST_NAME


def _finish(run: _Run, wall: float) -> TrainReport:
    """Export the model file (unless interrupted or `export` is off), say so, report."""
    s = run.settings
    model_sha: str | None = None
    exported: Path | None = None
    if not run.interrupted and s.export:
        exported = run_paths(Path(s.out))[1]
        model_sha = export_model(run.model, exported, s, run.val_history, run.step)
    run.emit(
        "interrupted" if run.interrupted else "done",
        losses=run.losses,
        path=exported or run.last_ckpt,
    )
    done = run.step - run.start_step
    return TrainReport(
        run_dir=run.run_dir,
        steps_done=run.step,
        total_steps=s.steps,
        wall_s=wall,
        s_per_step=wall / done if done else 0.0,
        final_losses=run.losses,
        val=run.val_history[-1] if run.val_history else None,
        val_history=run.val_history,
        checkpoint=run.last_ckpt,
        model_path=exported,
        model_sha256=model_sha,
        interrupted=run.interrupted,
        resumed_from=run.start_step,
        out_of_time=run.out_of_time,
        model=None if run.interrupted else trained_copy(run.model),
    )


def _train_step(
    model: ABPN,
    disc: nn.Module | None,
    opt: torch.optim.Optimizer,
    d_opt: torch.optim.Optimizer | None,
    before: Tensor,
    after: Tensor,
    settings: TrainSettings,
) -> dict[str, float]:
    """One step: D (on a detached R_0) first, pix2pix style, then the generator."""
    out = model(before, settings.levels)
    d_value: float | None = None
    if disc is not None and d_opt is not None:
        d_opt.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(disc, before, out.result, after)
        d_loss.backward()
        d_opt.step()
        d_value = float(d_loss.detach())
        disc.requires_grad_(False)  # the G step needs gradients through D, not into D
    try:
        terms = generator_losses(out, before, after, settings.weights, disc)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
    finally:
        if disc is not None:
            disc.requires_grad_(True)
    values = {k: float(v.detach()) for k, v in terms.items()}
    if d_value is not None:
        values["disc"] = d_value
    return values
