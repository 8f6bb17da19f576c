"""Score a retouching method on held-out pairs: PSNR/SSIM against the target, and locality.

Why it looks like this:

- The model is scored the way the product runs it: ``before`` is decoded with the product's
  reader (:func:`abpn_cli.imaging.read_photo`, bit depth from the container, never rotated),
  retouched by :func:`abpn_cli.engine.retouch` in that dtype, and its output - quantised to
  the container's bit depth, exactly what ``abpn retouch`` would write - is scored in float
  [0, 1]. Any method (a :data:`Method`) sees and returns container pixels the same way, so
  the baselines of :mod:`abpn_cli.training.eval_baselines` go through the same quantisation
  and "doing nothing" scores exactly the input (``psnr_out == psnr_in``, locality 0).
- Several methods can be scored in one pass over the pairs (:func:`evaluate`): each pair is
  decoded once and its input scores (PSNR/SSIM of ``before`` vs ``after``) computed once.

Metric conventions are those of :mod:`abpn_cli.training.metrics`; means over files, the
report and the printed table are in :mod:`abpn_cli.training.eval_report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abpn_cli.training.data import find_pairs, load_rgb_float
from abpn_cli.training.eval_set import find_region
from abpn_cli.training.metrics import locality, psnr, region_from_difference, ssim

REGION_THRESHOLD = 0.02  # region_from_difference / locality threshold (metrics' default)


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


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class MethodOutput:
    """What a method returns for one image: pixels in the input dtype, levels (model only)."""

    pixels: np.ndarray
    levels: int | None = None


Method = Callable[[np.ndarray], MethodOutput]


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


__all__ = [
    "REGION_THRESHOLD",
    "EvalDataError",
    "EvalPair",
    "FileResult",
    "LoadedPair",
    "Method",
    "MethodOutput",
    "evaluate",
    "list_pairs",
    "load_eval_pair",
    "model_method",
    "to_float",
    "to_pixels",
]
