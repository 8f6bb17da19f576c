"""The dust generator follows its documented physics: where, how dark, how neutral, how big."""

import numpy as np
import pytest

from abpn_cli.imaging.colour import srgb_to_linear
from abpn_cli.training.dust import (
    DustParams,
    add_dust,
    sample_defects,
    scale_defects,
    transmittance,
)
from tests.factories import ramp


def test_outside_the_defects_the_dusty_image_is_the_clean_one_bit_for_bit():
    clean = ramp()
    d = add_dust(clean, np.random.default_rng(1), params=DustParams(count=(5, 5)))
    untouched = (d.transmittance == 1.0).all(axis=2)
    assert 0.0 < (~untouched).mean() < 0.2
    assert np.array_equal(d.dusty[untouched], clean[untouched])
    assert np.array_equal(d.clean, clean)


def test_dust_only_darkens_and_by_the_documented_linear_attenuation():
    clean = ramp()
    p = DustParams(count=(8, 8), fibre_prob=0.0)
    d = add_dust(clean, np.random.default_rng(2), params=p)
    assert (d.dusty <= clean + 1e-6).all()
    lo, hi = p.attenuation
    worst = 1.0 - d.transmittance.min()
    assert lo * 0.5 <= worst <= hi * (1 + 3 * p.tint)
    ratio = srgb_to_linear(d.dusty) / np.maximum(srgb_to_linear(clean), 1e-6)
    assert np.allclose(ratio, d.transmittance, atol=2e-3)


def test_shadows_are_nearly_neutral():
    d = add_dust(ramp(), np.random.default_rng(3), params=DustParams(count=(10, 10)))
    for defect in d.defects:
        att = np.array(defect.attenuation)
        assert att.max() - att.min() <= 0.25 * att.mean() + 1e-9


@pytest.mark.parametrize("long_side", [768, 6000])
def test_spot_sizes_are_fractions_of_the_long_side(long_side):
    p = DustParams(fibre_prob=0.0)
    spots = sample_defects(np.random.default_rng(4), (100, 100), long_side, p, count=300)
    diam = np.array([2 * s.radius for s in spots]) / long_side
    assert diam.min() >= p.diameter[0] * 0.999 and diam.max() <= p.diameter[1] * 1.001
    assert np.median(diam) < np.sqrt(p.diameter[0] * p.diameter[1]) * 1.3  # log-uniform


def test_bigger_spots_are_softer_and_fainter_on_average():
    spots = sample_defects(
        np.random.default_rng(5), (10, 10), 1000, DustParams(fibre_prob=0.0), count=400
    )
    r = np.array([s.radius for s in spots])
    small, big = r < np.median(r), r >= np.median(r)
    soft = np.array([s.softness for s in spots])
    strength = np.array([s.strength for s in spots])
    assert soft[big].mean() > soft[small].mean()
    assert strength[big].mean() < strength[small].mean()


def test_fibres_are_thin_curves():
    p = DustParams(count=(1, 1), fibre_prob=1.0, attenuation=(0.2, 0.2))
    (fibre,) = sample_defects(np.random.default_rng(6), (400, 400), 4000, p)
    t = transmittance((400, 400), [fibre])
    shadow = (t < 0.95).any(axis=2)
    length = 2 * (fibre.radius - 0)  # an upper bound of the curve's extent
    assert shadow.sum() < length * fibre.width * 2.5
    assert shadow.sum() > fibre.width * 4


def test_same_defects_recur_in_every_frame_of_a_shoot_at_any_size():
    rng = np.random.default_rng(7)
    defects = sample_defects(rng, (200, 300), 300, DustParams(count=(4, 4)))
    a = add_dust(ramp(200, 300, seed=1), rng, defects=defects)
    b = add_dust(ramp(200, 300, seed=2), rng, defects=defects)
    assert np.array_equal(a.transmittance, b.transmittance)
    big = transmittance((400, 600), scale_defects(defects, 2.0))
    small_again = big.reshape(200, 2, 300, 2, 3).mean(axis=(1, 3))
    assert np.abs(small_again - a.transmittance).max() < 0.05


def test_a_seed_fixes_the_dust():
    clean = ramp()
    a = add_dust(clean, np.random.default_rng(8))
    b = add_dust(clean, np.random.default_rng(8))
    assert np.array_equal(a.dusty, b.dusty)
