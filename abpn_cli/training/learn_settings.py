"""`abpn learn`'s settings, kept free of torch so that the CLI can show their defaults in
--help without importing the learner (one owner for every default: this dataclass)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any


@dataclass
class LearnSettings:
    """One `abpn learn` run. `minutes` and/or `steps` bound it (whichever ends first)."""

    out: Path
    pairs: list[tuple[Path, Path]]
    base: Path | None = None  # None: the shipped default model
    minutes: float | None = 4.0  # budget for the whole command, checks and saving included
    steps: int | None = None
    batch: int = 4
    lr: float = 1e-3
    lr_decay_at: float = 0.7
    seed: int = 0
    threads: int = 2
    max_side: int = 1024
    holdout: bool = True
    levels: int = 1  # crop = base thumbnail * 2**levels keeps the training thumbnail
    val_size: int = 4
    started_at: float | None = None  # time.perf_counter() when the command began (budget origin)

    @classmethod
    def budgeted(cls, minutes: float | None, steps: int | None, **fields: Any) -> LearnSettings:
        """The command's rule: --steps alone bounds a run by steps; otherwise --minutes does,
        by default `minutes`' default (so a bare `abpn learn` cannot run for ever)."""
        if minutes is None and steps is None:
            minutes = default("minutes")
        return cls(minutes=minutes, steps=steps, **fields)


def default(name: str) -> Any:
    """A field's default, for --help (raises for fields without one)."""
    value = LearnSettings.__dataclass_fields__[name].default
    if value is MISSING:
        raise KeyError(f"LearnSettings.{name} has no default")
    return value
