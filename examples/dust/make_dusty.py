"""Make the bundled dusty example: a held-out real photo with seeded physical sensor dust.

    python examples/dust/make_dusty.py /usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg \\
        examples/photos/sunset-dusty.jpg --seed 7

The dust (abpn_cli.training.dust, 16 spots and fibres, sizes 0.26-2 % of the long side) is
rendered at the photo's full resolution in linear light; the EXIF/ICC of the source are kept
(written through the project's own encoder), JPEG quality 95. The clean source is the truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from abpn_cli.imaging import read_photo, save_photo
from abpn_cli.training.dust import DustParams, add_dust


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--spots", type=int, default=16)
    args = ap.parse_args()
    photo = read_photo(args.source)
    clean = photo.pixels.astype(np.float32) / 255.0
    dusty = add_dust(
        clean, np.random.default_rng(args.seed), params=DustParams(count=(args.spots,) * 2)
    )
    pixels = np.clip(np.round(dusty.dusty * 255.0), 0, 255).astype(np.uint8)
    save_photo(photo, pixels, args.dest, jpeg_quality=95)
    for d in dusty.defects:
        print(
            f"{d.kind:5s} x {d.x:7.1f} y {d.y:7.1f} diameter {2 * d.radius:6.1f} px, "
            f"attenuation {d.strength:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
