"""TIFF writing: our own small writer, because tifffile cannot write EXIF sub-IFDs.

Our output file *starts with the source's EXIF block byte for byte* (an EXIF block is a
TIFF structure whose offsets count from its own header), followed by the strips and a new
IFD0 at the end. The new IFD0 holds the image tags, the camera tags copied from the block's
IFD0, and the block's own Exif/GPS pointers, which stay valid unchanged -- as do the offsets
inside the maker note. Strips are encoded with imagecodecs (LZW, horizontal predictor) and
zlib (Deflate).

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
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import imagecodecs
import numpy as np

from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import (
    FIELD_TAGS,
    ICC_TAG,
    IPTC_TAG,
    PHOTOSHOP_TAG,
    XMP_TAG,
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
    Ifd,
    IfdError,
    header_bytes,
    make_entry,
)
from abpn_cli.imaging.photo import PhotoMetadata
from abpn_cli.imaging.tiff import DEFLATE, LZW, MINISBLACK, NO_COMPRESSION, OLD_DEFLATE, RGB

HORIZONTAL_PREDICTOR = 2
UNASSOCIATED_ALPHA = 2
STRIP_BYTES = 256 * 1024
ZLIB_LEVEL = 3  # within ~5% of level 6 on photos at a third of the CPU time
_ENCODERS: dict[int, Callable[[bytes], bytes]] = {
    LZW: imagecodecs.lzw_encode,
    DEFLATE: functools.partial(zlib.compress, level=ZLIB_LEVEL),
}
CLASSIC_LIMIT = 0xFFFFFFFF


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
