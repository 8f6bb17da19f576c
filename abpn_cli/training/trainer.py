"""Training loop for ABPN on the CPU (no device selection yet), UI-free.

`train(settings, progress)` runs the paper's recipe (Adam, lr 5e-4, batch 8, lr / 10 halfway,
L = mse + 0.1 perc + 0.1 adv + dice + 0.1 tv) on synthetic defects or real before/after pairs,
validates on a fixed held-out batch, keeps `last.ckpt` / `best.ckpt` in the run folder and
exports a model file at the end. Progress goes to a callback so the CLI decides how to show it.

Reproducibility: the data stream is a pure function of (seed, sample index) and the sampler
starts at `step * batch`, the lr is a pure function of the step, and every other piece of state
(model, BN statistics, both optimizers, discriminator, RNGs) is in the checkpoint. So a run
that is stopped and resumed produces the same weights as one that never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import os
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
from torch.utils.data import DataLoader, Dataset, Sampler

from abpn_cli.model import ABPN, ABPNConfig
from abpn_cli.training.checkpoint import (
    LAST_NAME,
    Checkpoint,
    CheckpointError,
    capture_rng,
    is_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    restore_rng,
    write_run_checkpoint,
)
from abpn_cli.training.discriminator import PatchDiscriminator
from abpn_cli.training.losses import LossWeights, discriminator_loss, generator_losses
from abpn_cli.training.preview import write_preview

ENCODER_DEPTH = 6
DISC_LR = 2e-4  # pix2pix-style D settings: Adam(2e-4, betas 0.5/0.999)
DISC_BETAS = (0.5, 0.999)
LOADER_TIMEOUT_S = 300.0


class TrainUsageError(ValueError):
    """The settings cannot describe a run (no data, both sources, bad crop, no checkpoint)."""


class TrainInitError(RuntimeError):
    """`init_from` is missing or is neither a checkpoint nor a model file."""


class TrainDivergedError(RuntimeError):
    """A loss became NaN/Inf; the last checkpoint on disk is the last good state."""


@dataclass
class TrainSettings:
    """Everything that defines a run. Paths are resolved by the caller."""

    out: Path
    photos: list[Path] = field(default_factory=list)  # folders of clean photos (synthetic)
    pairs: Path | None = None  # folder of real before/after pairs
    crop: int = 512
    levels: int = 1
    batch: int = 8
    steps: int = 1400
    lr: float = 5e-4
    lr_decay_at: float = 0.5  # paper: lr / 10 halfway through
    seed: int = 0
    val_every: int = 100
    val_size: int = 8
    checkpoint_every: int = 100
    resume: bool = False
    threads: int = 2
    init_from: Path | None = None
    channels_last: bool = True
    weights: LossWeights = field(default_factory=LossWeights)
    model_config: ABPNConfig = field(default_factory=ABPNConfig)
    num_workers: int = 1
    max_side: int = 2048  # photos are loaded downscaled to this long side before cropping
    export: bool = True
    # time budget (s) for the loop: the run ends after the step that crosses it (validated,
    # checkpointed, exported like a last step), and the lr decays at lr_decay_at of the budget
    # or of the steps, whichever comes first. None: steps alone decide.
    max_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the settings can live in a weights_only checkpoint."""
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["photos"] = [str(p) for p in self.photos]
        d["pairs"] = None if self.pairs is None else str(self.pairs)
        d["init_from"] = None if self.init_from is None else str(self.init_from)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSettings:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["out"] = Path(known["out"])
        known["photos"] = [Path(p) for p in known.get("photos", [])]
        for key in ("pairs", "init_from"):
            if known.get(key) is not None:
                known[key] = Path(known[key])
        if isinstance(known.get("weights"), dict):
            known["weights"] = LossWeights(**known["weights"])
        if isinstance(known.get("model_config"), dict):
            known["model_config"] = ABPNConfig.from_dict(known["model_config"])
        return cls(**known)


@dataclass
class ValResult:
    """Validation on the fixed held-out batch (mean per-sample PSNR, dB)."""

    step: int
    psnr_input: float  # before vs target: what doing nothing scores
    psnr_output: float  # R_0 vs target
    mse_output: float
    locality_255: float  # mean |output - before| outside the edited region, in 1/255
    preview: Path | None = None


@dataclass
class TrainEvent:
    """What the progress callback receives."""

    kind: str  # "start" | "step" | "val" | "checkpoint" | "done" | "interrupted"
    step: int
    total_steps: int
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
    total_steps: int
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


ProgressCallback = Callable[[TrainEvent], None]


def run_paths(out: Path) -> tuple[Path, Path]:
    """(run dir, model file): `x.pt` -> (`x.run/`, `x.pt`); a folder -> (dir, dir/model.pt)."""
    if out.suffix == ".pt":
        return out.with_name(out.stem + ".run"), out
    return out, out / "model.pt"


def lr_at(step: int, settings: TrainSettings, elapsed_s: float | None = None) -> float:
    """Step decay: lr until `lr_decay_at * steps`, then lr / 10 (pure function of the step).

    With a time budget (`max_seconds`) the decay also comes once `elapsed_s` reaches
    `lr_decay_at * max_seconds`, so a budgeted run always gets its low-lr phase."""
    decayed = step >= int(settings.lr_decay_at * settings.steps)
    if settings.max_seconds is not None and elapsed_s is not None:
        decayed = decayed or elapsed_s >= settings.lr_decay_at * settings.max_seconds
    return settings.lr / 10 if decayed else settings.lr


def settings_for_run(out: Path, resume: bool, given: dict[str, Any]) -> TrainSettings:
    """Settings from options that were given (None = not given); on resume the checkpoint's
    stored settings fill in the rest, so `abpn train --out RUN --resume` needs nothing else."""
    base: dict[str, Any] = {}
    if resume:
        ckpt_path = run_paths(out)[0] / LAST_NAME
        try:
            base = TrainSettings.from_dict(load_checkpoint(ckpt_path).settings).__dict__.copy()
        except CheckpointError as exc:
            raise TrainUsageError(f"--resume: {exc}") from exc
    merged = {**base, **{k: v for k, v in given.items() if v is not None}}
    merged["out"] = out
    merged["resume"] = resume
    return TrainSettings(**merged)


# Settings that define the data stream and the network: a resumed run must keep them.
_RESUME_FIXED = ("photos", "pairs", "crop", "levels", "batch", "seed", "weights", "max_side")


def _comparable(value: Any) -> Any:
    """Paths compare by where they point, so `data/x` and `/abs/data/x` are the same source."""
    if isinstance(value, Path):
        return value.resolve()
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _validate(settings: TrainSettings) -> None:
    if settings.photos and settings.pairs is not None:
        raise TrainUsageError("give either synthetic photo folders or a pairs folder, not both")
    if not settings.photos and settings.pairs is None:
        raise TrainUsageError("no training data: give --synthetic DIR (repeatable) or --pairs DIR")
    for d in [*settings.photos, *([settings.pairs] if settings.pairs else [])]:
        if not Path(d).is_dir():
            raise TrainUsageError(f"data folder not found: {d}")
    if settings.levels < 0:
        raise TrainUsageError("levels must be >= 0")
    multiple = 2 ** (settings.levels + ENCODER_DEPTH)
    if settings.crop <= 0 or settings.crop % multiple:
        raise TrainUsageError(
            f"crop {settings.crop} must be a positive multiple of 2^(levels+6) = {multiple}"
        )
    for name in ("batch", "steps", "val_every", "checkpoint_every", "threads", "val_size"):
        if getattr(settings, name) < 1:
            raise TrainUsageError(f"{name} must be >= 1")
    if settings.lr <= 0:
        raise TrainUsageError("lr must be > 0")
    if settings.max_seconds is not None and settings.max_seconds <= 0:
        raise TrainUsageError("the time budget (max_seconds / --max-minutes) must be > 0")
    if not 0.0 < settings.lr_decay_at <= 1.0:
        raise TrainUsageError("lr_decay_at must be in (0, 1]")


# --------------------------------------------------------------------------- data


class StepSampler(Sampler[int]):
    """Sample indices start, start+1, ...: sample k of the run is always dataset index k, so
    resuming at step s just starts at s * batch."""

    def __init__(self, start: int, count: int) -> None:
        self.start = start
        self.count = count

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.start + self.count))

    def __len__(self) -> int:
        return self.count


def _worker_init(_worker_id: int) -> None:
    """Data workers ignore Ctrl-C: only the main process handles it (saves, then shuts the
    worker down). Torch already runs workers on one thread; OpenCV's count is inherited from
    the parent (see `_cv2_single_thread`): calling cv2.setNumThreads here would deadlock."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _cv2_single_thread() -> Iterator[None]:
    """OpenCV on one thread in this process while training.

    Measured here: if OpenCV's thread pool exists when the DataLoader forks, the child inherits
    a pool whose threads are gone and `cv2.setNumThreads` in the child joins them forever (the
    worker hangs, the trainer waits). With the parent at 1 thread there is no pool to inherit,
    and the worker's OpenCV work stays on one core, leaving the other cores to the model.
    """
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


VAL_SEED_OFFSET = 0x7A1  # validation crops/defects never share a seed with training ones
HOLDOUT_MIN_SOURCES = 8  # with fewer photos/pairs, validation reuses them (new crops, defects)


def _split_holdout(items: list[Any], seed: int) -> tuple[list[Any], list[Any]]:
    """(train, val) sources: ~10 % held out (seeded) when there are enough of them."""
    if len(items) < HOLDOUT_MIN_SOURCES:
        return items, items
    rng = np.random.default_rng([seed, VAL_SEED_OFFSET])
    held = set(rng.choice(len(items), size=max(1, len(items) // 10), replace=False).tolist())
    return [x for i, x in enumerate(items) if i not in held], [items[i] for i in sorted(held)]


def _build_datasets(settings: TrainSettings) -> tuple[Dataset, tuple[Tensor, Tensor, Tensor]]:
    """(training dataset where item k is sample k of the run, fixed validation batch)."""
    from abpn_cli.training import crops, data

    length = settings.steps * settings.batch
    val_seed = settings.seed + VAL_SEED_OFFSET
    try:
        if settings.pairs is not None:
            sources: list[Any] = data.find_pairs(Path(settings.pairs))
            train_src, val_src = _split_holdout(sources, settings.seed)

            def pair_set(src: list[Any], n: int, seed: int) -> Dataset:
                return crops.PairCropDataset(
                    src, crop=settings.crop, length=n, seed=seed, max_side=settings.max_side
                )

            train_ds = pair_set(train_src, length, settings.seed)
            val_ds = pair_set(val_src, settings.val_size, val_seed)
        else:
            sources = data.find_photos([Path(p) for p in settings.photos])
            if not sources:
                raise TrainUsageError(
                    "no training data: no images in " + ", ".join(map(str, settings.photos))
                )
            train_src, val_src = _split_holdout(sources, settings.seed)
            long_side = (max(settings.crop, settings.max_side // 2), settings.max_side)

            def synth_set(src: list[Any], n: int, seed: int) -> Dataset:
                return crops.SyntheticCropDataset(
                    src, crop=settings.crop, length=n, seed=seed, long_side=long_side
                )

            train_ds = synth_set(train_src, length, settings.seed)
            val_ds = synth_set(val_src, settings.val_size, val_seed)
    except (ValueError, FileNotFoundError) as exc:  # nothing usable: bad layout, no pairs, ...
        if isinstance(exc, TrainUsageError):
            raise
        raise TrainUsageError(f"training data: {exc}") from exc
    samples = [val_ds[i] for i in range(settings.val_size)]
    val_batch = tuple(torch.stack([s[j] for s in samples]) for j in range(3))
    return train_ds, val_batch  # type: ignore[return-value]


def _make_loader(dataset: Dataset, settings: TrainSettings, start_step: int) -> DataLoader:
    remaining = (settings.steps - start_step) * settings.batch
    sampler = StepSampler(start_step * settings.batch, remaining)
    workers = settings.num_workers
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs = {
            "worker_init_fn": _worker_init,
            "prefetch_factor": 2,
            # fork: the dataset is inherited, not pickled; start is instant. Torch resets its
            # own thread pool in forked children, and the workers never touch autograd.
            "multiprocessing_context": "fork" if os.name == "posix" else None,
            "generator": torch.Generator().manual_seed(settings.seed + start_step),
            "timeout": LOADER_TIMEOUT_S,  # a stuck worker becomes an error, not a silent hang
        }
    return DataLoader(
        dataset,
        batch_size=settings.batch,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        **kwargs,
    )


# --------------------------------------------------------------------------- model


def _load_init(path: Path) -> tuple[ABPN, str]:
    """Initial weights for fine-tuning, from one of our checkpoints or an exported model file."""
    if not path.exists():
        raise TrainInitError(f"--init-from: file not found: {path}")
    if is_checkpoint(path):
        model, _ = model_from_checkpoint(path)
        return model, "checkpoint"
    from abpn_cli.engine.errors import EngineError
    from abpn_cli.engine.modelfile import load_eager

    try:
        model, _meta = load_eager(path)
    except EngineError as exc:
        raise TrainInitError(f"--init-from: {exc}") from exc
    return model, "model file"


def _to_device_layout(t: Tensor, channels_last: bool) -> Tensor:
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


def _pooled_psnr(x: Tensor, y: Tensor) -> float:
    """PSNR of the batch's pooled MSE: finite even when a sample has no edit (before == after),
    where a per-sample mean would be dominated by infinite or capped values."""
    mse = float(((x.double() - y.double()) ** 2).mean())
    return math.inf if mse == 0.0 else -10.0 * math.log10(mse)


def _mean_locality(before: Tensor, output: Tensor, region: Tensor) -> float:
    """metrics.locality (the eval convention) averaged over the samples that have an outside."""
    from abpn_cli.training.metrics import locality

    scores = []
    for b, o, r in zip(before, output, region, strict=True):
        s = locality(
            b.permute(1, 2, 0).numpy(), o.permute(1, 2, 0).numpy(), r.reshape(r.shape[-2:]).numpy()
        )
        if s.outside_pixels:
            scores.append(s.mean_abs_255)
    return float(np.mean(scores)) if scores else math.nan


@torch.no_grad()
def validate(
    model: ABPN,
    batch: tuple[Tensor, Tensor, Tensor],
    levels: int,
    step: int,
    preview_path: Path | None,
    channels_last: bool,
) -> ValResult:
    """Eval-mode pass on the fixed batch; PSNR of doing nothing vs of the network."""
    was_training = model.training
    model.eval()
    before, after, region = (_to_device_layout(t, channels_last) for t in batch)
    out = model(before, levels)
    model.train(was_training)
    result = ValResult(
        step=step,
        psnr_input=_pooled_psnr(before, after),
        psnr_output=_pooled_psnr(out.result, after),
        mse_output=float(((out.result - after) ** 2).mean()),
        locality_255=_mean_locality(before, out.result, region),
    )
    if preview_path is not None:
        result.preview = write_preview(preview_path, before, out.result, after, out.mask)
    return result


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


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _emit(progress: ProgressCallback | None, event: TrainEvent) -> None:
    if progress is not None:
        progress(event)


def train(settings: TrainSettings, progress: ProgressCallback | None = None) -> TrainReport:
    """Run (or resume) training; returns a TrainReport. Raises TrainUsageError / TrainInitError."""
    _validate(settings)
    threads = torch.get_num_threads()
    try:
        with _cv2_single_thread():
            return _train(settings, progress)
    finally:
        torch.set_num_threads(threads)  # the caller's process is left as it was


def _train(settings: TrainSettings, progress: ProgressCallback | None) -> TrainReport:
    run_dir, model_path = run_paths(Path(settings.out))
    torch.set_num_threads(settings.threads)
    _seed_everything(settings.seed)

    ckpt: Checkpoint | None = None
    if settings.resume:
        try:
            ckpt = load_checkpoint(run_dir / LAST_NAME)
        except CheckpointError as exc:
            raise TrainUsageError(f"--resume: {exc}") from exc
        stored = TrainSettings.from_dict(ckpt.settings)
        for name in _RESUME_FIXED:
            if _comparable(getattr(stored, name)) != _comparable(getattr(settings, name)):
                raise TrainUsageError(
                    f"--resume: {name} was {getattr(stored, name)!r} in this run, got "
                    f"{getattr(settings, name)!r}; resume with the same value or start a new run"
                )
        config = ckpt.model_config()
        model = ABPN(config)
        model.load_state_dict(ckpt.model)
    elif settings.init_from is not None:
        model, _kind = _load_init(Path(settings.init_from))
        config = model.config
    else:
        config = settings.model_config
        model = ABPN(config)

    # the thumbnail the LRL is trained on is what the engine uses to pick l at inference
    thumb = settings.crop >> settings.levels
    if config.thumbnail != thumb:
        config = dataclasses.replace(config, thumbnail=thumb)
        model.config = config
    settings = dataclasses.replace(settings, model_config=config)

    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    disc: PatchDiscriminator | None = None
    d_opt: torch.optim.Optimizer | None = None
    if settings.weights.adv > 0:
        disc = PatchDiscriminator().to(memory_format=memory_format).train()
        d_opt = torch.optim.Adam(disc.parameters(), lr=DISC_LR, betas=DISC_BETAS)

    start_step = 0
    best_psnr: float | None = None
    if ckpt is not None:
        opt.load_state_dict(ckpt.optimizer)
        if disc is not None and d_opt is not None:
            if ckpt.discriminator is None or ckpt.disc_optimizer is None:
                raise TrainUsageError("--resume: this run was trained without the adversarial term")
            disc.load_state_dict(ckpt.discriminator)
            d_opt.load_state_dict(ckpt.disc_optimizer)
        restore_rng(ckpt.rng)
        start_step = ckpt.step
        best_psnr = ckpt.best_psnr
    if start_step >= settings.steps:
        raise TrainUsageError(
            f"--resume: the run already has {start_step} steps; pass a larger --steps to go on"
        )

    dataset, val_batch = _build_datasets(settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    loader = _make_loader(dataset, settings, start_step)

    def checkpoint(step: int, metrics: dict[str, float], is_best: bool) -> Path:
        state = Checkpoint(
            step=step,
            config=config.to_dict(),
            model=model.state_dict(),
            optimizer=opt.state_dict(),
            settings=settings.to_dict(),
            discriminator=None if disc is None else disc.state_dict(),
            disc_optimizer=None if d_opt is None else d_opt.state_dict(),
            rng=capture_rng(),
            best_psnr=best_psnr,
            metrics=metrics,
        )
        path = write_run_checkpoint(run_dir, state, is_best)
        _emit(progress, TrainEvent("checkpoint", step, settings.steps, path=path))
        return path

    val_history: list[ValResult] = []

    def run_validation(step: int) -> ValResult:
        nonlocal best_psnr
        val = validate(
            model,
            val_batch,
            settings.levels,
            step,
            run_dir / "previews" / f"step{step:07d}.png",
            settings.channels_last,
        )
        val_history.append(val)
        _emit(progress, TrainEvent("val", step, settings.steps, val=val))
        return val

    _emit(progress, TrainEvent("start", start_step, settings.steps, lr=lr_at(start_step, settings)))
    if start_step == 0:
        run_validation(0)  # baseline: the untrained network is (almost) the identity

    step = start_step
    losses: dict[str, float] = {}
    last_ckpt: Path | None = None
    last_ckpt_step = start_step
    interrupted = False
    out_of_time = False
    in_step = False  # True while weights/optimizer state may be half-updated
    t_start = time.perf_counter()
    with _deferred_interrupt() as stop_requested:
        try:
            for before, after, _region in loader:
                in_step = True
                lr = lr_at(step, settings, time.perf_counter() - t_start)
                for group in opt.param_groups:
                    group["lr"] = lr
                if d_opt is not None:
                    for group in d_opt.param_groups:
                        group["lr"] = DISC_LR * lr / settings.lr
                losses = _train_step(
                    model,
                    disc,
                    opt,
                    d_opt,
                    _to_device_layout(before, settings.channels_last),
                    _to_device_layout(after, settings.channels_last),
                    settings,
                )
                step += 1
                in_step = False
                if not math.isfinite(losses["total"]):
                    raise TrainDivergedError(
                        f"loss is {losses['total']} at step {step}; lower --lr or resume from "
                        f"{run_dir / LAST_NAME}"
                    )
                elapsed = time.perf_counter() - t_start
                rate = (step - start_step) / elapsed if elapsed > 0 else 0.0
                eta = (settings.steps - step) / rate if rate > 0 else 0.0
                if settings.max_seconds is not None:
                    out_of_time = elapsed >= settings.max_seconds and step < settings.steps
                    eta = min(eta, max(0.0, settings.max_seconds - elapsed))
                last = step == settings.steps or out_of_time
                _emit(
                    progress,
                    TrainEvent("step", step, settings.steps, losses, lr, rate, eta),
                )
                is_best = False
                if step % settings.val_every == 0 or last:
                    val = run_validation(step)
                    if best_psnr is None or val.psnr_output > best_psnr:
                        best_psnr = val.psnr_output
                        is_best = True
                if step % settings.checkpoint_every == 0 or last or is_best:
                    last_ckpt = checkpoint(step, losses, is_best)
                    last_ckpt_step = step
                if out_of_time:
                    break
                if stop_requested():
                    interrupted = True
                    break
        except KeyboardInterrupt:
            interrupted = True  # second Ctrl-C: stop now
        # after a hard stop inside a step the weights may be half-updated: keep the last
        # checkpoint on disk rather than save a state that no uninterrupted run would reach
        if interrupted and not in_step and (last_ckpt is None or step > last_ckpt_step):
            last_ckpt = checkpoint(step, losses, False)
        elif interrupted and in_step and last_ckpt is None and (run_dir / LAST_NAME).exists():
            last_ckpt = run_dir / LAST_NAME
    wall = time.perf_counter() - t_start
    done = step - start_step

    model_sha: str | None = None
    exported: Path | None = None
    if not interrupted and settings.export:
        exported = model_path
        model_sha = export_model(model, model_path, settings, val_history, step)
    _emit(
        progress,
        TrainEvent(
            "interrupted" if interrupted else "done",
            step,
            settings.steps,
            losses,
            path=exported or last_ckpt,
        ),
    )
    return TrainReport(
        run_dir=run_dir,
        steps_done=step,
        total_steps=settings.steps,
        wall_s=wall,
        s_per_step=wall / done if done else 0.0,
        final_losses=losses,
        val=val_history[-1] if val_history else None,
        val_history=val_history,
        checkpoint=last_ckpt,
        model_path=exported,
        model_sha256=model_sha,
        interrupted=interrupted,
        resumed_from=start_step,
        out_of_time=out_of_time,
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


def export_model(
    model: ABPN, path: Path, settings: TrainSettings, val_history: list[ValResult], step: int
) -> str:
    """Write the engine's model file from a clean (contiguous, eval) copy of the network."""
    from abpn_cli.engine.modelcard import ModelCard
    from abpn_cli.engine.modelfile import save_model_file

    clean = ABPN(model.config)
    clean.load_state_dict({k: v.contiguous() for k, v in model.state_dict().items()})
    last_val = val_history[-1] if val_history else None
    details = {
        "crop": settings.crop,
        "levels": settings.levels,
        "batch": settings.batch,
        "lr": settings.lr,
        "seed": settings.seed,
        "data": "pairs" if settings.pairs is not None else "synthetic",
        "sources": [str(p) for p in settings.photos]
        or ([str(settings.pairs)] if settings.pairs else []),
        "loss_weights": dataclasses.asdict(settings.weights),
        "perceptual_loss": "1 - SSIM on R_l (offline stand-in for VGG: no weights offline)",
        "val_psnr_input": None if last_val is None else round(last_val.psnr_input, 3),
        "val_psnr_output": None if last_val is None else round(last_val.psnr_output, 3),
    }
    card = ModelCard(
        kind="train",
        steps=step,
        samples=step * settings.batch,
        init_from=None if settings.init_from is None else str(settings.init_from),
        details=details,
    )
    return save_model_file(clean, path, card)
