"""Baselines for `abpn eval`: what a method has to beat, and what a global filter does.

Baselines are pure functions ``float (H, W, 3) in [0, 1] -> float (H, W, 3)``; as methods
(:func:`baseline_method`) they see and return container pixels like the model, through the
quantisation of :mod:`abpn_cli.training.evaluate`. ``identity`` is the floor every method
must beat; ``bilateral`` and ``edge-preserving`` are what a *global* (non-local) smoothing
filter does: it removes some defects, but it also changes every untouched pixel, which is what
the locality column exposes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from abpn_cli.training.evaluate import Method, MethodOutput, to_float, to_pixels

Baseline = Callable[[np.ndarray], np.ndarray]


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


def baseline_method(fn: Baseline) -> Method:
    """Wrap a float baseline so it sees and returns container pixels like the model does."""

    def run(pixels: np.ndarray) -> MethodOutput:
        return MethodOutput(to_pixels(fn(to_float(pixels)), pixels.dtype))

    return run


def make_baseline(name: str) -> Method:
    """A registered baseline by name, as a method (KeyError lists the names)."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return baseline_method(BASELINES[name])


__all__ = [
    "BASELINES",
    "Baseline",
    "BilateralParams",
    "EdgePreservingParams",
    "baseline_method",
    "baseline_settings",
    "bilateral",
    "edge_preserving",
    "identity",
    "make_baseline",
]
