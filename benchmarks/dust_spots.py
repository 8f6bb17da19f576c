"""The full-frame dust benchmark broken down per spot: which dust the model leaves, and why.

The same held-out cases as benchmarks/dust.py (seeded physical dust at each photo's own
resolution, 8 bits, the engine as `abpn retouch` runs it); for every defect, its share of the
dust error, how much of it was removed, and what it is: its diameter in pixels of the
thumbnail the engine used, attenuation, the clean background's grey std and brightness, and
the strongest mask value over it. Printed per bin: the count, the share of all the dust
error, the share removed, and the same for the spots on smooth backgrounds.

    python benchmarks/dust_spots.py data/photos/holdout [--model M] [--levels-delta -1]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from _setup import dust_parser, photos_and_model

from abpn_cli.engine import RetouchOptions, retouch
from abpn_cli.engine.geometry import choose_levels
from abpn_cli.training.dust_eval import make_case

BINS = {
    "diameter": (0, 3, 5, 8, 12, 20, 1e9),
    "attenuation": (0, 0.06, 0.1, 0.15, 0.2, 1),
    "brightness": (0, 0.15, 0.3, 0.5, 0.7, 1.1),
    "mask": (0, 0.1, 0.3, 0.5, 0.8, 1.1),
}


@dataclass
class SpotRow:
    diameter: float  # thumbnail pixels
    attenuation: float
    smooth: bool
    brightness: float
    mask: float
    base: float
    err: float


def _rows(case, result, levels: int) -> list[SpotRow]:
    rows = []
    for patch in case.patches:
        d, sl, fp = patch.defect, patch.window, patch.footprint
        c, du, o = (a[sl][fp].astype(np.float64) for a in (case.clean, case.dusty, result.image))
        rows.append(
            SpotRow(
                2 * d.radius / 2**levels,
                d.strength,
                patch.smooth,
                float(case.clean[sl].mean()) / 255,
                float(result.mask[sl].max()),
                float(np.square(du - c).sum()),
                float(np.square(o - c).sum()),
            )
        )
    return rows


def _print_bins(rows: list[SpotRow], key: str, edges) -> None:
    total = sum(r.base for r in rows) or 1.0
    print(f"{key}:")
    for lo, hi in itertools.pairwise(edges):
        sel = [r for r in rows if lo <= getattr(r, key) < hi]
        if not sel:
            continue
        b, e = sum(r.base for r in sel), sum(r.err for r in sel)
        sm = [r for r in sel if r.smooth]
        bs, es = sum(r.base for r in sm), sum(r.err for r in sm)
        smooth = f"{100 * (1 - es / bs):6.1f} %" if bs else "     -  "
        print(
            f"  [{lo:g}, {hi:g}) n={len(sel):3d}  share {100 * b / total:5.1f} %  "
            f"removed {100 * (1 - e / max(b, 1e-9)):6.1f} %  smooth n={len(sm):3d} {smooth}"
        )


def main() -> int:
    ap = dust_parser(__doc__)
    ap.add_argument("--levels-delta", type=int, default=0, help="-1: a thumbnail twice as large")
    args = ap.parse_args()
    loaded = photos_and_model(args.photos, args.model)
    if loaded is None:
        return 1
    photos, model = loaded
    rows: list[SpotRow] = []
    for i, path in enumerate(photos):
        case = make_case(path, i)  # the seeds benchmarks/dust.py uses
        levels = choose_levels(*case.clean.shape[:2], model.config.thumbnail) + args.levels_delta
        options = RetouchOptions(sensitivity=args.sensitivity, want_mask=True, levels=levels)
        rows += _rows(case, retouch(model, case.dusty, options), levels)
    print(f"model {model.path.name} ({model.sha256[:12]}), {len(rows)} spots, {len(photos)} photos")
    for key, edges in BINS.items():
        _print_bins(rows, key, edges)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
