"""read_photo / save_photo: format dispatch and the conversions every format shares."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.files import write_file
from abpn_cli.imaging.heif import encode_heif, read_heif
from abpn_cli.imaging.jpeg import encode_jpeg, read_jpeg
from abpn_cli.imaging.photo import Photo, PhotoMetadata
from abpn_cli.imaging.pixels import gray_to_rgb, owned, rgb_to_gray, to_uint8
from abpn_cli.imaging.png import encode_png, read_png
from abpn_cli.imaging.raw import (
    RAW_OUTPUT_FORMAT,
    RAW_SUFFIXES,
    is_raw_tiff,
    raw_available,
    read_raw,
)
from abpn_cli.imaging.sniff import SNIFF_BYTES, sniff
from abpn_cli.imaging.tiff import read_tiff
from abpn_cli.imaging.tiffwrite import write_tiff
from abpn_cli.imaging.webp import encode_webp, read_webp

DEFAULT_MAX_PIXELS = 400_000_000
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif", ".hif"}
) | (RAW_SUFFIXES if raw_available() else frozenset())
_ALIASES = {
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "png": "png",
    "tiff": "tiff",
    "tif": "tiff",
    "webp": "webp",
    "heic": "heif",
    "heif": "heif",
    "hif": "heif",
}
_CANONICAL_SUFFIX = {
    "jpeg": ".jpg",
    "png": ".png",
    "tiff": ".tif",
    "webp": ".webp",
    "heif": ".heic",
}
_NAMES = {
    "jpeg": "JPEG",
    "png": "PNG",
    "tiff": "TIFF",
    "webp": "WebP",
    "heif": "HEIF",
    "raw": "camera RAW",
}
# What third-party decoders raise on malformed input; anything else is a bug and propagates.
_DECODER_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
    cv2.error,
)


def normalize_format(name: str) -> str:
    """Canonical format name ("jpeg", "png", "tiff", "webp") for aliases like "JPG", ".tif"."""
    key = name.lower().lstrip(".")
    if key not in _ALIASES:
        raise ValueError(f"unknown image format {name!r} (jpeg, png, tiff, webp, heic)")
    return _ALIASES[key]


def format_for_suffix(suffix: str) -> str | None:
    """The format a file suffix names, or None."""
    return _ALIASES.get(suffix.lower().lstrip(".")) if suffix else None


def output_suffix(fmt: str, source_suffix: str) -> str:
    """Suffix for an output: the source's own spelling (".JPG", ".jpeg") if the format is
    unchanged (or fmt is "keep"), else the canonical one (".jpg", ".png", ".tif", ".webp").
    A camera RAW is never written: "keep" gives RAW_OUTPUT_FORMAT's suffix (".tif")."""
    if fmt == "keep" and source_suffix.lower() in RAW_SUFFIXES:
        return _CANONICAL_SUFFIX[RAW_OUTPUT_FORMAT]
    if fmt == "keep":
        return source_suffix
    target = normalize_format(fmt)
    if format_for_suffix(source_suffix) == target:
        return source_suffix
    return _CANONICAL_SUFFIX[target]


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageError("file not found") from exc
    except IsADirectoryError as exc:
        raise ImageError("is a directory, not an image file") from exc
    except PermissionError as exc:
        raise ImageError("permission denied") from exc
    except OSError as exc:
        raise ImageError(f"cannot read file ({exc.strerror or exc})") from exc


def _head(path: Path) -> bytes:
    data = b""
    try:
        with open(path, "rb") as fh:
            data = fh.read(SNIFF_BYTES)
    except OSError:
        _read_file(path)  # raises the specific ImageError
    return data


def read_photo(
    path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, accept_damaged: bool = False
) -> Photo:
    """Decode `path` as stored (never rotated), with the metadata to write it back.

    The format comes from the file's bytes, not its name. Sizes over `max_pixels` are
    refused before any pixel is decoded. Raises ImageError with a specific reason; a JPEG
    the decoder only partly recovered is such an error unless `accept_damaged` (then
    Photo.damage names what was wrong).
    """
    path = Path(path)
    photo = _decode(path, sniff(_head(path)), max_pixels, accept_damaged)
    photo.pixels = owned(photo.pixels)
    photo.alpha = None if photo.alpha is None else owned(photo.alpha)
    return photo


def _decode(path: Path, fmt: str, max_pixels: int, accept_damaged: bool) -> Photo:
    try:
        if fmt == "raw" or (fmt == "tiff" and is_raw_tiff(path)):
            return read_raw(path, max_pixels, tiff_based=fmt == "tiff")
        if fmt == "tiff":
            return read_tiff(path, max_pixels)  # seeks; never loads the whole file
        data = _read_file(path)
        if fmt == "jpeg":
            return read_jpeg(path, data, max_pixels, accept_damaged)
        if fmt == "png":
            return read_png(path, data, max_pixels)
        if fmt == "heif":
            return read_heif(path, data, max_pixels)
        return read_webp(path, data, max_pixels)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large ({exc})") from exc
    except MemoryError as exc:
        raise ImageError(f"out of memory decoding this {_NAMES[fmt]} image") from exc
    except _DECODER_ERRORS as exc:
        raise ImageError(f"corrupt {_NAMES[fmt]} file ({type(exc).__name__}: {exc})") from exc


def _check_pixels(photo: Photo, pixels: np.ndarray) -> None:
    if pixels.shape != photo.pixels.shape or pixels.dtype != photo.pixels.dtype:
        raise ValueError(
            f"pixels must match the photo: expected {photo.pixels.shape} {photo.pixels.dtype},"
            f" got {pixels.shape} {pixels.dtype}"
        )


def _check_target(meta: PhotoMetadata, target: str, has_alpha: bool) -> None:
    """Refuse conversions that would silently change how the image looks."""
    if target == "jpeg" and has_alpha:
        raise ImageError("JPEG cannot store the alpha channel: use --format png or tif")
    if has_alpha and target != "tiff" and meta.tiff and meta.tiff.extrasample == 1:
        raise ImageError("premultiplied-alpha TIFF can only be written as TIFF")
    if target == "webp" and meta.grayscale and meta.icc_color_space == "GRAY":
        raise ImageError("WebP has no grayscale mode, so a Gray ICC profile cannot be kept")


COPY_THROUGH_FORMATS = frozenset({"jpeg", "png", "tiff", "webp"})


def may_copy_source(photo: Photo, fmt: str | None = None, jpeg_quality: int | None = None) -> bool:
    """True when a frame whose pixels came back unchanged may be written as its source file's
    own bytes instead of being encoded again.

    Why: encoding pixels that did not change only costs (JPEG generation loss, encode time),
    and a copy keeps every byte of metadata as it was. Only when the output keeps the source's
    container, no quality was asked for (an explicit --jpeg-quality is honoured) and the file
    was not read damaged. HEIC/HEIF is left out: its output is written upright with
    Orientation 1 (the orientation rule), which its own bytes are not; camera RAW becomes TIFF.
    """
    target = normalize_format(photo.fmt if fmt is None or fmt == "keep" else fmt)
    return (
        photo.fmt in COPY_THROUGH_FORMATS
        and target == photo.fmt
        and jpeg_quality is None
        and not photo.damage
    )


def save_photo(
    photo: Photo,
    pixels: np.ndarray,
    dest: Path,
    fmt: str | None = None,
    jpeg_quality: int | None = None,
) -> None:
    """Write `pixels` (same shape/dtype as photo.pixels) with photo's alpha and metadata.

    Writes exactly `dest` (never inferring the format from its suffix; the caller renames
    atomically) and removes it again if writing fails. fmt None or "keep" keeps photo.fmt;
    aliases such as "jpg" and "tif" are accepted. A grey source is written grey again (mean
    of the three channels, rounded); 16-bit pixels going to JPEG/WebP are rounded to 8 bits
    as (v*255 + 32767) // 65535. jpeg_quality (1-100) replaces the source's quantization
    tables; it also sets lossy WebP quality.
    """
    dest = Path(dest)
    source_fmt = RAW_OUTPUT_FORMAT if photo.fmt == "raw" else photo.fmt
    target = normalize_format(source_fmt if fmt is None or fmt == "keep" else fmt)
    _check_pixels(photo, pixels)
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be 1..100, got {jpeg_quality}")
    meta, alpha = photo.meta, photo.alpha
    _check_target(meta, target, alpha is not None)
    data = rgb_to_gray(pixels) if meta.grayscale else np.ascontiguousarray(pixels)
    if target in ("jpeg", "webp"):
        data = to_uint8(data)
        alpha = None if alpha is None else to_uint8(alpha)
    if target == "webp" and data.ndim == 2:
        data = gray_to_rgb(data)
    if target == "tiff":
        write_tiff(dest, data, alpha, meta)
        return
    if target == "jpeg":
        encoded = encode_jpeg(data, meta, jpeg_quality)
    elif target == "png":
        encoded = encode_png(data, alpha, meta)
    elif target == "heif":
        encoded = encode_heif(data, alpha, meta, jpeg_quality)
    else:
        encoded = encode_webp(data, alpha, meta, jpeg_quality)
    write_file(dest, lambda f: f.write(encoded))
