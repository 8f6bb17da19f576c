"""Independent reader: ExifTool must see the same camera metadata in input and output."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile

from abpn_cli.imaging import read_photo, save_photo
from tests.factories import pattern

from .helpers import IPTC, XMP, canon_exif_block, icc_profile, write_jpeg
from .test_jpeg import POLICY

EXIFTOOL = shutil.which("exiftool")
pytestmark = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not on PATH")
CHECKED = (
    "IFD0:Make",
    "IFD0:Model",
    "IFD0:Orientation",
    "IFD0:Artist",
    "ExifIFD:DateTimeOriginal",
    "ExifIFD:ExposureTime",
    "ExifIFD:ISO",
    "GPS:GPSLatitude",
    "GPS:GPSLongitude",
    "GPS:GPSLatitudeRef",
    "IPTC:Caption-Abstract",
    "IPTC:Keywords",
    "XMP-dc:Format",
    # decoded from the maker note through its internal offsets: only right if it did not move
    "Canon:CanonImageType",
    "Canon:CanonFirmwareVersion",
    "Canon:OwnerName",
)


def exiftool(*args: str) -> str:
    assert EXIFTOOL is not None
    return subprocess.run([EXIFTOOL, *args], check=True, capture_output=True, text=True).stdout


def tags(*paths: Path) -> list[dict[str, object]]:
    return json.loads(exiftool("-j", "-a", "-G1", "-n", "-b", *map(str, paths)))


def icc_bytes(path: Path) -> bytes:
    assert EXIFTOOL is not None
    return subprocess.run(
        [EXIFTOOL, "-icc_profile", "-b", str(path)], check=True, capture_output=True
    ).stdout


def assert_same_metadata(src: Path, dst: Path) -> None:
    a, b = tags(src, dst)
    for key in CHECKED:
        assert key in a, key
        assert b.get(key) == a[key], key
    assert not any("MakerNote" in str(v) for k, v in b.items() if "Warning" in k), b
    assert icc_bytes(dst) == icc_bytes(src) == icc_profile()


@pytest.mark.parametrize(
    ("size", "orientation", "name", "fmt"),
    [((32, 48), 6, "out.jpg", None), ((16, 16), 8, "out.png", "png")],
    ids=["jpeg", "png"],
)
def test_jpeg_to(
    tmp_path: Path, size: tuple[int, int], orientation: int, name: str, fmt: str | None
) -> None:
    src = write_jpeg(
        tmp_path / "in.jpg",
        pattern(*size),
        exif=canon_exif_block(orientation),
        icc=icc_profile(),
        xmp=XMP,
        iptc=IPTC,
    )
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / name, **({} if fmt is None else {"fmt": fmt}))
    assert_same_metadata(src, tmp_path / name)


def test_16bit_lzw_tiff_from_exiftool_to_tiff_and_jpeg(tmp_path: Path) -> None:
    """A 16-bit LZW TIFF (what Lightroom exports) whose EXIF sub-IFDs were written by
    ExifTool (not by us): LZW out, metadata intact."""
    donor = write_jpeg(
        tmp_path / "donor.jpg",
        pattern(8, 8),
        exif=canon_exif_block(3),
        icc=icc_profile(),
        xmp=XMP,
        iptc=IPTC,
    )
    rgb = pattern(24, 40, np.uint16)
    rgb[0, 0] = (12345, 54321, 1)
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, rgb, photometric="rgb", compression="lzw", predictor=True)
    exiftool(
        "-q",
        "-overwrite_original",
        "-tagsFromFile",
        str(donor),
        "-all:all",
        "-icc_profile",
        str(src),
    )
    photo = read_photo(src)
    assert photo.bit_depth == 16 and np.array_equal(photo.pixels, rgb)
    save_photo(photo, photo.pixels, tmp_path / "out.tif")
    save_photo(photo, photo.pixels, tmp_path / "out.jpg", fmt="jpeg")
    assert_same_metadata(src, tmp_path / "out.tif")
    assert_same_metadata(src, tmp_path / "out.jpg")
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), rgb)
    out = tags(tmp_path / "out.tif")[0]
    assert (out["IFD0:ImageWidth"], out["IFD0:ImageHeight"], out["IFD0:BitsPerSample"]) == (
        40,
        24,
        "16 16 16",
    )
    assert (out["IFD0:Compression"], out["IFD0:Predictor"]) == (5, 2)  # LZW, horizontal


@pytest.mark.parametrize("source", ["jpeg", "lzw"])
def test_our_tiff_validates(tmp_path: Path, source: str) -> None:
    """ExifTool -validate finds nothing wrong with the TIFF structure we write.

    Allowed: its baseline-TIFF note on Deflate (an Adobe extension; a JPEG source gives a
    Deflate TIFF, an LZW one an LZW TIFF, which is baseline), and whatever it already says
    about the carried EXIF content (which is copied as is, never "fixed").
    """
    src = write_jpeg(
        tmp_path / "in.jpg", pattern(16, 16), exif=canon_exif_block(), icc=icc_profile()
    )
    if source == "lzw":
        donor, src = src, tmp_path / "in.tif"
        tifffile.imwrite(
            src, pattern(16, 24, np.uint16), photometric="rgb", compression="lzw", predictor=True
        )
        exiftool("-q", "-overwrite_original", "-tagsFromFile", str(donor), "-all:all", str(src))
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / "out.tif", fmt="tiff")

    def warnings(path: Path) -> set[str]:
        report = exiftool("-validate", "-warning", "-a", str(path))
        return {
            line.split(":", 1)[1].strip()
            for line in report.splitlines()
            if line.startswith("Warning")
        }

    inherited = {w.replace("JPEG ", "") for w in warnings(src)}
    for warning in warnings(tmp_path / "out.tif"):
        if warning == "Invalid value for IFD0 tag 0x0103 Compression" and source == "jpeg":
            continue
        if warning.startswith(("Missing required TIFF ExifIFD", "Missing required TIFF GPS")):
            continue
        assert warning.replace("TIFF ", "") in inherited, warning
        assert "IFD0" not in warning, warning


def app_segments(path: Path) -> list[str]:
    """The APPn/COM segments ExifTool walks, in file order ("APP0 (69 bytes)", ...)."""
    lines = exiftool("-v", "-a", str(path)).splitlines()
    return [line[5:].rstrip(":") for line in lines if line.startswith(("JPEG APP", "JPEG COM"))]


def test_jpeg_segments_kept_and_dropped_as_read_by_exiftool(tmp_path: Path) -> None:
    """README's list: CIFF, Adobe (YCbCr), vendor APPn and comments stay; JFXX, AVI1,
    MPF and JUMBF/C2PA go; what stays reads back the same."""
    src = write_jpeg(tmp_path / "in.jpg", pattern(16, 16), extra=[s for s, _ in POLICY])
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / "out.jpg")
    dropped = [f"APP{raw[1] - 0xE0} ({len(raw) - 4} bytes)" for raw, kept in POLICY if not kept]
    expected = Counter(app_segments(src)) - Counter(dropped)  # JFIF, JFXX, AVI1: all 14 bytes
    assert Counter(app_segments(tmp_path / "out.jpg")) == expected
    groups = ("-CIFF:all", "-Adobe:all", "-JFXX:all", "-AVI1:all", "-MPF:all", "-JUMBF:all")
    a, b = (
        json.loads(exiftool("-j", "-G1", "-a", *groups, str(p)))[0]
        for p in (src, tmp_path / "out.jpg")
    )
    assert b["CIFF:Model"] == a["CIFF:Model"] == "Canon PowerShot TEST"
    assert b["Adobe:ColorTransform"] == "YCbCr"
    kept = {k: v for k, v in a.items() if k.startswith(("CIFF:", "Adobe:"))}
    assert {k: v for k, v in b.items() if ":" in k and k != "SourceFile"} == kept
