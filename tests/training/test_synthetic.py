"""Synthetic local defects: exact locality, coverage, every kind visible, determinism, speed."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from abpn_cli.training.synthetic import (
    KINDS,
    CreaseParams,
    DefectParams,
    SyntheticPair,
    make_pair,
    make_pair_from_seed,
    random_region,
)
from tests.factories import textured


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return textured(240, 320)


def only(kind: str) -> DefectParams:
    return DefectParams(kinds=(kind,), kinds_per_pair=(1, 1))


def test_outside_region_bit_exact_and_after_is_clean(clean: np.ndarray) -> None:
    for seed in range(8):
        pair = make_pair_from_seed(clean, seed)
        assert isinstance(pair, SyntheticPair)
        assert pair.before.dtype == pair.after.dtype == pair.region.dtype == np.float32
        assert pair.before.shape == clean.shape and pair.region.shape == clean.shape[:2]
        assert np.array_equal(pair.after, clean)  # bit-identical target
        outside = pair.region == 0
        assert outside.sum() > 0.3 * outside.size
        assert np.array_equal(pair.before[outside], clean[outside])
        assert pair.before.min() >= 0.0 and pair.before.max() <= 1.0
        assert 1 <= len(pair.kinds) <= 3 and set(pair.kinds) <= set(KINDS)


@pytest.mark.parametrize("shape", [(240, 320), (512, 512), (300, 1000)])
def test_region_coverage_between_10_and_40_percent(shape: tuple[int, int]) -> None:
    for seed in range(15):
        region, low = random_region(shape, np.random.default_rng(seed))
        assert region.shape == shape and region.dtype == np.float32
        assert region.min() >= 0.0 and region.max() <= 1.0
        assert 0.10 <= region.mean() <= 0.40, (seed, region.mean())
        assert max(low.shape) <= 128


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_changes_pixels_inside_region(clean: np.ndarray, kind: str) -> None:
    for seed in range(4):
        pair = make_pair_from_seed(clean, seed, only(kind))
        assert pair.kinds == (kind,)
        diff = np.abs(pair.before - pair.after).max(axis=2)
        inside = pair.region > 0.5
        assert diff[inside].max() > 0.03, (kind, seed)
        assert (diff[inside] > 0.005).sum() > 20, (kind, seed)
        assert diff[pair.region == 0].max() == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_defects_visible_at_thumbnail_scale(kind: str) -> None:
    """The LRL sees the frame at ~256 px long side: defects must survive that downscale."""
    big = textured(768, 1024, seed=1)
    seen = 0
    for seed in range(4):
        pair = make_pair_from_seed(big, seed, only(kind))

        def thumb(x: np.ndarray) -> np.ndarray:
            return cv2.resize(x, (256, 192), interpolation=cv2.INTER_AREA)

        seen += np.abs(thumb(pair.before) - thumb(pair.after)).max() > 0.02
    assert seen >= 3, kind


def test_crease_width_default_visible_at_thumbnail() -> None:
    # visible width (4 sigma) >= 1/150 of the long side: >= ~1.7 thumbnail pixels
    assert CreaseParams().width[0] >= 1 / 150


def test_deterministic_for_a_seed(clean: np.ndarray) -> None:
    a = make_pair_from_seed(clean, 123)
    b = make_pair(clean, np.random.default_rng(123))
    assert np.array_equal(a.before, b.before) and np.array_equal(a.region, b.region)
    assert a.kinds == b.kinds
    c = make_pair_from_seed(clean, 124)
    assert not np.array_equal(a.before, c.before)


def test_bad_inputs_are_refused(clean: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected an"):
        make_pair_from_seed(clean[:, :, 0], 0)
    with pytest.raises(ValueError, match="kinds"):
        make_pair_from_seed(clean, 0, DefectParams(kinds=("scratches",)))


def test_speed_1024_crop_printed_not_asserted() -> None:
    img = textured(1024, 1024, seed=2)
    make_pair_from_seed(img, 0)  # warm-up
    times = []
    for seed in range(3):
        t0 = time.perf_counter()
        make_pair_from_seed(img, seed, DefectParams(kinds_per_pair=(3, 3)))
        times.append(time.perf_counter() - t0)
    print(f"synthetic pair 1024x1024, all three kinds: {min(times):.3f}-{max(times):.3f} s")
