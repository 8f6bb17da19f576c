"""sRGB transfer functions: an exact round trip, mid grey where IEC 61966-2-1 puts it."""

import numpy as np
import pytest

from abpn_cli.imaging.colour import linear_to_srgb, srgb_to_linear


def test_srgb_round_trip_is_exact_enough():
    v = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(v)) - v).max() < 1e-5


def test_mid_grey_decodes_to_a_fifth_of_the_light():
    assert abs(float(srgb_to_linear(np.float32(0.5))) - 0.2140) < 1e-3
    assert float(linear_to_srgb(np.float32(2.0))) == pytest.approx(1.0)  # clipped, not more
