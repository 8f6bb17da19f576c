"""What a decoded photo is: pixels exactly as stored plus everything needed to write it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abpn_cli.imaging import exif as exif_mod

FORMATS = ("jpeg", "png", "tiff", "webp", "heif", "raw")  # "raw" is read, never written


@dataclass(frozen=True)
class JpegInfo:
    """Encoding choices of a JPEG source, reused so the output matches it."""

    qtables: tuple[tuple[int, ...], ...]  # Pillow's order (table id 0, 1, ...), natural order
    subsampling: str  # "4:4:4" | "4:2:2" | "4:2:0" | "4:4:0" | "4:1:1" | "other"
    progressive: bool
    jfif: bytes | None = None  # source APP0 JFIF payload (density), replaces Pillow's
    # Other APPn/COM segments (extended XMP, comments, vendor blocks) as (marker, payload),
    # carried only JPEG -> JPEG.
    extra_segments: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True)
class PngInfo:
    """PNG specifics: source colour type and ancillary chunks to carry PNG -> PNG."""

    color_type: int
    extra_chunks: tuple[tuple[bytes, bytes], ...] = ()  # (chunk type, data), e.g. pHYs, tEXt


@dataclass(frozen=True)
class TiffInfo:
    """TIFF specifics needed to write the same kind of file back."""

    compression: int  # source TIFF compression code (1 = none)
    byteorder: str  # "<" or ">"
    extrasample: int | None = None  # ExtraSamples value of the alpha channel (1 = premultiplied)


@dataclass(frozen=True)
class HeifInfo:
    bit_depth: int  # 8, 10 or 12: what the container holds (pixels are uint16 above 8)


@dataclass(frozen=True)
class RawInfo:
    """How a camera RAW was developed (imaging.raw.DEVELOP plus what LibRaw used): the
    report records it per file, since the output's look depends on it."""

    develop: dict[str, Any]


@dataclass(frozen=True)
class WebpInfo:
    lossless: bool


@dataclass(frozen=True)
class PhotoMetadata:
    """Metadata carried from input to output, kept as raw bytes (never re-serialised).

    exif: TIFF-structured EXIF block ("II*\\0"/"MM\\0*"), maker notes intact, without the
    JPEG "Exif\\0\\0" prefix. icc: ICC profile. xmp: main XMP packet. iptc: IPTC-IIM records.
    photoshop_irb: Photoshop image-resource block (JPEG APP13 / TIFF tag 34377) that usually
    also holds the IPTC. grayscale: the container stores one colour channel.
    """

    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    photoshop_irb: bytes | None = None
    grayscale: bool = False
    jpeg: JpegInfo | None = None
    png: PngInfo | None = None
    tiff: TiffInfo | None = None
    webp: WebpInfo | None = None
    heif: HeifInfo | None = None
    raw: RawInfo | None = None

    @property
    def orientation(self) -> int | None:
        """EXIF Orientation (1-8) as stored; informational only, pixels are never rotated."""
        return exif_mod.orientation(self.exif)

    @property
    def icc_color_space(self) -> str | None:
        """The ICC profile's data colour space ("RGB", "GRAY", ...), if there is a profile."""
        if self.icc is None or len(self.icc) < 20:
            return None
        return self.icc[16:20].decode("latin-1").strip()


@dataclass
class Photo:
    """A decoded image.

    pixels: (H, W, 3) RGB uint8/uint16, C-contiguous, exactly as stored (never rotated; a
    grayscale file is replicated to 3 channels and meta.grayscale is set). alpha: (H, W),
    same dtype, passed through untouched. bit_depth: 8 or 16, from the container.
    damage: what the decoder reported as damaged in a file read with accept_damaged (the
    pixels it could recover are used); empty for an intact file.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    fmt: str
    meta: PhotoMetadata = field(default_factory=PhotoMetadata)
    source: Path = field(default_factory=Path)
    damage: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def stored_bit_depth(self) -> int:
        """The depth the file holds (a 10-bit HEIC says 10; its pixels are 16-bit here)."""
        return self.meta.heif.bit_depth if self.meta.heif is not None else self.bit_depth

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])
