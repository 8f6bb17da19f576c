"""Fixture builders for the imaging tests: every test image is generated, none checked in.

These write files with Pillow, tifffile, OpenCV and piexif -- independent of the code under
test -- so a round trip through abpn_cli.imaging is checked against what other tools made.
"""

from __future__ import annotations

import functools
import io
import struct
from pathlib import Path

import numpy as np
import piexif
from PIL import Image, ImageCms

from tests.factories import pattern  # noqa: F401  (the imaging tests' test image lives there)

MAKERNOTE = b"FAKECAM\0" + bytes(range(256)) * 2
XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/jpeg"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def iim(record: int, dataset: int, value: bytes) -> bytes:
    return struct.pack(">BBBH", 0x1C, record, dataset, len(value)) + value


IPTC = (
    iim(1, 90, b"\x1b%G")
    + iim(2, 0, b"\x00\x04")
    + iim(2, 120, b"A caption")
    + iim(2, 25, b"keyword")
)


@functools.cache
def icc_profile() -> bytes:
    """An sRGB profile; cached because LittleCMS stamps the creation time into it."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_block(
    orientation: int = 1, makernote: bytes = MAKERNOTE, f_number: tuple[int, int] = (28, 10)
) -> bytes:
    """A camera-like EXIF block (big-endian, piexif) without the "Exif\\0\\0" prefix."""
    zeroth = {
        piexif.ImageIFD.Make: b"TestMaker",
        piexif.ImageIFD.Model: b"Model X100",
        piexif.ImageIFD.Orientation: orientation,
        piexif.ImageIFD.DateTime: b"2024:05:06 07:08:09",
        piexif.ImageIFD.XResolution: (300, 1),
        piexif.ImageIFD.YResolution: (300, 1),
        piexif.ImageIFD.ResolutionUnit: 2,
        piexif.ImageIFD.Artist: b"A. Photographer",
    }
    exif = {
        piexif.ExifIFD.DateTimeOriginal: b"2024:05:06 07:08:09",
        piexif.ExifIFD.ExposureTime: (1, 250),
        piexif.ExifIFD.FNumber: f_number,
        piexif.ExifIFD.ISOSpeedRatings: 400,
        piexif.ExifIFD.MakerNote: makernote,
        piexif.ExifIFD.UserComment: b"ASCII\0\0\0hello",
    }
    gps = {
        piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
        piexif.GPSIFD.GPSLatitudeRef: b"N",
        piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (2400, 100)),
        piexif.GPSIFD.GPSLongitudeRef: b"E",
        piexif.GPSIFD.GPSLongitude: ((2, 1), (21, 1), (300, 100)),
    }
    dumped = piexif.dump({"0th": zeroth, "Exif": exif, "GPS": gps})
    assert dumped.startswith(b"Exif\0\0")
    return dumped[6:]


def little_endian_exif() -> bytes:
    """An Intel-order EXIF block (Pillow writes "II"), to cover both byte orders."""
    ex = Image.Exif()
    ex.endian = "<"
    ex[0x010F] = "LittleMaker"
    ex[0x0110] = "LE-1"
    ex[0x0112] = 1
    ex.get_ifd(0x8769)[0x9003] = "2023:01:02 03:04:05"
    ex.get_ifd(0x8769)[0x927C] = MAKERNOTE
    data = ex.tobytes()
    data = data[6:] if data.startswith(b"Exif\0\0") else data
    assert data.startswith(b"II*\0")
    return data


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def insert_segments(jpeg: bytes, segments: list[bytes]) -> bytes:
    """Put raw segments right after SOI (how tools add APPn blocks)."""
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of the segments before the first scan, independent of the codec."""
    out, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        out.append((marker, data[pos + 4 : pos + 2 + length]))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


def write_jpeg(
    path: Path,
    pixels: np.ndarray,
    *,
    exif: bytes | None = None,
    icc: bytes | None = None,
    xmp: bytes | None = None,
    iptc: bytes | None = None,
    quality: int = 90,
    subsampling: int = 2,
    progressive: bool = False,
    extra: list[bytes] | None = None,
) -> Path:
    """A JPEG written by Pillow, with metadata added the way cameras and editors add it."""
    buf = io.BytesIO()
    kwargs: dict[str, object] = {
        "quality": quality,
        "subsampling": subsampling,
        "progressive": progressive,
    }
    if exif:
        kwargs["exif"] = b"Exif\0\0" + exif
    if icc:
        kwargs["icc_profile"] = icc
    if xmp:
        kwargs["xmp"] = xmp
    image = Image.fromarray(
        pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    )
    image.save(buf, format="JPEG", **kwargs)
    data = buf.getvalue()
    segments = list(extra or [])
    if iptc:
        resource = (
            b"8BIM\x04\x04\0\0" + struct.pack(">I", len(iptc)) + iptc + b"\0" * (len(iptc) & 1)
        )
        segments.append(segment(0xED, b"Photoshop 3.0\0" + resource))
    if segments:
        # after Pillow's APP0/APP1/APP2 so the file looks like a normal editor output
        pos = 2
        while data[pos + 1] in range(0xE0, 0xF0):
            pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        data = data[:pos] + b"".join(segments) + data[pos:]
    path.write_bytes(data)
    return path


def add_short_tag(path: Path, tag: int, value: int) -> None:
    """Add (or replace) an inline SHORT tag in IFD0 of a classic TIFF, as a tag editor does:
    the old IFD0 table stays as dead bytes and a new one is appended at the end of the file.
    """
    data = bytearray(path.read_bytes())
    bo = "<" if data[:2] == b"II" else ">"
    (ifd0,) = struct.unpack(bo + "I", data[4:8])
    (n,) = struct.unpack(bo + "H", data[ifd0 : ifd0 + 2])
    raw = [bytes(data[ifd0 + 2 + 12 * i : ifd0 + 14 + 12 * i]) for i in range(n)]
    (next_ifd,) = struct.unpack(bo + "I", data[ifd0 + 2 + 12 * n : ifd0 + 6 + 12 * n])
    entries = {struct.unpack(bo + "H", e[:2])[0]: e for e in raw}
    entries[tag] = struct.pack(bo + "HHIHH", tag, 3, 1, value, 0)
    if len(data) & 1:
        data += b"\0"
    new_offset = len(data)
    data += struct.pack(bo + "H", len(entries))
    data += b"".join(entries[t] for t in sorted(entries))
    data += struct.pack(bo + "I", next_ifd)
    data[4:8] = struct.pack(bo + "I", new_offset)
    path.write_bytes(bytes(data))


def _canon_makernote(base: int) -> bytes:
    """A Canon-style maker note: an IFD whose value offsets count from the TIFF header, so
    it stays readable only if it is not moved inside the EXIF block."""
    strings = [(0x0006, b"Canon EOS TEST\0"), (0x0007, b"Firmware 1.2.3\0"), (0x0009, b"Owner\0")]
    head = 2 + 12 * len(strings) + 4
    table, data = struct.pack(">H", len(strings)), b""
    for tag, text in strings:
        table += struct.pack(">HHII", tag, 2, len(text), base + head + len(data))
        data += text + b"\0" * (len(text) & 1)
    return table + bytes(4) + data


def canon_exif_block(orientation: int = 1) -> bytes:
    """exif_block() with Make "Canon" and an offset-based maker note ExifTool can decode."""
    placeholder = _canon_makernote(0)
    block = exif_block(orientation, makernote=placeholder)
    at = block.index(placeholder)
    block = block[:at] + _canon_makernote(at) + block[at + len(placeholder) :]
    return block.replace(b"TestMaker\0", b"Canon\0\0\0\0\0")
