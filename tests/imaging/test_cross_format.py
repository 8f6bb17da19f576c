"""--format conversions: metadata follows where the target can hold it; nothing silent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from abpn_cli.imaging import ImageError, read_photo, save_photo
from tests.factories import pattern

from .helpers import IPTC, XMP, exif_block, icc_profile, write_jpeg


@pytest.fixture
def rich_jpeg(tmp_path: Path) -> Path:
    return write_jpeg(
        tmp_path / "rich.jpg",
        pattern(24, 32),
        exif=exif_block(),
        icc=icc_profile(),
        xmp=XMP,
        iptc=IPTC,
    )


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff"])
def test_jpeg_metadata_follows_to_other_formats(rich_jpeg: Path, tmp_path: Path, fmt: str) -> None:
    photo = read_photo(rich_jpeg)
    save_photo(photo, photo.pixels, tmp_path / "out", fmt=fmt)
    out = read_photo(tmp_path / "out")
    assert out.fmt == fmt
    assert out.meta.icc == icc_profile() and out.meta.xmp == XMP
    if fmt != "tiff":  # TIFF re-lays the block out; checked tag by tag in test_tiff
        assert out.meta.exif == exif_block()
    if fmt != "webp":  # WebP has no IPTC-IIM container
        assert out.meta.iptc == IPTC
    if fmt in ("png", "tiff"):
        assert np.array_equal(out.pixels, photo.pixels)  # lossless targets


def test_16bit_to_jpeg_rounds_correctly(tmp_path: Path) -> None:
    values = np.array([0, 128, 129, 32767, 32768, 65406, 65407, 65535], np.uint16)
    # 128 -> 0.498 -> 0, 129 -> 0.502 -> 1, 65406 -> 254.498 -> 254, 65407 -> 254.502 -> 255
    rgb = np.repeat(np.repeat(values[None, :, None], 8, axis=0), 3, axis=2)
    rgb = np.repeat(rgb, 8, axis=1)  # 8x8 blocks of one value, so JPEG keeps them exactly
    assert cv2.imwrite(str(tmp_path / "a.png"), rgb)
    photo = read_photo(tmp_path / "a.png")
    save_photo(photo, photo.pixels, tmp_path / "b.jpg", fmt="jpeg", jpeg_quality=100)
    got = np.asarray(Image.open(tmp_path / "b.jpg"))[4, 4::8, 0]
    expected = (values.astype(np.int64) * 255 + 32767) // 65535
    assert list(expected) == [0, 0, 1, 127, 128, 254, 255, 255]
    assert np.array_equal(expected, np.rint(values.astype(float) * 255 / 65535))  # nearest
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_16bit_tiff_to_png_stays_16bit(tmp_path: Path) -> None:
    rgb = pattern(10, 12, np.uint16)
    rgb[0, 0] = 12345
    tifffile.imwrite(tmp_path / "a.tif", rgb, photometric="rgb")
    photo = read_photo(tmp_path / "a.tif")
    save_photo(photo, photo.pixels, tmp_path / "b.png", fmt="png")
    assert np.array_equal(read_photo(tmp_path / "b.png").pixels, rgb)


def test_non_jpeg_source_to_jpeg_uses_q95_444(tmp_path: Path) -> None:
    Image.fromarray(pattern(16, 16)).save(tmp_path / "a.png")
    photo = read_photo(tmp_path / "a.png")
    save_photo(photo, photo.pixels, tmp_path / "b.jpg", fmt="jpg")
    Image.fromarray(photo.pixels).save(tmp_path / "ref.jpg", quality=95, subsampling=0)
    with Image.open(tmp_path / "b.jpg") as b, Image.open(tmp_path / "ref.jpg") as r:
        assert b.quantization == r.quantization and b.layer == r.layer


def test_alpha_to_jpeg_is_refused(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4, 4), np.uint8), "RGBA").save(tmp_path / "a.png")
    photo = read_photo(tmp_path / "a.png")
    with pytest.raises(ImageError, match="JPEG cannot store the alpha channel"):
        save_photo(photo, photo.pixels, tmp_path / "b.jpg", fmt="jpeg")
    assert not (tmp_path / "b.jpg").exists()


def test_gray_to_webp_is_rgb_with_equal_channels(tmp_path: Path) -> None:
    Image.fromarray(pattern(8, 8)[:, :, 0]).save(tmp_path / "g.png")
    photo = read_photo(tmp_path / "g.png")
    save_photo(photo, photo.pixels, tmp_path / "g.webp", fmt="webp")
    out = read_photo(tmp_path / "g.webp").pixels.astype(int)
    assert np.abs(out[:, :, 0] - out[:, :, 2]).max() <= 2


def test_oversized_exif_for_jpeg_is_refused_not_dropped(tmp_path: Path) -> None:
    Image.fromarray(pattern(8, 8)).save(tmp_path / "a.png")
    photo = read_photo(tmp_path / "a.png")
    from dataclasses import replace

    photo.meta = replace(photo.meta, exif=exif_block(makernote=bytes(70000)))
    with pytest.raises(ImageError, match="EXIF block too large for JPEG"):
        save_photo(photo, photo.pixels, tmp_path / "b.jpg", fmt="jpeg")


def _animated(path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:])


@pytest.mark.parametrize(
    ("name", "match"), [("a.png", "animated PNG"), ("a.webp", "animated WebP is not supported")]
)
def test_animated_file_is_refused(tmp_path: Path, name: str, match: str) -> None:
    _animated(tmp_path / name)
    with pytest.raises(ImageError, match=match):
        read_photo(tmp_path / name)


def _webp(path: Path) -> None:
    Image.fromarray(pattern(32, 32)).save(path)


def _tiff(path: Path) -> None:
    tifffile.imwrite(path, pattern(64, 64), photometric="rgb", metadata=None)


@pytest.mark.parametrize(
    ("suffix", "write", "cut", "match"),
    [
        (".webp", _webp, lambda n: n // 2, "truncated WebP"),
        (".tif", _tiff, lambda n: n - 100, r"truncated TIFF \(image data extends past the end"),
    ],
    ids=["webp", "tiff"],
)
def test_truncated_file_is_refused(
    tmp_path: Path,
    suffix: str,
    write: Callable[[Path], None],
    cut: Callable[[int], int],
    match: str,
) -> None:
    write(tmp_path / f"a{suffix}")
    data = (tmp_path / f"a{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: cut(len(data))])
    with pytest.raises(ImageError, match=match):
        read_photo(tmp_path / f"cut{suffix}")
