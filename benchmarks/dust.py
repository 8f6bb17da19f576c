"""The dust model on held-out real photos at full resolution: how much dust it removes.

Every photo gets seeded physical dust at its own resolution (abpn_cli.training.dust_eval),
is quantised to 8 bits and run through the engine exactly as `abpn retouch` runs it; the same
photo without dust is run too. Printed per photo and pooled:

  removed         share of the dust error removed (all dust)
  smooth          the same, for dust on smooth backgrounds (sky, walls, backdrops)
  outside         mean change outside the dust, 1/255
  clean change    mean change of the dust-free photo, 1/255
  clean untouched share of level-0 tiles copied untouched on the dust-free photo

    python benchmarks/dust.py data/photos/holdout [--model M] [--sensitivity S] [--json F]
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from _setup import dust_parser, photos_and_model

from abpn_cli.engine import RetouchOptions, retouch
from abpn_cli.training.dust_eval import MethodResult, evaluate_dust, pooled


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def main() -> int:
    ap = dust_parser(__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="first N photos only")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    loaded = photos_and_model(args.photos, args.model)
    if loaded is None:
        return 1
    photos, model = loaded
    options = RetouchOptions(sensitivity=args.sensitivity)

    def method(pixels):
        r = retouch(model, pixels, options)
        return MethodResult(r.image, r.tiles_total, r.tiles_skipped)

    start = time.perf_counter()
    scores = evaluate_dust(photos[: args.limit], method, seed=args.seed)
    print(f"model {model.path.name} ({model.sha256[:12]}), sensitivity {args.sensitivity}")
    print(
        f"{'photo':28s} {'size':>10s} {'spots':>5s} {'removed':>8s} {'smooth':>8s} "
        f"{'outside':>8s} {'clean chg':>9s} {'untouched':>9s}"
    )
    for s in scores:
        size = f"{s.size[1]}x{s.size[0]}"
        print(
            f"{s.name[:28]:28s} {size:>10s} {s.spots:5d} {_pct(s.removed):>8s} "
            f"{_pct(s.removed_smooth):>8s} {s.outside:8.3f} {s.clean_change:9.3f} "
            f"{_pct(s.clean_tiles_skipped):>9s}"
        )
    p = pooled(scores)
    print(
        f"{'mean':28s} {'':>10s} {'':>5s} {_pct(p['removed']):>8s} "
        f"{_pct(p['removed_smooth']):>8s} {p['outside']:8.3f} {p['clean_change']:9.3f} "
        f"{_pct(p['clean_tiles_skipped']):>9s}"
    )
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": str(model.path),
                    "sha256": model.sha256,
                    "sensitivity": args.sensitivity,
                    "pooled": p,
                    "files": [asdict(s) for s in scores],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
