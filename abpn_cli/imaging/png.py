"""PNG: pixels through OpenCV (16-bit RGB, which Pillow cannot hold), chunks handled here.

Metadata chunks (eXIf, iCCP, iTXt XMP, IPTC as ImageMagick's "Raw profile type iptc") are
read and written by this module so that their bytes are never re-interpreted.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import strip_exif_header
from abpn_cli.imaging.irb import iptc_from_irb, iptc_resource
from abpn_cli.imaging.photo import Photo, PhotoMetadata, PngInfo
from abpn_cli.imaging.pixels import (
    check_opencv_limit,
    check_pixel_count,
    contiguous_rgb,
    gray_to_rgb,
)

SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
MAX_INFLATE = 64 << 20  # a metadata chunk larger than this is a zip bomb, not a profile
GRAY, RGB, PALETTE, GRAY_ALPHA, RGBA = 0, 2, 3, 4, 6
# Chunks rewritten from PhotoMetadata, or that no longer describe the re-encoded pixels
# (tRNS becomes a real alpha channel on decode; palette and animation chunks).
_NOT_CARRIED = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"iCCP", b"eXIf", b"tRNS", b"hIST", b"sPLT"}
    | {b"acTL", b"fcTL", b"fdAT"}
)


@dataclass(frozen=True)
class Chunk:
    type: bytes
    data: bytes


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    bit_depth: int
    color_type: int


def chunk_bytes(type_: bytes, data: bytes) -> bytes:
    """length + type + data + CRC-32 over type and data."""
    return struct.pack(">I", len(data)) + type_ + data + struct.pack(">I", zlib.crc32(type_ + data))


def parse_chunks(data: bytes, check_crc: bool = True) -> list[Chunk]:
    """All chunks up to IEND; truncation and CRC errors raise ImageError with the chunk name."""
    if not data.startswith(SIGNATURE):
        raise ImageError("corrupt PNG (bad signature)")
    chunks = []
    pos = len(SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise ImageError("truncated PNG (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        name = ctype.decode("latin-1", errors="replace")
        if end > len(data):
            raise ImageError(f"truncated PNG (chunk {name!r} runs past the end of the file)")
        body = data[pos + 8 : pos + 8 + length]
        if check_crc and ctype != b"IDAT":
            (crc,) = struct.unpack(">I", data[end - 4 : end])
            if crc != zlib.crc32(ctype + body):
                raise ImageError(f"corrupt PNG (CRC error in chunk {name!r})")
        chunks.append(Chunk(ctype, body))
        pos = end
        if ctype == b"IEND":
            return chunks


def parse_ihdr(chunks: list[Chunk]) -> Header:
    if not chunks or chunks[0].type != b"IHDR" or len(chunks[0].data) != 13:
        raise ImageError("corrupt PNG (missing IHDR header)")
    width, height, depth, color_type, _, _, _ = struct.unpack(">IIBBBBB", chunks[0].data)
    return Header(width, height, depth, color_type)


def _inflate(data: bytes) -> bytes:
    """zlib-decompress with an output cap (zip-bomb guard)."""
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_INFLATE)
    if d.unconsumed_tail:
        raise ImageError("corrupt PNG (metadata chunk inflates beyond 64 MB)")
    return out


def _text_chunk(chunk: Chunk) -> tuple[bytes, bytes] | None:
    """(keyword, text bytes) of a tEXt/zTXt/iTXt chunk, None if malformed."""
    keyword, sep, rest = chunk.data.partition(b"\0")
    if not sep:
        return None
    try:
        if chunk.type == b"tEXt":
            return keyword, rest
        if chunk.type == b"zTXt":
            return keyword, _inflate(rest[1:])
        if chunk.type == b"iTXt":
            flag, _method = rest[0], rest[1]
            _lang, _, rest = rest[2:].partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            return keyword, _inflate(text) if flag else text
    except (zlib.error, IndexError):
        return None
    return None


def _raw_profile(text: bytes) -> bytes | None:
    """Decode ImageMagick's "Raw profile type X": "\\nname\\n   length\\nhex...\\n"."""
    lines = text.strip().split(b"\n")
    if len(lines) < 3:
        return None
    try:
        length = int(lines[1].strip())
        blob = binascii.unhexlify(b"".join(line.strip() for line in lines[2:]))
    except ValueError:
        return None
    return blob[:length] if len(blob) >= length else None


def raw_profile_text(name: str, blob: bytes) -> bytes:
    """Encode `blob` the way ImageMagick and ExifTool write "Raw profile type <name>"."""
    hexed = binascii.hexlify(blob)
    lines = b"\n".join(hexed[i : i + 72] for i in range(0, len(hexed), 72))
    return b"\n" + name.encode() + b"\n" + b"%8d" % len(blob) + b"\n" + lines + b"\n"


@dataclass
class _Found:
    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    irb: bytes | None = None


def _collect_metadata(chunks: list[Chunk]) -> tuple[_Found, list[Chunk]]:
    """Metadata fields, plus the ancillary chunks to carry PNG -> PNG unchanged."""
    found = _Found()
    extra: list[Chunk] = []
    raw: dict[bytes, bytes] = {}
    for c in chunks:
        if c.type == b"acTL":
            raise ImageError("animated PNG (APNG) is not supported")
        if c.type == b"eXIf":
            found.exif = found.exif or strip_exif_header(c.data)
        elif c.type == b"iCCP":
            _name, _, rest = c.data.partition(b"\0")
            try:
                found.icc = _inflate(rest[1:])
            except zlib.error as exc:
                raise ImageError("corrupt PNG (bad iCCP profile data)") from exc
        elif c.type in (b"tEXt", b"zTXt", b"iTXt"):
            parsed = _text_chunk(c)
            if parsed and parsed[0] == XMP_KEYWORD and c.type == b"iTXt":
                found.xmp = parsed[1]
            elif parsed and parsed[0].startswith(b"Raw profile type "):
                raw[parsed[0][17:].lower()] = parsed[1]
            else:
                extra.append(c)
        elif c.type not in _NOT_CARRIED and c.type[:1].islower():
            extra.append(c)
    profiles = {k: _raw_profile(v) for k, v in raw.items()}
    for name in (b"exif", b"app1"):  # ImageMagick's names for an EXIF profile
        block = strip_exif_header(profiles.get(name) or b"")
        if found.exif is None and block[:4] in (b"II*\0", b"MM\0*"):
            found.exif = block
    found.xmp = found.xmp or profiles.get(b"xmp")
    found.icc = found.icc or profiles.get(b"icc") or profiles.get(b"icm")
    found.irb = profiles.get(b"8bim")
    iptc = profiles.get(b"iptc")
    found.iptc = (iptc_from_irb(iptc) if iptc and iptc.startswith(b"8BIM") else iptc) or (
        iptc_from_irb(found.irb)
    )
    return found, extra


def _check_header(h: Header, max_pixels: int) -> None:
    if h.color_type == PALETTE:
        raise ImageError("palette (indexed-colour) PNG is not supported: convert to RGB first")
    if h.color_type not in (GRAY, RGB, GRAY_ALPHA, RGBA):
        raise ImageError(f"corrupt PNG (unknown colour type {h.color_type})")
    if h.bit_depth not in (8, 16):
        raise ImageError(f"{h.bit_depth}-bit PNG is not supported (only 8 and 16 bits)")
    check_pixel_count(h.width, h.height, max_pixels)


def read_png(path: Path, data: bytes, max_pixels: int) -> Photo:
    """Decode a PNG (8/16-bit gray, gray+alpha, RGB, RGBA) as stored."""
    chunks = parse_chunks(data)
    header = parse_ihdr(chunks)
    _check_header(header, max_pixels)
    found, extra = _collect_metadata(chunks)
    check_opencv_limit(header.width, header.height, "PNG")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    expected = np.uint16 if header.bit_depth == 16 else np.uint8
    if decoded is None or decoded.shape[:2] != (header.height, header.width):
        raise ImageError("corrupt PNG image data (the decoder could not read it)")
    if decoded.dtype != expected:
        raise ImageError(f"PNG decoded as {decoded.dtype}, expected {np.dtype(expected)}")
    grayscale = header.color_type in (GRAY, GRAY_ALPHA)
    alpha = (
        np.ascontiguousarray(decoded[:, :, 3])
        if decoded.ndim == 3 and decoded.shape[2] == 4
        else None
    )
    if decoded.ndim == 2:
        pixels = gray_to_rgb(decoded)
    elif grayscale:
        pixels = gray_to_rgb(decoded[:, :, 0])
    else:
        pixels = contiguous_rgb(decoded)
    meta = PhotoMetadata(
        exif=found.exif,
        icc=found.icc,
        xmp=found.xmp,
        iptc=found.iptc,
        photoshop_irb=found.irb,
        grayscale=grayscale,
        png=PngInfo(header.color_type, tuple((c.type, c.data) for c in extra)),
    )
    return Photo(pixels, alpha, header.bit_depth, "png", meta, path)


def _encode_gray_alpha(gray: np.ndarray, alpha: np.ndarray) -> bytes:
    """A gray+alpha PNG (OpenCV cannot write one), rows with the Sub filter."""
    h, w = gray.shape
    depth = gray.dtype.itemsize * 8
    planes = np.stack([gray, alpha], axis=2).astype(gray.dtype.newbyteorder(">"))
    rows = planes.reshape(h, -1).view(np.uint8)
    bpp = 2 * gray.dtype.itemsize
    filtered = rows.copy()
    filtered[:, bpp:] -= rows[:, :-bpp]
    raw = np.concatenate([np.ones((h, 1), np.uint8), filtered], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, GRAY_ALPHA, 0, 0, 0)
    return (
        SIGNATURE
        + chunk_bytes(b"IHDR", ihdr)
        + chunk_bytes(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk_bytes(b"IEND", b"")
    )


def _encode_pixels(pixels: np.ndarray, alpha: np.ndarray | None) -> bytes:
    if pixels.ndim == 2 and alpha is not None:
        return _encode_gray_alpha(pixels, alpha)
    if pixels.ndim == 2:
        arr = pixels
    elif alpha is None:
        arr = pixels[:, :, ::-1]
    else:
        arr = np.dstack([pixels[:, :, ::-1], alpha])
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ImageError("PNG encoding failed")
    return buf.tobytes()


def metadata_chunks(meta: PhotoMetadata, color_type: int) -> list[bytes]:
    """Chunks for `meta` plus the source's own ancillary chunks (PNG -> PNG)."""
    out = []
    if meta.icc:
        out.append(chunk_bytes(b"iCCP", b"ICC profile\0\0" + zlib.compress(meta.icc, 9)))
    if meta.exif:
        out.append(chunk_bytes(b"eXIf", meta.exif))
    if meta.xmp:
        out.append(chunk_bytes(b"iTXt", XMP_KEYWORD + b"\0\0\0\0\0" + meta.xmp))
    if meta.iptc:
        # Inside a Photoshop resource block, as ExifTool writes it.
        text = raw_profile_text("iptc", iptc_resource(meta.iptc))
        out.append(chunk_bytes(b"zTXt", b"Raw profile type iptc\0\0" + zlib.compress(text, 9)))
    if meta.png is not None:
        for ctype, data in meta.png.extra_chunks:
            if ctype == b"sBIT" and meta.png.color_type != color_type:
                continue  # sBIT's length depends on the colour type
            out.append(chunk_bytes(ctype, data))
    return out


def encode_png(pixels: np.ndarray, alpha: np.ndarray | None, meta: PhotoMetadata) -> bytes:
    """PNG bytes for (H, W) gray or (H, W, 3) RGB pixels (+ alpha), uint8 or uint16."""
    encoded = parse_chunks(_encode_pixels(pixels, alpha), check_crc=False)
    header = parse_ihdr(encoded)
    parts = [SIGNATURE, chunk_bytes(b"IHDR", encoded[0].data)]
    parts += metadata_chunks(meta, header.color_type)
    parts += [chunk_bytes(c.type, c.data) for c in encoded if c.type == b"IDAT"]
    parts.append(chunk_bytes(b"IEND", b""))
    return b"".join(parts)
