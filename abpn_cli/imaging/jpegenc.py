"""The JPEG scan data: which encoder writes it, with which tables and chroma subsampling.

Pillow takes the source's quantisation tables but writes only 4:4:4, 4:2:2 and 4:2:0.
libjpeg through imagecodecs writes 4:4:0 and 4:1:1 too, but takes no tables: only a quality,
which it turns into the IJG standard tables scaled by that quality. So a baseline 4:4:0 or
4:1:1 source whose tables are exactly the IJG tables at some quality (what libjpeg-based
cameras and editors write) is re-encoded through imagecodecs at that quality: the same tables
and the same subsampling. Other tables (camera-made, or transposed by a lossless rotation)
stay exact through Pillow, and the subsampling falls back: 4:4:0 to 4:4:4 (more chroma
kept, never less), 4:1:1 to 4:2:0. imagecodecs writes baseline only, so a progressive
4:4:0 / 4:1:1 source keeps progressive and tables through the same fallback.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import imagecodecs
import numpy as np
from PIL import Image

from abpn_cli.imaging.photo import JpegInfo

DEFAULT_QUALITY = 95
_PILLOW_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2, "4:4:0": 0, "4:1:1": 2}
_LIBJPEG_ONLY = {"4:4:0": "440", "4:1:1": "411"}  # what Pillow's encoder cannot write


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split())


# Annex K of the JPEG standard (ITU T.81), natural order: libjpeg's jpeg_set_quality base.
_IJG_LUMA = _ints(
    "16 11 10 16 24 40 51 61  12 12 14 19 26 58 60 55  14 13 16 24 40 57 69 56"
    " 14 17 22 29 51 87 80 62  18 22 37 56 68 109 103 77  24 35 55 64 81 104 113 92"
    " 49 64 78 87 103 121 120 101  72 92 95 98 112 100 103 99"
)
_IJG_CHROMA = _ints(
    "17 18 24 47 99 99 99 99  18 21 26 66 99 99 99 99  24 26 56 99 99 99 99 99"
    " 47 66 99 99 99 99 99 99" + " 99" * 32
)


def _scaled(base: tuple[int, ...], scale: int) -> tuple[int, ...]:
    return tuple(min(max((v * scale + 50) // 100, 1), 255) for v in base)


def ijg_tables(quality: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """libjpeg's tables for `quality` (1-100, baseline-clamped), as Pillow lists them."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return _scaled(_IJG_LUMA, scale), _scaled(_IJG_CHROMA, scale)


def ijg_quality(qtables: Sequence[Sequence[int]]) -> int | None:
    """The quality whose IJG tables these exactly are, else None (then no quality
    setting of libjpeg reproduces them)."""
    if len(qtables) != 2:
        return None
    wanted = tuple(tuple(t) for t in qtables)
    return next((q for q in range(100, 0, -1) if ijg_tables(q) == wanted), None)


def libjpeg_quality(info: JpegInfo | None, quality: int | None) -> int | None:
    """The quality to encode with through imagecodecs, or None to use Pillow (see module)."""
    if info is None or info.subsampling not in _LIBJPEG_ONLY or info.progressive:
        return None
    return quality if quality is not None else ijg_quality(info.qtables)


def _pillow_params(info: JpegInfo | None, quality: int | None) -> dict[str, object]:
    """Same quantization tables and subsampling as the source unless a quality is given."""
    subsampling = _PILLOW_SUBSAMPLING.get(info.subsampling, 2) if info else 0
    params: dict[str, object] = {"optimize": True, "subsampling": subsampling}
    if info is not None and info.progressive:
        params["progressive"] = True
    if quality is not None:
        params["quality"] = quality
    elif info is not None and info.qtables:
        params["qtables"] = [list(t) for t in info.qtables]
    else:
        params["quality"] = DEFAULT_QUALITY
    return params


def _pillow(pixels: np.ndarray, params: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", **params)
    return buf.getvalue()


def encode_stream(pixels: np.ndarray, info: JpegInfo | None, quality: int | None) -> bytes:
    """A complete JPEG stream (APPn segments still the encoder's own) for uint8 pixels."""
    level = libjpeg_quality(info, quality) if pixels.ndim == 3 else None
    if level is not None and info is not None:
        subsampling = _LIBJPEG_ONLY[info.subsampling]
        return bytes(
            imagecodecs.jpeg8_encode(pixels, level=level, subsampling=subsampling, optimize=True)
        )
    params = _pillow_params(info, quality)
    try:
        return _pillow(pixels, params)
    except (ValueError, OSError):
        if "qtables" not in params:
            raise
        # Tables Pillow cannot take (e.g. 16-bit precision): fall back to high quality.
        params.pop("qtables")
        return _pillow(pixels, {**params, "quality": DEFAULT_QUALITY})
