"""EXIF blocks: pull them out of TIFF files, rebuild them, and graft them into TIFF output.

An EXIF block is a small TIFF structure ("II*\\0" or "MM\\0*" header, IFD0 with camera tags,
Exif/GPS/Interop sub-IFDs). JPEG, PNG and WebP carry it verbatim; a TIFF file *is* such a
structure, so TIFF input and output need the translation done here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from abpn_cli.imaging.ifd import (
    BIGTIFF_ONLY_TYPES,
    BlockWriter,
    ByteSource,
    BytesSource,
    Entry,
    Ifd,
    IfdError,
    TiffHeader,
    header_bytes,
    read_header,
    read_ifd,
)

EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
MAKERNOTE = 0x927C
FNUMBER = 0x829D  # in the Exif sub-IFD, RATIONAL
ORIENTATION = 0x0112
XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG, ICC_TAG = 700, 33723, 34377, 34675
MAX_JPEG_EXIF = 65533 - 6  # APP1 payload limit minus the "Exif\0\0" header

# Tags that describe how pixels are stored. They are regenerated for every output (so
# dimension tags stay true) and never copied from an EXIF block into a TIFF's IFD0.
IMAGE_STRUCTURE_TAGS = frozenset(
    {
        254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281,
        284, 288, 289, 290, 291, 292, 293, 297, 317, 320, 322, 323, 324, 325, 330, 332, 333,
        334, 336, 337, 338, 339, 340, 341, 342, 347, 512, 513, 514, 515, 517, 518, 519, 520,
        521, 529, 530, 531, 532, 32995, 32996, 32997, 32998,
    }
)  # fmt: skip
# Photoshop's layer data (ImageSourceData): it describes the pre-retouch pixels, so copying
# it would let Photoshop reopen the old layers over the new image.
STALE_TAGS = frozenset({37724})
# Metadata that PhotoMetadata carries in its own fields (ICC, XMP, IPTC, Photoshop IRB).
FIELD_TAGS = frozenset({XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG, ICC_TAG})
POINTER_TAGS = frozenset({EXIF_IFD, GPS_IFD, INTEROP_IFD})


@dataclass(frozen=True)
class TiffTagFields:
    """The metadata a TIFF's IFD0 holds outside EXIF proper."""

    icc: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    photoshop_irb: bytes | None = None


def strip_exif_header(data: bytes) -> bytes:
    """EXIF payloads in JPEG APP1, and sometimes in PNG/WebP, start with "Exif\\0\\0"."""
    return data[6:] if data.startswith(b"Exif\0") else data


def _classic_entries(entries: list[Entry]) -> list[Entry]:
    """Drop BigTIFF-only types, which an EXIF block (always classic TIFF) cannot hold."""
    return [e for e in entries if e.type not in BIGTIFF_ONLY_TYPES]


def _pointer(entries: list[Entry], tag: int, bo: str) -> int | None:
    for e in entries:
        if e.tag == tag and e.count >= 1:
            try:
                return e.ints(bo)[0]
            except IfdError:
                return None
    return None


def _sub_ifd(src: ByteSource, header: TiffHeader, entries: list[Entry], tag: int) -> Ifd | None:
    offset = _pointer(entries, tag, header.byteorder)
    if not offset:
        return None
    sub, _ = read_ifd(src, header, offset)
    sub = [e for e in _classic_entries(sub) if e.tag not in POINTER_TAGS or e.tag == INTEROP_IFD]
    node = Ifd([e for e in sub if e.tag != INTEROP_IFD])
    if tag == EXIF_IFD:
        interop = _sub_ifd(src, header, sub, INTEROP_IFD)
        if interop is not None:
            node.children[INTEROP_IFD] = interop
    return node


def _makernote(node: Ifd | None) -> Entry | None:
    if node is None:
        return None
    return next((e for e in node.entries if e.tag == MAKERNOTE), None)


def build_exif_block(byteorder: str, root: Ifd) -> bytes:
    """Serialize IFD0 + sub-IFDs as an EXIF block.

    The maker note keeps its original absolute offset when that fits in a JPEG APP1
    segment: many maker notes (Canon, Sony, ...) store offsets counted from the TIFF header,
    which stay valid only if the note does not move.
    """
    writer = BlockWriter(byteorder, start=8)
    note = _makernote(root.children.get(EXIF_IFD))
    if note and note.offset and 8 <= note.offset <= MAX_JPEG_EXIF - len(note.data):
        writer.pin(MAKERNOTE, note.offset, len(note.data))
    first = writer.write_ifd(root)
    return header_bytes(byteorder, first) + writer.getvalue()


def exif_from_tiff(
    src: ByteSource, header: TiffHeader, ifd0: list[Entry]
) -> tuple[bytes | None, TiffTagFields]:
    """EXIF block and ICC/XMP/IPTC/IRB from a TIFF file's IFD0 (structure tags left out)."""
    bo = header.byteorder
    fields = {e.tag: e.data for e in ifd0 if e.tag in FIELD_TAGS}
    tags = TiffTagFields(
        icc=fields.get(ICC_TAG),
        xmp=fields.get(XMP_TAG),
        iptc=fields.get(IPTC_TAG),
        photoshop_irb=fields.get(PHOTOSHOP_TAG),
    )
    skip = IMAGE_STRUCTURE_TAGS | STALE_TAGS | FIELD_TAGS | POINTER_TAGS
    root = Ifd([e for e in _classic_entries(ifd0) if e.tag not in skip])
    for tag in (EXIF_IFD, GPS_IFD):
        child = _sub_ifd(src, header, ifd0, tag)
        if child is not None:
            root.children[tag] = child
    if not root.entries and not root.children:
        return None, tags
    return build_exif_block(bo, root), tags


def exif_ifd0(block: bytes) -> tuple[str, list[Entry]]:
    """Byte order and IFD0 entries of an EXIF block (raises IfdError if malformed)."""
    src = BytesSource(block)
    header = read_header(src)
    if header.bigtiff:
        raise IfdError("EXIF block uses the BigTIFF layout")
    entries, _ = read_ifd(src, header, header.first_ifd)
    return header.byteorder, entries


def orientation(block: bytes | None) -> int | None:
    """The EXIF Orientation value (1-8), or None when absent or unreadable."""
    if not block:
        return None
    try:
        bo, entries = exif_ifd0(block)
        value = _pointer(entries, ORIENTATION, bo)
    except (IfdError, struct.error):
        return None
    return value if value is not None and 1 <= value <= 8 else None


def upright(block: bytes) -> bytes:
    """`block` with IFD0's Orientation set to 1 (top-left), every other byte as it was: for
    pixels already turned upright (HEIF decoding applies irot/imir), whose EXIF would have a
    viewer, or pillow-heif writing an irot from it, turn them a second time."""
    try:
        bo, _ = exif_ifd0(block)  # validates the header and IFD0
        (first,) = struct.unpack(f"{bo}I", block[4:8])
        (count,) = struct.unpack(f"{bo}H", block[first : first + 2])
    except (IfdError, struct.error):
        return block
    out = bytearray(block)
    for i in range(count):
        at = first + 2 + 12 * i
        tag, kind, n = struct.unpack(f"{bo}HHI", block[at : at + 8])
        if tag == ORIENTATION and kind == 3 and n == 1:  # SHORT, held in the entry itself
            out[at + 8 : at + 10] = struct.pack(f"{bo}H", 1)
    return bytes(out)


def f_number(block: bytes | None) -> float | None:
    """The EXIF FNumber (the aperture a frame was shot at), or None when absent or unreadable.
    Dust shadows grow and soften as the aperture opens, so a dust profile records it."""
    if not block:
        return None
    try:
        src = BytesSource(block)
        header = read_header(src)
        entries, _ = read_ifd(src, header, header.first_ifd)
        sub = _sub_ifd(src, header, entries, EXIF_IFD)
        entry = next((e for e in sub.entries if e.tag == FNUMBER), None) if sub else None
        if entry is None or entry.type != 5 or len(entry.data) < 8:
            return None
        num, den = struct.unpack(f"{header.byteorder}II", entry.data[:8])
    except (IfdError, struct.error):
        return None
    return num / den if den and num else None


def graft_entries(block: bytes, drop: frozenset[int]) -> tuple[str, list[Entry]]:
    """IFD0 entries of `block` to copy into a TIFF whose file starts with `block` verbatim.

    Because the block sits at file offset 0, its Exif/GPS pointers and every offset inside
    the maker note stay valid without rewriting a byte of the sub-IFDs.
    """
    bo, entries = exif_ifd0(block)
    skip = IMAGE_STRUCTURE_TAGS | STALE_TAGS | drop
    return bo, [e for e in entries if e.tag not in skip]
