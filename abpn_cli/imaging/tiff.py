"""TIFF: pixels decoded by tifffile, files written by our own small writer (`tiffwrite.py`).

Reading: tifffile (with imagecodecs) is the one decoder for every compression it supports
-- none, LZW, Deflate, PackBits, JPEG-in-TIFF, ZSTD, LZMA, WebP, JPEG XL... -- with or
without a predictor, in strips or tiles, at 8 and 16 bits, with or without alpha. Pixels
come back exactly as stored: tifffile never applies the Orientation tag. What it reads but
this tool does not retouch (palette, CMYK, multi-page, float, DNG...) is refused by name.

Writing, and which compression an output gets: `tiffwrite.py`.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from abpn_cli.imaging import ifd as ifd_mod
from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import exif_from_tiff
from abpn_cli.imaging.ifd import Entry, FileSource, IfdError, TiffHeader
from abpn_cli.imaging.irb import iptc_from_irb, trim_iim
from abpn_cli.imaging.photo import Photo, PhotoMetadata, TiffInfo
from abpn_cli.imaging.pixels import check_pixel_count, gray_to_rgb

# the TIFF codes the reader checks and the writer (`tiffwrite.py`) writes
NO_COMPRESSION, LZW, OLD_JPEG, JPEG_COMPRESSION, DEFLATE, OLD_DEFLATE = 1, 5, 6, 7, 8, 32946
MINISBLACK, RGB, YCBCR = 1, 2, 6
_PHOTOMETRIC_ERRORS = {
    0: "MinIsWhite grayscale TIFF is not supported: convert to MinIsBlack or RGB first",
    3: "palette (indexed-colour) TIFF is not supported: convert to RGB first",
    4: "transparency-mask TIFF is not supported",
    5: "CMYK TIFF is not supported: convert to RGB first",
    8: "CIELab TIFF is not supported: convert to RGB first",
    9: "ICCLab TIFF is not supported: convert to RGB first",
    10: "ITULab TIFF is not supported: convert to RGB first",
    32803: "camera raw (CFA) TIFF is not supported",
    32844: "LogL TIFF is not supported",
    32845: "LogLuv TIFF is not supported",
    34892: "linear raw TIFF is not supported",
}
_DNG_VERSION = 50706


@dataclass(frozen=True)
class _Layout:
    """How the main image of a TIFF stores its samples (already validated)."""

    width: int
    height: int
    bits: int
    colour: int  # 1 (gray) or 3 (RGB)
    extrasample: int | None  # ExtraSamples value of an alpha channel, None without one
    compression: int


def _reduced(page: object) -> bool:
    """NewSubfileType bit 0: a reduced-resolution preview of another page."""
    return bool(getattr(page, "subfiletype", 0) & 1)


def _main_page(tif: tifffile.TiffFile) -> tifffile.TiffPage:
    """The first page, which must be the one full-resolution image (previews are ignored)."""
    pages = tif.pages
    full = sum(1 for i in range(len(pages)) if not _reduced(pages[i]))
    if full > 1:
        raise ImageError(f"multi-page TIFF ({full} pages) is not supported: split it first")
    main = pages.first
    if _reduced(main) and full:
        raise ImageError("TIFF whose first page is a preview is not supported")
    return main


def _layout(page: tifffile.TiffPage) -> _Layout:
    """Validate the sample layout, naming exactly what is unsupported."""
    photometric = int(page.photometric)
    if photometric in _PHOTOMETRIC_ERRORS:
        raise ImageError(_PHOTOMETRIC_ERRORS[photometric])
    compression = int(page.compression)
    if compression == OLD_JPEG:
        raise ImageError("old-style JPEG (OJPEG) TIFF is not supported: convert it first")
    if photometric == YCBCR and compression != JPEG_COMPRESSION:
        raise ImageError(
            "YCbCr TIFF without JPEG compression is not supported: convert to RGB first"
        )
    if photometric not in (MINISBLACK, RGB, YCBCR):
        raise ImageError(f"TIFF photometric interpretation {photometric} is not supported")
    sampleformat = int(page.sampleformat)
    if sampleformat == 3:
        raise ImageError("floating-point TIFF is not supported (only 8- and 16-bit integer)")
    if sampleformat not in (1, 4):
        raise ImageError("signed-integer TIFF is not supported (only unsigned 8/16-bit)")
    bits = int(page.bitspersample)
    if bits == 1:
        raise ImageError("1-bit (black and white) TIFF is not supported")
    if bits not in (8, 16):
        raise ImageError(f"{bits}-bit TIFF is not supported (only 8 and 16 bits per sample)")
    if page.imagedepth > 1:
        raise ImageError("volumetric (3-D) TIFF is not supported")
    if compression not in tifffile.TIFF.DECOMPRESSORS:  # also false for a missing codec
        raise ImageError(f"TIFF compression {_compression_name(compression)} is not supported")
    colour = 1 if photometric == MINISBLACK else 3
    extra = int(page.samplesperpixel) - colour
    if extra < 0:
        raise ImageError(
            f"corrupt TIFF ({page.samplesperpixel} samples for photometric {photometric})"
        )
    if extra > 1:
        raise ImageError(f"TIFF with {extra} extra channels is not supported (only one alpha)")
    extrasample = (int(page.extrasamples[0]) if page.extrasamples else 0) if extra else None
    return _Layout(page.imagewidth, page.imagelength, bits, colour, extrasample, compression)


def _check_extent(page: tifffile.TiffPage, size: int) -> None:
    """Every strip/tile must lie inside the file: a cut-off download is named as such."""
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
        if count == 0 or offset == 0:
            raise ImageError("corrupt TIFF (a strip or tile of image data is missing)")
        if offset + count > size:
            raise ImageError("truncated TIFF (image data extends past the end of the file)")


def _as_hws(array: np.ndarray, axes: str) -> np.ndarray:
    """tifffile's array -> (H, W, S)."""
    axes = axes.replace("Q", "")
    if axes == "YX":
        return array[:, :, None]
    if axes == "YXS":
        return array
    if axes == "SYX":
        return np.ascontiguousarray(array.transpose(1, 2, 0))
    raise ImageError(f"unsupported TIFF sample arrangement {axes}")


def _compression_name(code: int) -> str:
    try:
        return tifffile.COMPRESSION(code).name
    except ValueError:
        return str(code)


def _decode(page: tifffile.TiffPage, lay: _Layout) -> np.ndarray:
    try:
        array = _as_hws(page.asarray(), page.axes)
    except NotImplementedError as exc:
        raise ImageError(f"TIFF layout not supported by the decoder ({exc})") from exc
    except RuntimeError as exc:  # what every imagecodecs codec raises on bad data
        raise ImageError(f"corrupt TIFF image data ({type(exc).__name__}: {exc})") from exc
    expected = (lay.height, lay.width, lay.colour + (lay.extrasample is not None))
    if array.shape != expected or array.dtype != (np.uint16 if lay.bits == 16 else np.uint8):
        raise ImageError(f"TIFF decoded to {array.shape} {array.dtype}, expected {expected}")
    return array


def _open_structure(fh: io.BufferedReader, size: int) -> tuple[FileSource, TiffHeader, list[Entry]]:
    src = FileSource(fh, size)
    try:
        header = ifd_mod.read_header(src)
        if src.read_at(8, 2) == b"CR" and not header.bigtiff:
            raise ImageError("Canon CR2 raw files are not supported")
        ifd0, _ = ifd_mod.read_ifd(src, header, header.first_ifd)
    except IfdError as exc:
        raise ImageError(f"corrupt TIFF ({exc})") from exc
    if any(e.tag == _DNG_VERSION for e in ifd0):
        raise ImageError("DNG raw files are not supported")
    return src, header, ifd0


def read_tiff(path: Path, max_pixels: int) -> Photo:
    """Decode the main image of a TIFF as stored, with EXIF/ICC/XMP/IPTC."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        src, header, ifd0 = _open_structure(fh, size)
        try:
            tif = tifffile.TiffFile(path)
        except (tifffile.TiffFileError, ValueError, struct.error) as exc:
            raise ImageError(f"corrupt TIFF ({exc})") from exc
        with tif:
            page = _main_page(tif)
            lay = _layout(page)
            check_pixel_count(lay.width, lay.height, max_pixels)
            _check_extent(page, size)
            array = _decode(page, lay)
        try:
            exif, fields = exif_from_tiff(src, header, ifd0)
        except (IfdError, struct.error) as exc:
            raise ImageError(f"corrupt EXIF in TIFF ({exc})") from exc
    colour = array[:, :, : lay.colour]
    pixels = gray_to_rgb(colour[:, :, 0]) if lay.colour == 1 else np.ascontiguousarray(colour)
    alpha = np.ascontiguousarray(array[:, :, lay.colour]) if lay.extrasample is not None else None
    iptc = trim_iim(fields.iptc) if fields.iptc else iptc_from_irb(fields.photoshop_irb)
    meta = PhotoMetadata(
        exif=exif,
        icc=fields.icc,
        xmp=fields.xmp,
        iptc=iptc,
        photoshop_irb=fields.photoshop_irb,
        grayscale=lay.colour == 1,
        tiff=TiffInfo(lay.compression, header.byteorder, lay.extrasample),
    )
    return Photo(pixels, alpha, lay.bits, "tiff", meta, path)
