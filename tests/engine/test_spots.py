"""Sensitivity gate and spot finding: what the user's slider and the report promise."""

import numpy as np
import pytest
import torch

from abpn_cli.engine import RetouchOptions, load_model, retouch, save_model_file
from abpn_cli.engine.spots import (
    find_spots,
    mask_threshold,
    sensitivity_gate,
    visibility_floor,
    visible_spots,
)
from tests.conftest import make_tiny_model


@pytest.mark.parametrize(("s", "tau"), [(1.0, 0.0), (0.5, 0.45), (0.0, 0.9)])
def test_sensitivity_maps_to_a_mask_threshold(s, tau):
    assert mask_threshold(s) == pytest.approx(tau)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_sensitivity_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match="sensitivity"):
        mask_threshold(bad)


def test_gate_is_zero_below_half_tau_one_above_tau_and_monotone():
    m = torch.linspace(0, 1, 101)
    g = sensitivity_gate(m, 0.5)  # tau 0.45
    assert (g[m < 0.225] == 0).all() and (g[m > 0.45] == 1).all()
    assert (g[1:] >= g[:-1]).all()
    assert torch.equal(sensitivity_gate(m, 1.0), torch.ones_like(m))


def test_spots_are_found_where_the_thumbnail_changed_in_full_resolution_pixels():
    edit = np.zeros((64, 96), np.float32)
    edit[10:14, 20:24] = 5 / 255  # 4x4 thumbnail px -> 16x16 full-res px at scale 4
    edit[40:42, 70:72] = 2 / 255
    count, spots = find_spots(edit, 4.0, 256, 384)
    assert count == 2
    big, small = spots
    assert (big.x, big.y) == pytest.approx((22 * 4, 12 * 4))
    assert big.diameter == pytest.approx(2 * np.sqrt(16 / np.pi) * 4)
    assert big.change == pytest.approx(5.0) and small.change == pytest.approx(2.0)


def test_spots_in_the_padding_are_ignored():
    edit = np.zeros((64, 64), np.float32)
    edit[60:63, 60:63] = 0.1  # beyond a 200 px frame at scale 4 (50 thumbnail px)
    assert find_spots(edit, 4.0, 200, 200) == (0, [])


@pytest.mark.parametrize(
    ("s", "floor"), [(1.0, 0.0), (0.99, 3.0 / 255), (0.5, 3.0 / 255), (0.0, 3.0 / 255)]
)
def test_the_visibility_floor_holds_under_sensitivity_one(s, floor):
    assert visibility_floor(s) == pytest.approx(floor)


def test_only_spots_that_reach_the_floor_are_kept_with_their_rim():
    edit = np.zeros((40, 60), np.float32)
    edit[10:14, 10:14] = 4 / 255  # a visible spot
    edit[9, 10:14] = 0.2 / 255  # its faint rim, under SPOT_LEVEL
    edit[30:33, 40:43] = 1 / 255  # over SPOT_LEVEL but under a 1.5/255 floor
    edit[0:5, 50:60] = 0.5 / 255  # a faint wash under SPOT_LEVEL: never a spot
    keep = visible_spots(edit, 1.5 / 255)
    assert keep[10:14, 10:14].all() and keep[9, 10:14].all() and keep[8, 12] == 1
    assert keep[30:33, 40:43].sum() == 0 and keep[0:5, 50:60].sum() == 0
    assert keep.sum() == (4 + 2 * 2) ** 2  # the 4x4 spot grown by 2 px on every side


@pytest.fixture(scope="module")
def unsure(tmp_path_factory):
    """A random model whose mask sits near 0.18 everywhere: edits it is unsure of."""
    path = tmp_path_factory.mktemp("m") / "unsure.pt"
    save_model_file(make_tiny_model(mask_bias=-1.5), path)
    return load_model(path, "cpu")


def test_low_sensitivity_drops_unsure_edits_and_copies_every_tile(unsure):
    pixels = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    eager = retouch(unsure, pixels, RetouchOptions(tile=128, sensitivity=1.0))
    strict = retouch(unsure, pixels, RetouchOptions(tile=128, sensitivity=0.0))
    assert not np.array_equal(eager.image, pixels)
    assert np.array_equal(strict.image, pixels)
    assert strict.tiles_skipped == strict.tiles_total and strict.spot_count == 0
    assert eager.spot_count > 0
