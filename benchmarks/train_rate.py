"""Samples per second of the two trainers, measured in one run on this machine.

old: the full-network trainer's step (`training.trainer._train_step`): the default ABPN, 512^2
crops at l = 1, batch 8, channels_last, synthetic creases/blotches/spots, no GAN (as the shipped
crease model was trained). new: the dust LRL-only stage (`training.dust_train`): the dust
config, 128^2 thumbnail crops rendered at 2x, batch 24, dust rendered per sample (data time
included), optionally torch.compile'd. Both on random crops of the same photos.

    python benchmarks/train_rate.py data/photos/train --steps 6
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from abpn_cli.model import ABPN, ABPNConfig
from abpn_cli.training.dust import DustParams
from abpn_cli.training.dust_data import dust_sources, sample_batch
from abpn_cli.training.dust_train import DUST_CONFIG, lrl_losses
from abpn_cli.training.synthetic import make_pair
from abpn_cli.training.thumbs import load_thumbs
from abpn_cli.training.train_settings import TrainSettings
from abpn_cli.training.trainer import _train_step


def _old_rate(images: list[np.ndarray], steps: int) -> float:
    model = ABPN(ABPNConfig()).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    settings = TrainSettings(out=Path(tempfile.gettempdir()), weights=_no_gan())
    rng = np.random.default_rng(0)
    start = None
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()  # the first step warms up
        before, after = [], []
        for _ in range(settings.batch):
            img = images[int(rng.integers(0, len(images)))]
            y = int(rng.integers(0, img.shape[0] - 512 + 1))
            x = int(rng.integers(0, img.shape[1] - 512 + 1))
            pair = make_pair(np.ascontiguousarray(img[y : y + 512, x : x + 512]), rng)
            before.append(pair.before)
            after.append(pair.after)
        b, a = (
            torch.from_numpy(np.stack(v))
            .permute(0, 3, 1, 2)
            .contiguous(memory_format=torch.channels_last)
            for v in (before, after)
        )
        _train_step(model, None, opt, None, b, a, settings)
    return steps * settings.batch / (time.perf_counter() - start)


def _no_gan():
    from abpn_cli.training.losses import LossWeights

    return LossWeights(adv=0.0)


def _new_rate(sources, steps: int, compiled: bool) -> float:
    model = ABPN(DUST_CONFIG)
    lrl = model.lrl.train()
    fwd = torch.compile(lrl) if compiled else lrl
    opt = torch.optim.Adam(lrl.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    start = None
    warm = 3 if compiled else 1
    for i in range(steps + warm):
        if i == warm:
            start = time.perf_counter()
        batch = sample_batch(sources, rng, 24, 128, DustParams(), 0.2, 0.6)
        mask, out = fwd(batch.dusty)
        terms = lrl_losses(mask, out, batch, 0.5, 1.0)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
    return steps * 24 / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    photos = (
        sorted(p for p in args.photos.iterdir() if p.is_file())[:8] if args.photos.is_dir() else []
    )
    if not photos:
        print(f"error: no photos in {args.photos}", file=sys.stderr)
        return 1
    torch.set_num_threads(2)
    thumbs = load_thumbs(photos, (1536,), None)
    images = [t.pixels.astype(np.float32) for t in thumbs]
    old = _old_rate(images, args.steps)
    eager = _new_rate(dust_sources(thumbs), args.steps, compiled=False)
    compiled = _new_rate(dust_sources(thumbs), args.steps, compiled=True)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"old trainer (512^2 crops, l=1, batch 8)        : {old:6.1f} samples/s")
    print(
        f"dust LRL stage (128^2 thumbs, batch 24), eager : {eager:6.1f} samples/s "
        f"({eager / old:.1f}x)"
    )
    print(
        f"dust LRL stage, torch.compile                  : {compiled:6.1f} samples/s "
        f"({compiled / old:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
