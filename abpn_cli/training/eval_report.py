"""`abpn eval`'s results as a report: means over files, the JSON document, the printed table.

Summary means are plain means of per-file values (the paper's convention: mean of per-image
PSNR); an infinite PSNR (identical images) counts as :data:`PSNR_CAP` in the mean and is
written as ``null`` in JSON (JSON has no infinity), as is a NaN locality (no pixel outside
the region).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from abpn_cli import __version__
from abpn_cli.batch.fsutil import atomic_write_bytes
from abpn_cli.training.evaluate import FileResult

PSNR_CAP = 100.0  # dB; stands in for inf (identical images) in means only


@dataclass(frozen=True)
class EvalSummary:
    """Means over files (PSNR capped at PSNR_CAP; NaN localities skipped)."""

    count: int
    psnr_in: float
    psnr_out: float
    ssim_in: float
    ssim_out: float
    locality_255: float
    seconds: float  # mean seconds per image
    seconds_total: float


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarize(files: Sequence[FileResult]) -> EvalSummary:
    """Plain means of the per-file values (the paper's convention: mean of per-image PSNR)."""

    def cap(v: float) -> float:
        return min(v, PSNR_CAP)

    return EvalSummary(
        count=len(files),
        psnr_in=_mean([cap(f.psnr_in) for f in files]),
        psnr_out=_mean([cap(f.psnr_out) for f in files]),
        ssim_in=_mean([f.ssim_in for f in files]),
        ssim_out=_mean([f.ssim_out for f in files]),
        locality_255=_mean([f.locality_255 for f in files]),
        seconds=_mean([f.seconds for f in files]),
        seconds_total=float(sum(f.seconds for f in files)),
    )


def _json_safe(value: object) -> object:
    """inf/NaN -> None (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@dataclass
class EvalReport:
    """The `abpn eval --report` document; the summary is derived from `files`."""

    model: dict | None  # {"path", "sha256"}; None when a baseline was scored
    settings: dict
    files: list[FileResult]
    summary: EvalSummary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarize(self.files)

    def to_json(self) -> dict:
        """{abpn_version, model, settings, files: [...], summary: {...}}, strict JSON."""
        return _json_safe(
            {
                "abpn_version": __version__,
                "model": self.model,
                "settings": self.settings,
                "files": [asdict(f) for f in self.files],
                "summary": asdict(self.summary),
            }
        )


TABLE_COLUMNS = (
    "file",
    "size",
    "l",
    "PSNR in",
    "PSNR out",
    "SSIM in",
    "SSIM out",
    "locality (1/255)",
    "s",
)


def file_row(f: FileResult) -> list[str]:
    """One printed table row (TABLE_COLUMNS) for a file."""
    return [
        f.name,
        f"{f.width}x{f.height}",
        "-" if f.levels is None else str(f.levels),
        f"{f.psnr_in:.2f}",
        f"{f.psnr_out:.2f}",
        f"{f.ssim_in:.4f}",
        f"{f.ssim_out:.4f}",
        f"{f.locality_255:.3f}",
        f"{f.seconds:.2f}",
    ]


def summary_row(s: EvalSummary) -> list[str]:
    """The closing 'mean' row (TABLE_COLUMNS)."""
    return [
        f"mean of {s.count}",
        "",
        "",
        f"{s.psnr_in:.2f}",
        f"{s.psnr_out:.2f}",
        f"{s.ssim_in:.4f}",
        f"{s.ssim_out:.4f}",
        f"{s.locality_255:.3f}",
        f"{s.seconds:.2f}",
    ]


def write_report(report: EvalReport, path: Path) -> None:
    """Write the report atomically (temp file, fsync, rename): a reader never sees half a file."""
    text = json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(Path(path), text.encode())


__all__ = [
    "PSNR_CAP",
    "TABLE_COLUMNS",
    "EvalReport",
    "EvalSummary",
    "file_row",
    "summarize",
    "summary_row",
    "write_report",
]
