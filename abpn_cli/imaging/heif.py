"""HEIC/HEIF (iPhone, Sony/Canon HIF): 8- and 10-bit, EXIF/XMP/ICC kept, through pillow-heif.

Bit depth: a 10- or 12-bit file decodes to uint16 with its values in the top bits (libheif's
convention, `v << 6` for 10 bits), is processed as 16-bit and written back at the source's
depth, so the edit is computed at full precision. HEIC is lossy like JPEG: output quality 92
unless --jpeg-quality (measured re-encode change: ~0.2/255 mean at 8 and 10 bits).

Orientation (the one exception to "pixels as stored"): a HEIF container may rotate or mirror
its image (irot/imir), and libheif always applies that on decode. The EXIF read back still
says how the camera held it (an iPhone portrait: Orientation 6), and pillow-heif turns an
EXIF Orientation into an irot when it saves; so the EXIF written is `exif.upright`'s copy,
Orientation 1, and the output is upright for every viewer, never turned twice.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import strip_exif_header, upright
from abpn_cli.imaging.photo import HeifInfo, Photo, PhotoMetadata
from abpn_cli.imaging.pixels import check_pixel_count

DEFAULT_QUALITY = 92  # HEIC output quality unless --jpeg-quality is given


def _library():
    try:
        import pillow_heif
    except ImportError as exc:  # a declared dependency; a broken install says so clearly
        raise ImageError("HEIC/HEIF needs pillow-heif (pip install pillow-heif)") from exc
    return pillow_heif


def read_heif(path: Path, data: bytes, max_pixels: int) -> Photo:
    """Decode the primary image of a HEIF file (RGB or RGBA, 8 or 10/12 bits)."""
    lib = _library()
    try:
        heif = lib.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
        check_pixel_count(heif.size[0], heif.size[1], max_pixels)
        array = np.asarray(heif)
    except ImageError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:
        raise ImageError(f"corrupt HEIF ({exc})") from exc
    depth = int(heif.info.get("bit_depth") or 8)
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ImageError(f"HEIF with {channels} channels is not supported")
    grey = channels in (1, 2)
    rgb = np.repeat(array[:, :, :1], 3, axis=2) if grey else array[:, :, :3]
    alpha = array[:, :, -1] if channels in (2, 4) else None
    exif = heif.info.get("exif")
    meta = PhotoMetadata(
        exif=strip_exif_header(exif) if exif else None,
        icc=heif.info.get("icc_profile") or None,
        xmp=heif.info.get("xmp") or None,
        grayscale=grey,
        heif=HeifInfo(depth),
    )
    pixels = np.ascontiguousarray(rgb)
    alpha = None if alpha is None else np.ascontiguousarray(alpha)
    return Photo(pixels, alpha, 16 if pixels.dtype == np.uint16 else 8, "heif", meta, path)


def encode_heif(
    pixels: np.ndarray, alpha: np.ndarray | None, meta: PhotoMetadata, quality: int | None
) -> bytes:
    """HEIC bytes for (H, W, 3) uint8/uint16 RGB (+ alpha) at the source's bit depth."""
    lib = _library()
    array = pixels if alpha is None else np.dstack([pixels, alpha])
    mode = ("RGBA" if alpha is not None else "RGB") + (";16" if array.dtype == np.uint16 else "")
    if pixels.ndim == 2:
        mode = "L;16" if array.dtype == np.uint16 else "L"
    depth = meta.heif.bit_depth if meta.heif else (10 if array.dtype == np.uint16 else 8)
    lib.options.SAVE_HDR_TO_12_BIT = depth >= 12
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    heif = lib.from_bytes(mode, (w, h), array.tobytes())
    buf = io.BytesIO()
    extra = {}
    if meta.exif:  # the pixels are upright already (see the module docstring)
        extra["exif"] = b"Exif\x00\x00" + upright(meta.exif)
    if meta.xmp:
        extra["xmp"] = meta.xmp
    if meta.icc:
        extra["icc_profile"] = meta.icc
    heif.save(buf, quality=quality or DEFAULT_QUALITY, **extra)
    return buf.getvalue()
