"""What the model found: the sensitivity gate on its mask, and the spots it edited.

Sensitivity (DxO PureRAW's dust slider): the mask M says how sure the model is that a place
needs an edit. ``sensitivity`` in [0, 1] sets the mask level ``tau = 0.9 (1 - sensitivity)``
under which an edit is dropped (1 keeps everything the model proposes, 0 only what it is
sure of); the gate rises smoothly over [tau/2, tau] so a threshold never draws a hard edge.

Visibility: a spot whose strongest change stays under ``visibility_floor(sensitivity)``
(3/255 at every sensitivity under 1, none at 1) is not edited at all, nor is anything outside
the spots kept. Why (measured on 100 dust-free frames with the first shipped model): two thirds
of its false spots peaked under 2/255 -- edits nobody sees, each of which still stopped a
whole tile from being copied untouched. Why not lower as the sensitivity rises (as it was,
3/255 (1 - s)): on the held-out benchmark with the shipped dust model a fixed floor keeps the
dust removed within 0.5 points at 0.3-0.9 and leaves 3-14 points more clean tiles untouched.
Sensitivity 1 is the model's raw proposal, nothing gated (studio models' cards name it).

Spots: connected places where the retouched thumbnail differs from the input by more than
``SPOT_LEVEL`` (0.75/255), reported in full-resolution pixels: centre, equivalent diameter
and the strongest change (in 1/255 of the thumbnail), largest first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

SPOT_LEVEL = 0.75 / 255.0
MAX_SPOTS = 500  # per file in the report; the count is always complete
VISIBLE = 3.0 / 255.0  # the visibility floor at every sensitivity under KEEP_ALL
RIM = 2  # thumbnail pixels kept around a visible spot: its soft rim under SPOT_LEVEL
KEEP_ALL = 1.0  # the sensitivity that applies every edit the model proposes (eval measures it)


def mask_threshold(sensitivity: float) -> float:
    """The mask level under which an edit is dropped (one owner of the mapping)."""
    if not 0.0 <= sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be within 0..1, not {sensitivity}")
    return 0.9 * (1.0 - sensitivity)


def visibility_floor(sensitivity: float) -> float:
    """The strongest change a spot needs to be edited at all: 0 at sensitivity 1."""
    mask_threshold(sensitivity)  # validates the range
    return 0.0 if sensitivity >= KEEP_ALL else VISIBLE


def visible_spots(edit: np.ndarray, floor: float) -> np.ndarray:
    """(h, w) float32 0/1 from the thumbnail's edit: the connected edits over SPOT_LEVEL whose
    peak reaches `floor`, grown by RIM pixels; everything else is to be left alone."""
    n, labels = cv2.connectedComponents((edit > SPOT_LEVEL).astype(np.uint8), connectivity=8)
    peak = np.zeros(n)
    np.maximum.at(peak, labels.ravel(), edit.ravel().astype(np.float64))
    keep = peak >= floor
    keep[0] = False  # the background label
    grown = cv2.dilate(keep[labels].astype(np.uint8), np.ones((2 * RIM + 1,) * 2, np.uint8))
    return grown.astype(np.float32)


def gate_floor(sensitivity: float) -> float:
    """The mask level under which the gate is exactly 0 (tau / 2; 0 at sensitivity 1)."""
    return 0.5 * mask_threshold(sensitivity)


def sensitivity_gate(mask: Tensor, sensitivity: float) -> Tensor:
    """Smooth 0..1 gate on M: 0 under tau/2, 1 over tau, smoothstep between."""
    floor = gate_floor(sensitivity)
    if floor <= 0.0:
        return torch.ones_like(mask)
    t = ((mask - floor) / floor).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class Spot:
    x: float  # centre, full-resolution pixels (as stored, before any EXIF rotation)
    y: float
    diameter: float  # of the disc with the same area, full-resolution pixels
    change: float  # strongest change in the thumbnail, 1/255

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in asdict(self).items()}


def find_spots(edit: np.ndarray, scale: float, height: int, width: int) -> tuple[int, list[Spot]]:
    """(count, largest spots) from |R_l - I_l| max over channels, (h_l, w_l) float32.

    `scale` is 2^l (thumbnail pixel -> full-resolution pixels); the padded border beyond the
    image (height, width) is ignored.
    """
    hl, wl = int(np.ceil(height / scale)), int(np.ceil(width / scale))
    edit = edit[:hl, :wl]
    binary = (edit > SPOT_LEVEL).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return 0, []
    weights = edit.astype(np.float64)
    flat = labels.ravel()
    wsum = np.bincount(flat, weights=weights.ravel(), minlength=n)
    ys, xs = np.indices(edit.shape)
    cy = np.bincount(flat, weights=(ys * weights).ravel(), minlength=n) / np.maximum(wsum, 1e-12)
    cx = np.bincount(flat, weights=(xs * weights).ravel(), minlength=n) / np.maximum(wsum, 1e-12)
    peak = np.zeros(n)
    np.maximum.at(peak, flat, weights.ravel())
    spots = [
        Spot(
            x=float((cx[i] + 0.5) * scale),
            y=float((cy[i] + 0.5) * scale),
            diameter=float(2.0 * np.sqrt(stats[i, cv2.CC_STAT_AREA] / np.pi) * scale),
            change=float(peak[i] * 255.0),
        )
        for i in range(1, n)
    ]
    spots.sort(key=lambda s: -s.diameter * s.change)
    return n - 1, spots[:MAX_SPOTS]
