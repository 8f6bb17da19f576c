"""Each kind of bad file gets its own, specific message -- and never a crash."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from abpn_cli.imaging import ImageError, read_photo
from tests.factories import pattern

from .helpers import exif_block, write_jpeg


def jpeg_bytes(tmp_path: Path) -> bytes:
    return write_jpeg(tmp_path / "src.jpg", pattern(64, 64), exif=exif_block()).read_bytes()


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)

    def chunk(ctype: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + ctype
            + data
            + struct.pack(">I", zlib.crc32(ctype + data))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_each_bad_file_class_has_its_own_message(tmp_path: Path) -> None:
    good = jpeg_bytes(tmp_path)
    sof = good.index(b"\xff\xc0")
    huge = bytearray(good)
    huge[sof + 5 : sof + 9] = struct.pack(">HH", 40000, 40000)
    cases = {
        "empty.jpg": (b"", r"^empty file \(0 bytes\)$"),
        "text.jpg": (
            b"Hello, this is not a photo.\nJust text.\n",
            r"^not an image: file starts with text$",
        ),
        "cut.jpg": (good[: len(good) - 400], r"^truncated JPEG \(premature end of data\); --"),
        "head.jpg": (good[:300], r"^truncated JPEG \(file ends inside the header\)$"),
        "bomb.jpg": (
            bytes(huge),
            r"^image too large: 40000x40000 = 1600 MP exceeds the 400 MP limit",
        ),
        "bomb.png": (png_header(30000, 20000), r"^image too large: 30000x20000 = 600 MP exceeds"),
        "noise.jpg": (
            bytes(range(7, 71)) * 3,
            r"^not an image: unrecognised file format \(starts with 07 08",
        ),
        "anim.jpg": (b"GIF89a" + bytes(40), r"^GIF is not supported"),
        "phone.jpg": (b"\0\0\0\x18ftypheic" + bytes(40), r"^corrupt HEIF \(Invalid input"),
        "raw.jpg": (b"\0\0\0\x18ftypcrx " + bytes(40), r"^corrupt or unsupported camera RAW"),
        "zeros.jpg": (bytes(100), r"^not an image: file starts with zero bytes$"),
    }
    messages = set()
    for name, (data, pattern_) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImageError, match=pattern_) as info:
            read_photo(path)
        messages.add(str(info.value))
    assert len(messages) == len(cases)


def test_html_error_page_saved_as_jpg(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(ImageError, match=r"^not an image: file starts with text$"):
        read_photo(tmp_path / "a.jpg")


def test_corrupt_scan_data_is_reported_not_crashed(tmp_path: Path) -> None:
    data = bytearray(jpeg_bytes(tmp_path))
    sos = data.index(b"\xff\xda")
    data[sos + 20 : sos + 400] = bytes(380)  # garbage entropy-coded data, EOI intact
    (tmp_path / "bad.jpg").write_bytes(bytes(data))
    try:
        read_photo(tmp_path / "bad.jpg")  # libjpeg may recover (warning) ...
    except ImageError as exc:  # ... or fail: either way no other exception type
        assert "JPEG" in str(exc)


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    Image.fromarray(pattern(30, 40)).save(tmp_path / "a.png")
    with pytest.raises(
        ImageError, match=r"^image too large: 40x30 = 0.0012 MP exceeds the 0.001 MP"
    ):
        read_photo(tmp_path / "a.png", max_pixels=1000)
    assert read_photo(tmp_path / "a.png", max_pixels=1200).pixels.shape == (30, 40, 3)


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="file not found"):
        read_photo(tmp_path / "missing.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        read_photo(tmp_path / "dir.jpg")


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "really_png.jpg", format="PNG")
    assert read_photo(tmp_path / "really_png.jpg").fmt == "png"


def test_truncation_is_caught_even_if_someone_enabled_pillow_leniency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another module flipping Pillow's global LOAD_TRUNCATED_IMAGES must not let a cut file
    through as a grey-bottomed "success"."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    good = jpeg_bytes(tmp_path)
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) * 2 // 3])
    with pytest.raises(ImageError, match=r"truncated JPEG \(premature end of data\)"):
        read_photo(tmp_path / "cut.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_pixels_are_contiguous_and_writeable(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"a.{fmt.lower()}"
    Image.fromarray(pattern(8, 10)).save(path, format=fmt)
    photo = read_photo(path)
    assert photo.pixels.flags["C_CONTIGUOUS"] and photo.pixels.flags["WRITEABLE"]
    assert photo.pixels.shape == (8, 10, 3)
