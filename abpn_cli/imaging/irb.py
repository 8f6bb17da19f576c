"""IPTC-IIM and Photoshop image-resource blocks (where JPEG keeps its IPTC).

JPEG stores IPTC inside a Photoshop resource block (APP13, resource 0x0404) while TIFF and
PNG store the bare IIM records; these helpers convert between the two without touching the
records themselves.
"""

from __future__ import annotations

import struct

PHOTOSHOP_HEADER = b"Photoshop 3.0\0"
IPTC_RESOURCE = 0x0404


def iter_resources(irb: bytes) -> list[tuple[int, int, int]]:
    """(resource id, data start, data end) for each well-formed "8BIM" resource."""
    out = []
    pos = 0
    while pos + 12 <= len(irb) and irb[pos : pos + 4] == b"8BIM":
        (rid,) = struct.unpack(">H", irb[pos + 4 : pos + 6])
        name_len = irb[pos + 6]
        name_end = pos + 7 + name_len
        name_end += (name_end - pos) & 1  # Pascal name padded to an even length
        if name_end + 4 > len(irb):
            break
        (size,) = struct.unpack(">I", irb[name_end : name_end + 4])
        start = name_end + 4
        end = start + size
        if end > len(irb):
            break
        out.append((rid, start, end))
        pos = end + (size & 1)
    return out


def iptc_from_irb(irb: bytes | None) -> bytes | None:
    """The IPTC-IIM records inside a Photoshop resource block, if any."""
    if not irb:
        return None
    for rid, start, end in iter_resources(irb):
        if rid == IPTC_RESOURCE:
            return irb[start:end]
    return None


def iptc_resource(iptc: bytes) -> bytes:
    """One "8BIM" 0x0404 resource holding `iptc` (empty name, even padding)."""
    pad = b"\0" if len(iptc) & 1 else b""
    return b"8BIM" + struct.pack(">HHI", IPTC_RESOURCE, 0, len(iptc)) + iptc + pad


def irb_for(irb: bytes | None, iptc: bytes | None) -> bytes | None:
    """A resource block carrying `iptc`: the source block if it has it, else one built for it."""
    if irb and (iptc is None or iptc_from_irb(irb) is not None):
        return irb
    if iptc is None:
        return None
    return (irb or b"") + iptc_resource(iptc)


def trim_iim(data: bytes) -> bytes:
    """Drop zero padding after the last IIM dataset (TIFF stores IPTC as 4-byte LONGs)."""
    pos = 0
    while pos + 5 <= len(data) and data[pos] == 0x1C:
        (length,) = struct.unpack(">H", data[pos + 3 : pos + 5])
        if length & 0x8000:  # extended dataset: length-of-length follows
            nlen = length & 0x7FFF
            if nlen > 4 or pos + 5 + nlen > len(data):
                return data
            length = int.from_bytes(data[pos + 5 : pos + 5 + nlen], "big")
            pos += nlen
        pos += 5 + length
    if pos <= len(data) and not any(data[pos:]):
        return data[:pos]
    return data
