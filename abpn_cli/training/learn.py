"""`abpn learn`: fine-tune a model on a few exemplar before/after pairs of one retouch.

What it does, in order:

1. **Pair checks** (:func:`check_pairs`), each a clear :class:`PairCheckError`: unreadable or
   absurdly large files, different sizes, a different photo, the same photo shifted, and no
   edit at all. Both sides are decoded in full and resampled alike to ``max_side`` (the
   resolution learning trains at; see `data.load_rgb_uniform`): 0.7-1.9 s per 4K-6K pair. Those
   arrays are what the trainer gets (16-bit PNGs in the run folder). The criteria, measured
   on 10 photos of data/photos (4K long side) with the 'warm the sky' edit, a strong global
   grade, shifts of 1-5 px, 180-degree rotations and random other photos:

   - *different photo*: grey-level correlation (256-px thumbnails, Gaussian sigma 1) below
     0.8 **and** phase-correlation peak below 0.3. Same photo, local or strong global edit:
     correlation >= 0.985, peak >= 0.88; other photo or rotated: correlation <= 0.55 (one pair
     of unrelated photos reached 0.54), peak <= 0.08.
   - *shifted*: ``cv2.phaseCorrelate`` (Hanning window) of the greyscale pair at ``max_side``,
     scaled to the original's pixels, refused at >= 1.5 px **if** undoing it confirms it: the
     median |before - after| (grey, blurred sigma 1) must drop below 0.6x. Measured on 4-6K
     photos checked at 1024 px: aligned pairs <= 0.1 px, and the median of an aligned local
     edit is ~0, so a biased or spurious estimate (a strong edit dominating a flat synthetic
     picture measured 0.6 px, even a 44 px 'shift') is never confirmed; real shifts of 1/2/3 px
     measure 0.7-1.1 / 1.7-2.4 / 2.9-3.4 px with the median dropping to 0.10-0.51x.
   - *no edit*: fewer than 10 pixels whose largest channel changed by more than 2 % (the
     data pipeline's edit threshold) at ``max_side``: nothing a crop could learn from.

2. **Held-out check**: with >= 3 pairs the last one (input order; sorted by name for a
   folder) is held out of training, and the engine's output on it (whole image, downscaled to
   a 1024-px long side, exactly `abpn retouch`'s code path) is scored against its `after`
   before and after learning (PSNR), next to doing nothing.
3. **Fine-tuning** with :func:`abpn_cli.training.trainer.train` from the base model: crops
   centred mostly where before and after differ (30 % anywhere, so it also learns to leave the
   rest alone), the 8 flips/rotations, the paper's losses without the GAN, Adam at a constant
   lr that drops to lr/10 at 70 % of the time budget (or of ``steps``).
4. **A normal model file** (atomic write) whose metadata is the model card: ``kind: learned``,
   the base model (path, sha256), every exemplar (names, sha256 of both files, role), steps,
   seconds and the held-out scores; plus a human-readable card next to it
   (``learned.pt`` -> ``learned.md``).

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
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from abpn_cli.batch.fsutil import atomic_write_bytes
from abpn_cli.engine.modelcard import ModelCard
from abpn_cli.engine.modelfile import file_sha256
from abpn_cli.model import ABPN
from abpn_cli.training.data import load_rgb_uniform
from abpn_cli.training.learn_settings import LearnSettings

# --- pair-check thresholds (see the module docstring for the measurements behind them)
LEARN_MAX_THUMBNAIL = 256  # crop = this * 2**levels (512 at l = 1, measured ~2 s/step)
CORR_SIDE = 256  # long side of the thumbnails whose grey levels are correlated
CORR_SIGMA = 1.0  # Gaussian blur (thumbnail px) before correlating: robust to noise/texture
DIFFERENT_CORR = 0.8  # below this correlation ...
DIFFERENT_PEAK = 0.3  # ... and this phase-correlation peak: a different photo
MAX_SHIFT_PX = 1.5  # original-resolution pixels
SHIFT_CONFIRM_RATIO = 0.6  # undoing a real shift must cut the median residual below this
EDIT_THRESHOLD = 0.02  # a pixel is edited when a channel moves by more (data pipeline's value)
MIN_EDITED_PIXELS = 10  # at max_side; fewer: nothing to learn
GLOBAL_EDIT_FRACTION = 0.6  # warn when more of the photo changed by > GLOBAL_EDIT_DELTA
GLOBAL_EDIT_DELTA = 0.1
MAX_PIXELS = 400_000_000  # same image-bomb limit as `abpn retouch`

# --- held-out scoring and the time budget
HOLDOUT_MIN_PAIRS = 3
HELDOUT_SIDE = 1024
# Seconds kept out of the training loop's budget for what runs outside it: dataset build and
# the step-0 validation before the loop; final validation, checkpoint, model rebuild, two
# TorchScript compilations, held-out scoring and the save after it. Measured 12-18 s for the
# default model on the 2-core CPU (more when another process takes half of it: with 15 s the
# 5-minute demo took 301 s, process start included); the report gives the real total.
BUDGET_RESERVE_S = 20.0
MIN_LOOP_S = 10.0


class LearnError(Exception):
    """Base class: something `abpn learn` cannot do, with a message for the user."""


class LearnUsageError(LearnError):
    """Bad settings (exit 2)."""


class PairCheckError(LearnUsageError):
    """An exemplar pair cannot be learned from (exit 2)."""


class BaseModelError(LearnError):
    """The base model is missing or unreadable (exit 4)."""


class LearnInterrupted(LearnError):
    """Ctrl-C: no model file was written; `checkpoint` holds the state so far (if any)."""

    def __init__(self, message: str, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


@dataclass
class PairInfo:
    """A checked exemplar pair."""

    before: Path
    after: Path
    width: int
    height: int
    sha256_before: str
    sha256_after: str
    edited_fraction: float  # at max_side, pixels changed by > EDIT_THRESHOLD
    shift_px: tuple[float, float]  # measured (dx, dy), original pixels (maybe unconfirmed)
    shift_peak: float  # phase-correlation peak
    correlation: float
    warnings: list[str] = field(default_factory=list)
    images: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.before.name


@dataclass
class HeldOut:
    """PSNR (dB) of the held-out pair's after vs: before (nothing), base model, learned."""

    pair: str
    side: int
    psnr_nothing: float
    psnr_base: float
    psnr_learned: float | None = None


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


# --------------------------------------------------------------------------- pair checks


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb @ np.array([0.299, 0.587, 0.114], np.float32))


def _thumb(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), cv2.INTER_AREA)


def grey_correlation(before: np.ndarray, after: np.ndarray) -> float:
    """Pearson correlation of blurred grey thumbnails (1 = same picture up to gain/offset)."""
    a = cv2.GaussianBlur(_thumb(_grey(before), CORR_SIDE), (0, 0), CORR_SIGMA)
    b = cv2.GaussianBlur(_thumb(_grey(after), CORR_SIDE), (0, 0), CORR_SIGMA)
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else (1.0 if np.allclose(a, b) else 0.0)


def phase_shift(before: np.ndarray, after: np.ndarray) -> tuple[float, float, float]:
    """(dx, dy, peak) of `after` relative to `before` in these arrays' pixels (sub-pixel)."""
    gb, ga = _grey(before).astype(np.float64), _grey(after).astype(np.float64)
    if min(gb.shape) < 8:
        return 0.0, 0.0, 1.0
    window = cv2.createHanningWindow((gb.shape[1], gb.shape[0]), cv2.CV_64F)
    (dx, dy), peak = cv2.phaseCorrelate(gb, ga, window)
    return float(dx), float(dy), float(peak)


def shift_confirmed(before: np.ndarray, after: np.ndarray, dx: float, dy: float) -> bool:
    """True when moving `after` back by (dx, dy) explains the difference: the median grey
    residual (robust to the edited part) drops below SHIFT_CONFIRM_RATIO of what it was."""
    gb = cv2.GaussianBlur(_grey(before), (0, 0), 1.0)
    ga = cv2.GaussianBlur(_grey(after), (0, 0), 1.0)
    h, w = gb.shape
    undo = np.float32([[1, 0, -dx], [0, 1, -dy]])
    back = cv2.warpAffine(ga, undo, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    my, mx = math.ceil(abs(dy)) + 2, math.ceil(abs(dx)) + 2
    if h <= 2 * my or w <= 2 * mx:
        return False
    inner = (slice(my, h - my), slice(mx, w - mx))
    r0 = float(np.median(np.abs(gb - ga)[inner]))
    r1 = float(np.median(np.abs(gb - back)[inner]))
    return r1 < SHIFT_CONFIRM_RATIO * r0


def check_pair(
    before: Path, after: Path, max_side: int = 1024, keep_images: bool = False
) -> PairInfo:
    """Check one exemplar pair (module docstring lists the criteria); PairCheckError if bad.

    With `keep_images`, the checked (before, after) at `max_side` ride along in `.images`."""
    from abpn_cli.training.data import ImageLoadError, image_size

    before, after = Path(before), Path(after)
    label = f"{before.name} / {after.name}"
    for side, p in (("before", before), ("after", after)):
        if not p.is_file():
            raise PairCheckError(f"{side} file not found: {p}")
    try:
        wb, hb = image_size(before)
        wa, ha = image_size(after)
    except ImageLoadError as exc:
        raise PairCheckError(str(exc)) from exc
    if (wb, hb) != (wa, ha):
        raise PairCheckError(f"size mismatch: before {wb}x{hb} vs after {wa}x{ha} ({label})")
    if wb * hb > MAX_PIXELS:
        raise PairCheckError(
            f"{label}: {wb}x{hb} is over the {MAX_PIXELS // 1_000_000} MP limit (image bomb?)"
        )
    try:
        b, a = load_rgb_uniform(before, max_side), load_rgb_uniform(after, max_side)
    except (ImageLoadError, ValueError) as exc:
        raise PairCheckError(f"{label}: {exc}") from exc

    diff = np.abs(b - a).max(axis=2)
    edited = int((diff > EDIT_THRESHOLD).sum())
    if edited < MIN_EDITED_PIXELS:
        raise PairCheckError(
            f"{label}: after does not differ from before (no pixel changed by more than "
            f"{EDIT_THRESHOLD:.0%} at {max(b.shape[:2])} px): nothing to learn"
        )
    corr = grey_correlation(b, a)
    dx, dy, peak = phase_shift(b, a)
    if corr < DIFFERENT_CORR and peak < DIFFERENT_PEAK:
        raise PairCheckError(
            f"{label}: before and after look like different photos (grey-level correlation "
            f"{corr:.2f}, phase-correlation peak {peak:.2f}): check which files were paired"
        )
    scale = max(wb, hb) / max(b.shape[:2])
    if math.hypot(dx, dy) * scale >= MAX_SHIFT_PX and shift_confirmed(b, a, dx, dy):
        raise PairCheckError(
            f"{label}: after is shifted by ({dx * scale:+.1f}, {dy * scale:+.1f}) px relative "
            "to before: export both from the same crop"
        )
    dx, dy = dx * scale, dy * scale
    warnings = []
    strong = float((diff > GLOBAL_EDIT_DELTA).mean())
    if strong > GLOBAL_EDIT_FRACTION:
        warnings.append(
            f"{label}: {strong:.0%} of the photo changed by more than {GLOBAL_EDIT_DELTA:.0%}; "
            "ABPN learns local edits, a global grade is better done with a preset"
        )
    return PairInfo(
        before=before,
        after=after,
        width=wb,
        height=hb,
        sha256_before=file_sha256(before),
        sha256_after=file_sha256(after),
        edited_fraction=edited / diff.size,
        shift_px=(round(dx, 3), round(dy, 3)),
        shift_peak=peak,
        correlation=corr,
        warnings=warnings,
        images=(b, a) if keep_images else None,
    )


def check_pairs(
    pairs: Sequence[tuple[Path, Path]], max_side: int = 1024, keep_images: bool = False
) -> list[PairInfo]:
    """Check every pair (stops at the first bad one: its message names it)."""
    if not pairs:
        raise PairCheckError("no exemplar pairs given")
    return [check_pair(b, a, max_side, keep_images) for b, a in pairs]


def pairs_from_dir(pairs_dir: Path) -> list[tuple[Path, Path]]:
    """DIR/before/<rel> <-> DIR/after/<rel> (the layout `abpn train` and `abpn eval` use)."""
    from abpn_cli.training.data import find_pairs

    try:
        return find_pairs(Path(pairs_dir), strict=True)
    except (ValueError, FileNotFoundError) as exc:
        raise PairCheckError(str(exc)) from exc


# --------------------------------------------------------------------------- models


def _resolve_base(base: Path | None) -> Path:
    from abpn_cli.engine import default_model_path

    path = Path(base) if base is not None else default_model_path()
    if not path.is_file():
        hint = "" if base is not None else " (the shipped default model; or pass --from MODEL)"
        raise BaseModelError(f"base model not found: {path}{hint}")
    return path


def _load_base(path: Path) -> ABPN:
    """The base network (model file or training checkpoint), eager, for config and scoring."""
    from abpn_cli.engine import EngineError, load_eager
    from abpn_cli.training.checkpoint import is_checkpoint, model_from_checkpoint

    try:
        if is_checkpoint(path):
            return model_from_checkpoint(path)[0]
        return load_eager(path)[0]
    except (EngineError, RuntimeError, KeyError) as exc:
        raise BaseModelError(f"cannot load base model {path}: {exc}") from exc


def _at_thumbnail(model: ABPN, thumb: int) -> ABPN:
    """The learned network set to be run at the thumbnail scale it learned at.

    A look learned on 256 px thumbnails is applied at 256 px (the engine picks l from the
    model's `thumbnail`), not at the 768 px the dust base was trained for; the learned model
    therefore sees dust as the old 256 px model did (too small to remove).
    """
    if model.config.thumbnail == thumb:
        return model
    out = ABPN(dataclasses.replace(model.config, thumbnail=thumb))
    out.load_state_dict(model.state_dict())
    return out.eval()


def _engine_model(model: ABPN, path: Path, sha256: str):  # -> LoadedModel (lazy import)
    """An in-memory TorchScript copy of `model` that engine.retouch can run, on the CPU."""
    from abpn_cli.engine import LoadedModel

    clean = ABPN(model.config)
    clean.load_state_dict({k: v.contiguous() for k, v in model.state_dict().items()})
    scripted = torch.jit.script(clean.eval()).to(memory_format=torch.channels_last)
    return LoadedModel(module=scripted, path=path, sha256=sha256, config=model.config)


def _score(loaded, before: np.ndarray, after: np.ndarray) -> float:
    """PSNR of what `abpn retouch` makes of `before` (as 16-bit pixels) against `after`."""
    from abpn_cli.engine import RetouchOptions, retouch
    from abpn_cli.training.metrics import psnr

    pixels = np.round(np.clip(before, 0.0, 1.0) * 65535.0).astype(np.uint16)
    out = retouch(loaded, pixels, RetouchOptions()).image.astype(np.float32) / 65535.0
    return psnr(out, after)


# --------------------------------------------------------------------------- learn


def _write_exemplars(pairs: Sequence[PairInfo], folder: Path) -> Path:
    """The checked pairs as 16-bit PNGs at max_side, DIR/{before,after}/NN_<before stem>.png,
    for the trainer: both sides decoded alike (data.load_rgb_uniform), each decoded once."""
    if folder.exists():
        shutil.rmtree(folder)
    for i, info in enumerate(pairs):
        assert info.images is not None
        name = f"{i:02d}_{info.before.stem}.png"
        for side, img in zip(("before", "after"), info.images, strict=True):
            dest = folder / side / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            u16 = (np.clip(img, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)[:, :, ::-1]
            if not cv2.imwrite(str(dest), u16, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                raise LearnError(f"cannot write {dest}")
    return folder


def run_dir_for(out: Path) -> Path:
    """Where the run's previews and exemplar links go: `learned.pt` -> `learned.run/`."""
    return out.with_name(out.stem + ".run")


def card_path_for(out: Path) -> Path:
    """The human-readable model card next to the model: `learned.pt` -> `learned.md`."""
    return out.with_name(out.stem + ".md")


def _validate(settings: LearnSettings) -> None:
    if settings.minutes is None and settings.steps is None:
        raise LearnUsageError("give --minutes or --steps (or both)")
    if settings.minutes is not None and settings.minutes <= 0:
        raise LearnUsageError("--minutes must be > 0")
    if settings.steps is not None and settings.steps < 1:
        raise LearnUsageError("--steps must be >= 1")
    for name in ("batch", "threads", "val_size"):
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

    def emit(event: LearnEvent) -> None:
        if progress is not None:
            progress(event)

    def status(message: str) -> None:
        emit(LearnEvent("status", message, elapsed_s=time.perf_counter() - start))

    _validate(settings)
    base_path = _resolve_base(settings.base)
    out = Path(settings.out)
    protected = {base_path.resolve()} | {Path(p).resolve() for pair in settings.pairs for p in pair}
    if out.resolve() in protected:
        raise LearnUsageError(f"--out {out} would overwrite the base model or an exemplar")
    base = _load_base(base_path)
    base_sha = file_sha256(base_path)

    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _learn(settings, base, base_path, base_sha, out, start, emit, status)
    finally:
        torch.set_num_threads(threads)


def _learn(
    settings: LearnSettings,
    base: ABPN,
    base_path: Path,
    base_sha: str,
    out: Path,
    start: float,
    emit: Callable[[LearnEvent], None],
    status: Callable[[str], None],
) -> LearnReport:
    from abpn_cli.training.losses import LossWeights
    from abpn_cli.training.train_settings import ENCODER_DEPTH, TrainSettings, TrainUsageError
    from abpn_cli.training.trainer import TrainEvent, train

    infos = check_pairs(settings.pairs, settings.max_side, keep_images=True)
    for info in infos:
        for w in info.warnings:
            status(f"warning: {w}")
    status(
        f"{len(infos)} pair(s) checked: "
        + ", ".join(f"{i.name} ({i.edited_fraction:.0%} edited)" for i in infos)
    )
    held: PairInfo | None = None
    train_infos = infos
    if settings.holdout and len(infos) >= HOLDOUT_MIN_PAIRS:
        held, train_infos = infos[-1], infos[:-1]

    heldout: HeldOut | None = None
    held_images: tuple[np.ndarray, np.ndarray] | None = None
    if held is not None:
        from abpn_cli.engine import EngineError, load_model
        from abpn_cli.training.metrics import psnr

        if settings.max_side == HELDOUT_SIDE and held.images is not None:
            held_images = held.images
        else:
            held_images = (
                load_rgb_uniform(held.before, HELDOUT_SIDE),
                load_rgb_uniform(held.after, HELDOUT_SIDE),
            )
        try:  # a model file runs as shipped; a checkpoint is compiled in memory
            base_loaded = load_model(base_path, "cpu")
        except EngineError:
            base_loaded = _engine_model(base, base_path, base_sha)
        heldout = HeldOut(
            pair=held.name,
            side=max(held_images[0].shape[:2]),
            psnr_nothing=psnr(*held_images),
            psnr_base=_score(base_loaded, *held_images),
        )
        del base_loaded
        status(
            f"held out {held.name}: PSNR to its after {heldout.psnr_nothing:.2f} dB doing "
            f"nothing, {heldout.psnr_base:.2f} dB with the base model"
        )

    run_dir = run_dir_for(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("last.ckpt", "best.ckpt"):
        (run_dir / stale).unlink(missing_ok=True)
    pairs_dir = _write_exemplars(train_infos, run_dir / "exemplars")

    # Crops at the base's thumbnail scale, capped: the dust default's 768 px thumbnail would
    # mean 1536 px crops, larger than the 1024 px pairs and ~9x the cost per step.
    thumb = min(base.config.thumbnail, LEARN_MAX_THUMBNAIL)
    multiple = 2 ** (settings.levels + ENCODER_DEPTH)
    crop = max(multiple, round(thumb * 2**settings.levels / multiple) * multiple)
    budget_s = None if settings.minutes is None else settings.minutes * 60.0
    max_seconds = None
    if budget_s is not None:
        max_seconds = budget_s - (time.perf_counter() - start) - BUDGET_RESERVE_S
        if max_seconds < MIN_LOOP_S:
            raise LearnUsageError(
                f"--minutes {settings.minutes:g} leaves {max(0.0, max_seconds):.0f} s to learn "
                f"after checks and saving; give more minutes"
            )
    train_settings = TrainSettings(
        out=run_dir,
        pairs=pairs_dir,
        crop=crop,
        levels=settings.levels,
        batch=settings.batch,
        steps=settings.steps,  # None: the time budget alone
        lr=settings.lr,
        lr_decay_at=settings.lr_decay_at,
        seed=settings.seed,
        val_every=None,  # validate at the start and at the end only
        val_size=settings.val_size,
        checkpoint_every=None,  # at the end only (or on Ctrl-C, for LearnInterrupted)
        threads=settings.threads,
        init_from=base_path,
        weights=LossWeights(adv=0.0),
        max_side=settings.max_side,
        export=False,
        max_seconds=max_seconds,
    )
    status(
        f"learning from {len(train_infos)} pair(s): crop {crop}, l={settings.levels}, batch "
        f"{settings.batch}, lr {settings.lr:g}, "
        + (f"{max_seconds:.0f} s" if max_seconds is not None else f"{settings.steps} steps")
        + f", {settings.threads} thread(s)"
    )

    def on_train(ev: TrainEvent) -> None:
        elapsed = time.perf_counter() - start
        total = settings.steps
        if ev.kind == "step":
            emit(LearnEvent("step", "", ev.step, total, elapsed, budget_s, ev.losses, ev.lr))
        elif ev.kind == "val" and ev.val is not None:
            v = ev.val
            emit(
                LearnEvent(
                    "val",
                    f"training crops @ step {v.step}: PSNR {v.psnr_input:.2f} dB doing nothing, "
                    f"{v.psnr_output:.2f} dB model",
                    v.step,
                    total,
                    elapsed,
                    budget_s,
                )
            )

    try:
        report = train(train_settings, on_train)
    except TrainUsageError as exc:
        raise LearnUsageError(str(exc)) from exc
    train_seconds = report.wall_s
    if report.interrupted:
        raise LearnInterrupted(
            f"interrupted after {report.steps_done} step(s); no model written", report.checkpoint
        )
    if report.model is None:
        raise LearnError("training ended without a model")
    model = _at_thumbnail(report.model, thumb)
    if heldout is not None and held_images is not None:
        learned = _engine_model(model, out, "")
        heldout.psnr_learned = _score(learned, *held_images)
        del learned
        status(
            f"held out {heldout.pair}: {heldout.psnr_nothing:.2f} dB nothing, "
            f"{heldout.psnr_base:.2f} dB base, {heldout.psnr_learned:.2f} dB learned"
        )

    seconds = time.perf_counter() - start
    card = _model_card(
        settings, base_path, base_sha, infos, held, report.steps_done, train_seconds, seconds,
        heldout, crop,
    )  # fmt: skip
    from abpn_cli.engine import save_model_file

    sha = save_model_file(model, out, card)
    card_path = card_path_for(out)
    seconds = time.perf_counter() - start
    atomic_write_bytes(card_path, _card_markdown(out, sha, card, seconds).encode())
    for ckpt in ("last.ckpt", "best.ckpt"):  # the model file is the result; keep the run small
        (run_dir / ckpt).unlink(missing_ok=True)
    return LearnReport(
        model_path=out,
        model_sha256=sha,
        card_path=card_path,
        run_dir=run_dir,
        base_path=base_path,
        steps=report.steps_done,
        train_seconds=train_seconds,
        seconds=seconds,
        heldout=heldout,
        pairs=infos,
        out_of_time=report.out_of_time,
    )


# --------------------------------------------------------------------------- model card


def _rounded(x: float | None, nd: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, nd)


def _model_card(
    settings: LearnSettings,
    base_path: Path,
    base_sha: str,
    infos: list[PairInfo],
    held: PairInfo | None,
    steps: int,
    train_seconds: float,
    seconds: float,
    heldout: HeldOut | None,
    crop: int,
) -> ModelCard:
    """The card stored inside the model file (JSON types only)."""
    exemplars = [
        {
            "before": str(i.before),
            "after": str(i.after),
            "sha256_before": i.sha256_before,
            "sha256_after": i.sha256_after,
            "size": f"{i.width}x{i.height}",
            "edited_fraction": round(i.edited_fraction, 4),
            "role": "heldout" if i is held else "train",
        }
        for i in infos
    ]
    details = {
        "base_model": {"path": str(base_path), "sha256": base_sha},
        "exemplars": exemplars,
        "seconds": round(seconds, 1),  # up to the save (the sidecar has the final total)
        "train_seconds": round(train_seconds, 1),
        "heldout": None
        if heldout is None
        else {
            "pair": heldout.pair,
            "scored_at_long_side": heldout.side,
            "psnr_nothing": _rounded(heldout.psnr_nothing),
            "psnr_base": _rounded(heldout.psnr_base),
            "psnr_learned": _rounded(heldout.psnr_learned),
        },
        "settings": {
            "minutes": settings.minutes,
            "steps": settings.steps,
            "crop": crop,
            "levels": settings.levels,
            "batch": settings.batch,
            "lr": settings.lr,
            "lr_decay_at": settings.lr_decay_at,
            "max_side": settings.max_side,
            "seed": settings.seed,
            "threads": settings.threads,
            "loss_weights": dataclasses.asdict(_loss_weights()),
        },
        "limits": LIMITS,
    }
    return ModelCard(kind="learned", steps=steps, init_from=str(base_path), details=details)


def _loss_weights():  # -> LossWeights
    from abpn_cli.training.losses import LossWeights

    return LossWeights(adv=0.0)


LIMITS = (
    "ABPN's blend layer changes tone, colour and fine texture where the mask says so; it "
    "cannot move, warp or reshape anything (no geometry), so an exemplar edit that moves "
    "pixels (liquify, reshaping) is not learnable with it."
)


def _fmt_db(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} dB"


def _card_markdown(out: Path, sha: str, card: ModelCard, seconds: float) -> str:
    d = card.details
    lines = [
        f"# Model card: {out.name}",
        "",
        f"A model learned by `abpn learn` from {len(d['exemplars'])} exemplar pair(s). "
        f"Use it with `abpn retouch --model {out.name}`.",
        "",
        f"- file sha256: `{sha}`",
        f"- created: {card.created}",
        f"- base model: `{d['base_model']['path']}` (sha256 `{d['base_model']['sha256']}`)",
        f"- steps: {card.steps}, training loop {d['train_seconds']:.0f} s, "
        f"whole command {seconds:.0f} s",
        f"- settings: {json.dumps(d['settings'])}",
        "",
        "## Exemplars",
        "",
        "| role | before | after | size | edited | sha256 before | sha256 after |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in d["exemplars"]:
        lines.append(
            f"| {e['role']} | {e['before']} | {e['after']} | {e['size']} | "
            f"{e['edited_fraction']:.1%} | `{e['sha256_before'][:16]}…` | "
            f"`{e['sha256_after'][:16]}…` |"
        )
    lines += ["", "## Held-out check", ""]
    h = d["heldout"]
    if h is None:
        lines.append(
            f"None: held-out scoring needs at least {HOLDOUT_MIN_PAIRS} pairs (one is kept out "
            "of training), or it was switched off."
        )
    else:
        lines += [
            f"`{h['pair']}` was not trained on. PSNR of the engine's output against its `after` "
            f"(whole photo at {h['scored_at_long_side']} px long side):",
            "",
            "| doing nothing | base model | learned |",
            "|---|---|---|",
            f"| {_fmt_db(h['psnr_nothing'])} | {_fmt_db(h['psnr_base'])} | "
            f"{_fmt_db(h['psnr_learned'])} |",
        ]
    lines += ["", "## Limits", "", LIMITS, ""]
    return "\n".join(lines)
