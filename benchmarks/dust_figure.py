"""Before/after crops at 100 % of held-out photos with seeded dust, to look at.

For each photo (the same seeded dust as benchmarks/dust.py), the dusty frame is retouched
exactly as `abpn retouch` does, and the largest spots on smooth backgrounds (--smallest: the
faintest) are cut out at 100 % (no resampling): dusty input | output | clean truth | change
|out - in| x 8 | QA mask.

    python benchmarks/dust_figure.py data/photos/holdout --out docs/dust_before_after.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from _setup import dust_parser, photos_and_model

from abpn_cli.engine import RetouchOptions, retouch
from abpn_cli.training.dust_eval import make_case

SIDE = 128  # crop side at 100 %
GAP = 4


def _crops(
    case, out: np.ndarray, mask: np.ndarray, per_photo: int, smallest: bool
) -> list[np.ndarray]:
    h, w = case.clean.shape[:2]
    spots = [p.defect for p in case.patches if p.smooth]
    spots.sort(key=lambda d: (1 if smallest else -1) * d.radius * d.strength)
    rows = []
    for d in spots[:per_photo]:
        y0 = int(np.clip(d.y - SIDE / 2, 0, h - SIDE))
        x0 = int(np.clip(d.x - SIDE / 2, 0, w - SIDE))
        win = (slice(y0, y0 + SIDE), slice(x0, x0 + SIDE))
        change = np.clip(np.abs(out[win].astype(np.int16) - case.dusty[win]) * 8, 0, 255)
        m = np.repeat((mask[win] * 255).astype(np.uint8)[:, :, None], 3, axis=2)
        tiles = [case.dusty[win], out[win], case.clean[win], change.astype(np.uint8), m]
        gap = np.full((SIDE, GAP, 3), 255, np.uint8)
        row = [tiles[0]]
        for t in tiles[1:]:
            row += [gap, t]
        rows.append(np.concatenate(row, axis=1))
    return rows


def main() -> int:
    ap = dust_parser(__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-photo", type=int, default=2)
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smallest", action="store_true", help="the faintest spots, not the largest")
    args = ap.parse_args()
    loaded = photos_and_model(args.photos, args.model)
    if loaded is None:
        return 1
    photos, model = loaded
    rows = []
    for i, path in enumerate(photos[: args.limit]):
        case = make_case(path, args.seed + i)  # the seeds benchmarks/dust.py uses
        r = retouch(model, case.dusty, RetouchOptions(sensitivity=args.sensitivity, want_mask=True))
        rows += _crops(case, r.image, r.mask, args.per_photo, args.smallest)
    if not rows:
        print("error: no dust on smooth backgrounds in these photos", file=sys.stderr)
        return 1
    sep = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    grid = rows[0]
    for row in rows[1:]:
        grid = np.concatenate([grid, sep, row], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"{len(rows)} crops -> {args.out} (columns: dusty, output, clean, change x8, mask)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
