"""JPEG: decode with Pillow, encode (imaging.jpegenc), and splice the source's metadata segments.

Metadata is never passed through Pillow's encoder: the APP1 Exif/XMP, APP2 ICC and APP13
IPTC segments are taken from the source bytes and inserted into the new stream, so EXIF
(maker notes included) arrives byte for byte.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import JpegImagePlugin

from abpn_cli.imaging.damage import jpeg_damage
from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import MAX_JPEG_EXIF, strip_exif_header
from abpn_cli.imaging.irb import PHOTOSHOP_HEADER, iptc_from_irb, irb_for
from abpn_cli.imaging.jpegenc import encode_stream
from abpn_cli.imaging.photo import JpegInfo, Photo, PhotoMetadata
from abpn_cli.imaging.pixels import check_pixel_count, gray_to_rgb

APP0, APP1, APP2, APP13, APP14, COM = 0xE0, 0xE1, 0xE2, 0xED, 0xEE, 0xFE
SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
EXIF_HEADER = b"Exif\0\0"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\0"
ICC_HEADER = b"ICC_PROFILE\0"
MAX_PAYLOAD = 65533  # segment length field (2 bytes) counts itself
ICC_CHUNK = MAX_PAYLOAD - len(ICC_HEADER) - 2
IRB_CHUNK = MAX_PAYLOAD - len(PHOTOSHOP_HEADER)
ACCEPT_HINT = "; --accept-damaged processes it anyway"
CIFF_ID = b"HEAPJPGM"  # Canon CIFF in APP0: "II" or "MM", a 4-byte offset, then this
ADOBE_ID = b"Adobe"


@dataclass(frozen=True)
class JpegHeader:
    """Everything before the first scan: metadata segments and the frame header."""

    segments: tuple[tuple[int, bytes], ...]  # APPn/COM (marker, payload) in file order
    sof: int
    precision: int
    width: int
    height: int
    sampling: tuple[tuple[int, int], ...]  # (h, v) per component
    scan_start: int


def parse_header(data: bytes) -> JpegHeader:
    """Walk the marker segments up to the first SOS (raises ImageError when malformed)."""
    pos = 2
    segments: list[tuple[int, bytes]] = []
    sof: tuple[int, int, int, int, tuple[tuple[int, int], ...]] | None = None
    while True:
        while (
            pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF
        ):
            pos += 1  # fill bytes
        if pos + 2 > len(data):
            raise ImageError("truncated JPEG (file ends inside the header)")
        if data[pos] != 0xFF:
            raise ImageError(f"corrupt JPEG (expected a marker at byte {pos})")
        marker = data[pos + 1]
        if marker in STANDALONE_MARKERS:
            pos += 2
            continue
        if marker == EOI:
            raise ImageError("corrupt JPEG (end of image before any image data)")
        if pos + 4 > len(data):
            raise ImageError("truncated JPEG (file ends inside the header)")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ImageError("truncated JPEG (file ends inside the header)")
        payload = data[pos + 4 : end]
        if marker == SOS:
            if sof is None:
                raise ImageError("corrupt JPEG (image data before the frame header)")
            sof_marker, precision, height, width, sampling = sof
            return JpegHeader(tuple(segments), sof_marker, precision, width, height, sampling, end)
        if 0xE0 <= marker <= 0xEF or marker == COM:
            segments.append((marker, payload))
        elif marker in SOF_MARKERS and sof is None:
            if len(payload) < 6:
                raise ImageError("corrupt JPEG (short frame header)")
            precision, height, width, ncomp = struct.unpack(">BHHB", payload[:6])
            comps = payload[6 : 6 + 3 * ncomp]
            if len(comps) < 3 * ncomp:
                raise ImageError("corrupt JPEG (short frame header)")
            sampling = tuple((comps[i + 1] >> 4, comps[i + 1] & 15) for i in range(0, 3 * ncomp, 3))
            sof = (marker, precision, height, width, sampling)
        pos = end


def _subsampling_name(sampling: tuple[tuple[int, int], ...]) -> str:
    if len(sampling) != 3:
        return "other"
    (yh, yv), (ch, cv) = sampling[0], sampling[1]
    if sampling[1] != sampling[2] or ch == 0 or cv == 0:
        return "other"
    ratio = (yh / ch, yv / cv)
    return {
        (1, 1): "4:4:4",
        (2, 1): "4:2:2",
        (2, 2): "4:2:0",
        (1, 2): "4:4:0",
        (4, 1): "4:1:1",
    }.get(ratio, "other")


def _check_frame(header: JpegHeader) -> None:
    """Refuse what Pillow cannot decode faithfully, with the specific reason."""
    ncomp = len(header.sampling)
    if header.sof == 0xC3 or header.sof in (0xC7, 0xCB, 0xCF):
        raise ImageError("lossless JPEG is not supported")
    if header.precision != 8:
        raise ImageError(f"{header.precision}-bit JPEG is not supported (only 8-bit)")
    if ncomp == 4:
        raise ImageError("CMYK JPEG is not supported: convert to RGB first")
    if ncomp not in (1, 3):
        raise ImageError(f"JPEG with {ncomp} colour components is not supported")
    if header.height == 0:
        raise ImageError("JPEG without a height in the frame header (DNL) is not supported")


@dataclass(frozen=True)
class _Metadata:
    exif: bytes | None
    xmp: bytes | None
    icc: bytes | None
    irb: bytes | None
    jfif: bytes | None
    extra: tuple[tuple[int, bytes], ...]


def _split_metadata(segments: tuple[tuple[int, bytes], ...], ncomp: int) -> _Metadata:
    """Sort APPn/COM segments into what PhotoMetadata carries and what travels as-is."""
    exif = xmp = jfif = None
    icc_chunks: list[tuple[int, bytes]] = []
    irb_parts: list[bytes] = []
    extra: list[tuple[int, bytes]] = []
    for marker, payload in segments:
        if marker == APP1 and payload.startswith(b"Exif\0") and exif is None:
            exif = strip_exif_header(payload)
        elif marker == APP1 and payload.startswith(XMP_HEADER) and xmp is None:
            xmp = payload[len(XMP_HEADER) :]
        elif marker == APP2 and payload.startswith(ICC_HEADER) and len(payload) >= 14:
            icc_chunks.append((payload[12], payload[14:]))
        elif marker == APP13 and payload.startswith(PHOTOSHOP_HEADER):
            irb_parts.append(payload[len(PHOTOSHOP_HEADER) :])
        elif marker == APP0 and payload.startswith(b"JFIF\0") and len(payload) >= 12:
            jfif = jfif or payload[:12] + b"\0\0"  # density kept, stale thumbnail dropped
        elif _carried(marker, payload, ncomp):
            extra.append((marker, payload))
    icc = b"".join(chunk for _, chunk in sorted(icc_chunks, key=lambda c: c[0])) or None
    irb = b"".join(irb_parts) or None
    return _Metadata(exif, xmp, icc, irb, jfif, tuple(extra))


def _carried(marker: int, payload: bytes, ncomp: int) -> bool:
    """Whether a segment still describes the re-encoded image (README, "JPEG").

    Carried: Canon's CIFF APP0 (camera and shot data; its offsets count from inside the
    segment, so it can move), and Adobe APP14 when its colour transform is the one the
    encoder writes (1 = YCbCr for colour, 0 for grey). Dropped: other APP0 (JFXX holds a
    thumbnail of the old pixels; AVI1 and Ocad describe a video frame's or scanner's
    coding), Adobe APP14 with another transform (an RGB-coded source: read with it, the
    YCbCr output would decode to wrong colours), APP2 MPF (its offsets point at images after
    EOI, previews and gain maps of the old pixels, that are not written: kept, it would
    point past the end of the file), and APP11 (JUMBF: a C2PA credential signs the old
    pixels, so carrying it would be a false claim; JPEG XT boxes describe the old coding).
    """
    if marker == APP0:
        return len(payload) >= 14 and payload[:2] in (b"II", b"MM") and payload[6:14] == CIFF_ID
    if marker == APP14 and payload.startswith(ADOBE_ID):
        return len(payload) == 12 and payload[11] == (0 if ncomp == 1 else 1)
    if marker == 0xEB:
        return False
    return not (marker == APP2 and payload.startswith(b"MPF\0"))


def _damage(data: bytes, scan_start: int, accept: bool) -> tuple[bytes, tuple[str, ...]]:
    """The stream to decode and its damage; damage fails the file unless accepted.

    A stream cut off before its EOI gets one appended when accepted, so libjpeg fills the
    missing rows (grey) instead of Pillow refusing the file.
    """
    damage: tuple[str, ...] = ()
    if b"\xff\xd9" not in data[scan_start:]:
        if not accept:
            raise ImageError("truncated JPEG (premature end of data)" + ACCEPT_HINT)
        data, damage = data + b"\xff\xd9", ("truncated JPEG (no end-of-image marker)",)
    damage += tuple(w for w in jpeg_damage(data) if w not in damage)
    if damage and not accept:
        raise ImageError(f"damaged JPEG ({'; '.join(damage)})" + ACCEPT_HINT)
    return data, damage


def read_jpeg(path: Path, data: bytes, max_pixels: int, accept_damaged: bool = False) -> Photo:
    """Decode a JPEG as stored (never rotated) with its metadata and encoding choices.

    Damage libjpeg recovers from (imaging.damage) fails the file unless `accept_damaged`;
    then the recovered pixels are used and Photo.damage says what was wrong.
    """
    header = parse_header(data)
    _check_frame(header)
    check_pixel_count(header.width, header.height, max_pixels)
    data, damage = _damage(data, header.scan_start, accept_damaged)
    try:
        # The plugin class directly, not Image.open: its global bomb limit (about 179 MP)
        # would refuse photos our own --max-megapixels check allows.
        with JpegImagePlugin.JpegImageFile(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            array = np.asarray(im)
            qtables = tuple(
                tuple(int(v) for v in im.quantization[k]) for k in sorted(im.quantization)
            )
    except OSError as exc:
        if "truncated" in str(exc):
            raise ImageError("truncated JPEG (premature end of data)") from exc
        raise ImageError(f"corrupt JPEG data ({exc})") from exc
    if mode == "L":
        pixels, grayscale = gray_to_rgb(array), True
    elif mode == "RGB":
        pixels, grayscale = np.ascontiguousarray(array), False
    else:
        raise ImageError(f"JPEG in mode {mode} is not supported")
    md = _split_metadata(header.segments, len(header.sampling))
    info = JpegInfo(
        qtables=qtables,
        subsampling=_subsampling_name(header.sampling),
        progressive=header.sof in (0xC2, 0xC6, 0xCA, 0xCE),
        jfif=md.jfif,
        extra_segments=md.extra,
    )
    meta = PhotoMetadata(
        exif=md.exif,
        icc=md.icc,
        xmp=md.xmp,
        iptc=iptc_from_irb(md.irb),
        photoshop_irb=md.irb,
        grayscale=grayscale,
        jpeg=info,
    )
    return Photo(pixels, None, 8, "jpeg", meta, path, damage=damage)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def metadata_segments(meta: PhotoMetadata) -> list[bytes]:
    """APPn segments for `meta`, in the order the Exif and JFIF specs expect."""
    out: list[bytes] = []
    if meta.exif:
        if len(meta.exif) > MAX_JPEG_EXIF:
            raise ImageError(
                f"EXIF block too large for JPEG ({len(meta.exif)} bytes, max {MAX_JPEG_EXIF}):"
                " keep the source format"
            )
        out.append(_segment(APP1, EXIF_HEADER + meta.exif))
    if meta.xmp:
        if len(XMP_HEADER) + len(meta.xmp) > MAX_PAYLOAD:
            raise ImageError(
                f"XMP packet too large for JPEG ({len(meta.xmp)} bytes, max "
                f"{MAX_PAYLOAD - len(XMP_HEADER)}): keep the source format"
            )
        out.append(_segment(APP1, XMP_HEADER + meta.xmp))
    extra = meta.jpeg.extra_segments if meta.jpeg else ()
    out += [_segment(m, p) for m, p in extra if m == APP1]  # extended XMP follows the main one
    if meta.icc:
        chunks = [meta.icc[i : i + ICC_CHUNK] for i in range(0, len(meta.icc), ICC_CHUNK)]
        if len(chunks) > 255:
            raise ImageError("ICC profile too large for JPEG (more than 255 segments)")
        for n, chunk in enumerate(chunks, start=1):
            out.append(_segment(APP2, ICC_HEADER + bytes([n, len(chunks)]) + chunk))
    irb = irb_for(meta.photoshop_irb, meta.iptc)
    if irb:
        for i in range(0, len(irb), IRB_CHUNK):
            out.append(_segment(APP13, PHOTOSHOP_HEADER + irb[i : i + IRB_CHUNK]))
    out += [_segment(m, p) for m, p in extra if m != APP1]
    return out


def encode_jpeg(pixels: np.ndarray, meta: PhotoMetadata, quality: int | None = None) -> bytes:
    """JPEG bytes for uint8 (H, W) gray or (H, W, 3) RGB pixels, with `meta` spliced in."""
    stream = encode_stream(pixels, meta.jpeg, quality)
    return splice(stream, metadata_segments(meta), meta.jpeg)


def splice(stream: bytes, segments: list[bytes], source: JpegInfo | None) -> bytes:
    """Replace the APPn/COM segments Pillow wrote with ours.

    Pillow's JFIF APP0 stays only for non-JPEG sources; a JPEG source gets its own JFIF
    back (density preserved) or none, as it had.
    """
    pos = 2
    own_jfif = b""
    while stream[pos] == 0xFF and (0xE0 <= stream[pos + 1] <= 0xEF or stream[pos + 1] == COM):
        (length,) = struct.unpack(">H", stream[pos + 2 : pos + 4])
        if stream[pos + 1] == APP0 and not own_jfif:
            own_jfif = stream[pos : pos + 2 + length]
        pos += 2 + length
    head = own_jfif
    if source is not None:
        head = _segment(APP0, source.jfif) if source.jfif else b""
    return stream[:2] + head + b"".join(segments) + stream[pos:]
