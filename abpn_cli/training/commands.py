"""`abpn train`, `train-dust`, `learn` and `export` as runners: the options as given (None:
not given, so the settings dataclass or a resumed checkpoint decides) become the library's
settings, and each command's table says which exception means which exit code. The CLI
parses, calls, renders; defaults live in the settings dataclasses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from abpn_cli.engine import ModelCard, save_model_file
from abpn_cli.engine.spots import KEEP_ALL
from abpn_cli.exitcodes import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ExitRule,
)
from abpn_cli.training.checkpoint import CheckpointError, model_from_checkpoint
from abpn_cli.training.dust_data import DustDataError
from abpn_cli.training.dust_train import DustTrainError, DustTrainSettings, ValScore, train_dust
from abpn_cli.training.learn_errors import (
    BaseModelError,
    LearnError,
    LearnInterrupted,
    LearnUsageError,
)
from abpn_cli.training.learn_settings import LearnSettings
from abpn_cli.training.losses import LossWeights
from abpn_cli.training.pair_checks import pairs_from_dir
from abpn_cli.training.train_settings import (
    TrainDivergedError,
    TrainInitError,
    TrainSettings,
    TrainUsageError,
    settings_for_run,
)

# --------------------------------------------------------------------------- train

TRAIN_EXITS = (
    ExitRule(TrainUsageError, EXIT_USAGE),
    ExitRule(TrainInitError, EXIT_ENVIRONMENT),
    ExitRule(TrainDivergedError, EXIT_FAILED),  # the last checkpoint is the last good state
)


@dataclass(frozen=True)
class TrainOptions:
    """`abpn train` as given; None: not given (TrainSettings or the checkpoint decides)."""

    out: Path
    resume: bool = False
    synthetic: Sequence[Path] | None = None
    pairs: Path | None = None
    steps: int | None = None
    crop: int | None = None
    levels: int | None = None
    batch: int | None = None
    lr: float | None = None
    lr_decay_at: float | None = None
    max_minutes: float | None = None
    seed: int | None = None
    val_every: int | None = None
    checkpoint_every: int | None = None
    threads: int | None = None
    adv_weight: float | None = None
    init_from: Path | None = None


def train_settings(options: TrainOptions) -> TrainSettings:
    """The run's settings: the options given over TrainSettings (or the resumed run's)."""
    o = options
    given: dict[str, Any] = {
        "photos": list(o.synthetic) if o.synthetic else None,
        "pairs": o.pairs,
        "steps": o.steps,
        "crop": o.crop,
        "levels": o.levels,
        "batch": o.batch,
        "lr": o.lr,
        "lr_decay_at": o.lr_decay_at,
        "max_seconds": None if o.max_minutes is None else o.max_minutes * 60.0,
        "seed": o.seed,
        "val_every": o.val_every,
        "checkpoint_every": o.checkpoint_every,
        "threads": o.threads,
        "init_from": o.init_from,
        "weights": None if o.adv_weight is None else LossWeights(adv=o.adv_weight),
    }
    return settings_for_run(o.out, o.resume, given)


# --------------------------------------------------------------------------- train-dust

DUST_CACHE_NAME = "thumbcache"  # the thumbnail cache beside the run folder: OUT/../thumbcache
DUST_EXITS = (
    ExitRule((DustTrainError, DustDataError), EXIT_USAGE),
    ExitRule(
        KeyboardInterrupt,
        EXIT_INTERRUPTED,
        lambda _: "interrupted; rerun the same command to continue from OUT/last.ckpt",
    ),
)


@dataclass(frozen=True)
class DustOptions:
    """`abpn train-dust` as given; None: DustTrainSettings' default."""

    photos: Path
    out: Path
    holdout: Path | None = None
    cache: Path | None = None  # None: OUT/../thumbcache, shared by reruns and other runs
    max_minutes: float | None = None
    steps: int | None = None
    batch: int | None = None
    crop: int | None = None
    lr: float | None = None
    compile: bool = True
    init_from: Path | None = None
    zoom_share: float | None = None
    half_width: bool = False


def _folder_files(path: Path | None) -> tuple[Path, ...]:
    """The files of a folder, sorted (none for no folder)."""
    if path is None:
        return ()
    if not path.is_dir():
        raise DustTrainError(f"{path} is not a folder")
    return tuple(sorted(p for p in path.iterdir() if p.is_file()))


def dust_settings(options: DustOptions) -> DustTrainSettings:
    """The dust run's settings (DustTrainSettings checks them)."""
    o = options
    tuning = {
        "steps": o.steps,
        "batch": o.batch,
        "crop": o.crop,
        "lr": o.lr,
        "zoom_share": o.zoom_share,
    }
    return DustTrainSettings(
        photos=_folder_files(o.photos),
        holdout=_folder_files(o.holdout),
        out=o.out,
        cache_dir=o.cache if o.cache is not None else o.out.parent / DUST_CACHE_NAME,
        max_minutes=o.max_minutes,
        compile=o.compile,
        init_from=o.init_from,
        half_width=o.half_width,
        **{k: v for k, v in tuning.items() if v is not None},
    )


def run_train_dust(settings: DustTrainSettings, say: Callable[[str], None]) -> ValScore | None:
    """Train (or resume) the dust LRL; `say` gets the progress lines."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return train_dust(settings, say)


# --------------------------------------------------------------------------- learn


def _learn_interrupted(exc: BaseException) -> str:
    where = getattr(exc, "checkpoint", None)
    return f"{exc}; the state so far is in {where}" if where else f"{exc}"


LEARN_EXITS = (
    ExitRule(LearnInterrupted, EXIT_INTERRUPTED, _learn_interrupted),
    ExitRule(KeyboardInterrupt, EXIT_INTERRUPTED, lambda _: "interrupted; no model written"),
    ExitRule(LearnUsageError, EXIT_USAGE),  # PairCheckError included
    ExitRule((BaseModelError, TrainInitError), EXIT_ENVIRONMENT),
    ExitRule((LearnError, TrainDivergedError), EXIT_FAILED),
)


def learn_settings(
    pairs: Path | None,
    before: Sequence[Path] | None,
    after: Sequence[Path] | None,
    **fields: Any,
) -> LearnSettings:
    """The exemplars from --pairs DIR and/or --before/--after (in that order), checked to
    come in pairs; `fields` are LearnSettings' (minutes and steps by its budget rule)."""
    pairs_dir = pairs
    before, after = list(before or ()), list(after or ())
    if (before or after) and len(before) != len(after):
        raise LearnUsageError(
            f"--before and --after must come in pairs (got {len(before)} and {len(after)})"
        )
    if pairs_dir is None and not before:
        raise LearnUsageError("give --pairs DIR or --before A --after B (repeatable)")
    found = pairs_from_dir(pairs_dir) if pairs_dir is not None else []
    found += list(zip(before, after, strict=True))
    return LearnSettings.budgeted(pairs=_distinct_pairs(found), **fields)


def _distinct_pairs(pairs: Sequence[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Each pair once (--pairs DIR and --before/--after may name the same one: trained on and
    then held out, its score would flatter the model); one before with two afters is refused."""
    seen: dict[Path, Path] = {}
    out: list[tuple[Path, Path]] = []
    for before, after in pairs:
        key, value = before.resolve(), after.resolve()
        if key in seen and seen[key] != value:
            raise LearnUsageError(f"{before} is the before of two pairs ({seen[key]}, {after})")
        if key not in seen:
            seen[key] = value
            out.append((before, after))
    return out


# --------------------------------------------------------------------------- export

EXPORT_EXITS = (ExitRule(CheckpointError, EXIT_USAGE),)


@dataclass(frozen=True)
class ExportReport:
    path: Path
    sha256: str


def run_export(checkpoint: Path, out: Path) -> ExportReport:
    """Write the engine's model file from a training checkpoint."""
    if out.is_dir():
        raise CheckpointError(f"--out {out} is a folder; give the model file's path (.pt)")
    if out.exists() and checkpoint.exists() and out.samefile(checkpoint):
        raise CheckpointError(f"--out {out} is the checkpoint itself; it would be overwritten")
    model, ckpt = model_from_checkpoint(checkpoint)
    card = ModelCard(  # as the trainer's own export: judged on its crops with nothing gated
        kind="export",
        steps=ckpt.step,
        init_from=checkpoint.name,
        sensitivity=KEEP_ALL,
        details={"metrics": ckpt.metrics},
    )
    return ExportReport(out, save_model_file(model, out, card))
