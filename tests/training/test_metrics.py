"""Metrics: PSNR/SSIM known values, numpy vs torch SSIM, locality and region-from-difference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from abpn_cli.training.metrics import (
    SSIM_C1,
    PairScores,
    locality,
    psnr,
    region_from_difference,
    score_pair,
    ssim,
    ssim_torch,
)
from tests.factories import blurred_noise


def test_psnr_identical_is_inf_and_constant_offset_is_20db() -> None:
    a = np.full((16, 16, 3), 0.5, np.float32)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + np.float32(0.1)) == pytest.approx(20.0, abs=1e-5)
    assert psnr(a, a + np.float32(0.01)) == pytest.approx(40.0, abs=1e-3)


def test_ssim_identical_is_one_and_constant_images_known_value() -> None:
    a = blurred_noise(40, 50, 0)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    c1 = np.full((20, 20, 3), 0.5)
    c2 = np.full((20, 20, 3), 0.6)
    expected = (2 * 0.5 * 0.6 + SSIM_C1) / (0.5**2 + 0.6**2 + SSIM_C1)  # variance terms cancel
    assert ssim(c1, c2) == pytest.approx(expected, abs=1e-9)


def test_ssim_decreases_with_noise_and_is_symmetric() -> None:
    a = blurred_noise(64, 64, 1)
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 0.05, a.shape), 0, 1)
    s = ssim(a, noisy)
    assert 0.0 < s < 0.99
    assert ssim(noisy, a) == pytest.approx(s, abs=1e-12)
    with pytest.raises(ValueError):
        ssim(a[:8, :8], a[:8, :8])
    with pytest.raises(ValueError):
        ssim(a, a[:32])


def test_ssim_torch_matches_numpy_and_is_differentiable() -> None:
    a = np.stack([blurred_noise(48, 56, 2), blurred_noise(48, 56, 3)])
    b = np.clip(a + np.random.default_rng(1).normal(0, 0.04, a.shape), 0, 1).astype(np.float32)
    expected = np.mean([ssim(a[i], b[i]) for i in range(2)])
    x = torch.from_numpy(a.transpose(0, 3, 1, 2)).contiguous()
    y = torch.from_numpy(b.transpose(0, 3, 1, 2)).contiguous().requires_grad_(True)
    value = ssim_torch(x, y)
    assert value.dim() == 0
    assert abs(float(value.detach()) - expected) < 1e-3
    (1 - value).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    assert float(ssim_torch(x, x)) == pytest.approx(1.0, abs=1e-5)


def test_locality_counts_only_outside_the_dilated_region() -> None:
    before = blurred_noise(64, 64, 4)
    region = np.zeros((64, 64), np.float32)
    region[16:32, 16:32] = 1.0
    assert locality(before, before, region).mean_abs == 0.0

    inside_only = before.copy()
    inside_only[16:32, 16:32] += 0.2
    assert locality(before, inside_only, region).mean_abs == 0.0

    edge = before.copy()
    edge[15, 16:32] += 0.2  # one pixel outside: forgiven by the dilation
    assert locality(before, edge, region, dilate_px=1).mean_abs == 0.0
    assert locality(before, edge, region, dilate_px=0).mean_abs > 0.0

    shifted = np.clip(before + np.float32(2 / 255), 0, 1)
    score = locality(before, shifted, region, dilate_px=0)
    assert score.outside_pixels == 64 * 64 - 16 * 16
    changed = np.abs(shifted - before)[region == 0].mean()
    assert score.mean_abs == pytest.approx(changed, rel=1e-5)
    assert score.mean_abs_255 == pytest.approx(changed * 255, rel=1e-5)
    assert score.max_abs_255 == pytest.approx(2.0, abs=1e-3)

    everywhere = locality(before, shifted, np.ones((64, 64), np.float32))
    assert everywhere.outside_pixels == 0 and math.isnan(everywhere.mean_abs)


def test_region_from_difference_solid_area_and_isolated_noise() -> None:
    before = np.full((64, 64, 3), 0.5, np.float32)
    after = before.copy()
    after[20:40, 20:40, 0] += 0.1
    after[5, 60, 1] += 0.1  # isolated pixel, e.g. JPEG noise
    region = region_from_difference(before, after, threshold=0.02, sigma=2.0)
    assert region.dtype == np.float32 and region.shape == (64, 64)
    assert region[25:35, 25:35].min() == pytest.approx(1.0)
    assert region[60, 5] == 0.0 and region[0, 0] == 0.0
    assert region[5, 60] < 0.2
    hard = region_from_difference(before, after, sigma=0)
    assert set(np.unique(hard)) == {0.0, 1.0}


def test_score_pair() -> None:
    after = 0.1 + 0.7 * blurred_noise(40, 40, 5)
    before = after.copy()
    before[10:20, 10:20] += 0.1
    scores = score_pair(before, after, after)
    assert isinstance(scores, PairScores)
    assert scores.psnr_out == math.inf and scores.ssim_out == pytest.approx(1.0)
    assert scores.psnr_in < 40 and scores.ssim_in < 1.0
    assert scores.locality == 0.0
