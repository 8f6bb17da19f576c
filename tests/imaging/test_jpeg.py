"""JPEG: pixels as stored, metadata byte-exact, encoding choices of the source kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from abpn_cli.imaging import ImageError, read_photo, save_photo

from .helpers import (
    IPTC,
    XMP,
    exif_block,
    icc_profile,
    jpeg_segments,
    pattern,
    segment,
    write_jpeg,
)


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
def test_multi_picture_index_is_dropped(tmp_path: Path) -> None:
    """MPF points at images appended after EOI, which are not copied."""
    src = write_jpeg(
        tmp_path / "m.jpg", pattern(16, 16), extra=[segment(0xE2, b"MPF\0" + bytes(16))]
    )
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / "m2.jpg")
    dst = jpeg_segments((tmp_path / "m2.jpg").read_bytes())
    assert not any(m == 0xE2 and p.startswith(b"MPF\0") for m, p in dst)


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
