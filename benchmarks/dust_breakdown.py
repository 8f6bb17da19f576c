"""Where the dust error a model leaves comes from: per spot, binned by what it sits on.

Runs a model's LRL on the trainer's fixed held-out validation crops (the same crops
`abpn train-dust` scores; thumbnail scale, no pyramid) and, for every dust spot (a connected
place where the dusty crop differs from the clean one by > 0.003), measures its share of the
dust error, how much of it the model removed, and bins the spots by area, attenuation, local
texture of the clean background (grey std over a ~3 px Gaussian), brightness and the
strongest mask value the model gave it. Printed: per bin, the count, the share of all the
dust error, the share removed, and the share of what is left.

    python benchmarks/dust_breakdown.py abpn_cli/weights/abpn-default.pt data/photos/holdout
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from abpn_cli.engine.modelfile import load_eager
from abpn_cli.training.dust_data import dust_sources
from abpn_cli.training.dust_train import VAL_SIDE, DustTrainSettings, make_val_set
from abpn_cli.training.thumbs import load_thumbs

COLUMNS = ("base", "left", "area", "attenuation", "texture", "brightness", "mask")
BINS = {
    "area": (0, 10, 30, 100, 300, 1e9),
    "attenuation": (0, 0.05, 0.1, 0.15, 1),
    "texture": (0, 0.005, 0.01, 0.02, 0.04, 1),
    "brightness": (0, 0.15, 0.3, 0.5, 0.7, 1.1),
    "mask": (0, 0.1, 0.3, 0.5, 0.8, 1.1),
}


def _local_std(grey: np.ndarray) -> np.ndarray:
    mean = cv2.GaussianBlur(grey, (0, 0), 3)
    return np.sqrt(np.maximum(cv2.GaussianBlur(grey * grey, (0, 0), 3) - mean * mean, 0.0))


def spot_rows(dusty: np.ndarray, clean: np.ndarray, out: np.ndarray, mask: np.ndarray):
    """One row (COLUMNS) per dust spot of one (3, h, w) crop; `mask` at the crop's size."""
    diff = np.abs(dusty - clean).max(0)
    n, labels = cv2.connectedComponents((diff > 0.003).astype(np.uint8), connectivity=8)
    grey = clean.mean(0)
    texture = _local_std(grey)
    base_px, left_px = ((dusty - clean) ** 2).sum(0), ((out - clean) ** 2).sum(0)
    ratio = 1.0 - (dusty.mean(0) + 1e-3) / (grey + 1e-3)
    for k in range(1, n):
        sel = labels == k
        yield (
            base_px[sel].sum(),
            left_px[sel].sum(),
            sel.sum(),
            ratio[sel].max(),
            texture[sel].mean(),
            grey[sel].mean(),
            mask[sel].max(),
        )


def _print_bins(rows: np.ndarray) -> None:
    base, left = rows[:, 0].sum(), rows[:, 1].sum()
    print(f"{len(rows)} spots, {100 * (1 - left / base):.1f} % of the dust error removed")
    for name, edges in BINS.items():
        col = COLUMNS.index(name)
        for lo, hi in itertools.pairwise(edges):
            sel = (rows[:, col] >= lo) & (rows[:, col] < hi)
            if not sel.any():
                continue
            b, rest = rows[sel, 0].sum(), rows[sel, 1].sum()
            print(
                f"{name:12s} [{lo:g}, {hi:g}) n={int(sel.sum()):4d}  error {100 * b / base:5.1f} %"
                f"  removed {100 * (1 - rest / max(b, 1e-12)):5.1f} %"
                f"  of what is left {100 * rest / left:5.1f} %"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("holdout", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("data/thumbcache"))
    args = ap.parse_args()
    photos = tuple(sorted(p for p in args.holdout.iterdir() if p.is_file()))
    settings = DustTrainSettings(photos=photos, holdout=photos, out=Path("unused"))
    held = dust_sources(load_thumbs(photos, (VAL_SIDE,), args.cache))
    dusty_batches, _clean = make_val_set(held, settings)
    lrl = load_eager(args.model)[0].lrl.eval()
    rows = []
    with torch.no_grad():
        for b in dusty_batches:
            mask, out = lrl(b.dusty)
            full = F.interpolate(mask, size=b.dusty.shape[-2:], mode="bilinear")
            for i in range(b.dusty.shape[0]):
                crop = (b.dusty[i].numpy(), b.clean[i].numpy(), out[i].numpy())
                rows.extend(spot_rows(*crop, full[i, 0].numpy()))
    _print_bins(np.array(rows, dtype=np.float64))


if __name__ == "__main__":
    main()
