"""The sensor dust profile: it finds the shadows of a flat reference frame, measures how dark
they are, divides them out of a textured frame of the same sensor (pixels outside untouched),
refuses frames it cannot measure, and its file reads back exactly or fails in words."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from abpn_cli.engine.dustprofile import (
    DustProfileError,
    aperture_note,
    apply_profile,
    build_profile,
    load_profile,
    profile_bytes,
)
from abpn_cli.training.dust import DustDefect, add_dust
from tests.factories import grey_card, textured, to_u8

H, W = 400, 600
DEFECTS = [  # a dark spot, a faint soft one with a lighter core, a fibre
    DustDefect("spot", 100.0, 150.0, 7.0, (0.2, 0.2, 0.2), 0.4),
    DustDefect("spot", 280.0, 420.0, 10.0, (0.08, 0.08, 0.08), 0.8, core=0.3),
    DustDefect(
        "fibre", 300.0, 120.0, 12.0, (0.15, 0.15, 0.15), 0.6, width=2.0,
        curve=((292.0, 110.0), (302.0, 122.0), (306.0, 132.0)),
    ),
]  # fmt: skip


def _dusty(clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dusty uint8, transmittance) of a float frame under DEFECTS."""
    d = add_dust(clean, np.random.default_rng(0), defects=DEFECTS)
    return to_u8(d.dusty), d.transmittance


@pytest.fixture(scope="module")
def profile():
    return build_profile([_dusty(grey_card(H, W))[0]])


def test_finds_each_shadow_of_a_reference_frame_and_how_dark_it_is(profile) -> None:
    assert (profile.width, profile.height, profile.frames) == (W, H, 1)
    assert len(profile.spots) == len(DEFECTS)
    for d in DEFECTS:
        hits = [
            s for s in profile.spots
            if s.box[0] * W <= d.x <= s.box[2] * W and s.box[1] * H <= d.y <= s.box[3] * H
        ]  # fmt: skip
        assert len(hits) == 1, d
    darkest = max(s.attenuation for s in profile.spots)
    assert 0.15 < darkest < 0.22  # the 20 % spot (its soft edge and the grain blur it a little)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_dividing_it_out_restores_a_textured_frame_and_leaves_the_rest(profile, dtype) -> None:
    clean = textured(H, W, seed=2)
    d = add_dust(clean, np.random.default_rng(0), defects=DEFECTS)
    scale = np.iinfo(dtype).max
    dusty = np.clip(np.round(d.dusty * scale), 0, scale).astype(dtype)
    target = np.clip(np.round(clean * scale), 0, scale).astype(dtype)
    out = dusty.copy()
    assert apply_profile(out, profile) == len(DEFECTS)
    foot = (d.transmittance < 0.999).any(axis=2)
    before = np.square(dusty[foot].astype(np.float64) - target[foot]).sum()
    after = np.square(out[foot].astype(np.float64) - target[foot]).sum()
    assert after < 0.2 * before  # >= 80 % of the dust error gone, on texture
    windows = np.zeros((H, W), bool)
    for s in profile.spots:
        x0, y0, x1, y1 = s.box
        windows[int(y0 * H) : int(np.ceil(y1 * H)), int(x0 * W) : int(np.ceil(x1 * W))] = True
    assert np.array_equal(out[~windows], dusty[~windows])  # bit for bit outside


def test_a_frame_of_another_shape_is_refused_not_misaligned(profile) -> None:
    rotated = np.zeros((W, H, 3), np.uint8)
    assert not profile.matches(H, W) and profile.matches(2 * W, 2 * H)
    with pytest.raises(DustProfileError, match="rotated or cropped"):
        apply_profile(rotated, profile)


def test_a_textured_frame_is_refused_as_a_reference() -> None:
    with pytest.raises(DustProfileError, match="not flat"):
        build_profile([_dusty(textured(H, W, seed=1))[0]])


LANDSCAPE, PORTRAIT = np.zeros((40, 60, 3), np.uint8), np.zeros((60, 40, 3), np.uint8)


@pytest.mark.parametrize(
    ("frames", "message"), [([], "no frames"), ([LANDSCAPE, PORTRAIT], "one shape")]
)
def test_unusable_frame_sets_say_why(frames, message) -> None:
    with pytest.raises(DustProfileError, match=message):
        build_profile(frames)


def test_the_file_reads_back_exactly_and_knows_its_hash(profile, tmp_path) -> None:
    path = tmp_path / "sensor.npz"
    path.write_bytes(profile_bytes(profile))
    back = load_profile(path)
    assert back.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (back.width, back.height, back.frames) == (profile.width, profile.height, 1)
    for a, b in zip(back.spots, profile.spots, strict=True):
        assert a.box == pytest.approx(b.box) and np.array_equal(a.log_t, b.log_t)


@pytest.mark.parametrize(
    ("damage", "says"),
    [("truncate", "cannot read dust profile"), ("text", "is not a dust profile")],
)
def test_a_damaged_file_is_an_error_in_words(profile, tmp_path, damage, says) -> None:
    path = tmp_path / "sensor.npz"
    data = profile_bytes(profile)
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a profile")
    with pytest.raises(DustProfileError, match=says):
        load_profile(path)


@pytest.mark.parametrize(
    ("reference", "frame", "says"),
    [(16.0, 4.0, "4.0 stops): its dust shadows are larger and fainter"),
     (4.0, 16.0, "smaller and darker"), (16.0, 11.0, None), (16.0, None, None), (None, 4.0, None)],
)  # fmt: skip
def test_a_frame_far_from_the_references_aperture_gets_a_note(
    profile, reference, frame, says
) -> None:
    note = aperture_note(dataclasses.replace(profile, f_number=reference), frame)
    assert note is None if says is None else says in note


def test_the_reference_aperture_survives_the_file(profile, tmp_path) -> None:
    path = tmp_path / "sensor.npz"
    path.write_bytes(profile_bytes(dataclasses.replace(profile, f_number=11.0)))
    assert load_profile(path).f_number == 11.0
    path.write_bytes(profile_bytes(profile))
    assert load_profile(path).f_number is None
