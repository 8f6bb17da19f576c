"""Thumbnails for thumbnail-scale training: what the cache holds must not drift.

The cache is keyed by the photo (path, size, mtime) and the long side, not by the code that
made it, so a fresh thumbnail has to equal the one a previous run stored, to the bit.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from abpn_cli.training.thumbs import decode_float, load_thumbs
from tests.factories import pattern, write_rgb


def _reference(full: np.ndarray, side: int) -> np.ndarray:
    """The thumbnail as the cache was first written: INTER_AREA to the side, clipped, float16."""
    h, w = full.shape[:2]
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return np.clip(cv2.resize(full, size, interpolation=interp), 0.0, 1.0).astype(np.float16)


def test_thumbnails_are_bit_stable_fresh_and_cached(tmp_path: Path) -> None:
    photo = write_rgb(tmp_path / "p.png", pattern(90, 120, np.uint16, seed=3))
    sides = (120, 61, 200)  # its own size, a reduction, larger than the photo (skipped)
    fresh = load_thumbs([photo], sides, cache_dir=tmp_path / "cache")
    assert [t.long_side for t in fresh] == [120, 61]
    full = decode_float(photo)
    for t in fresh:
        assert t.pixels.dtype == np.float16
        assert t.pixels.tobytes() == _reference(full, t.long_side).tobytes()
    cached = load_thumbs([photo], sides, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2
    for a, b in zip(fresh, cached, strict=True):
        assert a.pixels.tobytes() == b.pixels.tobytes()
