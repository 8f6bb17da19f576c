"""What a perfect thumbnail is worth for dust, per blend mode: the upper bound of the expansion.

For each held-out photo with seeded dust (abpn_cli.training.dust_eval), the thumbnail I_l is
replaced by the clean photo's own thumbnail, B_l = f_r(I_l, T_l) and B_l is only upsampled
(no refinement) to level 0, where R_0 = f_a(I_0, B_0). Printed: the share of the dust error
removed, per blend initialisation, at the l the engine would pick for the model's thumbnail.

    python benchmarks/dust_ceiling.py data/photos/holdout --thumbnail 768
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from abpn_cli.engine.geometry import choose_levels, padded_size, reflect_pad
from abpn_cli.model import AdaptiveBlend, pyr_down, upsample2x
from abpn_cli.model.blend import BLEND_INITS
from abpn_cli.training.dust_eval import make_case, score_case


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


@torch.no_grad()
def oracle(dusty: np.ndarray, clean: np.ndarray, levels: int, blend: AdaptiveBlend) -> np.ndarray:
    h, w = dusty.shape[:2]
    ph, pw = padded_size(h, w, levels)
    i0, t0 = _t(reflect_pad(dusty, ph, pw)), _t(reflect_pad(clean, ph, pw))
    il, tl = i0, t0
    for _ in range(levels):
        il, tl = pyr_down(il), pyr_down(tl)
    b = blend.reverse(il, tl)
    for _ in range(levels):
        b = upsample2x(b)
    r = blend(i0, b).clamp(0, 1)[0, :, :h, :w].permute(1, 2, 0).numpy()
    return np.round(r * 255).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--thumbnail", type=int, default=768)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    photos = sorted(p for p in args.photos.iterdir() if p.is_file())
    if not photos:
        print(f"error: no photos in {args.photos}", file=sys.stderr)
        return 1
    torch.set_num_threads(2)
    rows = {name: [] for name in BLEND_INITS}
    for i, path in enumerate(photos):
        case = make_case(path, args.seed + i)
        levels = choose_levels(*case.dusty.shape[:2], args.thumbnail)
        line = [f"{case.name[:28]:28s} {case.dusty.shape[1]}x{case.dusty.shape[0]} l={levels}"]
        for name in BLEND_INITS:
            s = score_case(case, oracle(case.dusty, case.clean, levels, AdaptiveBlend(name)), None)
            rows[name].append(s)
            sm = "  -  " if s.removed_smooth is None else f"{100 * s.removed_smooth:5.1f}"
            line.append(f"{name}: {100 * s.removed:5.1f}% (smooth {sm}%)")
        print("  ".join(line), flush=True)
    for name, scores in rows.items():
        all_ = np.mean([s.removed for s in scores])
        sm = np.mean([s.removed_smooth for s in scores if s.removed_smooth is not None])
        print(f"{name:10s} mean removed {100 * all_:.1f}%  on smooth backgrounds {100 * sm:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
