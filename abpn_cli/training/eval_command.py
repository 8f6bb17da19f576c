"""`abpn eval` and `abpn make-evalset` as runners: settings in, a report out, and the exit
code each exception they let through means (the CLI parses and renders, nothing more)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abpn_cli.engine import EngineError, RetouchOptions, load_model
from abpn_cli.exitcodes import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_USAGE, ExitRule
from abpn_cli.training import evaluate as ev
from abpn_cli.training.data import ImageLoadError, find_photos
from abpn_cli.training.eval_baselines import BASELINES, baseline_settings, make_baseline
from abpn_cli.training.eval_report import PSNR_CAP, EvalReport, write_report
from abpn_cli.training.eval_set import EvalItem, make_eval_set

NO_BASELINE = "none"  # --baseline none: score the model


class EvalUsageError(ValueError):
    """The options cannot describe an evaluation (exit 2)."""


@dataclass(frozen=True)
class EvalSettings:
    """One `abpn eval` run: the model (or a baseline) scored on a folder of pairs."""

    pairs: Path
    model: Path | None = None
    levels: int | None = None  # None: the engine's choice per image
    device: str = "auto"
    baseline: str = NO_BASELINE
    report: Path | None = None
    warmup: bool = False

    def __post_init__(self) -> None:
        if self.baseline != NO_BASELINE and self.baseline not in BASELINES:
            names = "|".join([NO_BASELINE, *BASELINES])
            raise EvalUsageError(f"--baseline must be one of {names}: {self.baseline!r}")


# EngineError first: the model or device, never the pairs (EvalDataError is a ValueError)
EVAL_EXITS = (ExitRule(EngineError, EXIT_ENVIRONMENT), ExitRule(ValueError, EXIT_USAGE))


def run_eval(
    settings: EvalSettings, on_file: Callable[[ev.FileResult], None] | None = None
) -> EvalReport:
    """Score every pair, write the report if one was asked for, return it."""
    pair_list = ev.list_pairs(settings.pairs)
    method, model_info, method_settings = _method(settings)
    run_settings: dict[str, Any] = {"pairs": str(settings.pairs), **method_settings}
    run_settings |= {
        "region_threshold": ev.REGION_THRESHOLD,
        "psnr_cap": PSNR_CAP,
        "warmup": settings.warmup,
    }

    def each(_name: str, result: ev.FileResult) -> None:
        if on_file is not None:
            on_file(result)

    files = ev.evaluate(pair_list, {"m": method}, warmup=settings.warmup, on_file=each)["m"]
    report = EvalReport(model_info, run_settings, files)
    if settings.report is not None:
        write_report(report, settings.report)
    return report


def _method(settings: EvalSettings) -> tuple[ev.Method, dict | None, dict[str, Any]]:
    """(what is scored, the model's path and sha256, its settings for the report)."""
    if settings.baseline != NO_BASELINE:
        method_settings = {
            "method": settings.baseline,
            "baseline_params": baseline_settings(settings.baseline),
        }
        return make_baseline(settings.baseline), None, method_settings
    loaded = load_model(settings.model, settings.device)
    options = RetouchOptions(levels=settings.levels)
    method_settings = {
        "method": "model",
        "levels": "auto" if settings.levels is None else settings.levels,
        "device": str(loaded.device),
        "tile": options.tile,
        "skip_untouched": options.skip_untouched,
        "strength": options.strength,
    }
    model_info = {"path": str(loaded.path), "sha256": loaded.sha256}
    return ev.model_method(loaded, options), model_info, method_settings


@dataclass(frozen=True)
class EvalSetSettings:
    """One `abpn make-evalset` run (the CLI owns the defaults: it is the only caller)."""

    photos: tuple[Path, ...]
    out: Path
    size: int
    seed: int
    count_per_photo: int


@dataclass(frozen=True)
class EvalSetReport:
    settings: EvalSetSettings
    items: list[EvalItem]

    @property
    def upscaled(self) -> int:
        """Pairs cut from photos smaller than the pair size."""
        return sum(it.upscaled for it in self.items)


# an unreadable photo is exit 1 (the set is incomplete); a bad --photos is exit 2
EVALSET_EXITS = (ExitRule(EvalUsageError, EXIT_USAGE), ExitRule(ImageLoadError, EXIT_FAILED))


def run_make_evalset(settings: EvalSetSettings) -> EvalSetReport:
    """Find the photos and write the deterministic eval set."""
    try:
        found = find_photos(settings.photos)
    except FileNotFoundError as exc:
        raise EvalUsageError(str(exc)) from exc
    if not found:
        raise EvalUsageError(f"no photos under {', '.join(map(str, settings.photos))}")
    items = make_eval_set(
        found, settings.out, settings.size, settings.seed, settings.count_per_photo
    )
    return EvalSetReport(settings, items)
