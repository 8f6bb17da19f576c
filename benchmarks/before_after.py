"""Render before / after / change / mask crops of photos run through a model, to look at.

    python benchmarks/before_after.py --model abpn_cli/weights/abpn-default.pt \\
        --out docs/before_after_default.png \\
        examples/photos/sunset-dusty.jpg@900,450,1000 examples/photos/seeding.jpg@2300,900,1200

Each argument is PATH@X,Y,SIDE: a SIDE x SIDE window at (X, Y) of the full-resolution result
(the photo is retouched whole, exactly as `abpn retouch` does, tiles and skipping included).
One row per window, shown at 384 px: the input, the output, the change |output - input| x 8
on black (so a 1/255 change is visible as 8/255) and the predicted mask. Also prints, per
photo, the mean change inside and outside the mask's 0.5 level and the share of skipped tiles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.engine import (
    EngineError,
    RetouchOptions,
    default_model_path,
    load_model,
    retouch,
)
from abpn_cli.imaging import ImageError, read_photo

SHOW = 384
GAP = 4
CHANGE_GAIN = 8.0


def _spec(text: str) -> tuple[Path, int, int, int]:
    path, _, box = text.rpartition("@")
    try:
        x, y, side = (int(v) for v in box.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected PATH@X,Y,SIDE, got {text!r}") from exc
    return Path(path), x, y, side


def _to_rgb8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img[:, :, :3]


def render_row(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One row of four SHOW x SHOW panels (RGB uint8) from same-sized crops."""
    change = np.abs(after.astype(np.float32) - before.astype(np.float32)) * CHANGE_GAIN
    panels = [before, after, np.clip(change, 0, 255).astype(np.uint8)]
    panels.append(np.repeat((mask[:, :, None] * 255.0 + 0.5).astype(np.uint8), 3, axis=2))
    shown = [cv2.resize(p, (SHOW, SHOW), interpolation=cv2.INTER_AREA) for p in panels]
    gap = np.full((SHOW, GAP, 3), 255, np.uint8)
    row = [shown[0]]
    for p in shown[1:]:
        row += [gap, p]
    return np.concatenate(row, axis=1)


def main() -> None:
    try:
        _main()
    except (ImageError, EngineError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from None


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("crops", nargs="+", type=_spec, help="PATH@X,Y,SIDE")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    model = load_model(args.model or default_model_path(), device="cpu")
    rows, done = [], {}
    for path, x, y, side in args.crops:
        if path not in done:
            pixels = read_photo(path).pixels
            res = retouch(model, pixels, RetouchOptions(want_mask=True))
            done[path] = (_to_rgb8(pixels), _to_rgb8(res.image), res.mask)
            diff = np.abs(res.image.astype(np.float32) - pixels.astype(np.float32)).mean(axis=2)
            inside = res.mask >= 0.5
            mean_in = float(diff[inside].mean()) if inside.any() else 0.0
            mean_out = float(diff[~inside].mean()) if (~inside).any() else 0.0
            print(
                f"{path}: {pixels.shape[1]}x{pixels.shape[0]} l={res.levels}, "
                f"skipped {res.tiles_skipped}/{res.tiles_total} tiles, mask>=0.5 on "
                f"{inside.mean():.1%}; mean change inside {mean_in:.2f}, outside "
                f"{mean_out:.2f} (8-bit levels)"
            )
        before, after, mask = done[path]
        win = np.s_[y : y + side, x : x + side]
        rows.append(render_row(before[win], after[win], mask[win]))
    gap = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    grid = rows[0]
    for r in rows[1:]:
        grid = np.concatenate([grid, gap, r], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid[:, :, ::-1])
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
    main()
