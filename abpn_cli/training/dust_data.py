"""Dust training batches: crops of cached thumbnails with physical dust, favouring smooth places.

A sample: a random photo at a random render scale (twice the thumbnail the engine will see), a
random 2c x 2c crop (with probability `favour` centred on a smooth place), dust rendered at
that scale in linear light (`training.dust`; the same share of its spots on smooth places),
then one binomial `pyr_down` of both dusty and clean crops, as the engine's pyramid does.
Why favour smooth places: dust on texture is invisible and teaches nothing; a sensor does not
choose, so evaluation (`training.dust_eval`) puts dust anywhere.
Why darken some crops (an exposure change in linear light, before the dust): the third model
removed ~90 % of the dust on bright smooth places but ~0 % on dark ones (held-out backgrounds
below 15 % grey); the training photos hold few dark flat areas, and a darker exposure of a
bright sky is a physically faithful one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from abpn_cli.model import pyr_down
from abpn_cli.training.dust import (
    DustDefect,
    DustParams,
    add_dust,
    linear_to_srgb,
    srgb_to_linear,
)
from abpn_cli.training.thumbs import Thumb


class DustDataError(ValueError):
    """The photos cannot give the crops asked for."""


@dataclass(frozen=True)
class DustBatch:
    dusty: Tensor  # (N, 3, c, c) thumbnail crops, float32 in [0, 1]
    clean: Tensor
    weight: Tensor | None = None  # (N, 1, c, c) per-pixel loss weight (see spot_weights)


SMOOTH_STD = 4.0 / 255.0  # grey std over a 15 px window: sky, walls, backdrops
SMOOTH_CELL = 8  # smooth maps are kept at 1/8 of the render scale
SPOT_REF_AREA = 200.0  # render px^2 (a spot ~16 px across) that weighs 1 in spot_weights
SPOT_MAX_WEIGHT = 25.0
DARKEN_GAIN = (0.02, 0.5)  # linear-light exposure factor of a darkened crop, log-uniform


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


def darken_exposure(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop as a darker exposure: linear light times a log-uniform DARKEN_GAIN factor."""
    lo, hi = np.log(DARKEN_GAIN[0]), np.log(DARKEN_GAIN[1])
    gain = np.float32(np.exp(rng.uniform(lo, hi)))
    return linear_to_srgb(srgb_to_linear(img) * gain)


def spot_weights(shape: tuple[int, int], defects: Sequence[DustDefect]) -> np.ndarray:
    """(H, W) loss weight: SPOT_REF_AREA / area of the defect around each pixel, in [1, 25].

    Why (measured on the third model, held out): the smooth dust it missed was almost all
    spots under ~3 px across in the thumbnail; in a squared error pooled over a batch such a
    spot weighs ~1/50 of a 15 px one, so it taught next to nothing.
    """
    w = np.ones(shape, np.float32)
    for d in defects:
        area = 2.0 * d.radius * d.width if d.kind == "fibre" else np.pi * d.radius**2
        reach = int(np.ceil(d.radius * 1.6 + d.width + 2.0))
        y0, x0 = max(0, int(d.y) - reach), max(0, int(d.x) - reach)
        y1, x1 = min(shape[0], int(d.y) + reach + 1), min(shape[1], int(d.x) + reach + 1)
        if y0 < y1 and x0 < x1:
            weight = float(np.clip(SPOT_REF_AREA / max(area, 1.0), 1.0, SPOT_MAX_WEIGHT))
            np.maximum(w[y0:y1, x0:x1], weight, out=w[y0:y1, x0:x1])
    return w


def sample_pairs(
    sources: Sequence[DustSource],
    rng: np.random.Generator,
    batch: int,
    side: int,
    params: DustParams,
    clean_share: float,
    favour: float = 0.0,
    darken: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """(dusty, clean, weight) crops at render scale, (N, 3 | 1, side, side), dust at the
    frame's scale; a share `darken` of them exposed darker first (`darken_exposure`)."""
    usable = [s for s in sources if min(s.thumb.pixels.shape[:2]) >= side]
    if not usable:
        raise DustDataError(f"no photo is at least {side} px on its short side")
    dusty, clean, weight = [], [], []
    for _ in range(batch):
        src = usable[int(rng.integers(0, len(usable)))]
        thumb = src.thumb
        img, cells = _crop_pair(thumb, src.smooth, rng, side, favour)
        if darken and rng.random() < darken:
            img = darken_exposure(img, rng)
        count = 0 if rng.random() < clean_share else None
        p = params if count is None else replace(params, count=(0, 0))
        pair = add_dust(
            img, rng, long_side=thumb.long_side, params=p, favoured=cells, favour=favour
        )
        dusty.append(pair.dusty)
        clean.append(pair.clean)
        weight.append(spot_weights(img.shape[:2], pair.defects)[:, :, None])

    def stack(xs: list[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()

    return stack(dusty), stack(clean), stack(weight)


def sample_batch(
    sources: Sequence[DustSource],
    rng: np.random.Generator,
    batch: int,
    crop: int,
    params: DustParams,
    clean_share: float,
    favour: float = 0.0,
    darken: float = 0.0,
) -> DustBatch:
    """Thumbnail crops: rendered at 2x, then one binomial pyr_down, as the engine's pyramid."""
    dusty, clean, weight = sample_pairs(
        sources, rng, batch, 2 * crop, params, clean_share, favour, darken
    )
    return DustBatch(pyr_down(dusty), pyr_down(clean), F.max_pool2d(weight, 2))
