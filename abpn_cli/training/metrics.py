"""Quality metrics for local retouching: PSNR, SSIM, and how much a model touched what it shouldn't.

Conventions (all documented here so eval reports can be compared):

- Images are float arrays (H, W, 3) in [0, 1]; data range 1.
- ``psnr``: 10 log10(1 / MSE) over all pixels and channels, in float64. Identical images give
  ``inf`` (no cap), so callers that average must handle it (e.g. report the median or clamp).
- ``ssim``: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01)^2,
  C2 = (0.03)^2, computed **per RGB channel and averaged**, over the 'valid' area only (no
  padding: the 5-pixel border is not scored), like the reference MATLAB ``ssim_index``.
  ``ssim_torch`` is the same formula on (N, 3, H, W) tensors, differentiable; they agree to
  float32 rounding (tests check < 1e-3).
- ``locality``: mean |output - before| over pixels outside the edited region, where "outside"
  is ``dilate(region) <= threshold``; the dilation (default ~1 thumbnail pixel, 1/256 of the
  long side) forgives the soft edge of the region. Reported raw and in 1/255 units.
- ``region_from_difference``: the region of a real before/after pair, used by the data
  pipeline and by eval when no region map exists: ``min(1, 2 * G_sigma * 1[max_c |b - a| >
  threshold])`` - changed pixels, closed by a small Gaussian so the mask is smooth; a solid
  changed area gets 1, isolated noise pixels (JPEG re-encoding) stay near 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB over all pixels and channels; ``inf`` for identical images."""
    _check_pair(a, b)
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _gaussian_kernel_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _ssim_map(filt: Callable[[Any], Any], x: Any, y: Any) -> Any:
    """The SSIM formula from windowed moments; `filt` is the window (NumPy for scoring,
    torch for the loss), so both implementations share one formula."""
    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    num = (2 * mx * my + SSIM_C1) * (2 * sxy + SSIM_C2)
    den = (mx * mx + my * my + SSIM_C1) * (sxx + syy + SSIM_C2)
    return num / den


def _ssim_map_channel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM map of one channel over the 'valid' area (float64)."""
    k = _gaussian_kernel_1d()
    r = SSIM_WINDOW // 2

    def filt(img: np.ndarray) -> np.ndarray:
        out = cv2.sepFilter2D(img, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)
        return out[r:-r, r:-r]  # interior == 'valid' convolution

    return _ssim_map(filt, x, y)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM, per channel averaged (see module docstring); (H, W) or (H, W, C) inputs."""
    _check_pair(a, b)
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    if a64.ndim == 2:
        a64, b64 = a64[:, :, None], b64[:, :, None]
    if min(a64.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    values = [
        float(_ssim_map_channel(a64[:, :, c].copy(), b64[:, :, c].copy()).mean())
        for c in range(a64.shape[2])
    ]
    return float(np.mean(values))


def ssim_torch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Differentiable mean SSIM of (N, C, H, W) tensors in [0, 1] (same convention as `ssim`).

    Training uses ``1 - ssim_torch`` as the offline stand-in for the perceptual loss.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two equal (N, C, H, W) tensors, got {x.shape} and {y.shape}")
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    c = x.shape[1]
    k1 = torch.as_tensor(_gaussian_kernel_1d(), dtype=x.dtype, device=x.device)
    kh = k1.view(1, 1, 1, -1).expand(c, 1, 1, SSIM_WINDOW)
    kv = k1.view(1, 1, -1, 1).expand(c, 1, SSIM_WINDOW, 1)

    def filt(t: torch.Tensor) -> torch.Tensor:  # separable, depthwise, 'valid'
        return F.conv2d(F.conv2d(t, kh, groups=c), kv, groups=c)

    return _ssim_map(filt, x, y).mean()


def region_from_difference(
    before: np.ndarray, after: np.ndarray, threshold: float = 0.02, sigma: float = 2.0
) -> np.ndarray:
    """Edited region (H, W) float32 in [0, 1] of a real pair (see module docstring)."""
    _check_pair(before, after)
    diff = np.abs(np.asarray(before, np.float32) - np.asarray(after, np.float32))
    if diff.ndim == 3:
        diff = diff.max(axis=2)
    mask = (diff > threshold).astype(np.float32)
    if sigma > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        np.minimum(mask * 2.0, 1.0, out=mask)
    return mask


@dataclass(frozen=True)
class LocalityScore:
    """Change outside the region: mean/max |output - before| raw and x255, and its support."""

    mean_abs: float
    mean_abs_255: float
    max_abs_255: float
    changed_fraction: float  # outside pixels whose largest channel change exceeds 0.5/255
    outside_pixels: int


def locality(
    before: np.ndarray,
    output: np.ndarray,
    region: np.ndarray,
    threshold: float = 0.02,
    dilate_px: int | None = None,
) -> LocalityScore:
    """How much `output` changed `before` where nothing should change (outside `region`).

    `dilate_px` defaults to max(1, round(long side / 256)), about one thumbnail pixel. With no
    outside pixels the means are NaN.
    """
    _check_pair(before, output)
    region = np.asarray(region, np.float32)
    if region.shape != before.shape[:2]:
        raise ValueError(f"region shape {region.shape} does not match image {before.shape[:2]}")
    if dilate_px is None:
        dilate_px = max(1, round(max(region.shape) / 256))
    if dilate_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
        region = cv2.dilate(region, k)
    outside = region <= threshold
    n = int(outside.sum())
    if n == 0:
        return LocalityScore(math.nan, math.nan, math.nan, math.nan, 0)
    diff = np.abs(np.asarray(output, np.float32) - np.asarray(before, np.float32))[outside]
    mean = float(diff.astype(np.float64).mean())
    worst = diff.max(axis=-1) if diff.ndim == 2 else diff
    return LocalityScore(
        mean_abs=mean,
        mean_abs_255=mean * 255.0,
        max_abs_255=float(worst.max()) * 255.0,
        changed_fraction=float((worst > 0.5 / 255).mean()),
        outside_pixels=n,
    )


@dataclass(frozen=True)
class PairScores:
    """Scores of one eval pair: input vs target, output vs target, and locality (1/255 units)."""

    psnr_in: float
    psnr_out: float
    ssim_in: float
    ssim_out: float
    locality: float


def score_pair(
    before: np.ndarray,
    after: np.ndarray,
    output: np.ndarray,
    region: np.ndarray | None = None,
    threshold: float = 0.02,
) -> PairScores:
    """All metrics for one (before, target after, model output); region from the pair if None."""
    if region is None:
        region = region_from_difference(before, after, threshold)
    return PairScores(
        psnr_in=psnr(before, after),
        psnr_out=psnr(output, after),
        ssim_in=ssim(before, after),
        ssim_out=ssim(output, after),
        locality=locality(before, output, region, threshold).mean_abs_255,
    )
