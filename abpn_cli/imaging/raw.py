"""Camera RAW (CR2/CR3/NEF/ARW/RAF/ORF/RW2/DNG/PEF/SRW) in, through rawpy (LibRaw).

A RAW is developed once, with fixed settings recorded per file in the report (DEVELOP): the
camera's white balance, LibRaw's AHD demosaic, no auto-brightening, sRGB primaries and the
sRGB tone curve, 16 bits per sample. The result is an ordinary 16-bit RGB Photo; it goes
out as a 16-bit TIFF unless --format asks for another format (RAW_OUTPUT_FORMAT).

Orientation: like HEIF, the one other exception to "pixels as stored". LibRaw applies the
camera's orientation while developing (a RAW has no stored RGB pixels to keep as they are),
so the output is upright and carries no Orientation tag (which means 1).

EXIF: for the TIFF-structured RAWs (DNG, CR2, NEF, ARW, PEF, SRW) the camera tags of IFD0
that describe the shot (RAW_IFD0_TAGS) and the Exif and GPS sub-IFDs, maker note included,
are carried; IFD0's raw-data and DNG colour tags are not (they describe the sensor data, and
a TIFF reader seeing DNGVersion would take the output for a DNG). CR3, RAF, ORF and RW2 are
not TIFF files: their EXIF is not carried (the report says so in `develop.exif`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from abpn_cli.imaging.errors import ImageError
from abpn_cli.imaging.exif import FIELD_TAGS, POINTER_TAGS, exif_from_tiff
from abpn_cli.imaging.ifd import (
    ByteSource,
    Entry,
    FileSource,
    IfdError,
    TiffHeader,
    read_header,
    read_ifd,
)
from abpn_cli.imaging.irb import iptc_from_irb, trim_iim
from abpn_cli.imaging.photo import Photo, PhotoMetadata, RawInfo
from abpn_cli.imaging.pixels import check_pixel_count

RAW_SUFFIXES = frozenset(
    {".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".dng", ".pef", ".srw"}
)
RAW_OUTPUT_FORMAT = "tiff"  # what `--format keep` writes for a RAW input
# The development settings, as recorded in the report; _postprocess_args maps them to rawpy.
DEVELOP: dict[str, Any] = {
    "decoder": "rawpy/LibRaw",
    "demosaic": "AHD",
    "use_camera_wb": True,
    "no_auto_bright": True,
    "output_color": "sRGB",
    "gamma": [2.4, 12.92],  # the sRGB curve (power 1/2.4, toe slope 12.92)
    "output_bps": 16,
    "orientation": "applied by LibRaw (output upright, no Orientation tag)",
}
# IFD0 tags of a RAW's TIFF structure that describe the shot and are safe in any TIFF.
RAW_IFD0_TAGS = frozenset(
    {
        270,  # ImageDescription
        271,  # Make
        272,  # Model
        305,  # Software
        306,  # DateTime
        315,  # Artist
        316,  # HostComputer
        33432,  # Copyright
    }
)
_DNG_VERSION, _SUB_IFDS, _PHOTOMETRIC = 50706, 330, 262
_RAW_PHOTOMETRIC = frozenset({32803, 34892})  # CFA, LinearRaw


def raw_available() -> bool:
    """rawpy is importable (it is a dependency; without it RAW files are listed as skipped)."""
    return importlib.util.find_spec("rawpy") is not None


def _has_raw_ifd(src: ByteSource, header: TiffHeader, ifd0: list[Entry]) -> bool:
    """IFD0 or one of its SubIFDs holds CFA or linear-raw samples (NEF, ARW, PEF, SRW)."""
    bo = header.byteorder

    def raw_samples(entries: list[Entry]) -> bool:
        return any(e.tag == _PHOTOMETRIC and e.ints(bo)[0] in _RAW_PHOTOMETRIC for e in entries)

    subs = [off for e in ifd0 if e.tag == _SUB_IFDS for off in e.ints(bo)[:8]]
    return raw_samples(ifd0) or any(raw_samples(read_ifd(src, header, o)[0]) for o in subs)


def is_raw_tiff(path: Path) -> bool:
    """A TIFF-structured file that is a camera RAW: DNG, CR2, or raw samples in a SubIFD."""
    try:
        with open(path, "rb") as fh:
            src = FileSource(fh, os.fstat(fh.fileno()).st_size)
            header = read_header(src)
            if src.read_at(8, 2) == b"CR" and not header.bigtiff:
                return True
            ifd0, _ = read_ifd(src, header, header.first_ifd)
            return any(e.tag == _DNG_VERSION for e in ifd0) or _has_raw_ifd(src, header, ifd0)
    except (OSError, IfdError, struct.error):
        return False  # the TIFF reader names the problem


def _library() -> Any:
    try:
        import rawpy
    except ImportError as exc:  # a declared dependency; a broken install says so clearly
        raise ImageError("camera RAW needs rawpy (pip install rawpy)") from exc
    return rawpy


def _postprocess_args(rawpy: Any) -> dict[str, Any]:
    return {
        "demosaic_algorithm": rawpy.DemosaicAlgorithm.AHD,
        "use_camera_wb": DEVELOP["use_camera_wb"],
        "no_auto_bright": DEVELOP["no_auto_bright"],
        "output_color": rawpy.ColorSpace.sRGB,
        "gamma": tuple(DEVELOP["gamma"]),
        "output_bps": DEVELOP["output_bps"],
    }


def _tiff_metadata(path: Path) -> PhotoMetadata:
    """EXIF block (safe IFD0 tags + Exif/GPS sub-IFDs) and XMP/IPTC of a TIFF-based RAW."""
    with open(path, "rb") as fh:
        src = FileSource(fh, os.fstat(fh.fileno()).st_size)
        try:
            header = read_header(src)
            ifd0, _ = read_ifd(src, header, header.first_ifd)
            keep = RAW_IFD0_TAGS | POINTER_TAGS | FIELD_TAGS
            exif, fields = exif_from_tiff(src, header, [e for e in ifd0 if e.tag in keep])
        except (IfdError, struct.error) as exc:
            raise ImageError(f"corrupt EXIF in camera RAW ({exc})") from exc
    iptc = trim_iim(fields.iptc) if fields.iptc else iptc_from_irb(fields.photoshop_irb)
    return PhotoMetadata(exif=exif, xmp=fields.xmp, iptc=iptc, photoshop_irb=fields.photoshop_irb)


def _develop(path: Path, max_pixels: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Pixels (H, W, 3) uint16 and what LibRaw used (white balance, levels)."""
    rawpy = _library()
    try:
        with rawpy.imread(str(path)) as raw:
            check_pixel_count(raw.sizes.width, raw.sizes.height, max_pixels)
            used = {
                "camera_wb": [round(float(v), 6) for v in raw.camera_whitebalance],
                "black_level": [int(v) for v in raw.black_level_per_channel],
                "white_level": int(raw.white_level),
                "raw_size": [int(raw.sizes.raw_width), int(raw.sizes.raw_height)],
            }
            rgb = raw.postprocess(**_postprocess_args(rawpy))
    except ImageError:
        raise
    except rawpy.LibRawError as exc:
        detail = exc.args[0] if exc.args else ""
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        raise ImageError(f"corrupt or unsupported camera RAW (LibRaw: {detail})") from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint16:
        raise ImageError(f"camera RAW developed to {rgb.shape} {rgb.dtype}, expected RGB 16-bit")
    return np.ascontiguousarray(rgb), used


def read_raw(path: Path, max_pixels: int, tiff_based: bool) -> Photo:
    """Develop a camera RAW into a 16-bit RGB Photo carrying its EXIF (see module doc)."""
    pixels, used = _develop(path, max_pixels)
    if tiff_based:
        meta = _tiff_metadata(path)
        exif_note = "carried (IFD0 camera tags, Exif and GPS sub-IFDs)" if meta.exif else "none"
    else:
        meta, exif_note = PhotoMetadata(), "not carried (not a TIFF-structured RAW)"
    meta = dataclasses.replace(meta, raw=RawInfo({**DEVELOP, **used, "exif": exif_note}))
    return Photo(pixels, None, 16, "raw", meta, path)
