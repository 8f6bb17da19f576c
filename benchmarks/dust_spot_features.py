"""The spots the model edits on held-out photos: on a defect or not, and what tells them apart.

Every photo gets the benchmark's seeded dust (abpn_cli.training.dust_eval) and is run, dusty
and clean, through the engine at the sensitivity given (default 1: every spot the model
proposes). Each reported spot is "true" when it touches a defect's footprint. Printed per
group (true spots, false spots on the dusty and on the clean photos), the 10th / 50th / 90th
percentiles of: diameter (px), strongest change (1/255 of the thumbnail), mask (max over the
spot), the gain the edit applies (log, brightest channel) and its spread over the channels
(0 for a neutral edit, as a dust shadow's correction is).

    python benchmarks/dust_spot_features.py data/photos/holdout [--model M] [--sensitivity S]
"""

from __future__ import annotations

import numpy as np
from _setup import dust_parser, photos_and_model

from abpn_cli.engine import RetouchOptions, retouch
from abpn_cli.training.dust_eval import make_case

FEATURES = ("diameter", "change", "mask", "gain", "gain_spread")


def _features(spot, before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The spot's features over the square of its diameter around its centre."""
    y, x, r = int(spot.y), int(spot.x), max(2, int(spot.diameter / 2))
    win = (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))
    a = before[win].reshape(-1, 3).astype(np.float64).mean(0) + 1.0
    b = after[win].reshape(-1, 3).astype(np.float64).mean(0) + 1.0
    gain = np.log(b / a)
    return {
        "diameter": spot.diameter,
        "change": spot.change,
        "mask": float(mask[win].max()),
        "gain": float(gain.max()),
        "gain_spread": float(gain.max() - gain.min()),
        "window": win,
    }


def main() -> int:
    ap = dust_parser(__doc__)
    ap.set_defaults(sensitivity=1.0)  # every spot the model proposes
    args = ap.parse_args()
    loaded = photos_and_model(args.photos, args.model)
    if loaded is None:
        return 1
    photos, model = loaded
    options = RetouchOptions(sensitivity=args.sensitivity, want_mask=True)
    groups: dict[str, list[dict[str, float]]] = {"true": [], "false, dusty": [], "false, clean": []}
    defects = hit = 0
    for i, path in enumerate(photos):
        case = make_case(path, i)
        defects += len(case.patches)
        touched = np.zeros(len(case.patches), bool)
        for kind, image in (("dusty", case.dusty), ("clean", case.clean)):
            r = retouch(model, image, options)
            for spot in r.spots:
                f = _features(spot, image, r.image, r.mask)
                on = [
                    j
                    for j, p in enumerate(case.patches)
                    if kind == "dusty" and _overlaps(f["window"], p.window, p.footprint)
                ]
                touched[on] = True
                groups["true" if on else f"false, {kind}"].append(f)
        hit += int(touched.sum())
    print(f"model {model.path.name}, sensitivity {args.sensitivity}, {len(photos)} photos")
    print(f"defects with an edit: {hit} of {defects}")
    for name, rows in groups.items():
        print(f"{name} ({len(rows)} spots)")
        for k in FEATURES:
            v = np.array([row[k] for row in rows]) if rows else np.zeros(1)
            p10, p50, p90 = np.percentile(v, [10, 50, 90])
            print(f"  {k:12s} {p10:8.3f} {p50:8.3f} {p90:8.3f}")
    return 0


def _overlaps(win, patch_win, footprint: np.ndarray) -> bool:
    """Whether the spot's window meets the defect's footprint (both in frame pixels)."""
    (ys, xs), (py, px) = win, patch_win
    y0, y1 = max(ys.start, py.start), min(ys.stop, py.stop)
    x0, x1 = max(xs.start, px.start), min(xs.stop, px.stop)
    if y0 >= y1 or x0 >= x1:
        return False
    return bool(footprint[y0 - py.start : y1 - py.start, x0 - px.start : x1 - px.start].any())


if __name__ == "__main__":
    raise SystemExit(main())
