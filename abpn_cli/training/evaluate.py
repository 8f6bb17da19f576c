"""Evaluate a retouching method on held-out pairs: PSNR/SSIM against the target, and locality.

Why it looks like this:

- The model is scored the way the product runs it: ``before`` is decoded with the product's
  reader (:func:`abpn_cli.imaging.read_photo`, bit depth from the container, never rotated),
  retouched by :func:`abpn_cli.engine.retouch` in that dtype, and its output - quantised to
  the container's bit depth, exactly what ``abpn retouch`` would write - is scored in float
  [0, 1]. Baselines go through the same quantisation, so "doing nothing" scores exactly the
  input (``psnr_out == psnr_in``, locality 0).
- Several methods can be scored in one pass over the pairs (:func:`evaluate`): each pair is
  decoded once and its input scores (PSNR/SSIM of ``before`` vs ``after``) computed once.
- Baselines are pure functions ``float (H, W, 3) in [0, 1] -> float (H, W, 3)``. ``identity``
  is the floor every method must beat; ``bilateral`` and ``edge-preserving`` are what a
  *global* (non-local) smoothing filter does: it removes some defects, but it also changes
  every untouched pixel, which is what the locality column exposes.

Metric conventions are those of :mod:`abpn_cli.training.metrics`. Summary means are plain
means of per-file values; an infinite PSNR (identical images) counts as :data:`PSNR_CAP` in
the mean and is written as ``null`` in JSON (JSON has no infinity), as is a NaN locality
(no pixel outside the region).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from abpn_cli import __version__
from abpn_cli.training.data import find_pairs, load_rgb_float
from abpn_cli.training.eval_set import find_region
from abpn_cli.training.metrics import locality, psnr, region_from_difference, ssim

PSNR_CAP = 100.0  # dB; stands in for inf (identical images) in means only
REGION_THRESHOLD = 0.02  # region_from_difference / locality threshold (metrics' default)

Baseline = Callable[[np.ndarray], np.ndarray]


class EvalDataError(ValueError):
    """A pair cannot be scored (unreadable file, size mismatch, bad region map)."""


# --------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class EvalPair:
    """One before/after pair; `region` is DIR/region/<name>.png when the eval set has one."""

    name: str  # relative path without extension
    before: Path
    after: Path
    region: Path | None


def list_pairs(pairs_dir: Path) -> list[EvalPair]:
    """Pairs of DIR/before and DIR/after (strict matching; ValueError names the problem)."""
    pairs_dir = Path(pairs_dir)
    out = []
    for before, after in find_pairs(pairs_dir, strict=True):
        name = before.relative_to(pairs_dir / "before").with_suffix("").as_posix()
        out.append(EvalPair(name, before, after, find_region(pairs_dir, before)))
    return out


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0, 1], scaled by the container range."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) * np.float32(1.0 / 255.0)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) * np.float32(1.0 / 65535.0)
    raise EvalDataError(f"unsupported pixel type {pixels.dtype}")


def to_pixels(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float [0, 1] -> uint8/uint16, rounded like the engine's writer."""
    top = 255.0 if np.dtype(dtype) == np.uint8 else 65535.0
    return np.round(np.clip(image, 0.0, 1.0) * top).astype(dtype)


def _read_pixels(path: Path, max_pixels: int) -> np.ndarray:
    from abpn_cli.imaging import ImageError, read_photo

    try:
        return read_photo(path, max_pixels).pixels
    except ImageError as exc:
        raise EvalDataError(f"{path}: {exc}") from exc


@dataclass
class LoadedPair:
    """Decoded pair: `before` in its container dtype (what the engine gets), floats for scoring."""

    pair: EvalPair
    before: np.ndarray  # (H, W, 3) uint8/uint16
    before_f: np.ndarray  # (H, W, 3) float32
    after_f: np.ndarray  # (H, W, 3) float32
    region: np.ndarray  # (H, W) float32 in [0, 1]


def load_eval_pair(pair: EvalPair, max_pixels: int = 400_000_000) -> LoadedPair:
    """Decode a pair; derive the region from the difference when there is no region map."""
    before = _read_pixels(pair.before, max_pixels)
    after_f = to_float(_read_pixels(pair.after, max_pixels))
    if after_f.shape != before.shape:
        raise EvalDataError(
            f"{pair.name}: size mismatch, before {before.shape[1]}x{before.shape[0]} vs "
            f"after {after_f.shape[1]}x{after_f.shape[0]}"
        )
    before_f = to_float(before)
    if pair.region is not None:
        region = load_rgb_float(pair.region)[:, :, 0]
        if region.shape != before.shape[:2]:
            raise EvalDataError(f"{pair.name}: region map {pair.region} has a different size")
    else:
        region = region_from_difference(before_f, after_f, REGION_THRESHOLD)
    return LoadedPair(pair, before, before_f, after_f, region)


# --------------------------------------------------------------------------- baselines


def identity(before: np.ndarray) -> np.ndarray:
    """Do nothing: the score every method has to beat."""
    return before


@dataclass(frozen=True)
class BilateralParams:
    """cv2.bilateralFilter on the whole frame, sized relative to the image.

    sigma_space is in pixels per 1024 px of the long side (so the filter looks the same at
    1024 and 4096), sigma_color in [0, 1] image units; the window radius is 1.5 sigma_space.
    Chosen on data/eval1024 (grid and numbers in benchmarks/README.md): PSNR falls
    monotonically with strength, so the PSNR-best point of the grid (0.5, 0.02) is a no-op.
    The default is the PSNR-best setting that can remove a defect at all: sigma_space >= 2
    (the smallest synthetic spot has sigma ~1.7 px at 1024) and sigma_color >= 0.05 (the
    contrast of the weakest defects, ~13/255).
    """

    sigma_space_1024: float = 2.0
    sigma_color: float = 0.05


def bilateral(before: np.ndarray, params: BilateralParams | None = None) -> np.ndarray:
    """Global edge-preserving smoothing (a non-local method): touches every pixel."""
    p = params or BilateralParams()
    sigma_space = p.sigma_space_1024 * max(before.shape[:2]) / 1024.0
    radius = max(1, round(1.5 * sigma_space))
    src = np.ascontiguousarray(before, dtype=np.float32)
    out = cv2.bilateralFilter(src, 2 * radius + 1, p.sigma_color, sigma_space)
    return np.clip(out, 0.0, 1.0)


@dataclass(frozen=True)
class EdgePreservingParams:
    """cv2.edgePreservingFilter (Gastal & Oliveira 2011, recursive filter, O(N) in sigma).

    sigma_s in pixels per 1024 px of the long side; sigma_r in [0, 1]. 8-bit only in OpenCV,
    so 16-bit inputs are filtered at 8 bits (acceptable for a baseline). Defaults chosen with
    the same rule as :class:`BilateralParams`.
    """

    sigma_s_1024: float = 2.0
    sigma_r: float = 0.05


def edge_preserving(before: np.ndarray, params: EdgePreservingParams | None = None) -> np.ndarray:
    """Domain-transform smoothing of the whole frame (another global filter)."""
    p = params or EdgePreservingParams()
    sigma_s = min(200.0, p.sigma_s_1024 * max(before.shape[:2]) / 1024.0)  # OpenCV range
    bgr8 = to_pixels(before[:, :, ::-1], np.uint8)
    out = cv2.edgePreservingFilter(
        bgr8, flags=cv2.RECURS_FILTER, sigma_s=sigma_s, sigma_r=p.sigma_r
    )
    return to_float(np.ascontiguousarray(out[:, :, ::-1]))


BASELINES: dict[str, Baseline] = {"identity": identity, "bilateral": bilateral}
if hasattr(cv2, "edgePreservingFilter"):  # opencv photo module (present in headless 4.x/5.x)
    BASELINES["edge-preserving"] = edge_preserving


def baseline_settings(name: str) -> dict:
    """The parameters a baseline ran with, for the report."""
    if name == "bilateral":
        return asdict(BilateralParams())
    if name == "edge-preserving":
        return asdict(EdgePreservingParams())
    return {}


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class MethodOutput:
    """What a method returns for one image: pixels in the input dtype, levels (model only)."""

    pixels: np.ndarray
    levels: int | None = None


Method = Callable[[np.ndarray], MethodOutput]


def baseline_method(fn: Baseline) -> Method:
    """Wrap a float baseline so it sees and returns container pixels like the model does."""

    def run(pixels: np.ndarray) -> MethodOutput:
        return MethodOutput(to_pixels(fn(to_float(pixels)), pixels.dtype))

    return run


def model_method(model, options) -> Method:  # (LoadedModel, RetouchOptions); lazy torch import
    """The engine as a method: exactly what `abpn retouch` computes for the pixels."""
    from abpn_cli.engine import retouch

    def run(pixels: np.ndarray) -> MethodOutput:
        result = retouch(model, pixels, options)
        return MethodOutput(result.image, result.levels)

    return run


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class FileResult:
    """Scores of one pair under one method (locality in 1/255 units; seconds: method only)."""

    name: str
    width: int
    height: int
    levels: int | None
    psnr_in: float
    psnr_out: float
    ssim_in: float
    ssim_out: float
    locality_255: float
    seconds: float


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


def evaluate(
    pairs: Sequence[EvalPair],
    methods: Mapping[str, Method],
    warmup: bool = False,
    on_file: Callable[[str, FileResult], None] | None = None,
    max_pixels: int = 400_000_000,
) -> dict[str, list[FileResult]]:
    """Score every method on every pair, decoding each pair once.

    `warmup` runs each method once on the first pair before timing (TorchScript's profiling
    executor optimises on the first calls, which would otherwise inflate the first file).
    """
    results: dict[str, list[FileResult]] = {name: [] for name in methods}
    for k, pair in enumerate(pairs):
        lp = load_eval_pair(pair, max_pixels)
        h, w = lp.before.shape[:2]
        if min(h, w) < 11:
            raise EvalDataError(f"{pair.name}: {w}x{h} is too small to score (SSIM needs 11 px)")
        psnr_in = psnr(lp.before_f, lp.after_f)
        ssim_in = ssim(lp.before_f, lp.after_f)
        for name, method in methods.items():
            if warmup and k == 0:
                method(lp.before)
            start = time.perf_counter()
            out = method(lp.before)
            seconds = time.perf_counter() - start
            if out.pixels.shape != lp.before.shape:
                raise EvalDataError(f"{name} returned shape {out.pixels.shape} for {pair.name}")
            out_f = to_float(out.pixels)
            loc = locality(lp.before_f, out_f, lp.region, REGION_THRESHOLD).mean_abs_255
            result = FileResult(
                name=pair.name,
                width=w,
                height=h,
                levels=out.levels,
                psnr_in=psnr_in,
                psnr_out=psnr(out_f, lp.after_f),
                ssim_in=ssim_in,
                ssim_out=ssim(out_f, lp.after_f),
                locality_255=loc,
                seconds=seconds,
            )
            results[name].append(result)
            if on_file is not None:
                on_file(name, result)
    return results


# --------------------------------------------------------------------------- report


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
    """Write the report atomically (temp file + rename), so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def make_baseline(name: str) -> Method:
    """A registered baseline by name, as a method (KeyError lists the names)."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return baseline_method(BASELINES[name])


__all__ = [
    "BASELINES",
    "PSNR_CAP",
    "TABLE_COLUMNS",
    "BilateralParams",
    "EdgePreservingParams",
    "EvalDataError",
    "EvalPair",
    "EvalReport",
    "EvalSummary",
    "FileResult",
    "LoadedPair",
    "MethodOutput",
    "baseline_method",
    "baseline_settings",
    "bilateral",
    "edge_preserving",
    "evaluate",
    "file_row",
    "identity",
    "list_pairs",
    "load_eval_pair",
    "make_baseline",
    "model_method",
    "summarize",
    "summary_row",
    "to_float",
    "to_pixels",
    "write_report",
]
