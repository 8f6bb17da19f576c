"""What defines a training run (`TrainSettings`), the rules on it, and the trainer's errors.

Kept apart from the loop so that the settings' rules - validation, resuming (which settings
a resumed run must keep), the lr schedule, where a run's files go - read in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abpn_cli.model import ABPNConfig
from abpn_cli.training.checkpoint import LAST_NAME, Checkpoint, CheckpointError, load_checkpoint
from abpn_cli.training.losses import LossWeights

ENCODER_DEPTH = 6  # crops must be multiples of 2^(levels + this)


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
    steps: int | None = 1400  # None: the time budget (max_seconds) alone ends the run
    lr: float = 5e-4
    lr_decay_at: float = 0.5  # paper: lr / 10 halfway through
    seed: int = 0
    val_every: int | None = 100  # None: validate at the start and at the end only
    val_size: int = 8
    checkpoint_every: int | None = 100  # None: at the end (and on Ctrl-C) only
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
        """The inverse of `to_dict`; keys this version does not know are ignored."""
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


UNBOUNDED_STEPS = 2**40  # the step bound of a run that only time ends: no budget reaches it


def step_bound(settings: TrainSettings) -> int:
    """The most steps the run can take: `steps`, or UNBOUNDED_STEPS for a run that only its
    time budget ends (its data stream and sampler still need a length)."""
    return UNBOUNDED_STEPS if settings.steps is None else settings.steps


def run_paths(out: Path) -> tuple[Path, Path]:
    """(run dir, model file): `x.pt` -> (`x.run/`, `x.pt`); a folder -> (dir, dir/model.pt)."""
    if out.suffix == ".pt":
        return out.with_name(out.stem + ".run"), out
    return out, out / "model.pt"


def lr_at(step: int, settings: TrainSettings, elapsed_s: float | None = None) -> float:
    """Step decay: lr until `lr_decay_at * steps`, then lr / 10 (pure function of the step).

    With a time budget (`max_seconds`) the decay also comes once `elapsed_s` reaches
    `lr_decay_at * max_seconds`, so a budgeted run always gets its low-lr phase."""
    decayed = settings.steps is not None and step >= int(settings.lr_decay_at * settings.steps)
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
MIN_BATCH = 2  # BatchNorm in training mode cannot normalise over a single crop

RESUME_FIXED = ("photos", "pairs", "crop", "levels", "batch", "seed", "weights", "max_side")


def _comparable(value: Any) -> Any:
    """Paths compare by where they point, so `data/x` and `/abs/data/x` are the same source."""
    if isinstance(value, Path):
        return value.resolve()
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def validate_settings(settings: TrainSettings, exemplars: bool = False) -> None:
    """TrainUsageError for settings that cannot describe a run; `exemplars`: the caller hands
    the trainer decoded pairs (train_data.ExemplarPairs) instead of data folders."""
    if settings.photos and settings.pairs is not None:
        raise TrainUsageError("give either synthetic photo folders or a pairs folder, not both")
    has_folders = bool(settings.photos) or settings.pairs is not None
    if exemplars and (has_folders or settings.resume):
        raise TrainUsageError("decoded exemplar pairs take no data folders and cannot resume")
    if not exemplars and not has_folders:
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
    if settings.steps is None and settings.max_seconds is None:
        raise TrainUsageError("give a number of steps or a time budget (max_seconds), or both")
    if settings.batch < MIN_BATCH:
        raise TrainUsageError(f"batch must be >= {MIN_BATCH} (BatchNorm needs two crops a step)")
    for name in ("steps", "val_every", "checkpoint_every", "threads", "val_size"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise TrainUsageError(f"{name} must be >= 1")
    if settings.lr <= 0:
        raise TrainUsageError("lr must be > 0")
    if settings.max_seconds is not None and settings.max_seconds <= 0:
        raise TrainUsageError("the time budget (max_seconds / --max-minutes) must be > 0")
    if not 0.0 < settings.lr_decay_at <= 1.0:
        raise TrainUsageError("lr_decay_at must be in (0, 1]")


def resume_checkpoint(settings: TrainSettings, run_dir: Path) -> Checkpoint | None:
    """The run's last checkpoint when resuming (checked against `settings`), else None."""
    if not settings.resume:
        return None
    try:
        ckpt = load_checkpoint(run_dir / LAST_NAME)
    except CheckpointError as exc:
        raise TrainUsageError(f"--resume: {exc}") from exc
    check_resumable(TrainSettings.from_dict(ckpt.settings), settings)
    return ckpt


def check_resumable(stored: TrainSettings, settings: TrainSettings) -> None:
    """TrainUsageError unless `settings` keep what the stored run's data and network need."""
    for name in RESUME_FIXED:
        if _comparable(getattr(stored, name)) != _comparable(getattr(settings, name)):
            raise TrainUsageError(
                f"--resume: {name} was {getattr(stored, name)!r} in this run, got "
                f"{getattr(settings, name)!r}; resume with the same value or start a new run"
            )
