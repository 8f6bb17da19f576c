"""Decode and encode photos: pixels exactly as stored, bit depth from the container, and
EXIF (maker notes included), XMP, IPTC and ICC carried byte-exact into the output.

Orientation rule: pixels are processed exactly as stored and never rotated; the EXIF
Orientation tag is copied unchanged, so viewers show the output as they showed the input.
"""

from abpn_cli.imaging.api import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    format_for_suffix,
    may_copy_source,
    normalize_format,
    output_suffix,
    read_photo,
    save_photo,
)
from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.photo import JpegInfo, Photo, PhotoMetadata, PngInfo, TiffInfo, WebpInfo
from abpn_cli.imaging.qa import save_blend, save_mask

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "ImageError",
    "JpegInfo",
    "Photo",
    "PhotoMetadata",
    "PngInfo",
    "TiffInfo",
    "WebpInfo",
    "format_for_suffix",
    "may_copy_source",
    "normalize_format",
    "output_suffix",
    "read_photo",
    "save_blend",
    "save_mask",
    "save_photo",
]
