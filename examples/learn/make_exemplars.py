"""Build before/after pairs of ONE local edit the shipped model never saw: "warm the sky".

The edit: pixels whose hue is sky-blue (about 215 degrees, soft falloff), that are bright and
saturated enough, get warmer (red up, blue down) through a soft mask blurred by ~1/500 of the
long side. Everything else is left exactly as it was. It is a pure function of the photo, so
the "true edited result" of any photo is known and a learned model can be scored against it.

    python examples/learn/make_exemplars.py [--photos data/photos] [--out data/learn]

writes, at each photo's native resolution (1.3K-6K):

    OUT/pairs3/{before,after}/   3 exemplar pairs to learn from
    OUT/test10/{before,after}/   10 other photos to apply the learned model to

`before` is the original JPEG, copied byte for byte; `after` is the edited pixels of the
product's own decode of it (abpn_cli.imaging.read_photo), written losslessly as PNG with the
source's metadata, so `abpn eval` scores against exactly the true edit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.imaging import read_photo, save_photo

EXEMPLARS = [
    "train/picosdeeuropa_by_Aitzol_Berasategi.jpg",
    "train/Bridge_by_Sander_Klootwijk.jpg",
    "holdout/Dragonfly_by_Bolly.jpg",
]
TESTS = [
    "holdout/EveningGlow.jpg",
    "holdout/Kleiber_by_Lukas_Baubkus.jpg",
    "holdout/sunset_by_Aitzol_Berasategi.jpg",
    "holdout/LadyBird.jpg",
    "holdout/Path.jpg",
    "train/Kite.jpg",
    "train/aitzgorri_by_Aitzol_Berasategi.jpg",
    "train/Storm.jpg",
    "train/summer_1am.jpg",
    "train/Dune.jpg",
]

SKY_HUE = 215.0  # degrees
WARMTH = np.array([0.09, 0.025, -0.08], np.float32)  # added to R, G, B where the mask is 1


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def sky_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much of the edit each pixel gets."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)  # float input: H in [0, 360), S, V in [0, 1]
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    dist = np.abs((hue - SKY_HUE + 180.0) % 360.0 - 180.0)
    mask = (1.0 - _smoothstep(25.0, 45.0, dist)) * _smoothstep(0.12, 0.3, sat)
    mask *= _smoothstep(0.3, 0.55, val)
    sigma = max(rgb.shape[:2]) / 500.0
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


def warm_sky(rgb: np.ndarray) -> np.ndarray:
    """The edit: float RGB in [0, 1] -> float RGB in [0, 1]."""
    out = rgb + sky_mask(rgb)[..., None] * WARMTH
    return np.clip(out, 0.0, 1.0)


def make_pair(src: Path, dest_root: Path, max_side: int | None = None) -> dict:
    photo = read_photo(src)
    (dest_root / "before").mkdir(parents=True, exist_ok=True)
    (dest_root / "after").mkdir(parents=True, exist_ok=True)
    if max_side is not None and max(photo.pixels.shape[:2]) > max_side:  # quick dry runs
        h, w = photo.pixels.shape[:2]
        s = max_side / max(h, w)
        small = cv2.resize(photo.pixels, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        photo = dataclasses.replace(photo, pixels=small, alpha=None)
        save_photo(photo, small, dest_root / "before" / (src.stem + ".png"), fmt="png")
    else:
        shutil.copyfile(src, dest_root / "before" / src.name)
    top = 255.0 if photo.pixels.dtype == np.uint8 else 65535.0
    rgb = photo.pixels.astype(np.float32) / top
    edited = np.round(warm_sky(rgb) * top).astype(photo.pixels.dtype)
    save_photo(photo, edited, dest_root / "after" / (src.stem + ".png"), fmt="png")
    changed = np.abs(edited.astype(np.int32) - photo.pixels).max(axis=2) > 0.02 * top
    h, w = rgb.shape[:2]
    return {
        "photo": src.name,
        "size": f"{w}x{h}",
        "edited_fraction": round(float(changed.mean()), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("data/photos"))
    ap.add_argument("--out", type=Path, default=Path("data/learn"))
    ap.add_argument(
        "--max-side", type=int, default=None, help="downscale (PNG before) for a quick dry run"
    )
    args = ap.parse_args()
    for sub in ("pairs3", "test10"):  # start clean: no stale pairs from an earlier run
        shutil.rmtree(args.out / sub, ignore_errors=True)
    summary = {}
    for name, items in (("pairs3", EXEMPLARS), ("test10", TESTS)):
        summary[name] = []
        for rel in items:
            info = make_pair(args.photos / rel, args.out / name, args.max_side)
            summary[name].append(info)
            print(f"{name}: {info['photo']} {info['size']} edited {info['edited_fraction']:.1%}")
    (args.out / "manifest.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
