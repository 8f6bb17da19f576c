"""Pixel-array conversions shared by the codecs: bit depth, grayscale, size checks."""

from __future__ import annotations

import numpy as np

from abpn_cli.imaging.errors import ImageError


def max_value(dtype: np.dtype) -> float:
    """Full scale of a pixel dtype (the engine's and the dust profile's float conversions)."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise ValueError(f"unsupported pixel dtype {dtype}: expected uint8 or uint16")


def _megapixels(n: int) -> str:
    """1600, 20.4, 0.0012: whole numbers for big counts, two significant digits for tiny."""
    mp = n / 1e6
    if mp >= 100:
        return f"{mp:.0f}"
    if mp >= 1:
        return f"{mp:.1f}".removesuffix(".0")
    return f"{mp:.2g}"


def check_pixel_count(width: int, height: int, max_pixels: int) -> None:
    """Refuse absurd sizes before any pixel is decoded (image bombs, OOM kills)."""
    if width <= 0 or height <= 0:
        raise ImageError(f"invalid image size {width}x{height}")
    n = width * height
    if n > max_pixels:
        raise ImageError(
            f"image too large: {width}x{height} = {_megapixels(n)} MP exceeds the "
            f"{_megapixels(max_pixels)} MP limit (--max-megapixels)"
        )


OPENCV_MAX_PIXELS = 1 << 30  # OpenCV's decoder refuses more (CV_IO_MAX_IMAGE_PIXELS)


def check_opencv_limit(width: int, height: int, what: str) -> None:
    """Name OpenCV's own size cap instead of letting it surface as "corrupt data"."""
    if width * height > OPENCV_MAX_PIXELS:
        raise ImageError(
            f"{what} too large to decode: {width}x{height} = {_megapixels(width * height)} MP"
            f" exceeds the decoder's {_megapixels(OPENCV_MAX_PIXELS)} MP limit"
        )


def to_uint8(a: np.ndarray) -> np.ndarray:
    """16 -> 8 bits with correct rounding, (v*255 + 32767) // 65535; uint8 passes through."""
    if a.dtype == np.uint8:
        return a
    if a.dtype != np.uint16:
        raise ValueError(f"expected uint8 or uint16 pixels, got {a.dtype}")
    wide = a.astype(np.uint32)
    wide *= 255
    wide += 32767
    wide //= 65535
    return wide.astype(np.uint8)


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3) C-contiguous, so the model always sees three channels."""
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W): mean of the channels, rounded half up, same dtype."""
    total = rgb.astype(np.uint32).sum(axis=2)
    total *= 2
    total += 3
    total //= 6
    return total.astype(rgb.dtype)


def owned(a: np.ndarray) -> np.ndarray:
    """C-contiguous and writeable (Pillow hands out read-only views), copying only if needed."""
    return np.require(a, requirements=["C", "W"])


def contiguous_rgb(bgr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR(A) order -> RGB, C-contiguous."""
    return np.ascontiguousarray(bgr[:, :, 2::-1])
