"""The Gaussian pyramid's `down` on the CPU through OpenCV, ~25x faster than the conv form.

`cv2.pyrDown` filters with the same 5x5 binomial kernel ([1,4,6,4,1]^T [1,4,6,4,1] / 256)
and keeps every second pixel, with BORDER_REFLECT_101 (mirror without repeating the edge),
which is torch's "reflect" padding: the same operator as `model.pyramid.pyr_down`, in
float32, equal to it within float rounding (a test checks < 1e-6). Measured on the 2-core dev
CPU, one 1040^2 RGB tile: 80 ms as a depthwise conv, 3 ms with OpenCV.

Arrays are (H, W, 3) float32 in [0, 1]; H and W even. Level 1 is made from the native
uint8/uint16 frame in bands of rows, padded band by band, so neither a full-resolution float
copy nor a padded copy of the photo exists.
"""

from __future__ import annotations

import cv2
import numpy as np

from abpn_cli.engine.geometry import reflect_index

BAND = 512  # rows of the full-resolution frame converted to float at a time
BAND_HALO = 4  # input rows each side: output row j reads input rows 2j-2 .. 2j+2


def pyr_down_hwc(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H/2, W/2, 3), same dtype (float32 here; uint16 for `_down_band`)."""
    return cv2.pyrDown(image, dstsize=(image.shape[1] // 2, image.shape[0] // 2))


def _widen(src: np.ndarray, dst: np.ndarray) -> None:
    """uint8 -> uint16 x 256 (the kernel's weights are k/256 with integer k, so every output is
    the integer sum(k x): exact, and half the memory traffic of float32); uint16 -> float32."""
    if src.dtype == np.uint8:
        np.multiply(src, np.uint16(256), out=dst, dtype=np.uint16)
    else:
        dst[...] = src


def _padded_band(pixels: np.ndarray, ya: int, yb: int, width: int, buf: np.ndarray) -> np.ndarray:
    """Rows [ya, yb) of the frame reflect-padded to `width` columns (and past its last row),
    widened into `buf`: the padding costs only its own pixels, not a copy of the frame."""
    h, w = pixels.shape[:2]
    band = buf[: yb - ya]
    n = max(0, min(yb, h) - ya)
    _widen(pixels[ya : ya + n], band[:n, :w])
    if yb > h:
        _widen(pixels[reflect_index(np.arange(ya + n, yb), h)], band[n:, :w])
    if width > w:
        band[:, w:] = band[:, reflect_index(np.arange(w, width), w)]
    return band


def pyr_down_native(
    pixels: np.ndarray, scale: float, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Level 1 of a uint8/uint16 (H, W, 3) frame reflect-padded to `size` (None: as it is),
    computed in bands of BAND rows through one reused buffer."""
    h, w = size or pixels.shape[:2]
    out = np.empty((h // 2, w // 2, 3), np.float32)
    wide = np.uint16 if pixels.dtype == np.uint8 else np.float32
    buf = np.empty((min(h, BAND + 2 * BAND_HALO), w, 3), wide)
    inv = np.float32(1.0 / (scale * (256.0 if pixels.dtype == np.uint8 else 1.0)))
    for y0 in range(0, h, BAND):
        y1 = min(h, y0 + BAND)
        ya, yb = max(0, y0 - BAND_HALO), min(h, y1 + BAND_HALO)
        down = pyr_down_hwc(_padded_band(pixels, ya, yb, w, buf)).astype(np.float32)
        down *= inv  # scaled after the filter (it is linear): a quarter of the multiplies
        top = (y0 - ya) // 2
        out[y0 // 2 : y1 // 2] = down[top : top + (y1 - y0) // 2]
    return out
