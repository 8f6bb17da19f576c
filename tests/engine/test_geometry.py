import numpy as np
import pytest

from abpn_cli.engine.geometry import (
    choose_levels,
    padded_size,
    padded_window,
    reflect_pad,
    tile_grid,
)


@pytest.mark.parametrize(
    ("side", "levels"), [(200, 0), (512, 1), (1024, 2), (2048, 3), (4096, 4), (6000, 5)]
)
def test_levels_follow_the_paper_table(side, levels):
    assert choose_levels(side, side // 2, 256) == levels


def test_padded_size_is_a_multiple_of_2_pow_l_plus_6():
    assert padded_size(4000, 6000, 5) == (4096, 6144)
    assert padded_size(777, 1001, 2) == (1024, 1024)
    assert padded_size(256, 256, 2) == (256, 256)


def test_reflect_pad_handles_pads_larger_than_the_image():
    tiny = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = reflect_pad(tiny, 64, 64)
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out[:2, :3], tiny)


@pytest.mark.parametrize(("h", "w"), [(1, 1), (2, 3), (5, 7), (40, 33)])
def test_padded_windows_are_the_windows_of_the_padded_frame(h, w):
    rng = np.random.default_rng(h * w)
    pixels = rng.integers(0, 65535, (h, w, 3), dtype=np.uint16)
    whole = reflect_pad(pixels, 64, 64)
    for ya, yb, xa, xb in [(0, 64, 0, 64), (0, h, 0, w), (h // 2, 60, 3, 17), (30, 64, 50, 64)]:
        if yb > ya and xb > xa:
            assert np.array_equal(padded_window(pixels, ya, yb, xa, xb), whole[ya:yb, xa:xb])


def test_tiles_cover_the_image_once_with_even_edges():
    tiles = tile_grid(777, 1001, 1024, 1024, 256, 8)
    covered = np.zeros((1024, 1024), np.int32)
    for t in tiles:
        assert t.y0 % 2 == 0 and t.ya % 2 == 0 and t.yb % 2 == 0
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert (covered[:777, :1001] == 1).all()
