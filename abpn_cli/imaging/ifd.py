"""Minimal TIFF/EXIF IFD reader and writer.

Why our own: tifffile decodes pixels well but cannot write EXIF sub-IFDs and does not hand
back raw entry bytes, while EXIF has to travel byte-exact (maker notes hold offsets into the
block). Entries are kept as raw value bytes in their container's byte order and new IFDs are
written in that same order, so no value is ever decoded and re-encoded.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, IFD_TYPE = 1, 2, 3, 4, 5, 7, 13
TYPE_SIZES: Mapping[int, int] = {
    1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
    16: 8, 17: 8, 18: 8,
}  # fmt: skip
BIGTIFF_ONLY_TYPES = frozenset({16, 17, 18})
_INT_CODES: Mapping[int, str] = {1: "B", 3: "H", 4: "I", 6: "b", 7: "B", 8: "h", 9: "i", 13: "I"}
_INT_CODES_BIG: Mapping[int, str] = {16: "Q", 17: "q", 18: "Q"}
MAX_ENTRIES = 4096  # far above any real IFD; bounds the work a corrupt count can cause


class IfdError(ValueError):
    """The bytes are not a well-formed TIFF structure (bad header, offset out of range...)."""


class ByteSource(Protocol):
    """Random access to a TIFF structure: a whole file or an in-memory EXIF block."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...


def _check_range(offset: int, length: int, size: int) -> None:
    if offset < 0 or length < 0 or offset + length > size:
        raise IfdError(f"offset {offset} + {length} bytes lies outside the {size}-byte data")


@dataclass(frozen=True)
class BytesSource:
    """An EXIF block (or any TIFF structure) held in memory."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read_at(self, offset: int, length: int) -> bytes:
        _check_range(offset, length, len(self.data))
        return self.data[offset : offset + length]


@dataclass(frozen=True)
class FileSource:
    """A TIFF file read by seeking, so metadata is parsed without loading pixel data."""

    fh: BinaryIO
    size: int

    def read_at(self, offset: int, length: int) -> bytes:
        _check_range(offset, length, self.size)
        self.fh.seek(offset)
        data = self.fh.read(length)
        if len(data) != length:
            raise IfdError(f"short read at offset {offset}")
        return data


@dataclass(frozen=True)
class TiffHeader:
    byteorder: str  # "<" (II) or ">" (MM)
    bigtiff: bool
    first_ifd: int


@dataclass(frozen=True)
class Entry:
    """One IFD entry; `data` is the value as stored (count * type size bytes)."""

    tag: int
    type: int
    count: int
    data: bytes
    offset: int | None = None  # where an out-of-line value sat in its source

    def ints(self, byteorder: str) -> tuple[int, ...]:
        """Integer values of a BYTE/SHORT/LONG/IFD-like entry."""
        code = _INT_CODES.get(self.type) or _INT_CODES_BIG.get(self.type)
        if code is None:
            raise IfdError(f"tag {self.tag} has non-integer type {self.type}")
        return struct.unpack(f"{byteorder}{self.count}{code}", self.data)


def make_entry(tag: int, type_: int, values: bytes | Sequence[int], byteorder: str) -> Entry:
    """A new entry from raw bytes (BYTE/ASCII/UNDEFINED) or from integers."""
    if isinstance(values, bytes | bytearray):
        return Entry(tag, type_, len(values) // TYPE_SIZES[type_], bytes(values))
    code = _INT_CODES[type_]
    return Entry(tag, type_, len(values), struct.pack(f"{byteorder}{len(values)}{code}", *values))


def read_header(src: ByteSource) -> TiffHeader:
    """Byte order, classic/BigTIFF, and where IFD0 lives."""
    if src.size < 8:
        raise IfdError("too short for a TIFF header")
    head = src.read_at(0, 8)
    if head[:2] == b"II":
        bo = "<"
    elif head[:2] == b"MM":
        bo = ">"
    else:
        raise IfdError("no TIFF byte-order mark")
    (magic,) = struct.unpack(bo + "H", head[2:4])
    if magic == 42:
        (first,) = struct.unpack(bo + "I", head[4:8])
        return TiffHeader(bo, False, first)
    if magic == 43:
        head = src.read_at(0, 16)
        bytesize, _ = struct.unpack(bo + "HH", head[4:8])
        if bytesize != 8:
            raise IfdError("bad BigTIFF header")
        (first,) = struct.unpack(bo + "Q", head[8:16])
        return TiffHeader(bo, True, first)
    raise IfdError(f"bad TIFF magic number {magic}")


def read_ifd(src: ByteSource, header: TiffHeader, offset: int) -> tuple[list[Entry], int]:
    """Entries of the IFD at `offset` and the offset of the next IFD (0 if none).

    Entries with an unknown type or a value outside the data are skipped: they cannot be
    copied meaningfully, and one broken tag must not cost the rest.
    """
    bo = header.byteorder
    cfmt, csize, esize, inline, ofmt = (
        ("Q", 8, 20, 8, "Q") if header.bigtiff else ("H", 2, 12, 4, "I")
    )
    (count,) = struct.unpack(bo + cfmt, src.read_at(offset, csize))
    if count > MAX_ENTRIES:
        raise IfdError(f"IFD at {offset} claims {count} entries")
    table = src.read_at(offset + csize, count * esize + inline)
    entries = []
    for i in range(count):
        raw = table[i * esize : (i + 1) * esize]
        tag, type_ = struct.unpack(bo + "HH", raw[:4])
        (n,) = struct.unpack(bo + ofmt, raw[4 : 4 + inline])
        size = TYPE_SIZES.get(type_)
        if size is None:
            continue
        nbytes = size * n
        value_field = raw[4 + inline :]
        if nbytes <= inline:
            entries.append(Entry(tag, type_, n, value_field[:nbytes]))
            continue
        (value_offset,) = struct.unpack(bo + ofmt, value_field)
        if value_offset + nbytes > src.size:
            continue
        entries.append(Entry(tag, type_, n, src.read_at(value_offset, nbytes), value_offset))
    (next_ifd,) = struct.unpack(bo + ofmt, table[count * esize :])
    return entries, next_ifd


def header_bytes(byteorder: str, first_ifd: int) -> bytes:
    """A classic TIFF header."""
    mark = b"II" if byteorder == "<" else b"MM"
    return mark + struct.pack(byteorder + "HI", 42, first_ifd)


@dataclass
class Ifd:
    """An IFD to write; `children` are sub-IFDs (Exif, GPS, Interop) pointed to by tag."""

    entries: list[Entry]
    children: dict[int, Ifd] = field(default_factory=dict)


class BlockWriter:
    """Lays out classic-TIFF IFDs and their values at absolute offsets from `start`.

    A pinned value (a maker note whose internal offsets count from the TIFF header) keeps
    its original absolute offset; everything else is allocated around the pinned range.
    """

    def __init__(self, byteorder: str, start: int) -> None:
        self.byteorder = byteorder
        self.start = start
        self.cursor = start
        self.buf = bytearray()
        self.pins: dict[tuple[int, int], int] = {}
        self.reserved: list[tuple[int, int]] = []

    def pin(self, tag: int, source_offset: int, length: int) -> None:
        """Write the value of `tag` that came from `source_offset` back at that same offset."""
        self.pins[(tag, source_offset)] = source_offset
        self.reserved.append((source_offset, source_offset + length))
        self.reserved.sort()

    def alloc(self, length: int) -> int:
        """Next word-aligned free offset for `length` bytes (TIFF wants even offsets)."""
        pos = self.cursor + (self.cursor & 1)
        for lo, hi in self.reserved:
            if pos < hi and pos + length > lo:
                pos = hi + (hi & 1)
        self.cursor = pos + length
        return pos

    def put(self, offset: int, data: bytes) -> None:
        rel = offset - self.start
        if rel < 0:
            raise IfdError("write before the start of the block")
        end = rel + len(data)
        if end > len(self.buf):
            self.buf.extend(bytes(end - len(self.buf)))
        self.buf[rel:end] = data

    def write_ifd(self, ifd: Ifd) -> int:
        """Write `ifd` (then its children) and return its absolute offset."""
        bo = self.byteorder
        by_tag: dict[int, Entry] = {}
        for e in ifd.entries:
            if e.tag not in ifd.children:
                by_tag.setdefault(e.tag, e)
        for tag in ifd.children:
            by_tag[tag] = Entry(tag, LONG, 1, bytes(4))
        tags = sorted(by_tag)
        start = self.alloc(2 + 12 * len(tags) + 4)
        table = bytearray(struct.pack(bo + "H", len(tags)))
        child_slots: dict[int, int] = {}
        for tag in tags:
            e = by_tag[tag]
            if tag in ifd.children:
                child_slots[tag] = start + len(table) + 8
                value = bytes(4)
            elif len(e.data) <= 4:
                value = e.data.ljust(4, b"\0")
            else:
                pinned = self.pins.get((tag, e.offset)) if e.offset is not None else None
                at = pinned if pinned is not None else self.alloc(len(e.data))
                self.put(at, e.data)
                value = struct.pack(bo + "I", at)
            table += struct.pack(bo + "HHI", tag, e.type, e.count) + value
        table += bytes(4)  # no next IFD
        self.put(start, bytes(table))
        for tag, child in ifd.children.items():
            self.put(child_slots[tag], struct.pack(bo + "I", self.write_ifd(child)))
        return start

    def getvalue(self) -> bytes:
        return bytes(self.buf)
