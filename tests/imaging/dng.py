"""Build small DNG files for the RAW tests: a 16-bit Bayer RGGB CFA with the DNG colour tags
and an EXIF IFD, written with tifffile and struct only (never with the code under test).

tifffile will not write an Exif-IFD pointer, so a placeholder LONG tag (34666, which sorts
where 34665 belongs) is written and patched into the real pointer once the Exif IFD has been
appended to the file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import tifffile

BLACK, WHITE = 256, 4095
AS_SHOT_NEUTRAL = (0.5, 1.0, 0.7)  # camera WB: red gain 2, blue gain 1/0.7
COLOR_MATRIX = (0.9, -0.3, -0.1, -0.4, 1.2, 0.2, -0.1, 0.2, 0.6)
MAKERNOTE = b"TESTRAW\0" + bytes(range(64))
EXPOSURE, FNUMBER, ISO = (1, 125), (56, 10), 200
DATE = b"2025:03:04 05:06:07\0"
_PLACEHOLDER = 34666


def _rationals(values: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(x for v in values for x in (round(v * 10000), 10000))


def bayer(height: int = 192, width: int = 256, grey: float | None = None) -> np.ndarray:
    """A smooth colour scene (or a flat `grey` one) seen through an RGGB mosaic, BLACK..WHITE."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    scene = np.stack([0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.1 * x * y], -1)
    if grey is not None:
        scene = np.full((height, width, 3), grey)
    # what the sensor sees under the shot's light: green strongest (AS_SHOT_NEUTRAL)
    cfa = np.empty((height, width))
    cfa[0::2, 0::2] = scene[0::2, 0::2, 0] * AS_SHOT_NEUTRAL[0]
    cfa[0::2, 1::2] = scene[0::2, 1::2, 1] * AS_SHOT_NEUTRAL[1]
    cfa[1::2, 0::2] = scene[1::2, 0::2, 1] * AS_SHOT_NEUTRAL[1]
    cfa[1::2, 1::2] = scene[1::2, 1::2, 2] * AS_SHOT_NEUTRAL[2]
    return (BLACK + cfa * (WHITE - BLACK)).astype(np.uint16)


def _exif_ifd(at: int) -> bytes:
    """A little-endian Exif IFD placed at file offset `at`, values following the table."""
    entries = [
        (0x829A, 5, 1, struct.pack("<II", *EXPOSURE)),
        (0x829D, 5, 1, struct.pack("<II", *FNUMBER)),
        (0x8827, 3, 1, struct.pack("<H", ISO)),
        (0x9000, 7, 4, b"0231"),
        (0x9003, 2, len(DATE), DATE),
        (0x927C, 7, len(MAKERNOTE), MAKERNOTE),
    ]
    table_end = at + 2 + 12 * len(entries) + 4
    table, values = struct.pack("<H", len(entries)), b""
    for tag, type_, count, data in entries:
        if len(data) <= 4:
            table += struct.pack("<HHI", tag, type_, count) + data.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, type_, count, table_end + len(values))
            values += data + b"\0" * (len(data) & 1)
    return table + bytes(4) + values


def write_dng(path: Path, cfa: np.ndarray | None = None, orientation: int = 1) -> Path:
    """A DNG 1.4 with an RGGB CFA, camera colour tags, Make/Model and an Exif IFD."""
    cfa = bayer() if cfa is None else cfa
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Test Cam DNG", True),  # UniqueCameraModel
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern RGGB
        (50714, "H", 1, (BLACK,), True),  # BlackLevel
        (50717, "H", 1, (WHITE,), True),  # WhiteLevel
        (50728, "2I", 3, _rationals(AS_SHOT_NEUTRAL), True),  # AsShotNeutral
        (50721, "2i", 9, _rationals(COLOR_MATRIX), True),  # ColorMatrix1
        (50778, "H", 1, (21,), True),  # CalibrationIlluminant1 D65
        (271, "s", 0, "TestMaker", True),
        (272, "s", 0, "TM-1", True),
        (274, "H", 1, (orientation,), True),
        (306, "s", 0, DATE[:-1].decode(), True),
        (33432, "s", 0, "(c) Test", True),
        (_PLACEHOLDER, "I", 1, (0,), True),
    ]
    tifffile.imwrite(path, cfa, photometric=32803, extratags=tags, metadata=None)
    with tifffile.TiffFile(path) as tif:
        slot = tif.pages.first.tags[_PLACEHOLDER].offset  # the 12-byte entry
    with open(path, "r+b") as fh:
        at = fh.seek(0, 2) + (fh.tell() & 1)
        fh.write(b"\0" * (at - fh.tell()) + _exif_ifd(at))
        fh.seek(slot)
        fh.write(struct.pack("<HHII", 34665, 4, 1, at))
    return path
