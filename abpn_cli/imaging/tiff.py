"""TIFF: pixels decoded by tifffile, files written by our own small writer.

Reading: tifffile (with imagecodecs) is the one decoder for every compression it supports
-- none, LZW, Deflate, PackBits, JPEG-in-TIFF, ZSTD, LZMA, WebP, JPEG XL... -- with or
without a predictor, in strips or tiles, at 8 and 16 bits, with or without alpha. Pixels
come back exactly as stored: tifffile never applies the Orientation tag.

Writing: tifffile cannot write EXIF sub-IFDs. Our output file *starts with the source's
EXIF block byte for byte* (an EXIF block is a TIFF structure whose offsets count from its
own header), followed by the strips and a new IFD0 at the end. The new IFD0 holds the image
tags, the camera tags copied from the block's IFD0, and the block's own Exif/GPS pointers,
which stay valid unchanged -- as do the offsets inside the maker note. Strips are encoded
with imagecodecs (LZW, horizontal predictor) and zlib (Deflate).

Output compression: always lossless, in the source's family where that is a sensible TIFF:

    source TIFF uncompressed            -> uncompressed
    source TIFF LZW                     -> LZW + horizontal predictor
    source TIFF Deflate (8 or 32946)    -> Adobe Deflate (8) + horizontal predictor
    any other source TIFF compression   -> LZW + horizontal predictor
    source not a TIFF (JPEG, PNG, WebP) -> Adobe Deflate (8) + horizontal predictor

"Any other" covers the lossy codecs (JPEG-in-TIFF, WebP, JPEG XL...: re-encoding lossy would
lose quality a second time) and the rarer lossless ones (PackBits, ZSTD, LZMA...: LZW is
what every TIFF reader -- Photoshop, Lightroom, Capture One, libtiff -- decodes).
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import imagecodecs
import numpy as np
import tifffile

from abpn_cli.imaging import ifd as ifd_mod
from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import (
    FIELD_TAGS,
    ICC_TAG,
    IPTC_TAG,
    PHOTOSHOP_TAG,
    XMP_TAG,
    exif_from_tiff,
    graft_entries,
)
from abpn_cli.imaging.files import write_file
from abpn_cli.imaging.ifd import (
    BYTE,
    LONG,
    RATIONAL,
    SHORT,
    UNDEFINED,
    BlockWriter,
    Entry,
    FileSource,
    Ifd,
    IfdError,
    TiffHeader,
    header_bytes,
    make_entry,
)
from abpn_cli.imaging.irb import iptc_from_irb, trim_iim
from abpn_cli.imaging.photo import Photo, PhotoMetadata, TiffInfo
from abpn_cli.imaging.pixels import check_pixel_count, gray_to_rgb

NO_COMPRESSION, LZW, OLD_JPEG, JPEG_COMPRESSION, DEFLATE, OLD_DEFLATE = 1, 5, 6, 7, 8, 32946
HORIZONTAL_PREDICTOR = 2
MINISBLACK, RGB, YCBCR = 1, 2, 6
UNASSOCIATED_ALPHA = 2
STRIP_BYTES = 256 * 1024
ZLIB_LEVEL = 3  # within ~5% of level 6 on photos at a third of the CPU time
_ENCODERS: dict[int, Callable[[bytes], bytes]] = {
    LZW: imagecodecs.lzw_encode,
    DEFLATE: functools.partial(zlib.compress, level=ZLIB_LEVEL),
}
CLASSIC_LIMIT = 0xFFFFFFFF
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


# --- writing ---------------------------------------------------------------------------


def _samples(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """(rows, W, S) from gray/RGB rows plus optional alpha rows."""
    planes = pixels[:, :, None] if pixels.ndim == 2 else pixels
    if alpha is None:
        return planes
    return np.concatenate([planes, alpha[:, :, None]], axis=2)


def output_compression(source: int | None) -> int:
    """The output's compression for a source TIFF compression (None: not a TIFF source)."""
    if source is None:
        return DEFLATE
    if source == NO_COMPRESSION:
        return NO_COMPRESSION
    if source in (DEFLATE, OLD_DEFLATE):
        return DEFLATE
    return LZW  # LZW itself, lossy codecs, and lossless ones few readers know


def _encoded_strips(
    pixels: np.ndarray, alpha: np.ndarray | None, rows: int, bo: str, compression: int
) -> Iterator[bytes]:
    """Strips in file order. Compressed strips get the horizontal predictor (differences
    per sample, wrapping) and are encoded on a small thread pool (both codecs and
    imagecodecs' delta release the GIL)."""

    def encode(r0: int) -> bytes:
        part = _samples(pixels[r0 : r0 + rows], None if alpha is None else alpha[r0 : r0 + rows])
        if compression != NO_COMPRESSION:
            part = imagecodecs.delta_encode(part, axis=1)
        raw = part.astype(part.dtype.newbyteorder(bo), copy=False).tobytes()
        return raw if compression == NO_COMPRESSION else _ENCODERS[compression](raw)

    starts = range(0, pixels.shape[0], rows)
    if compression == NO_COMPRESSION:
        yield from map(encode, starts)
        return
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque()
        for r0 in starts:
            pending.append(pool.submit(encode, r0))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _field_entries(meta: PhotoMetadata, bo: str) -> list[Entry]:
    """ICC, XMP, IPTC and Photoshop tags from the metadata fields."""
    out = []
    if meta.icc:
        out.append(make_entry(ICC_TAG, UNDEFINED, meta.icc, bo))
    if meta.xmp:
        out.append(make_entry(XMP_TAG, BYTE, meta.xmp, bo))
    if meta.iptc:
        padded = meta.iptc + bytes(-len(meta.iptc) % 4)  # Photoshop writes it as LONGs
        out.append(Entry(IPTC_TAG, LONG, len(padded) // 4, padded))
    if meta.photoshop_irb:
        out.append(make_entry(PHOTOSHOP_TAG, BYTE, meta.photoshop_irb, bo))
    return out


def _exif_graft(meta: PhotoMetadata) -> tuple[bytes, str, list[Entry]]:
    """(file prefix, byte order, IFD0 entries) for carrying meta.exif into a TIFF."""
    default_bo = meta.tiff.byteorder if meta.tiff else "<"
    if not meta.exif:
        return header_bytes(default_bo, 0), default_bo, []
    present = {
        ICC_TAG: meta.icc,
        XMP_TAG: meta.xmp,
        IPTC_TAG: meta.iptc,
        PHOTOSHOP_TAG: meta.photoshop_irb,
    }
    drop = frozenset(tag for tag in FIELD_TAGS if present[tag])
    try:
        bo, entries = graft_entries(meta.exif, drop)
    except (IfdError, struct.error) as exc:
        raise ImageError(f"cannot carry EXIF into TIFF: malformed EXIF block ({exc})") from exc
    prefix = meta.exif + (b"\0" if len(meta.exif) & 1 else b"")
    return prefix, bo, entries


def _rational(tag: int, value: int, bo: str) -> Entry:
    return Entry(tag, RATIONAL, 1, struct.pack(bo + "II", value, 1))


def _image_entries(
    shape: tuple[int, int, int],
    bits: int,
    lay: tuple[int, int, int | None],
    strips: tuple[list[int], list[int]],
    bo: str,
) -> list[Entry]:
    height, width, samples = shape
    rows, compression, extrasample = lay
    offsets, counts = strips
    out = [
        make_entry(256, LONG, [width], bo),
        make_entry(257, LONG, [height], bo),
        make_entry(258, SHORT, [bits] * samples, bo),
        make_entry(259, SHORT, [compression], bo),
        make_entry(
            262, SHORT, [MINISBLACK if samples - (extrasample is not None) == 1 else RGB], bo
        ),
        make_entry(273, LONG, offsets, bo),
        make_entry(277, SHORT, [samples], bo),
        make_entry(278, LONG, [rows], bo),
        make_entry(279, LONG, counts, bo),
        make_entry(284, SHORT, [1], bo),
    ]
    if compression != NO_COMPRESSION:
        out.append(make_entry(317, SHORT, [HORIZONTAL_PREDICTOR], bo))
    if extrasample is not None:
        out.append(make_entry(338, SHORT, [extrasample], bo))
    return out


def write_tiff(
    dest: Path, pixels: np.ndarray, alpha: np.ndarray | None, meta: PhotoMetadata
) -> None:
    """Write (H, W) gray or (H, W, 3) RGB pixels (+ alpha) as a single-page TIFF.

    Compression follows the source (see output_compression and the module docstring).
    """
    info = meta.tiff
    compression = output_compression(info.compression if info else None)
    extrasample = None
    if alpha is not None:
        extrasample = (
            info.extrasample if info and info.extrasample is not None else UNASSOCIATED_ALPHA
        )
    height, width = pixels.shape[:2]
    samples = (1 if pixels.ndim == 2 else 3) + (alpha is not None)
    bits = pixels.dtype.itemsize * 8
    if height * width * samples * pixels.dtype.itemsize > CLASSIC_LIMIT - (64 << 20):
        raise ImageError("image too large for a TIFF file (over 4 GB of pixel data)")
    prefix, bo, grafted = _exif_graft(meta)
    rows = max(1, STRIP_BYTES // (width * samples * pixels.dtype.itemsize))

    def fill(f: BinaryIO) -> None:
        f.write(prefix)
        offsets: list[int] = []
        counts: list[int] = []
        for strip in _encoded_strips(pixels, alpha, rows, bo, compression):
            offsets.append(f.tell())
            counts.append(len(strip))
            f.write(strip)
        if f.tell() > CLASSIC_LIMIT - (16 << 20):
            raise ImageError("image too large for a TIFF file (over 4 GB)")
        entries = _image_entries(
            (height, width, samples), bits, (rows, compression, extrasample), (offsets, counts), bo
        )
        entries += _field_entries(meta, bo)
        entries += grafted
        if 282 not in {e.tag for e in entries}:
            # Baseline TIFF requires a resolution; 72 dpi is the convention.
            entries += [
                _rational(282, 72, bo),
                _rational(283, 72, bo),
                make_entry(296, SHORT, [2], bo),
            ]
        writer = BlockWriter(bo, start=f.tell())
        first = writer.write_ifd(Ifd(entries))
        f.write(writer.getvalue())
        f.seek(4)
        f.write(struct.pack(bo + "I", first))

    write_file(dest, fill)
