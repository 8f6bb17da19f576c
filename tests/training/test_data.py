"""Training data from files: discovery, pair matching and loading."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from abpn_cli.training.data import (
    PairError,
    find_pairs,
    find_photos,
    load_pair,
    load_rgb_float,
)
from tests.factories import gradient_photo, write_rgb


def touch_image(path: Path, w: int = 8, h: int = 6) -> Path:
    return write_rgb(path, np.zeros((h, w, 3), np.uint8))


# --------------------------------------------------------------------------- discovery


def test_find_photos_recursive_sorted_deduplicated(tmp_path: Path) -> None:
    a = touch_image(tmp_path / "b.jpg")
    b = touch_image(tmp_path / "sub" / "a.PNG")
    c = touch_image(tmp_path / "sub" / "deeper" / "c.tiff")
    (tmp_path / "notes.txt").write_text("x")
    touch_image(tmp_path / "._b.jpg")  # macOS resource fork
    found = find_photos([tmp_path, tmp_path / "sub", a])
    assert found == sorted([a, b, c])
    with pytest.raises(FileNotFoundError):
        find_photos([tmp_path / "missing"])


def test_find_pairs_matches_by_relative_path_without_extension(tmp_path: Path) -> None:
    b1 = touch_image(tmp_path / "before" / "x.jpg")
    a1 = touch_image(tmp_path / "after" / "x.png")
    b2 = touch_image(tmp_path / "before" / "s" / "y.png")
    a2 = touch_image(tmp_path / "after" / "s" / "y.tif")
    touch_image(tmp_path / "after" / "y.png")  # same stem, other folder: not a match for s/y
    with pytest.raises(ValueError, match=r"1 in after/ without a match: y\.png"):
        find_pairs(tmp_path)
    assert find_pairs(tmp_path, strict=False) == [(b2, a2), (b1, a1)]  # sorted by 's/y' < 'x'


def test_find_pairs_errors_list_unmatched_and_none(tmp_path: Path) -> None:
    for i in range(7):
        touch_image(tmp_path / "before" / f"only{i}.jpg")
    touch_image(tmp_path / "before" / "ok.jpg")
    touch_image(tmp_path / "after" / "ok.jpg")
    with pytest.raises(ValueError, match=r"7 in before/ without a match: only0\.jpg.*and 2 more"):
        find_pairs(tmp_path)

    empty = tmp_path / "none"
    touch_image(empty / "before" / "a.jpg")
    touch_image(empty / "after" / "b.jpg")
    with pytest.raises(ValueError, match="no before/after pairs"):
        find_pairs(empty)
    with pytest.raises(ValueError, match="missing folder 'before/' and 'after/'"):
        find_pairs(tmp_path / "before")
    touch_image(tmp_path / "half" / "before" / "a.jpg")
    with pytest.raises(ValueError, match="missing folder 'after/' "):
        find_pairs(tmp_path / "half")

    amb = tmp_path / "amb"
    touch_image(amb / "before" / "a.jpg")
    touch_image(amb / "before" / "a.png")
    touch_image(amb / "after" / "a.jpg")
    with pytest.raises(ValueError, match="ambiguous"):
        find_pairs(amb)


def test_load_pair_size_mismatch(tmp_path: Path) -> None:
    b = touch_image(tmp_path / "before" / "p.png", w=40, h=30)
    a = touch_image(tmp_path / "after" / "p.png", w=30, h=40)
    with pytest.raises(PairError, match="size mismatch: before 40x30 vs after 30x40"):
        load_pair(b, a)


# --------------------------------------------------------------------------- loading


def test_load_rgb_float_channel_order_depth_gray_alpha(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    img = load_rgb_float(write_rgb(tmp_path / "red.png", rgb))
    assert img.dtype == np.float32 and img.shape == (4, 5, 3)
    assert np.allclose(img[0, 0], [200 / 255, 0, 0])

    deep = np.zeros((4, 5, 3), np.uint16)
    deep[..., 2] = 1000  # blue, a value no 8-bit file can hold
    cv2.imwrite(str(tmp_path / "deep.png"), deep[:, :, ::-1].copy())
    img16 = load_rgb_float(tmp_path / "deep.png")
    assert img16[0, 0, 2] == pytest.approx(1000 / 65535, abs=1e-7) and img16[0, 0, 0] == 0

    cv2.imwrite(str(tmp_path / "gray.png"), np.full((3, 3), 128, np.uint8))
    gray = load_rgb_float(tmp_path / "gray.png")
    assert gray.shape == (3, 3, 3) and np.allclose(gray, 128 / 255)

    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 1] = 255  # green
    bgra[..., 3] = 7  # nearly transparent: alpha is dropped, colour kept
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    alpha = load_rgb_float(tmp_path / "alpha.png")
    assert alpha.shape == (3, 3, 3) and np.allclose(alpha[0, 0], [0, 1, 0])


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_load_rgb_float_max_side(tmp_path: Path, ext: str) -> None:
    path = write_rgb(tmp_path / f"big.{ext}", gradient_photo(300, 800))
    assert load_rgb_float(path).shape == (300, 800, 3)
    small = load_rgb_float(path, max_side=200)
    assert small.shape == (75, 200, 3) and small.min() >= 0 and small.max() <= 1
    assert load_rgb_float(path, max_side=1000).shape == (300, 800, 3)  # never upscaled
