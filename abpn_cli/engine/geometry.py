"""Level choice, padding and tile grids: pure functions of sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ENCODER_STRIDE_LOG2 = 6  # the mutual encoder halves six times


def choose_levels(height: int, width: int, thumbnail: int) -> int:
    """l so that the long side / 2^l is closest (in log scale) to the training thumbnail."""
    long_side = max(height, width)
    if long_side <= thumbnail:
        return 0
    return max(0, round(math.log2(long_side / thumbnail)))


def padded_size(height: int, width: int, levels: int) -> tuple[int, int]:
    """Round up to a multiple of 2^(l+6): l pyramid halvings, then six encoder strides."""
    mult = 2 ** (levels + ENCODER_STRIDE_LOG2)
    return math.ceil(height / mult) * mult, math.ceil(width / mult) * mult


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Where index `i` of an axis reflect-padded at its end reads from: numpy's "reflect"
    (mirror without repeating the edge), repeated when the pad is longer than the axis."""
    if size == 1:
        return np.zeros_like(index)
    m = index % (2 * (size - 1))
    return np.where(m < size, m, 2 * (size - 1) - m)


def reflect_pad(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad (H, W, C) at bottom/right to (height, width); crop back with [:H, :W]."""
    ph = height - pixels.shape[0]
    pw = width - pixels.shape[1]
    if ph == 0 and pw == 0:
        return pixels
    return np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="reflect")


def padded_window(pixels: np.ndarray, ya: int, yb: int, xa: int, xb: int) -> np.ndarray:
    """Rows [ya, yb) x columns [xa, xb) of `reflect_pad(pixels, ...)` without padding the
    frame: a view inside the image, a small copy where the window crosses its bottom/right
    edge (a 6K frame's padded copy cost ~0.02-0.07 s and 75 MB per frame)."""
    h, w = pixels.shape[:2]
    if yb <= h and xb <= w:
        return pixels[ya:yb, xa:xb]
    rows = reflect_index(np.arange(ya, yb), h)
    cols = reflect_index(np.arange(xa, xb), w)
    return pixels[rows[:, None], cols[None, :]]


@dataclass(frozen=True)
class Tile:
    """An output tile [y0, y1) x [x0, x1) and its input window [ya, yb) x [xa, xb)."""

    y0: int
    y1: int
    x0: int
    x1: int
    ya: int
    yb: int
    xa: int
    xb: int


def tile_grid(height: int, width: int, limit_h: int, limit_w: int, tile: int, halo: int):
    """Tiles covering [0, height) x [0, width) of a (limit_h, limit_w) frame.

    Tile origins, ends and halos are even so the half-resolution level lines up exactly.
    """
    if tile % 2 or halo % 2:
        raise ValueError("tile and halo must be even")
    tiles = []
    for y0 in range(0, height, tile):
        y1 = min(y0 + tile, limit_h)
        for x0 in range(0, width, tile):
            x1 = min(x0 + tile, limit_w)
            tiles.append(
                Tile(
                    y0,
                    y1,
                    x0,
                    x1,
                    max(0, y0 - halo),
                    min(limit_h, y1 + halo),
                    max(0, x0 - halo),
                    min(limit_w, x1 + halo),
                )
            )
    return tiles
