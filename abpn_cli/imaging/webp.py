"""WebP: RIFF chunks parsed here (size check, metadata), pixels through Pillow's libwebp."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, WebPImagePlugin

from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import strip_exif_header
from abpn_cli.imaging.photo import Photo, PhotoMetadata, WebpInfo
from abpn_cli.imaging.pixels import check_pixel_count

MAX_SIDE = 16383  # the WebP bitstream cannot hold more per side
DEFAULT_QUALITY = 95


@dataclass(frozen=True)
class WebpHeader:
    width: int
    height: int
    lossless: bool
    exif: bytes | None
    icc: bytes | None
    xmp: bytes | None


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ImageError("corrupt WebP (bad RIFF header)")
    (riff_size,) = struct.unpack("<I", data[4:8])
    if 8 + riff_size > len(data):
        raise ImageError("truncated WebP (file shorter than its RIFF header says)")
    out = []
    pos, end = 12, 8 + riff_size
    while pos + 8 <= end:
        fourcc, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if pos + 8 + size > end:
            raise ImageError(
                f"truncated WebP (chunk {fourcc.decode('latin-1')!r} runs past the end)"
            )
        out.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def _frame_size(fourcc: bytes, payload: bytes) -> tuple[int, int] | None:
    if fourcc == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", payload[6:10])
        return w & 0x3FFF, h & 0x3FFF
    if fourcc == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        (bits,) = struct.unpack("<I", payload[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def parse_webp(data: bytes) -> WebpHeader:
    """Size, lossless flag and metadata chunks, without decoding pixels."""
    chunks = _chunks(data)
    found = dict(chunks)
    if b"ANIM" in found or b"ANMF" in found:
        raise ImageError("animated WebP is not supported")
    size = None
    if b"VP8X" in found and len(found[b"VP8X"]) >= 10:
        v = found[b"VP8X"]
        size = (1 + int.from_bytes(v[4:7], "little"), 1 + int.from_bytes(v[7:10], "little"))
    for fourcc in (b"VP8 ", b"VP8L"):
        if size is None and fourcc in found:
            size = _frame_size(fourcc, found[fourcc])
    if size is None:
        raise ImageError("corrupt WebP (no image frame)")
    exif = found.get(b"EXIF")
    return WebpHeader(
        width=size[0],
        height=size[1],
        lossless=b"VP8L" in found,
        exif=strip_exif_header(exif) if exif else None,
        icc=found.get(b"ICCP"),
        xmp=found.get(b"XMP "),
    )


def read_webp(path: Path, data: bytes, max_pixels: int) -> Photo:
    """Decode a still WebP (RGB or RGBA, 8-bit)."""
    header = parse_webp(data)
    check_pixel_count(header.width, header.height, max_pixels)
    try:
        # Plugin class directly: Image.open's global bomb limit would override ours.
        with WebPImagePlugin.WebPImageFile(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            array = np.asarray(im)
    except OSError as exc:
        raise ImageError(f"corrupt WebP data ({exc})") from exc
    if mode not in ("RGB", "RGBA"):
        raise ImageError(f"WebP decoded in unexpected mode {mode}")
    pixels = np.ascontiguousarray(array[:, :, :3])
    alpha = np.ascontiguousarray(array[:, :, 3]) if mode == "RGBA" else None
    meta = PhotoMetadata(
        exif=header.exif,
        icc=header.icc,
        xmp=header.xmp,
        webp=WebpInfo(lossless=header.lossless),
    )
    return Photo(pixels, alpha, 8, "webp", meta, path)


def encode_webp(
    pixels: np.ndarray, alpha: np.ndarray | None, meta: PhotoMetadata, quality: int | None
) -> bytes:
    """WebP bytes for uint8 (H, W, 3) RGB (+ alpha); lossless if the source was."""
    height, width = pixels.shape[:2]
    if max(height, width) > MAX_SIDE:
        raise ImageError(f"WebP cannot hold {width}x{height} (max {MAX_SIDE} px per side)")
    array = pixels if alpha is None else np.dstack([pixels, alpha])
    lossless = bool(meta.webp and meta.webp.lossless)
    # For lossless WebP "quality" is encoder effort: keep Pillow's default there.
    effort = {} if lossless else {"quality": quality or DEFAULT_QUALITY}
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(
        buf,
        format="WEBP",
        lossless=lossless,
        exact=True,  # keep RGB under transparent pixels: alpha and colour pass through
        icc_profile=meta.icc or None,
        exif=meta.exif or b"",
        xmp=meta.xmp or b"",
        **effort,
    )
    return buf.getvalue()
