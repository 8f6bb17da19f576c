"""Validation preview: a PNG grid to eyeball what the network is doing during training.

One row per sample: before | output | target | mask M | |output - before| x4.
The amplified difference shows where the network edits (it should match the target's
defect regions and be black elsewhere), which a PSNR number cannot show.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DIFF_GAIN = 4.0
GAP = 4  # pixels of white between tiles


def _to_hwc(x: Tensor) -> np.ndarray:
    return x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def preview_grid(
    before: Tensor, output: Tensor, target: Tensor, mask: Tensor, max_rows: int = 2
) -> np.ndarray:
    """(rows, 5 tiles) RGB float grid in [0, 1]; inputs are (N,3,H,W) and mask (N,1,h,w)."""
    n = min(max_rows, before.shape[0])
    h, w = before.shape[-2:]
    mask_full = F.interpolate(mask[:n].float(), size=(h, w), mode="nearest").expand(-1, 3, -1, -1)
    diff = ((output[:n] - before[:n]).abs() * DIFF_GAIN).clamp(0, 1)
    columns = [before[:n], output[:n], target[:n], mask_full, diff]
    tile_w = w + GAP
    tile_h = h + GAP
    grid = np.ones((n * tile_h - GAP, len(columns) * tile_w - GAP, 3), np.float32)
    for r in range(n):
        for c, col in enumerate(columns):
            grid[r * tile_h : r * tile_h + h, c * tile_w : c * tile_w + w] = _to_hwc(col[r])
    return grid


def write_preview(
    path: Path, before: Tensor, output: Tensor, target: Tensor, mask: Tensor, max_rows: int = 2
) -> Path:
    """Write the grid as an 8-bit PNG (atomic enough: previews are disposable)."""
    with torch.no_grad():
        grid = preview_grid(before, output, target, mask, max_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb8 = (grid * 255.0 + 0.5).astype(np.uint8)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write preview {path}")
    return path
