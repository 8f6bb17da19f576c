"""Shoot dust map: spots that recur at one sensor position are found; one-offs are not."""

import shutil

import cv2
import numpy as np
import pytest

from abpn_cli.batch.dustmap import FrameSpots, recurring_spots, render_map, same_shape
from tests.factories import make_photo


def _spot(x, y, d=20.0):
    return {"x": x, "y": y, "diameter": d, "change": 3.0}


def test_a_spot_at_the_same_place_in_most_frames_recurs_and_one_offs_do_not():
    frames = [
        FrameSpots(6000, 4000, [_spot(1200 + i, 800 - i), _spot(100 + 900 * i, 3000)])
        for i in range(4)
    ]
    (spot,) = recurring_spots(frames)
    assert spot.frames == 4
    assert spot.to_json(6000, 4000)["x"] == 1201.5 and spot.to_json(6000, 4000)["y"] == 798.5


def test_frames_of_another_size_match_by_relative_position():
    frames = [
        FrameSpots(6000, 4000, [_spot(3000, 2000)]),
        FrameSpots(3000, 2000, [_spot(1500, 1000, 10)]),
    ]
    (spot,) = recurring_spots(frames)
    assert spot.frames == 2 and abs(spot.x - 0.5) < 1e-9


def test_frames_of_another_aspect_or_orientation_are_left_off_the_map():
    same = [
        FrameSpots(6000, 4000, [_spot(3000, 2000)]),
        FrameSpots(3000, 2000, [_spot(1500, 1000)]),
    ]
    other = [
        FrameSpots(4032, 3024, [_spot(2016, 1512)]),
        FrameSpots(4000, 6000, [_spot(2000, 3000)]),
    ]
    kept = same_shape([*same, *other, FrameSpots(6000, 4000, [])])
    assert [(f.width, f.height) for f in kept] == [(6000, 4000), (3000, 2000), (6000, 4000)]


def test_rare_spots_need_a_quarter_of_the_frames():
    frames = [FrameSpots(1000, 1000, [_spot(500, 500)] if i < 2 else []) for i in range(12)]
    assert recurring_spots(frames) == []  # 2 of 12 < 25 %
    assert recurring_spots(frames[:8])[0].frames == 2  # 2 of 8 = 25 %


def test_the_map_rings_recurring_spots():
    frames = [FrameSpots(3000, 2000, [_spot(1500, 1000, 60)]) for _ in range(3)]
    img = render_map(frames, recurring_spots(frames))
    assert img.shape == (800, 1200, 3)
    red = (img[:, :, 2] > 200) & (img[:, :, 0] < 100)
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - 600) < 30 and abs(ys.mean() - 400) < 30


@pytest.mark.parametrize(("x", "side"), [(1500, "right"), (2990, "left")])
def test_a_ring_s_count_is_written_beside_it_on_the_map(x, side):
    frames = [FrameSpots(3000, 2000, [_spot(x, 1000, 30)]) for _ in range(3)]
    img = render_map(frames, recurring_spots(frames))
    label = (img[:, :, 0] > 200) & (img[:, :, 1] > 200) & (img[:, :, 2] > 240)  # (220,220,255)
    cx = round(x / 3000 * 1200)
    xs = np.nonzero(label[380:420])[1]
    assert len(xs) > 10 and (xs.min() > cx if side == "right" else xs.max() < cx)


def test_on_the_map_a_spot_is_as_bright_as_it_is_frequent():
    # 8 frames: one spot in all of them, and a one-off elsewhere in each
    frames = [FrameSpots(1200, 800, [_spot(300, 300), _spot(100 + 120 * i, 600)]) for i in range(8)]
    img = render_map(frames, [])
    recurring, one_off, empty = img[300, 300, 0], img[600, 100, 0], img[100, 900, 0]
    assert recurring > 200 and empty < one_off < recurring - 60


def test_a_batch_of_frames_gets_a_dust_map_in_qa_and_the_report(tmp_path, cli):
    first = make_photo(tmp_path / "in" / "f0.png", size=(320, 240))
    for i in (1, 2):  # identical frames: whatever the model edits recurs in all three
        shutil.copy(first, tmp_path / "in" / f"f{i}.png")
    result, report = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    entry = report["dust_map"]
    assert entry["frames"] == 3 and entry["frame_size"] == [320, 240] and entry["other_shape"] == 0
    spots = report["files"][0]["spots"]
    assert spots > 0 and entry["recurring"] and all(r["frames"] == 3 for r in entry["recurring"])
    png = cv2.imread(str(tmp_path / "out" / entry["image"]))
    assert png is not None and png.shape[1] == 1200
    n = len(entry["recurring"])
    assert f" across the 3 frames ({tmp_path / 'out' / entry['image']})" in result.output
    assert f"dust map: {n} spot" in result.output
    assert f"abpn dust-profile {tmp_path / 'in'} --learn -o shoot.npz" in result.output
    # a rerun skips every file but still knows their spots (from the journal)
    result, again = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r2.json")
    assert {f["status"] for f in again["files"]} == {"skipped"}
    assert all(f["finished"] and f["spots"] == spots for f in again["files"])
    assert again["dust_map"]["recurring"] == entry["recurring"]
