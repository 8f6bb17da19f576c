"""JPEG: pixels as stored, metadata byte-exact, encoding choices of the source kept."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from abpn_cli.imaging import ImageError, read_photo, save_photo
from tests.factories import pattern

from .helpers import IPTC, XMP, exif_block, icc_profile, jpeg_segments, segment, write_jpeg


@pytest.fixture
def rich_jpeg(tmp_path: Path) -> Path:
    return write_jpeg(
        tmp_path / "rich.jpg",
        pattern(48, 64),
        exif=exif_block(),
        icc=icc_profile(),
        xmp=XMP,
        iptc=IPTC,
        extra=[segment(0xFE, b"a comment"), segment(0xE2, b"FPXR\0" + bytes(16))],
    )


def test_reads_pixels_exactly_as_pillow_decodes_them(rich_jpeg: Path) -> None:
    photo = read_photo(rich_jpeg)
    expected = np.asarray(Image.open(rich_jpeg).convert("RGB"))
    assert photo.pixels.shape == (48, 64, 3)
    assert photo.pixels.dtype == np.uint8 and photo.pixels.flags["C_CONTIGUOUS"]
    assert np.array_equal(photo.pixels, expected)
    assert (photo.fmt, photo.bit_depth, photo.alpha) == ("jpeg", 8, None)
    assert photo.source == rich_jpeg


def test_metadata_round_trips_byte_exact(rich_jpeg: Path, tmp_path: Path) -> None:
    photo = read_photo(rich_jpeg)
    assert photo.meta.exif == exif_block()
    assert photo.meta.icc == icc_profile()
    assert photo.meta.xmp == XMP
    assert photo.meta.iptc == IPTC
    out = tmp_path / "out.tmp"  # suffix says nothing: the format must not be guessed from it
    save_photo(photo, photo.pixels, out)
    again = read_photo(out)
    assert again.fmt == "jpeg"
    for field in ("exif", "icc", "xmp", "iptc", "photoshop_irb"):
        assert getattr(again.meta, field) == getattr(photo.meta, field), field

    def exif_payloads(path: Path) -> list[bytes]:
        segments = jpeg_segments(path.read_bytes())
        return [p for m, p in segments if m == 0xE1 and p.startswith(b"Exif\0\0")]

    assert exif_payloads(out) == exif_payloads(rich_jpeg)  # whole APP1, maker note included
    dst = jpeg_segments(out.read_bytes())
    assert (0xFE, b"a comment") in dst  # comments and other APPn blocks carried
    assert (0xE2, b"FPXR\0" + bytes(16)) in dst


@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO")
def ciff_payload() -> bytes:
    """A Canon CIFF APP0 (what early PowerShots write): header, then a heap holding Make
    and Model (tag 0x080A) and, last, the offset of its directory."""
    value = b"Canon\0Canon PowerShot TEST\0"
    directory = struct.pack("<HHII", 1, 0x080A, len(value), 0)
    heap = value + directory + struct.pack("<I", len(value))
    return b"II" + struct.pack("<I", 26) + b"HEAPJPGM" + bytes(12) + heap


ADOBE_YCC = b"Adobe\0\x64\x80\0\0\0\x01"  # version 100, flags, transform 1 (YCbCr)
# (segment, kept?) -- the policy of jpeg._carried, as README.md states it
POLICY = [
    (segment(0xE0, ciff_payload()), True),
    (segment(0xE0, b"JFXX\0\x13\x02\x01" + bytes(6)), False),  # 2x1 RGB thumbnail
    (segment(0xE0, b"AVI1\0\0" + bytes(8)), False),
    (segment(0xE2, b"MPF\0MM\0*\0\0\0\x08" + bytes(8)), False),
    (segment(0xEB, b"JP\0\0\0\0\0\x01" + b"\0\0\0\x10jumbc2pa"), False),
    (segment(0xEE, ADOBE_YCC), True),
    (segment(0xE2, b"FPXR\0" + bytes(16)), True),
    (segment(0xEF, b"VENDOR\0data"), True),
    (segment(0xFE, b"a comment"), True),
]


def test_app_segments_kept_and_dropped_as_documented(tmp_path: Path) -> None:
    src = write_jpeg(tmp_path / "s.jpg", pattern(16, 16), extra=[s for s, _ in POLICY])
    src.write_bytes(src.read_bytes() + write_jpeg(tmp_path / "2nd.jpg", pattern(8, 8)).read_bytes())
    photo = read_photo(src)  # the MPF's secondary image now follows the primary's EOI
    save_photo(photo, photo.pixels, tmp_path / "out.jpg")
    out = (tmp_path / "out.jpg").read_bytes()
    written = jpeg_segments(out)
    for raw, kept in POLICY:
        seg = (raw[1], raw[4:])
        assert (seg in written) == kept, raw[:16]
    assert out.count(b"\xff\xd8") == 1  # one image: no secondary image an MPF could point at


def test_adobe_marker_of_an_rgb_coded_source_is_dropped(tmp_path: Path) -> None:
    """transform 0 (no YCbCr) would make a decoder read the YCbCr output as RGB."""
    src = tmp_path / "rgb.jpg"
    Image.fromarray(pattern(32, 32)).save(src, quality=95, keep_rgb=True)
    assert any(m == 0xEE and p[11] == 0 for m, p in jpeg_segments(src.read_bytes()))
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / "out.jpg")
    assert all(m != 0xEE for m, _ in jpeg_segments((tmp_path / "out.jpg").read_bytes()))
    with Image.open(tmp_path / "out.jpg") as im:
        assert np.abs(np.asarray(im).astype(int) - photo.pixels).mean() < 4  # colours right


def test_adobe_marker_of_a_grey_source_is_kept(tmp_path: Path) -> None:
    src = tmp_path / "g.jpg"
    Image.fromarray(pattern(16, 16)[:, :, 0]).save(src)
    grey_adobe = segment(0xEE, ADOBE_YCC[:-1] + b"\0")
    src.write_bytes(src.read_bytes()[:2] + grey_adobe + src.read_bytes()[2:])
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / "out.jpg")
    assert (0xEE, grey_adobe[4:]) in jpeg_segments((tmp_path / "out.jpg").read_bytes())


def test_keeps_quantization_tables_and_subsampling(tmp_path: Path) -> None:
    for subsampling, name in ((0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")):
        src = write_jpeg(
            tmp_path / f"s{subsampling}.jpg", pattern(32, 48), quality=73, subsampling=subsampling
        )
        photo = read_photo(src)
        assert photo.meta.jpeg is not None and photo.meta.jpeg.subsampling == name
        out = tmp_path / f"s{subsampling}.out"
        save_photo(photo, photo.pixels, out)
        with Image.open(src) as a, Image.open(out) as b:
            assert b.quantization == a.quantization
            assert JpegImagePlugin.get_sampling(b) == JpegImagePlugin.get_sampling(a) == subsampling


def test_jpeg_quality_overrides_tables_but_keeps_subsampling(tmp_path: Path) -> None:
    src = write_jpeg(tmp_path / "a.jpg", pattern(32, 48), quality=60, subsampling=1)
    photo = read_photo(src)
    out = tmp_path / "b.jpg"
    save_photo(photo, photo.pixels, out, jpeg_quality=97)
    reference = tmp_path / "ref.jpg"
    Image.fromarray(photo.pixels).save(reference, quality=97, subsampling=1)
    with Image.open(out) as b, Image.open(reference) as r, Image.open(src) as a:
        assert b.quantization == r.quantization != a.quantization
        assert JpegImagePlugin.get_sampling(b) == 1


def test_progressive_source_stays_progressive(tmp_path: Path) -> None:
    photo = read_photo(write_jpeg(tmp_path / "p.jpg", pattern(32, 32), progressive=True))
    assert photo.meta.jpeg is not None and photo.meta.jpeg.progressive
    save_photo(photo, photo.pixels, tmp_path / "q.jpg")
    with Image.open(tmp_path / "q.jpg") as im:
        assert im.info.get("progressive") or im.info.get("progression")


def test_jfif_density_is_carried_and_absent_jfif_stays_absent(tmp_path: Path) -> None:
    src = tmp_path / "dpi.jpg"
    Image.fromarray(pattern(16, 16)).save(src, dpi=(300, 300))
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / "dpi.out")
    with Image.open(tmp_path / "dpi.out") as im:
        assert im.info["dpi"] == (300, 300)
    bare = src.read_bytes()
    bare = bare[:2] + bare[2 + 2 + int.from_bytes(bare[4:6], "big") :]  # drop APP0
    (tmp_path / "bare.jpg").write_bytes(bare)
    photo = read_photo(tmp_path / "bare.jpg")
    save_photo(photo, photo.pixels, tmp_path / "bare.out")
    assert all(m != 0xE0 for m, _ in jpeg_segments((tmp_path / "bare.out").read_bytes()))


def test_grayscale_jpeg_stays_grayscale(tmp_path: Path) -> None:
    gray = pattern(24, 40)[:, :, 0]
    src = tmp_path / "g.jpg"
    Image.fromarray(gray).save(src, quality=95)
    photo = read_photo(src)
    assert photo.meta.grayscale and photo.pixels.shape == (24, 40, 3)
    assert np.array_equal(photo.pixels[:, :, 0], photo.pixels[:, :, 2])
    save_photo(photo, photo.pixels, tmp_path / "g2.jpg")
    with Image.open(tmp_path / "g2.jpg") as im:
        assert im.mode == "L"
        assert np.abs(np.asarray(im).astype(int) - np.asarray(Image.open(src))).max() <= 2


def test_edited_pixels_are_written(rich_jpeg: Path, tmp_path: Path) -> None:
    photo = read_photo(rich_jpeg)
    edited = np.full_like(photo.pixels, 200)
    save_photo(photo, edited, tmp_path / "e.jpg")
    assert np.abs(read_photo(tmp_path / "e.jpg").pixels.astype(int) - 200).max() <= 2


def test_cmyk_jpeg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 50, 100, 0)).save(path)
    with pytest.raises(ImageError, match="CMYK JPEG is not supported: convert to RGB first"):
        read_photo(path)


def test_wrong_pixel_shape_is_a_programming_error(rich_jpeg: Path, tmp_path: Path) -> None:
    photo = read_photo(rich_jpeg)
    with pytest.raises(ValueError, match="pixels must match"):
        save_photo(photo, photo.pixels[:10], tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="pixels must match"):
        save_photo(photo, photo.pixels.astype(np.uint16), tmp_path / "x.jpg")
