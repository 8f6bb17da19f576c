"""Tensor <-> pixel conversion and tile crops shared by the engine's passes.

A tile's input window [ya, yb) x [xa, xb) carries a halo around its output [y0, y1) x
[x0, x1); `inner` cuts the output back out, `half_tile` is the same tile one level coarser.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from abpn_cli.engine.geometry import Tile, tile_grid
from abpn_cli.engine.modelfile import LoadedModel

HALO = 8  # level-0 pixels; the expand + refine chain reaches 5, keep it even and spare


def to_tensor(block: np.ndarray, scale: float, model: LoadedModel) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(block)).to(model.device)
    t = t.permute(2, 0, 1).unsqueeze(0).to(model.dtype) * (1.0 / scale)
    return t.contiguous(memory_format=torch.channels_last) if model.device.type == "cpu" else t


def to_pixels(t: Tensor, scale: float, dtype: np.dtype) -> np.ndarray:
    arr = (t[0].float().clamp(0.0, 1.0) * scale).round().permute(1, 2, 0).cpu().numpy()
    return arr.astype(dtype)


def half_tile(t: Tile) -> Tile:
    return Tile(*(v // 2 for v in (t.y0, t.y1, t.x0, t.x1, t.ya, t.yb, t.xa, t.xb)))


def crop(t: Tensor, tile: Tile) -> Tensor:
    return t[:, :, tile.ya : tile.yb, tile.xa : tile.xb]


def inner(t: Tensor, tile: Tile) -> Tensor:
    oy, ox = tile.y0 - tile.ya, tile.x0 - tile.xa
    return t[:, :, oy : oy + tile.y1 - tile.y0, ox : ox + tile.x1 - tile.x0]


def down_tiled(fine: np.ndarray | Tensor, scale: float, model: LoadedModel, tile: int) -> Tensor:
    """I_{i+1} = down(I_i) in tiles (exact: each tile's halo covers the 5x5 kernel)."""
    if isinstance(fine, np.ndarray):
        h, w = fine.shape[:2]
    else:
        h, w = fine.shape[2], fine.shape[3]
    out = torch.empty((1, 3, h // 2, w // 2), dtype=model.dtype, device=model.device)
    for t in tile_grid(h, w, h, w, tile, HALO):
        if isinstance(fine, np.ndarray):
            block = to_tensor(fine[t.ya : t.yb, t.xa : t.xb], scale, model)
        else:
            block = crop(fine, t)
        down = model.module.down(block)
        out[:, :, t.y0 // 2 : t.y1 // 2, t.x0 // 2 : t.x1 // 2] = inner(down, half_tile(t))
    return out
