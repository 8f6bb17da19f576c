"""Dust training batches: crops of cached thumbnails with physical dust, favouring smooth places.

A sample: a random photo at a random render scale (twice the thumbnail the engine will see), a
random 2c x 2c crop (with probability `favour` centred on a smooth place), dust rendered at
that scale in linear light (`training.dust`; the same share of its spots on smooth places),
then one binomial `pyr_down` of both dusty and clean crops, as the engine's pyramid does.
Why favour smooth places: dust on texture is invisible and teaches nothing; a sensor does not
choose, so evaluation (`training.dust_eval`) puts dust anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch import Tensor

from abpn_cli.model import pyr_down
from abpn_cli.training.dust import DustParams, add_dust
from abpn_cli.training.thumbs import Thumb


class DustDataError(ValueError):
    """The photos cannot give the crops asked for."""


@dataclass(frozen=True)
class DustBatch:
    dusty: Tensor  # (N, 3, c, c) thumbnail crops, float32 in [0, 1]
    clean: Tensor


SMOOTH_STD = 4.0 / 255.0  # grey std over a 15 px window: sky, walls, backdrops
SMOOTH_CELL = 8  # smooth maps are kept at 1/8 of the render scale
ZOOM = 2.0  # zoomed crops: dust as a thumbnail one pyramid level finer sees it


def smooth_map(pixels: np.ndarray) -> np.ndarray:
    """(H/8, W/8) bool: where the photo is flat enough for dust to be visible."""
    grey = pixels.astype(np.float32).mean(axis=2)
    mean = cv2.blur(grey, (15, 15))
    var = cv2.blur(grey * grey, (15, 15)) - mean * mean
    flat = np.sqrt(np.maximum(var, 0.0)) < SMOOTH_STD
    h, w = flat.shape[0] // SMOOTH_CELL, flat.shape[1] // SMOOTH_CELL
    cells = flat[: h * SMOOTH_CELL, : w * SMOOTH_CELL].reshape(h, SMOOTH_CELL, w, SMOOTH_CELL)
    return cells.all(axis=(1, 3))


def _crop_origin(
    shape: tuple[int, int], smooth: np.ndarray, rng: np.random.Generator, side: int, favour: float
) -> tuple[int, int]:
    """Top-left of a crop; with probability `favour` centred on a smooth cell."""
    h, w = shape
    ys, xs = np.nonzero(smooth)
    if len(ys) and rng.random() < favour:
        k = int(rng.integers(0, len(ys)))
        cy, cx = (ys[k] + 0.5) * SMOOTH_CELL, (xs[k] + 0.5) * SMOOTH_CELL
        y = int(np.clip(cy - side / 2 + rng.uniform(-side / 4, side / 4), 0, h - side))
        x = int(np.clip(cx - side / 2 + rng.uniform(-side / 4, side / 4), 0, w - side))
        return y, x
    return int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))


def _crop_pair(
    thumb: Thumb, smooth: np.ndarray, rng: np.random.Generator, side: int, favour: float
) -> tuple[np.ndarray, np.ndarray]:
    """A dihedrally augmented crop and the smooth cells inside it as (y, x) centres."""
    y, x = _crop_origin(thumb.pixels.shape[:2], smooth, rng, side, favour)
    crop = thumb.pixels[y : y + side, x : x + side].astype(np.float32)
    sm = smooth[
        y // SMOOTH_CELL : (y + side) // SMOOTH_CELL, x // SMOOTH_CELL : (x + side) // SMOOTH_CELL
    ]
    k = int(rng.integers(0, 8))  # dihedral augmentation, applied to both
    crop, sm = np.rot90(crop, k % 4), np.rot90(sm, k % 4)
    if k >= 4:
        crop, sm = crop[:, ::-1], sm[:, ::-1]
    cells = (np.argwhere(sm) + 0.5) * SMOOTH_CELL
    return np.ascontiguousarray(crop), cells


@dataclass(frozen=True)
class DustSource:
    """A training thumbnail and where it is smooth (computed once)."""

    thumb: Thumb
    smooth: np.ndarray


def dust_sources(thumbs: Sequence[Thumb]) -> list[DustSource]:
    return [DustSource(t, smooth_map(t.pixels)) for t in thumbs]


def sample_pairs(
    sources: Sequence[DustSource],
    rng: np.random.Generator,
    batch: int,
    side: int,
    params: DustParams,
    clean_share: float,
    favour: float = 0.0,
    zoom_share: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """(dusty, clean) (N, 3, side, side) crops at render scale, dust at the frame's scale.

    With probability `zoom_share` a crop's dust is drawn for a frame twice as long (so twice
    as large in pixels): what the same dust looks like in a thumbnail twice as large.
    """
    usable = [s for s in sources if min(s.thumb.pixels.shape[:2]) >= side]
    if not usable:
        raise DustDataError(f"no photo is at least {side} px on its short side")
    dusty, clean = [], []
    for _ in range(batch):
        src = usable[int(rng.integers(0, len(usable)))]
        thumb = src.thumb
        img, cells = _crop_pair(thumb, src.smooth, rng, side, favour)
        count = 0 if rng.random() < clean_share else None
        p = params if count is None else replace(params, count=(0, 0))
        long_side = thumb.long_side * (ZOOM if rng.random() < zoom_share else 1.0)
        pair = add_dust(img, rng, long_side=long_side, params=p, favoured=cells, favour=favour)
        dusty.append(pair.dusty)
        clean.append(pair.clean)

    def stack(xs: list[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()

    return stack(dusty), stack(clean)


def sample_batch(
    sources: Sequence[DustSource],
    rng: np.random.Generator,
    batch: int,
    crop: int,
    params: DustParams,
    clean_share: float,
    favour: float = 0.0,
    zoom_share: float = 0.0,
) -> DustBatch:
    """Thumbnail crops: rendered at 2x, then one binomial pyr_down, as the engine's pyramid."""
    dusty, clean = sample_pairs(
        sources, rng, batch, 2 * crop, params, clean_share, favour, zoom_share
    )
    return DustBatch(pyr_down(dusty), pyr_down(clean))
