"""Camera RAW through the one decoder entry point: DNGs built in the test (tests/imaging/dng.py)
are developed by LibRaw with the camera's white balance into 16 bits and written as TIFF with
the RAW's EXIF."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from abpn_cli.imaging import ImageError, output_suffix, read_photo, save_photo
from abpn_cli.imaging.exif import MAKERNOTE, exif_ifd0
from abpn_cli.imaging.raw import DEVELOP, RAW_SUFFIXES

from .dng import DATE, bayer, write_dng
from .dng import MAKERNOTE as NOTE_BYTES

pytest.importorskip("rawpy")
EXIFTOOL = shutil.which("exiftool")


def test_dng_develops_to_16_bit_rgb_with_settings(tmp_path: Path) -> None:
    photo = read_photo(write_dng(tmp_path / "a.dng"))
    assert photo.fmt == "raw" and photo.bit_depth == 16
    assert photo.pixels.shape == (192, 256, 3) and photo.pixels.dtype == np.uint16
    assert len(np.unique(photo.pixels)) > 4096  # more levels than 8 bits (or 12) can hold
    develop = photo.meta.raw.develop
    assert {k: develop[k] for k in DEVELOP} == DEVELOP
    assert develop["camera_wb"][:3] == pytest.approx([2.0, 1.0, 1 / 0.7], rel=1e-4)
    assert develop["black_level"] == [256] * 4 and develop["white_level"] == 4095


def test_camera_white_balance_makes_grey_neutral(tmp_path: Path) -> None:
    """A grey card shot under the AsShotNeutral light: green-heavy on the sensor, neutral
    once the camera's white balance is applied."""

    photo = read_photo(write_dng(tmp_path / "g.dng", bayer(grey=0.4)))
    centre = photo.pixels[64:128, 64:192].reshape(-1, 3).astype(float).mean(axis=0)
    assert centre.max() - centre.min() < 0.01 * centre.mean()
    assert 0.3 * 65535 < centre.mean() < 0.9 * 65535  # sRGB curve, not linear, not clipped


def test_orientation_is_applied_and_not_carried(tmp_path: Path) -> None:
    photo = read_photo(write_dng(tmp_path / "r.dng", orientation=6))
    assert photo.pixels.shape == (256, 192, 3)
    assert photo.meta.orientation is None


def test_dng_to_tiff_keeps_exif_and_bit_depth(tmp_path: Path) -> None:
    photo = read_photo(write_dng(tmp_path / "a.dng"))
    out = tmp_path / "a.tif"
    save_photo(photo, photo.pixels, out, fmt="tiff")
    with tifffile.TiffFile(out) as tif:
        page = tif.pages.first
        assert page.dtype == np.uint16 and page.photometric == 2
        np.testing.assert_array_equal(page.asarray(), photo.pixels)
        tags = page.tags
        assert tags["Make"].value == "TestMaker" and tags["Model"].value == "TM-1"
        assert 50706 not in tags and 33422 not in tags and 50721 not in tags  # no DNG tags
        exif = tags["ExifTag"].value
        assert exif["ISOSpeedRatings"] == 200 and exif["DateTimeOriginal"] == DATE[:-1].decode()
    _bo, entries = exif_ifd0(photo.meta.exif)
    assert 50706 not in {e.tag for e in entries}
    assert NOTE_BYTES in out.read_bytes()  # maker note carried byte for byte
    assert MAKERNOTE == 0x927C
    again = read_photo(out)
    assert again.fmt == "tiff" and again.bit_depth == 16


def test_keep_writes_tiff_and_names_end_in_tif(tmp_path: Path) -> None:
    assert {output_suffix("keep", s) for s in RAW_SUFFIXES} == {".tif"}
    assert output_suffix("keep", ".DNG") == ".tif"
    assert output_suffix("jpg", ".dng") == ".jpg"
    photo = read_photo(write_dng(tmp_path / "a.dng"))
    save_photo(photo, photo.pixels, tmp_path / "k.tif")  # fmt None: RAW -> TIFF
    assert read_photo(tmp_path / "k.tif").bit_depth == 16
    save_photo(photo, photo.pixels, tmp_path / "k.jpg", fmt="jpg")
    jpg = read_photo(tmp_path / "k.jpg")
    assert jpg.bit_depth == 8 and jpg.meta.exif == photo.meta.exif


def test_raw_sniffed_by_content_and_corrupt_raw_is_an_image_error(tmp_path: Path) -> None:
    dng = write_dng(tmp_path / "a.dng")
    renamed = tmp_path / "a.tif"
    shutil.copy(dng, renamed)
    assert read_photo(renamed).fmt == "raw"  # the bytes decide, not the name
    cut = tmp_path / "cut.dng"
    cut.write_bytes(dng.read_bytes()[:600])
    with pytest.raises(ImageError, match="RAW"):
        read_photo(cut)
    fake = tmp_path / "fake.cr3"
    fake.write_bytes(b"\0\0\0\x18ftypcrx " + bytes(200))
    with pytest.raises(ImageError, match="camera RAW"):
        read_photo(fake)


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not on PATH")
def test_exiftool_reads_back_the_raws_exif(tmp_path: Path) -> None:
    src = write_dng(tmp_path / "a.dng")
    photo = read_photo(src)
    out = tmp_path / "a.tif"
    save_photo(photo, photo.pixels, out)
    got = subprocess.run(
        [EXIFTOOL, "-j", "-a", "-G1", "-n", str(src), str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    a, b = json.loads(got)
    carried = [k for k in a if k.split(":")[0] in ("ExifIFD", "GPS")]
    carried += ["IFD0:Make", "IFD0:Model", "IFD0:ModifyDate", "IFD0:Copyright"]
    assert len(carried) >= 8
    for key in carried:
        assert b.get(key) == a[key], key
    dropped = {k for k in a if k.startswith("IFD0:")} - {k for k in b if k.startswith("IFD0:")}
    assert dropped <= {
        "IFD0:DNGVersion", "IFD0:DNGBackwardVersion", "IFD0:UniqueCameraModel",
        "IFD0:CFARepeatPatternDim", "IFD0:CFAPattern2", "IFD0:BlackLevel", "IFD0:WhiteLevel",
        "IFD0:ColorMatrix1", "IFD0:AsShotNeutral", "IFD0:CalibrationIlluminant1",
        "IFD0:Orientation",
    }  # fmt: skip
    assert b["IFD0:BitsPerSample"] == "16 16 16"
