"""A shoot with one sensor's dust: the model alone vs a dust profile (and both).

The held-out photos are cropped to one frame size (a shoot: one camera) and all get the same
seeded dust at the same sensor positions, quantised to 8 bits. A flat reference frame (a
vignetted grey card with 0.8/255 of noise) gets the same dust. Then, per method, the share of
the dust error removed (all dust; dust on smooth backgrounds) and the mean change outside the
dust, pooled over the frames:

  model                 `abpn retouch` at the sensitivity given
  profile (shoot)       `abpn dust-profile` of the dusty frames themselves, applied
  profile (reference)   `abpn dust-profile` of the reference frame, applied
  profile (learned)     `abpn dust-profile --learn`: the model's own corrections of the spots
                        it found in several frames, applied to all (no reference frame)
  ... + model           the profile first, then the model (what `--dust-profile` does)

Also printed: how many spots each profile holds and how many of the true defects it covers.

    python benchmarks/dust_shoot.py data/photos/holdout [--size 3000x2000] [--sensitivity S]
        [--figure docs/dust_profile_before_after.png]

--figure: per frame (first six), the defect the model left most of, at 100 %: dusty | model |
learned profile + model | reference profile + model | clean truth | the error |x - clean| x 8
of the first four.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from _setup import dust_parser, photos_and_model

from abpn_cli.batch.shoot_profile import LEARN_SENSITIVITY, frame_finds, learn_profile
from abpn_cli.engine import RetouchOptions, retouch
from abpn_cli.engine.dustprofile import (
    DustProfile,
    DustProfileError,
    apply_profile,
    build_profile,
)
from abpn_cli.training.dust import add_dust, sample_defects
from abpn_cli.training.dust_eval import EVAL_DUST, DustCase, case_with_dust, pooled, score_case
from abpn_cli.training.thumbs import decode_float


def _cover(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize to cover (w, h), centre crop: every frame of the shoot has one size."""
    k = max(w / img.shape[1], h / img.shape[0])
    big = cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), cv2.INTER_AREA)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.ascontiguousarray(big[y : y + h, x : x + w])


def _reference(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A grey card shot stopped down: smooth vignetting, sensor noise, no detail."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    grey = 0.78 - 0.35 * r2 + rng.normal(0, 0.8 / 255, (h, w)).astype(np.float32)
    return np.repeat(np.clip(grey, 0, 1)[:, :, None], 3, axis=2)


def _covered(profile: DustProfile, case: DustCase) -> int:
    h, w = case.clean.shape[:2]
    boxes = [s.box for s in profile.spots]
    return sum(
        any(x0 * w <= d.x <= x1 * w and y0 * h <= d.y <= y1 * h for x0, y0, x1, y1 in boxes)
        for d in case.defects
    )


SIDE, GAP = 128, 4


def _err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b).astype(np.float64)


def _figure(cases: list[DustCase], methods: list[Callable], path: Path) -> None:
    """Per frame, the defect the model left most of, at 100 %: the frames, then each
    method's error |out - clean| x 8."""
    rows = []
    gap = np.full((SIDE, GAP, 3), 255, np.uint8)
    for case in cases[:6]:
        outs = [m(case.dusty.copy()) for m in methods]
        worst = max(case.patches, key=lambda p: _err(outs[0][p.window], case.clean[p.window]).sum())
        h, w = case.clean.shape[:2]
        y0 = int(np.clip(worst.defect.y - SIDE / 2, 0, h - SIDE))
        x0 = int(np.clip(worst.defect.x - SIDE / 2, 0, w - SIDE))
        win = (slice(y0, y0 + SIDE), slice(x0, x0 + SIDE))
        frames = [case.dusty[win], *(o[win] for o in outs), case.clean[win]]
        errors = [
            np.clip(_err(f, case.clean[win]) * 8, 0, 255).astype(np.uint8) for f in frames[:-1]
        ]
        tiles = frames + errors
        rows.append(np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1))
    sep = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    grid = np.concatenate([x for r in rows for x in (r, sep)][:-1], axis=0)
    cv2.imwrite(str(path), grid[:, :, ::-1])
    print(
        f"figure: {path} (dusty | model | learned + model | reference + model | clean | "
        "their errors x 8)"
    )


def _score(name: str, cases: list[DustCase], method: Callable[[np.ndarray], np.ndarray]) -> None:
    p = pooled([score_case(c, method(c.dusty.copy()), None) for c in cases])
    print(
        f"{name:28s} {100 * p['removed']:7.1f}% {100 * (p['removed_smooth'] or 0):7.1f}% "
        f"{p['outside']:8.3f}"
    )


def main() -> int:
    ap = dust_parser(__doc__)
    ap.add_argument("--size", default="3000x2000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument(
        "--learn-sensitivity",
        type=float,
        default=None,
        help=f"the model's sensitivity while learning the profile (default {LEARN_SENSITIVITY})",
    )
    args = ap.parse_args()
    loaded = photos_and_model(args.photos, args.model)
    if loaded is None:
        return 1
    photos, model = loaded
    w, h = (int(v) for v in args.size.lower().split("x"))
    rng = np.random.default_rng(args.seed)
    defects = sample_defects(rng, (h, w), max(w, h), EVAL_DUST)
    cases = [
        case_with_dust(p.stem, clean, add_dust(clean, rng, defects=defects))
        for p in photos
        for clean in [_cover(decode_float(p), w, h)]
    ]
    ref = case_with_dust(
        "reference", (flat := _reference(w, h, rng)), add_dust(flat, rng, defects=defects)
    )
    start = time.perf_counter()
    profiles = {"reference": build_profile([ref.dusty])}
    built = time.perf_counter() - start
    try:
        profiles["shoot"] = build_profile([c.dusty for c in cases])
    except DustProfileError as exc:
        print(f"profile (shoot): refused: {exc}")
    options = RetouchOptions(sensitivity=args.sensitivity)
    finds = []
    learn_at = LEARN_SENSITIVITY if args.learn_sensitivity is None else args.learn_sensitivity
    for c in cases:
        result = retouch(model, c.dusty, RetouchOptions(sensitivity=learn_at))
        finds.append(frame_finds(c.dusty, result.image, [s.to_json() for s in result.spots]))
    learned = learn_profile(finds)
    profiles["learned"] = learned.profile
    print(
        f"profile (learned at sensitivity {learn_at}): {learned.recurring} recurring spots, "
        f"{learned.same_scene} left out as one scene"
    )
    print(
        f"{len(cases)} frames {w}x{h}, {len(defects)} defects; model {model.path.name}, "
        f"sensitivity {args.sensitivity}; the reference profile built in {built:.1f} s"
    )
    for name, prof in profiles.items():
        print(
            f"profile ({name}): {len(prof.spots)} spots, covers {_covered(prof, cases[0])} "
            f"of {len(defects)} defects"
        )

    def run_model(px: np.ndarray) -> np.ndarray:
        return retouch(model, px, options).image

    def with_profile(prof: DustProfile, then_model: bool) -> Callable[[np.ndarray], np.ndarray]:
        def method(px: np.ndarray) -> np.ndarray:
            apply_profile(px, prof)
            return run_model(px) if then_model else px

        return method

    print(f"{'method':28s} {'removed':>8s} {'smooth':>8s} {'outside':>8s}")
    _score("nothing", cases, lambda px: px)
    _score("model", cases, run_model)
    for name, prof in profiles.items():
        _score(f"profile ({name})", cases, with_profile(prof, False))
        _score(f"profile ({name}) + model", cases, with_profile(prof, True))
    if args.figure:
        then_model = [with_profile(profiles[k], True) for k in ("learned", "reference")]
        _figure(cases, [run_model, *then_model], args.figure)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
