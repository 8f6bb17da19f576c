"""TIFF: 8/16-bit pixels exact, alpha and grey kept, EXIF sub-IFDs carried tag by tag."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import piexif
import pytest
import tifffile
from PIL import Image

from abpn_cli.imaging import ImageError, TiffInfo, read_photo, save_photo
from abpn_cli.imaging.exif import IMAGE_STRUCTURE_TAGS
from tests.factories import pattern

from .helpers import (
    IPTC,
    MAKERNOTE,
    XMP,
    add_short_tag,
    exif_block,
    icc_profile,
    little_endian_exif,
    write_jpeg,
)

EXIF_POINTERS = {34665, 34853, 40965}


def exif_tags(block_or_file: bytes) -> dict[str, dict[int, object]]:
    """Camera tags, Exif and GPS IFDs as piexif (an independent parser) reads them."""
    loaded = piexif.load(block_or_file)
    zeroth = {
        k: v for k, v in loaded["0th"].items() if k not in IMAGE_STRUCTURE_TAGS | EXIF_POINTERS
    }
    zeroth = {k: v for k, v in zeroth.items() if k not in (700, 33723, 34377, 34675)}
    exif = {k: v for k, v in loaded["Exif"].items() if k != 40965}
    return {"0th": zeroth, "Exif": exif, "GPS": loaded["GPS"]}


def makernote_offset(block: bytes) -> int:
    """Absolute offset of the MakerNote value inside an EXIF block / TIFF file."""
    bo = "<" if block[:2] == b"II" else ">"

    def entries(offset: int) -> dict[int, tuple[int, int, bytes]]:
        (n,) = struct.unpack(bo + "H", block[offset : offset + 2])
        out = {}
        for i in range(n):
            e = block[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, typ, count = struct.unpack(bo + "HHI", e[:8])
            out[tag] = (typ, count, e[8:])
        return out

    (ifd0,) = struct.unpack(bo + "I", block[4:8])
    exif_ifd = struct.unpack(bo + "I", entries(ifd0)[34665][2])[0]
    return struct.unpack(bo + "I", entries(exif_ifd)[0x927C][2])[0]


def test_16bit_rgb_values_survive(tmp_path: Path) -> None:
    rgb = pattern(20, 30, np.uint16)
    rgb[0, 0] = (12345, 54321, 1)
    tifffile.imwrite(tmp_path / "a.tif", rgb, photometric="rgb")
    photo = read_photo(tmp_path / "a.tif")
    assert photo.bit_depth == 16 and photo.pixels.dtype == np.uint16
    assert np.array_equal(photo.pixels, rgb)
    save_photo(photo, photo.pixels, tmp_path / "b.tif")
    assert np.array_equal(tifffile.imread(tmp_path / "b.tif"), rgb)
    assert np.array_equal(read_photo(tmp_path / "b.tif").pixels, rgb)


# (tifffile's name for the source compression, output compression code)
LOSSLESS_SOURCES = [
    (None, 1),  # uncompressed -> uncompressed
    ("lzw", 5),  # LZW -> LZW
    ("zlib", 8),  # Adobe Deflate -> Adobe Deflate
    ("deflate", 8),  # old-style Deflate (32946) -> Adobe Deflate
    ("packbits", 5),  # anything else -> LZW
    ("zstd", 5),
    ("lzma", 5),
]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize(("compression", "expected"), LOSSLESS_SOURCES)
def test_compression_follows_the_source(
    tmp_path: Path, compression: str | None, expected: int, dtype: type
) -> None:
    rgb = pattern(16, 24, dtype)
    tifffile.imwrite(
        tmp_path / "a.tif", rgb, photometric="rgb", compression=compression, rowsperstrip=5
    )
    photo = read_photo(tmp_path / "a.tif")
    assert np.array_equal(photo.pixels, rgb)
    save_photo(photo, photo.pixels, tmp_path / "b.tif")
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        page = tif.pages.first
        assert int(page.compression) == expected
        assert int(page.predictor) == (1 if expected == 1 else 2)  # horizontal differencing
        assert np.array_equal(page.asarray(), rgb)


def test_jpeg_in_tiff_is_decoded_and_written_back_lossless(tmp_path: Path) -> None:
    """JPEG-compressed YCbCr 4:2:0 TIFF: decoded like libtiff does, re-saved as LZW."""
    rgb = pattern(32, 48)
    tifffile.imwrite(
        tmp_path / "j.tif",
        rgb,
        photometric="rgb",
        compression="jpeg",
        compressionargs={"level": 95},
    )
    with tifffile.TiffFile(tmp_path / "j.tif") as tif:
        assert int(tif.pages.first.compression) == 7 and int(tif.pages.first.photometric) == 6
    with Image.open(tmp_path / "j.tif") as im:  # libtiff + libjpeg
        libtiff = np.asarray(im.convert("RGB")).astype(int)
    photo = read_photo(tmp_path / "j.tif")
    assert photo.pixels.shape == rgb.shape and photo.bit_depth == 8
    assert np.abs(photo.pixels.astype(int) - libtiff).max() <= 1
    save_photo(photo, photo.pixels, tmp_path / "o.tif")
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        page = tif.pages.first
        assert (int(page.compression), int(page.predictor), int(page.photometric)) == (5, 2, 2)
        assert np.array_equal(page.asarray(), photo.pixels)


@pytest.mark.parametrize("compression", [None, "zlib", "lzw"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_other_readers_decode_our_tiff(tmp_path: Path, byteorder: str, compression: str) -> None:
    """Pillow and OpenCV (both libtiff) read what we write, in both byte orders."""
    rgb = pattern(40, 50)
    rgb16 = pattern(40, 50, np.uint16)
    for name, data in (("a", rgb), ("c", rgb16)):
        tifffile.imwrite(
            tmp_path / f"{name}.tif",
            data,
            photometric="rgb",
            byteorder=byteorder,
            compression=compression,
        )
        photo = read_photo(tmp_path / f"{name}.tif")
        save_photo(photo, photo.pixels, tmp_path / f"{name}_out.tif")
        written = tmp_path / f"{name}_out.tif"
        assert written.read_bytes()[:2] == (b"II" if byteorder == "<" else b"MM")
        decoded = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
        assert decoded.dtype == data.dtype and np.array_equal(decoded[:, :, ::-1], data)
    with Image.open(tmp_path / "a_out.tif") as im:  # Pillow has no 16-bit RGB mode
        assert np.array_equal(np.asarray(im), rgb)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("extrasample", ["unassalpha", "assocalpha"])
def test_alpha_passes_through(tmp_path: Path, dtype: type, extrasample: str) -> None:
    rgba = np.dstack([pattern(12, 14, dtype), pattern(12, 14, dtype, seed=5)[:, :, 0]])
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=[extrasample])
    photo = read_photo(tmp_path / "a.tif")
    assert np.array_equal(photo.alpha, rgba[:, :, 3])
    assert np.array_equal(photo.pixels, rgba[:, :, :3])
    save_photo(photo, np.zeros_like(photo.pixels), tmp_path / "b.tif")
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        page = tif.pages.first
        assert page.extrasamples == tifffile.TiffFile(tmp_path / "a.tif").pages.first.extrasamples
        assert np.array_equal(page.asarray()[:, :, 3], rgba[:, :, 3])


def test_premultiplied_alpha_is_not_converted_silently(tmp_path: Path) -> None:
    rgba = np.dstack([pattern(8, 8), pattern(8, 8)[:, :, 0]])
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["assocalpha"])
    photo = read_photo(tmp_path / "a.tif")
    with pytest.raises(ImageError, match="premultiplied-alpha TIFF can only be written as TIFF"):
        save_photo(photo, photo.pixels, tmp_path / "b.png", fmt="png")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_stays_gray(tmp_path: Path, dtype: type) -> None:
    gray = pattern(10, 12, dtype)[:, :, 0]
    tifffile.imwrite(tmp_path / "g.tif", gray, photometric="minisblack")
    photo = read_photo(tmp_path / "g.tif")
    assert photo.meta.grayscale and np.array_equal(photo.pixels[:, :, 1], gray)
    save_photo(photo, photo.pixels, tmp_path / "h.tif")
    with tifffile.TiffFile(tmp_path / "h.tif") as tif:
        page = tif.pages.first
        assert int(page.photometric) == 1 and np.array_equal(page.asarray(), gray)


def test_planar_separate_source(tmp_path: Path) -> None:
    rgb = pattern(9, 11, np.uint16)
    tifffile.imwrite(
        tmp_path / "p.tif", np.moveaxis(rgb, 2, 0), photometric="rgb", planarconfig="separate"
    )
    assert np.array_equal(read_photo(tmp_path / "p.tif").pixels, rgb)


def only_16_bits_hold(rgb: np.ndarray) -> np.ndarray:
    """Make sure no 8-bit path could reproduce the values (v != k * 257 somewhere)."""
    rgb[0, 0] = (12345, 54321, 1)[: rgb.shape[2]] + (65534,) * (rgb.shape[2] - 3)
    rgb[-1, -1] = (65535, 0, 32767)[: rgb.shape[2]] + (2,) * (rgb.shape[2] - 3)
    assert np.any(rgb % 257) and not np.array_equal(rgb >> 8 << 8, rgb)
    return rgb


def test_lzw_8bit_with_alpha_is_decoded_exactly(tmp_path: Path) -> None:
    """8-bit LZW RGBA written by Pillow/libtiff: straight alpha, colour under alpha 0 kept."""
    rgba = np.dstack([pattern(10, 12), pattern(10, 12, seed=9)[:, :, 0]])
    rgba[0, 0] = (200, 100, 50, 0)  # colour under zero alpha must survive (no premultiply)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "l.tif", compression="tiff_lzw")
    photo = read_photo(tmp_path / "l.tif")
    assert np.array_equal(photo.pixels, rgba[:, :, :3])
    assert np.array_equal(photo.alpha, rgba[:, :, 3])
    save_photo(photo, photo.pixels, tmp_path / "o.tif")
    with Image.open(tmp_path / "o.tif") as im:
        assert im.info["compression"] == "tiff_lzw" and np.array_equal(np.asarray(im), rgba)


@pytest.mark.parametrize("alpha", [False, True])
def test_16bit_lzw_round_trip_is_exact_with_metadata(tmp_path: Path, alpha: bool) -> None:
    """What Lightroom/Capture One export: 16-bit LZW + predictor, ICC, XMP, camera tags."""
    data = pattern(24, 36, np.uint16)
    if alpha:
        data = np.dstack([data, pattern(24, 36, np.uint16, seed=4)[:, :, 0]])
    data = only_16_bits_hold(data)
    tifffile.imwrite(
        tmp_path / "in.tif",
        data,
        photometric="rgb",
        compression="lzw",
        predictor=True,
        rowsperstrip=7,
        extrasamples=["unassalpha"] if alpha else None,
        extratags=[
            (34675, 7, len(icc_profile()), icc_profile(), True),
            (700, 1, len(XMP), XMP, True),
            (271, 2, 0, "TestMaker", True),
            (272, 2, 0, "Model X100", True),
            (315, 2, 0, "A. Photographer", True),
        ],
    )
    photo = read_photo(tmp_path / "in.tif")
    assert photo.bit_depth == 16 and np.array_equal(photo.pixels, data[:, :, :3])
    assert (photo.alpha is not None) == alpha
    if alpha:
        assert np.array_equal(photo.alpha, data[:, :, 3])
    assert photo.meta.icc == icc_profile() and photo.meta.xmp == XMP
    save_photo(photo, photo.pixels, tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages.first
        assert (int(page.compression), int(page.predictor)) == (5, 2)
        assert page.dtype == np.uint16 and np.array_equal(page.asarray(), data)
        assert page.tags[34675].value == icc_profile() and bytes(page.tags[700].value) == XMP
        assert page.tags[271].value == "TestMaker" and page.tags[315].value == "A. Photographer"
    decoded = cv2.imread(str(tmp_path / "out.tif"), cv2.IMREAD_UNCHANGED)  # libtiff
    assert decoded.dtype == np.uint16 and np.array_equal(decoded[:, :, 2::-1], data[:, :, :3])
    again = read_photo(tmp_path / "out.tif")
    assert np.array_equal(again.pixels, photo.pixels) and again.meta.exif == photo.meta.exif
    assert again.meta.icc == icc_profile()


@pytest.mark.parametrize("alpha", [False, True])
def test_16bit_lzw_with_camera_exif_keeps_it_tag_by_tag(
    rich_jpeg: Path, tmp_path: Path, alpha: bool
) -> None:
    """LZW in -> LZW out with a camera EXIF block (sub-IFDs, maker note) and ICC."""
    source = read_photo(rich_jpeg)
    rgb = only_16_bits_hold(pattern(24, 32, np.uint16))
    a = pattern(24, 32, np.uint16, seed=2)[:, :, 0] if alpha else None
    lzw = replace(source, pixels=rgb, alpha=a, bit_depth=16, fmt="tiff")
    lzw.meta = replace(source.meta, tiff=TiffInfo(5, ">", 2 if alpha else None))
    save_photo(lzw, rgb, tmp_path / "in.tif")
    photo = read_photo(tmp_path / "in.tif")  # an LZW source with EXIF sub-IFDs and ICC
    assert photo.meta.tiff is not None and photo.meta.tiff.compression == 5
    assert np.array_equal(photo.pixels, rgb) and photo.meta.orientation == 6
    save_photo(photo, photo.pixels, tmp_path / "out.tif")
    data = (tmp_path / "out.tif").read_bytes()
    assert exif_tags(data) == exif_tags(exif_block(orientation=6))
    assert makernote_offset(data) == makernote_offset(exif_block(orientation=6))
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages.first
        assert (int(page.compression), int(page.predictor)) == (5, 2)
        assert page.tags[34675].value == icc_profile() and page.tags[274].value == 6
        expected = rgb if a is None else np.dstack([rgb, a])
        assert page.shape == expected.shape and np.array_equal(page.asarray(), expected)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_lzw_16bit_from_libtiff_is_decoded_as_stored(tmp_path: Path, orientation: int) -> None:
    """16-bit LZW written by libtiff (OpenCV, no predictor): Orientation never applied."""
    rgb = only_16_bits_hold(pattern(10, 16, np.uint16))
    assert cv2.imwrite(str(tmp_path / "l.tif"), rgb[:, :, ::-1])  # OpenCV writes LZW
    add_short_tag(tmp_path / "l.tif", 274, orientation)
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        page = tif.pages.first
        assert int(page.compression) == 5 and page.tags[274].value == orientation
    photo = read_photo(tmp_path / "l.tif")
    assert photo.pixels.shape == rgb.shape and np.array_equal(photo.pixels, rgb)
    assert photo.meta.orientation == orientation
    save_photo(photo, photo.pixels, tmp_path / "o.tif")
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        page = tif.pages.first
        assert int(page.compression) == 5 and page.tags[274].value == orientation
        assert np.array_equal(page.asarray(), rgb)


def test_corrupt_lzw_data_is_named(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "a.tif",
        pattern(32, 32, np.uint16),
        photometric="rgb",
        compression="lzw",
        rowsperstrip=8,
    )
    data = bytearray((tmp_path / "a.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        offset, count = tif.pages.first.dataoffsets[1], tif.pages.first.databytecounts[1]
    data[offset : offset + count] = np.random.default_rng(0).bytes(count)
    (tmp_path / "bad.tif").write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"corrupt TIFF image data \("):
        read_photo(tmp_path / "bad.tif")


def test_compression_tifffile_cannot_decode_is_named(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", pattern(8, 8), photometric="rgb")
    data = bytearray((tmp_path / "a.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        at = tif.pages.first.tags[259].valueoffset
    data[at : at + 2] = struct.pack("<H", 32909)  # PixarLog
    (tmp_path / "p.tif").write_bytes(bytes(data))
    with pytest.raises(ImageError, match="TIFF compression PIXARLOG is not supported"):
        read_photo(tmp_path / "p.tif")


@pytest.fixture
def rich_jpeg(tmp_path: Path) -> Path:
    return write_jpeg(
        tmp_path / "rich.jpg",
        pattern(24, 32),
        exif=exif_block(orientation=6),
        icc=icc_profile(),
        xmp=XMP,
        iptc=IPTC,
    )


def test_exif_from_jpeg_lands_in_tiff_tag_by_tag(rich_jpeg: Path, tmp_path: Path) -> None:
    photo = read_photo(rich_jpeg)
    save_photo(photo, photo.pixels, tmp_path / "o.tif", fmt="tiff")
    data = (tmp_path / "o.tif").read_bytes()
    assert exif_tags(data) == exif_tags(exif_block(orientation=6))
    assert piexif.load(data)["Exif"][0x927C] == MAKERNOTE
    # the maker note did not move, so offsets inside it still point at the same bytes
    assert makernote_offset(data) == makernote_offset(exif_block(orientation=6))
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        tags = tif.pages.first.tags
        assert tags[34675].value == icc_profile()
        assert bytes(tags[700].value) == XMP
        assert tags[274].value == 6  # Orientation copied, pixels not rotated
        assert tif.pages.first.shape == (24, 32, 3)
        assert np.array_equal(tif.pages.first.asarray(), photo.pixels)
    again = read_photo(tmp_path / "o.tif")
    assert again.meta.iptc == IPTC and again.meta.xmp == XMP and again.meta.icc == icc_profile()


def test_exif_from_tiff_goes_to_jpeg_and_back_unchanged(rich_jpeg: Path, tmp_path: Path) -> None:
    photo = read_photo(rich_jpeg)
    save_photo(photo, photo.pixels, tmp_path / "o.tif", fmt="tiff")
    from_tiff = read_photo(tmp_path / "o.tif")
    assert exif_tags(from_tiff.meta.exif) == exif_tags(photo.meta.exif)
    assert makernote_offset(from_tiff.meta.exif) == makernote_offset(photo.meta.exif)
    save_photo(from_tiff, from_tiff.pixels, tmp_path / "o.jpg", fmt="jpeg")
    back = read_photo(tmp_path / "o.jpg")
    assert exif_tags(back.meta.exif) == exif_tags(exif_block(orientation=6))
    assert (back.meta.icc, back.meta.xmp, back.meta.iptc) == (icc_profile(), XMP, IPTC)
    save_photo(from_tiff, from_tiff.pixels, tmp_path / "o2.tif")  # TIFF -> TIFF
    assert exif_tags((tmp_path / "o2.tif").read_bytes()) == exif_tags(exif_block(orientation=6))


def test_little_endian_exif_and_16bit(tmp_path: Path) -> None:
    rgb = pattern(16, 20, np.uint16)
    src = tmp_path / "a.png"
    assert cv2.imwrite(str(src), rgb[:, :, ::-1])
    photo = read_photo(src)
    photo.meta = replace(photo.meta, exif=little_endian_exif(), icc=icc_profile())
    save_photo(photo, photo.pixels, tmp_path / "b.tif", fmt="tiff")
    data = (tmp_path / "b.tif").read_bytes()
    written = exif_tags(data)
    assert written["0th"].pop(282) == written["0th"].pop(283) == (72, 1)  # baseline default
    assert written["0th"].pop(296) == 2
    assert data[:2] == b"II" and written == exif_tags(little_endian_exif())
    back = read_photo(tmp_path / "b.tif")
    assert back.bit_depth == 16 and np.array_equal(back.pixels, rgb)


def test_tiff_tags_from_other_writers_are_read(tmp_path: Path) -> None:
    padded_iptc = IPTC + bytes(-len(IPTC) % 4)
    tifffile.imwrite(
        tmp_path / "t.tif",
        pattern(8, 8),
        photometric="rgb",
        extratags=[
            (34675, 7, len(icc_profile()), icc_profile(), True),
            (700, 1, len(XMP), XMP, True),
            # Photoshop's way: the raw IIM stream labelled LONG (bytes in stream order)
            (33723, 4, len(padded_iptc) // 4, np.frombuffer(padded_iptc, "<u4"), True),
            (315, 2, 0, "An Artist", True),
        ],
    )
    meta = read_photo(tmp_path / "t.tif").meta
    assert (meta.icc, meta.xmp, meta.iptc) == (icc_profile(), XMP, IPTC)  # LONG padding trimmed
    assert piexif.load(meta.exif)["0th"][315] == b"An Artist"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": np.zeros((4, 4, 3), np.float32), "photometric": "rgb"}, "floating-point TIFF"),
        (
            {"data": np.zeros((4, 4, 4), np.uint8), "photometric": "separated"},
            "CMYK TIFF is not supported",
        ),
        (
            {"data": np.zeros((4, 4, 3), np.uint32), "photometric": "rgb"},
            "32-bit TIFF is not supported",
        ),
        ({"data": np.zeros((4, 4), np.uint8), "photometric": "miniswhite"}, "MinIsWhite"),
        ({"data": np.zeros((4, 4, 3), np.int16), "photometric": "rgb"}, "signed-integer TIFF"),
        (
            {"data": np.zeros((3, 4, 4, 3), np.uint8), "photometric": "rgb"},
            r"multi-page TIFF \(3 pages\)",
        ),
    ],
)
def test_unsupported_tiffs_are_named(tmp_path: Path, kwargs: dict, message: str) -> None:
    data = kwargs.pop("data")
    tifffile.imwrite(tmp_path / "x.tif", data, **kwargs)
    with pytest.raises(ImageError, match=message):
        read_photo(tmp_path / "x.tif")


def test_palette_and_bilevel_tiffs_are_named(tmp_path: Path) -> None:
    Image.new("P", (8, 8)).save(tmp_path / "p.tif")
    with pytest.raises(ImageError, match="palette"):
        read_photo(tmp_path / "p.tif")
    Image.new("1", (8, 8)).save(tmp_path / "b.tif")
    with pytest.raises(ImageError, match="1-bit"):
        read_photo(tmp_path / "b.tif")


def test_reduced_resolution_preview_page_is_not_multi_page(tmp_path: Path) -> None:
    with tifffile.TiffWriter(tmp_path / "p.tif") as tw:
        tw.write(pattern(16, 16), photometric="rgb")
        tw.write(pattern(4, 4), photometric="rgb", subfiletype=1)
    assert read_photo(tmp_path / "p.tif").pixels.shape == (16, 16, 3)


def test_size_is_checked_before_decoding(tmp_path: Path) -> None:
    """A header claiming 40000x40000 is refused by size, not decoded (nor "truncated")."""
    tifffile.imwrite(tmp_path / "a.tif", pattern(8, 8), photometric="rgb")
    data = bytearray((tmp_path / "a.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        width_at = tif.pages.first.tags[256].valueoffset
        height_at = tif.pages.first.tags[257].valueoffset
    data[width_at : width_at + 2] = struct.pack("<H", 40000)
    data[height_at : height_at + 2] = struct.pack("<H", 40000)
    (tmp_path / "bomb.tif").write_bytes(bytes(data))
    with pytest.raises(
        ImageError, match=r"image too large: 40000x40000 = 1600 MP exceeds the 400 MP"
    ):
        read_photo(tmp_path / "bomb.tif")


def test_maker_note_beyond_jpeg_reach_is_moved_but_kept_whole() -> None:
    """A maker note at an offset no JPEG APP1 can reproduce is relocated, bytes intact."""
    from abpn_cli.imaging.exif import EXIF_IFD, build_exif_block, exif_ifd0
    from abpn_cli.imaging.ifd import BytesSource, Entry, Ifd, read_header, read_ifd

    block = exif_block()
    bo, ifd0 = exif_ifd0(block)
    header = read_header(BytesSource(block))
    pointer = next(e for e in ifd0 if e.tag == EXIF_IFD).ints(bo)[0]
    exif_entries, _ = read_ifd(BytesSource(block), header, pointer)
    far = [
        Entry(e.tag, e.type, e.count, e.data, 900_000 if e.tag == 0x927C else e.offset)
        for e in exif_entries
    ]
    root = Ifd([e for e in ifd0 if e.tag not in EXIF_POINTERS], {EXIF_IFD: Ifd(far)})
    rebuilt = build_exif_block(bo, root)
    assert len(rebuilt) < 65527
    assert exif_tags(rebuilt)["Exif"] == exif_tags(block)["Exif"]
    assert piexif.load(rebuilt)["Exif"][0x927C] == MAKERNOTE
