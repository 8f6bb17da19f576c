"""Identify a file by its first bytes, never by its name, and say clearly what it is not."""

from __future__ import annotations

from abpn_cli.imaging.errors import ImageError

SNIFF_BYTES = 64

# Recognised but unsupported containers: (offset, magic, name).
_OTHER_FORMATS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"8BPS", "Photoshop PSD"),
    (0, b"%PDF", "PDF document"),
    (0, b"PK\x03\x04", "ZIP archive"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (0, b"\x00\x00\x01\x00", "Windows icon"),
    (0, b"qoif", "QOI"),
)
# Camera RAWs that are not TIFF files (DNG, CR2, NEF, ARW... start like a TIFF and are told
# apart by their tags: imaging.raw.is_raw_tiff).
_RAW_MAGIC = (b"FUJIFILMCCD-RAW", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_FTYP_BRANDS = {
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def _looks_like_text(head: bytes) -> bool:
    """True for UTF-8/ASCII text: no NUL bytes and (almost) only printable characters."""
    if b"\0" in head:
        return False
    text = head.decode("utf-8", errors="ignore")
    if not text:
        return False
    printable = sum(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    return printable >= 0.95 * len(text) and len(text) >= 0.75 * len(head)


def sniff(head: bytes) -> str:
    """The format ("jpeg", "png", "tiff", "webp", "heif", "raw") from the first bytes, else
    ImageError. A TIFF-structured RAW sniffs as "tiff"; the decoder looks at its tags."""
    if not head:
        raise ImageError("empty file (0 bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(_RAW_MAGIC):
        return "raw"
    if head[4:8] == b"ftyp":
        if head[8:12] in HEIF_BRANDS:
            return "heif"
        if head[8:12] == b"crx ":
            return "raw"  # Canon CR3
        brand = _FTYP_BRANDS.get(head[8:12])
        if brand:
            raise ImageError(f"{brand} is not supported: convert to JPEG or TIFF first")
    name = next((n for off, m, n in _OTHER_FORMATS if head[off : off + len(m)] == m), None)
    if name is None and head[:2] == b"BM" and head[6:10] == bytes(4):
        name = "BMP"
    if name is not None:
        raise ImageError(f"{name} is not supported (only JPEG, PNG, TIFF, WebP, HEIC, camera RAW)")
    if _looks_like_text(head):
        raise ImageError("not an image: file starts with text")
    if head.startswith(b"\xff\xd8"):
        raise ImageError("corrupt JPEG (no marker after the start-of-image)")
    if not any(head):
        raise ImageError("not an image: file starts with zero bytes")
    raise ImageError(f"not an image: unrecognised file format (starts with {head[:8].hex(' ')})")
