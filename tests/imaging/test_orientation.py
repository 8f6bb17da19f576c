"""One rule: pixels as stored, never rotated; the Orientation tag copied unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from abpn_cli.imaging import read_photo, save_photo
from tests.factories import pattern

from .helpers import exif_block, write_jpeg


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff", "webp"])
def test_orientation_tag_and_pixel_layout_kept(tmp_path: Path, orientation: int, fmt: str) -> None:
    stored = pattern(16, 24)
    src = write_jpeg(
        tmp_path / "s.jpg", stored, exif=exif_block(orientation), quality=100, subsampling=0
    )
    photo = read_photo(src)
    with Image.open(src) as im:
        as_stored = np.asarray(im)  # Pillow does not apply the tag unless asked
    assert photo.pixels.shape == (16, 24, 3) and np.array_equal(photo.pixels, as_stored)
    assert photo.meta.orientation == orientation
    save_photo(photo, photo.pixels, tmp_path / "o", fmt=fmt)
    out = read_photo(tmp_path / "o")
    assert out.meta.orientation == orientation
    assert out.pixels.shape == (16, 24, 3)
    error = np.abs(out.pixels.astype(int) - photo.pixels)
    if fmt in ("png", "tiff"):
        assert error.max() == 0
    else:  # lossy re-encode: close everywhere, nothing moved
        assert error.mean() < 4
    assert out.pixels[:4, :6].min() >= 200  # the marker stays in the stored top-left corner


def test_tiff_orientation_is_not_applied(tmp_path: Path) -> None:
    rgb = pattern(10, 14)
    tifffile.imwrite(tmp_path / "a.tif", rgb, photometric="rgb", extratags=[(274, 3, 1, 8, True)])
    photo = read_photo(tmp_path / "a.tif")
    assert np.array_equal(photo.pixels, rgb) and photo.meta.orientation == 8
    save_photo(photo, photo.pixels, tmp_path / "b.tif")
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        assert tif.pages.first.tags[274].value == 8
        assert np.array_equal(tif.pages.first.asarray(), rgb)


def test_16bit_lzw_tiff_orientation_6_is_kept_not_applied(tmp_path: Path) -> None:
    """The Lightroom/Capture One export case: 16-bit LZW + predictor, Orientation 6."""
    rgb = pattern(12, 20, np.uint16)  # not square: a rotation would swap height and width
    rgb[0, 0] = (12345, 54321, 1)  # values only 16 bits hold
    tifffile.imwrite(
        tmp_path / "a.tif",
        rgb,
        photometric="rgb",
        compression="lzw",
        predictor=True,
        extratags=[(274, 3, 1, 6, True)],
    )
    photo = read_photo(tmp_path / "a.tif")
    assert photo.meta.orientation == 6 and photo.bit_depth == 16
    assert photo.pixels.shape == (12, 20, 3) and np.array_equal(photo.pixels, rgb)
    save_photo(photo, photo.pixels, tmp_path / "b.tif")
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        page = tif.pages.first
        assert page.tags[274].value == 6 and int(page.compression) == 5
        assert page.shape == (12, 20, 3) and np.array_equal(page.asarray(), rgb)
    assert read_photo(tmp_path / "b.tif").meta.orientation == 6
