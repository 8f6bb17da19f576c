"""PNG: 8/16-bit, alpha, grey, and metadata chunks written byte-exact."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from abpn_cli.imaging import ImageError, read_photo, save_photo
from tests.factories import pattern

from .helpers import IPTC, XMP, exif_block, icc_profile


def chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def with_chunks(png: bytes, extra: list[bytes]) -> bytes:
    """Insert chunks right after IHDR (8 signature + 25 IHDR bytes)."""
    return png[:33] + b"".join(extra) + png[33:]


def write_png16(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    arr = rgb[:, :, ::-1] if alpha is None else np.dstack([rgb[:, :, ::-1], alpha])
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr))
    return path


def test_16bit_rgb_values_survive(tmp_path: Path) -> None:
    rgb = pattern(20, 30, np.uint16)
    rgb[0, 0] = (12345, 54321, 1)  # values 8 bits cannot hold
    photo = read_photo(write_png16(tmp_path / "a.png", rgb))
    assert photo.pixels.dtype == np.uint16 and photo.bit_depth == 16
    assert np.array_equal(photo.pixels, rgb)
    save_photo(photo, photo.pixels, tmp_path / "b.png")
    again = read_photo(tmp_path / "b.png")
    assert again.bit_depth == 16 and np.array_equal(again.pixels, rgb)
    assert np.array_equal(
        cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1], rgb
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_alpha_passes_through_unchanged(tmp_path: Path, dtype: type) -> None:
    rgb = pattern(16, 24, dtype)
    alpha = pattern(16, 24, dtype, seed=3)[:, :, 1]
    alpha[0, :4] = (0, 1, 2, np.iinfo(dtype).max)
    photo = read_photo(write_png16(tmp_path / "a.png", rgb, alpha))
    assert np.array_equal(photo.pixels, rgb) and np.array_equal(photo.alpha, alpha)
    edited = np.zeros_like(rgb)
    save_photo(photo, edited, tmp_path / "b.png")
    again = read_photo(tmp_path / "b.png")
    assert np.array_equal(again.alpha, alpha) and np.array_equal(again.pixels, edited)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_stays_gray(tmp_path: Path, dtype: type) -> None:
    gray = pattern(12, 18, dtype)[:, :, 0]
    assert cv2.imwrite(str(tmp_path / "g.png"), gray)
    photo = read_photo(tmp_path / "g.png")
    assert photo.meta.grayscale and photo.pixels.shape == (12, 18, 3)
    edited = photo.pixels.copy()
    edited[0, 0] = (10, 11, 13)  # mean 11.33 -> 11
    save_photo(photo, edited, tmp_path / "h.png")
    out = cv2.imread(str(tmp_path / "h.png"), cv2.IMREAD_UNCHANGED)
    assert out.ndim == 2 and out.dtype == dtype
    assert out[0, 0] == 11 and np.array_equal(out[1:], gray[1:])


def test_gray_alpha_stays_gray_alpha(tmp_path: Path) -> None:
    la = np.dstack([pattern(8, 9)[:, :, 0], pattern(8, 9, seed=2)[:, :, 0]])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    photo = read_photo(tmp_path / "la.png")
    assert photo.meta.grayscale and np.array_equal(photo.alpha, la[:, :, 1])
    save_photo(photo, photo.pixels, tmp_path / "la2.png")
    with Image.open(tmp_path / "la2.png") as im:
        assert im.mode == "LA" and np.array_equal(np.asarray(im), la)


def test_metadata_chunks_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.png"
    Image.fromarray(pattern(10, 10)).save(
        path, exif=b"Exif\0\0" + exif_block(), icc_profile=icc_profile(), dpi=(300, 300)
    )
    base = path.read_bytes()
    xmp = chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + XMP)
    note = chunk(b"tEXt", b"Author\0Someone")
    path.write_bytes(with_chunks(base, [xmp, note]))
    photo = read_photo(path)
    assert (photo.meta.exif, photo.meta.icc, photo.meta.xmp) == (exif_block(), icc_profile(), XMP)
    photo.meta = replace(photo.meta, iptc=IPTC)
    save_photo(photo, photo.pixels, tmp_path / "n.png")
    again = read_photo(tmp_path / "n.png")
    assert (again.meta.exif, again.meta.icc, again.meta.xmp, again.meta.iptc) == (
        exif_block(),
        icc_profile(),
        XMP,
        IPTC,
    )
    chunks = dict(png_chunks((tmp_path / "n.png").read_bytes()))
    assert chunks[b"eXIf"] == exif_block()
    assert chunks[b"tEXt"] == b"Author\0Someone" and b"pHYs" in chunks
    with Image.open(tmp_path / "n.png") as im:
        assert im.info["icc_profile"] == icc_profile() and im.info["dpi"] == pytest.approx(
            (300, 300), abs=0.1
        )


def test_palette_png_is_refused(tmp_path: Path) -> None:
    Image.new("P", (8, 8)).save(tmp_path / "p.png")
    with pytest.raises(ImageError, match=r"palette \(indexed-colour\) PNG is not supported"):
        read_photo(tmp_path / "p.png")


def test_truncated_and_crc_damaged_png(tmp_path: Path) -> None:
    write_png16(tmp_path / "ok.png", pattern(32, 32, np.uint16))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"truncated PNG \(chunk 'IDAT' runs past the end"):
        read_photo(tmp_path / "cut.png")
    (tmp_path / "noend.png").write_bytes(data[:-12])
    with pytest.raises(ImageError, match=r"truncated PNG \(no IEND chunk\)"):
        read_photo(tmp_path / "noend.png")
    bad = bytearray(data)
    bad[20] ^= 0xFF  # inside IHDR
    (tmp_path / "crc.png").write_bytes(bytes(bad))
    with pytest.raises(ImageError, match="CRC error in chunk 'IHDR'"):
        read_photo(tmp_path / "crc.png")


def test_imagemagick_raw_profiles_are_read(tmp_path: Path) -> None:
    """Older tools store EXIF/IPTC as hex text chunks ("Raw profile type exif/iptc")."""

    def raw_profile(name: str, blob: bytes) -> bytes:
        hexed = blob.hex().encode()
        return b"\n%s\n%8d\n%s\n" % (name.encode(), len(blob), hexed)

    Image.fromarray(pattern(4, 4)).save(tmp_path / "a.png")
    exif_text = zlib.compress(raw_profile("exif", b"Exif\0\0" + exif_block()))
    extra = [
        chunk(b"zTXt", b"Raw profile type exif\0\0" + exif_text),
        chunk(b"tEXt", b"Raw profile type iptc\0" + raw_profile("iptc", IPTC)),
    ]
    (tmp_path / "b.png").write_bytes(with_chunks((tmp_path / "a.png").read_bytes(), extra))
    meta = read_photo(tmp_path / "b.png").meta
    assert meta.exif == exif_block() and meta.iptc == IPTC
