"""QA images: where (mask) and how (blend layer) the model edited, as plain PNG files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

BLEND_MIN, BLEND_MAX = -1.0, 2.0


def _write_png(array: np.ndarray, dest: Path) -> None:
    """Encode in memory and write exactly `dest` (cv2.imwrite would go by the suffix)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise OSError(f"PNG encoding failed for {dest}")
    dest.write_bytes(buf.tobytes())


def save_mask(mask: np.ndarray, dest: Path) -> None:
    """(H, W) float in [0, 1] -> 8-bit grayscale PNG, 0 = untouched, 255 = fully edited."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {mask.shape}")
    values = np.nan_to_num(mask.astype(np.float32, copy=False), nan=0.0)
    _write_png(np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), dest)


def save_blend(blend: np.ndarray, dest: Path) -> None:
    """(H, W, 3) float blend layer in [-1, 2] -> 16-bit RGB PNG.

    Stored value = round((B + 1) / 3 * 65535), values outside [-1, 2] clipped; so B = -1
    is 0, B = 2 is 65535 and B = 0.5 (soft-light identity: no edit) is mid-grey 32768.
    Read back with B = v / 65535 * 3 - 1.
    """
    if blend.ndim != 3 or blend.shape[2] != 3:
        raise ValueError(f"blend must be (H, W, 3), got {blend.shape}")
    values = np.nan_to_num(blend.astype(np.float32, copy=False), nan=0.5)
    scaled = (np.clip(values, BLEND_MIN, BLEND_MAX) - BLEND_MIN) / (BLEND_MAX - BLEND_MIN)
    _write_png(
        np.floor(scaled * np.float32(65535) + np.float32(0.5)).astype(np.uint16)[:, :, ::-1], dest
    )
