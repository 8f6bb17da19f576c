"""WebP: lossy/lossless kept, alpha unchanged, EXIF/ICC/XMP carried."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from abpn_cli.imaging import read_photo, save_photo
from tests.factories import pattern

from .helpers import XMP, exif_block, icc_profile


def test_lossless_rgba_round_trip_is_exact(tmp_path: Path) -> None:
    rgba = np.dstack([pattern(16, 20), pattern(16, 20, seed=4)[:, :, 0]])
    rgba[0, 0] = (9, 8, 7, 0)  # colour under transparent pixels survives (exact=True)
    Image.fromarray(rgba, "RGBA").save(
        tmp_path / "a.webp",
        lossless=True,
        exact=True,
        exif=b"Exif\0\0" + exif_block(),
        icc_profile=icc_profile(),
        xmp=XMP,
    )
    photo = read_photo(tmp_path / "a.webp")
    assert photo.fmt == "webp" and photo.meta.webp is not None and photo.meta.webp.lossless
    assert np.array_equal(photo.pixels, rgba[:, :, :3])
    assert np.array_equal(photo.alpha, rgba[:, :, 3])
    assert (photo.meta.exif, photo.meta.icc, photo.meta.xmp) == (exif_block(), icc_profile(), XMP)
    save_photo(photo, photo.pixels, tmp_path / "b.webp")
    again = read_photo(tmp_path / "b.webp")
    assert np.array_equal(again.pixels, rgba[:, :, :3])
    assert np.array_equal(again.alpha, rgba[:, :, 3])
    assert (again.meta.exif, again.meta.icc, again.meta.xmp) == (exif_block(), icc_profile(), XMP)


def test_lossy_stays_lossy(tmp_path: Path) -> None:
    Image.fromarray(pattern(32, 32)).save(tmp_path / "a.webp", quality=80)
    photo = read_photo(tmp_path / "a.webp")
    assert photo.meta.webp is not None and not photo.meta.webp.lossless and photo.alpha is None
    save_photo(photo, photo.pixels, tmp_path / "b.webp")
    assert b"VP8 " in (tmp_path / "b.webp").read_bytes()[:64]
    assert np.abs(read_photo(tmp_path / "b.webp").pixels.astype(int) - photo.pixels).mean() < 4
