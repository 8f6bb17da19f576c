"""A dust profile learned from the model's finds: the spots a model corrected in some frames of a
shoot are divided out of the frames where it missed them; one-off edits and a static scene's
recurring detail are left alone. The "model" here is the truth pasted into chosen frames, so
the tests measure the learning, not a network."""

from __future__ import annotations

import numpy as np
import pytest

from abpn_cli.batch.shoot_profile import frame_finds, learn_profile
from abpn_cli.engine.dustprofile import DustProfileError, apply_profile
from abpn_cli.training.dust import DustDefect, add_dust
from tests.factories import textured, to_u8

H, W = 300, 450
DEFECTS = [
    DustDefect("spot", 80.0, 120.0, 8.0, (0.18, 0.18, 0.18), 0.5),
    DustDefect("spot", 200.0, 330.0, 7.0, (0.1, 0.1, 0.1), 0.8, core=0.3),
]


def _frame(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean uint8, dusty uint8, footprint) of a frame under DEFECTS; the seed moves the
    scene (a handheld shoot)."""
    clean = np.ascontiguousarray(np.roll(textured(H, W, seed=seed), 53 * seed, axis=1))
    d = add_dust(clean, np.random.default_rng(seed), defects=DEFECTS)
    return to_u8(clean), to_u8(d.dusty), (d.transmittance < 0.999).any(axis=2)


def _found(clean: np.ndarray, dusty: np.ndarray, which: list[DustDefect]):
    """A frame where the model corrected exactly `which`: (after, its spots)."""
    after = dusty.copy()
    spots = []
    for d in which:
        r = int(d.radius * 2)
        win = (slice(int(d.y) - r, int(d.y) + r), slice(int(d.x) - r, int(d.x) + r))
        after[win] = clean[win]
        spots.append({"x": d.x, "y": d.y, "diameter": 2 * d.radius, "change": 6.0})
    return after, spots


def _shoot(frames: int, found_in):
    """Frames, their finds: defect k is corrected in frame i when found_in(i, k)."""
    shots, finds = [], []
    for i in range(frames):
        clean, dusty, foot = _frame(seed=i)
        which = [d for k, d in enumerate(DEFECTS) if found_in(i, k)]
        after, spots = _found(clean, dusty, which)
        shots.append((clean, dusty, foot))
        finds.append(frame_finds(dusty, after, spots))
    return shots, finds


def test_spots_found_in_some_frames_are_divided_out_of_the_others() -> None:
    shots, finds = _shoot(8, lambda i, k: (i + k) % 2 == 0)  # each spot in half the frames
    learned = learn_profile(finds)
    assert (learned.recurring, learned.same_scene) == (len(DEFECTS), 0)
    assert len(learned.profile.spots) == len(DEFECTS)
    for i, (clean, dusty, foot) in enumerate(shots):
        missed = np.zeros_like(foot)
        for k, d in enumerate(DEFECTS):
            if (i + k) % 2:
                r = int(d.radius * 2)
                missed[int(d.y) - r : int(d.y) + r, int(d.x) - r : int(d.x) + r] = True
        out = dusty.copy()
        apply_profile(out, learned.profile)
        where = foot & missed
        before = np.square(dusty[where].astype(np.float64) - clean[where]).sum()
        after = np.square(out[where].astype(np.float64) - clean[where]).sum()
        assert after < 0.25 * before, i  # >= 75 % of the missed dust error gone, on texture


def test_an_edit_in_one_frame_only_teaches_nothing() -> None:
    _, finds = _shoot(8, lambda i, k: i == 3)
    learned = learn_profile(finds)
    assert learned.recurring == 0 and learned.profile.spots == ()


def test_a_static_scene_s_recurring_edit_is_left_out() -> None:
    clean, _, _ = _frame(seed=0)
    detail = DEFECTS[:1]  # a dark detail of the scene, in every frame, edited every time
    dark = to_u8(add_dust(clean / 255.0, np.random.default_rng(0), defects=detail).dusty)
    after, spots = _found(clean, dark, detail)
    learned = learn_profile([frame_finds(dark, after, spots) for _ in range(6)])
    assert (learned.recurring, learned.same_scene) == (1, 1)
    assert learned.profile.spots == ()


@pytest.mark.parametrize(
    ("sizes", "message"), [([(H, W)], "at least 2"), ([(H, W), (W, H)], "one size")]
)
def test_unusable_frame_sets_say_why(sizes, message) -> None:
    finds = [frame_finds(np.zeros((h, w, 3), np.uint8), np.zeros((h, w, 3), np.uint8), [])
             for h, w in sizes]  # fmt: skip
    with pytest.raises(DustProfileError, match=message):
        learn_profile(finds)
