"""abpn eval's baselines: pure float functions, and what a global filter does to locality."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from abpn_cli.training import eval_baselines as bl
from abpn_cli.training import evaluate as ev
from tests.factories import eval_clean, write_eval_pairs

STRONG = {  # sigmas per 1024 px: strong enough to show on 128-256 px test images
    "bilateral": partial(bl.bilateral, params=bl.BilateralParams(16.0, 0.1)),
    "edge-preserving": partial(bl.edge_preserving, params=bl.EdgePreservingParams(16.0, 0.2)),
}


@pytest.mark.parametrize("name", sorted(STRONG))
def test_global_filters_change_pixels_outside_the_region(tmp_path: Path, name: str) -> None:
    """The point of the comparison: a non-local filter touches what should stay untouched."""
    if name not in bl.BASELINES:
        pytest.skip(f"{name} needs cv2.edgePreservingFilter (opencv photo module)")
    pairs = ev.list_pairs(write_eval_pairs(tmp_path / "set", n=1))
    f = ev.evaluate(pairs, {name: bl.baseline_method(STRONG[name])})[name][0]
    assert f.locality_255 > 0.1
    assert f.psnr_out != f.psnr_in


def test_bilateral_sigma_scales_with_image_size() -> None:
    """Same relative filter at two sizes: the change it makes is of similar size."""
    small = eval_clean(5, 256).astype(np.float32) / 255.0
    big = cv2.resize(small, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    p = bl.BilateralParams(sigma_space_1024=8.0, sigma_color=0.1)
    d_small = np.abs(bl.bilateral(small, p) - small).mean()
    d_big = np.abs(cv2.resize(bl.bilateral(big, p), (256, 256), interpolation=cv2.INTER_AREA)
                   - cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)).mean()  # fmt: skip
    assert d_small > 0 and 0.3 < d_big / d_small < 3


def test_baselines_are_pure_float_functions() -> None:
    img = eval_clean(3).astype(np.float32) / 255.0
    before = img.copy()
    for fn in bl.BASELINES.values():
        out = fn(img)
        assert out.shape == img.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.array_equal(img, before)  # input untouched
        assert np.array_equal(fn(img), out)  # deterministic
