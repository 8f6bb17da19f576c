"""Photos decoded once into whole-frame thumbnails, cached on disk, for thumbnail-scale training.

Why: the dust model learns on what the LRL sees at inference, a whole-frame thumbnail
(long side ~550-1100 px), not on zoomed crops of the full photo. Decoding a 6K JPEG costs
~0.3 s; a training run draws tens of thousands of crops, so each photo is decoded once with
the project's one decoder (`imaging.read_photo`), reduced with INTER_AREA to each requested
long side (`data.resize_long`, the one resize of the training data) and kept as float16 in RAM
and in `cache_dir` (reused by later runs; keyed by the file's path, size and mtime so an
edited photo is re-decoded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abpn_cli.batch.fsutil import atomic_write
from abpn_cli.imaging import read_photo
from abpn_cli.training.data import resize_long


@dataclass(frozen=True)
class Thumb:
    """One photo at one long side: (H, W, 3) float16 RGB in [0, 1]."""

    source: Path
    long_side: int
    pixels: np.ndarray


def decode_float(path: Path) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from any supported photo, as stored (never rotated)."""
    photo = read_photo(path)
    px = photo.pixels
    scale = 255.0 if px.dtype == np.uint8 else 65535.0
    img = px.astype(np.float32) * np.float32(1.0 / scale)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _key(path: Path, long_side: int) -> str:
    st = path.stat()
    raw = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{long_side}".encode()
    return f"{path.stem[:40]}-{long_side}-{hashlib.sha1(raw).hexdigest()[:12]}.npy"


def _save_npy(dest: Path, arr: np.ndarray) -> None:
    def write(temp: Path) -> None:
        with open(temp, "wb") as f:
            np.save(f, arr)

    atomic_write(dest, write)


def load_thumbs(
    photos: Sequence[Path], long_sides: Sequence[int], cache_dir: Path | None = None
) -> list[Thumb]:
    """Every photo at every long side (smaller photos are skipped at sides they lack)."""
    out: list[Thumb] = []
    for path in photos:
        path = Path(path)
        wanted = {
            side: (cache_dir / _key(path, side)) if cache_dir else None for side in long_sides
        }
        cached = {s: p for s, p in wanted.items() if p is not None and p.exists()}
        full = None if len(cached) == len(wanted) else decode_float(path)
        for side, cpath in wanted.items():
            if side in cached:
                arr = np.load(cached[side])
            else:
                if full is None:
                    full = decode_float(path)
                if max(full.shape[:2]) < side:
                    continue  # never train on enlarged photos: fake softness
                arr = resize_long(full, side).astype(np.float16)
                if cpath is not None:
                    cpath.parent.mkdir(parents=True, exist_ok=True)
                    _save_npy(cpath, arr)
            out.append(Thumb(path, side, arr))
    return out
