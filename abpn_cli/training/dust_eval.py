"""Held-out dust benchmark: real photos at full resolution, physical dust, known clean target.

For each photo a fixed set of defects (`training.dust`, seeded) is rendered at the photo's own
resolution and quantised to 8 bits, as a camera would record it. A method (the model through
the engine, or an oracle) turns the dusty frame into an output, and we measure:

* ``removed``: ``1 - sum (out - clean)^2 / sum (dusty - clean)^2`` over the dust footprint
  (pixels whose transmittance is below 0.999, dilated by 2 px): the share of the dust error
  removed, over all dust and over dust on smooth backgrounds only (the defect's patch of the
  clean photo has a grey standard deviation <= 4/255: sky, walls, backdrops);
* ``outside``: mean |out - dusty| outside the dilated footprint, in 1/255 (what was changed
  that should not have been);
* on the same photo without dust: ``clean_change`` mean |out - clean| in 1/255 and the share
  of level-0 tiles the engine copied untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.training.dust import DustDefect, DustParams, DustyImage, add_dust
from abpn_cli.training.dust_data import SMOOTH_STD  # one notion of "smooth" for train and eval
from abpn_cli.training.thumbs import decode_float

FOOTPRINT_T = 0.999
EVAL_DUST = DustParams(count=(14, 14))


@dataclass
class MethodResult:
    image: np.ndarray  # uint8 (H, W, 3)
    tiles_total: int = 0
    tiles_skipped: int = 0


Method = Callable[[np.ndarray], MethodResult]


@dataclass(frozen=True)
class DefectPatch:
    """One defect and the window around it: its footprint there, and whether it is smooth."""

    defect: DustDefect
    window: tuple[slice, slice]
    footprint: np.ndarray  # bool, the window's part of DustCase.footprint
    smooth: bool


@dataclass
class DustCase:
    name: str
    clean: np.ndarray  # uint8
    dusty: np.ndarray  # uint8
    footprint: np.ndarray  # bool (H, W), dilated
    defects: list[DustDefect]
    patches: list[DefectPatch] = field(default_factory=list)


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def make_case(path: Path, seed: int, params: DustParams = EVAL_DUST) -> DustCase:
    """Decode a photo, put seeded dust on it at its own resolution, quantise to 8 bits."""
    clean_f = decode_float(path)
    return case_with_dust(
        path.stem, clean_f, add_dust(clean_f, np.random.default_rng(seed), params=params)
    )


def case_with_dust(name: str, clean_f: np.ndarray, dusty: DustyImage) -> DustCase:
    """The scored case of a float clean frame and its dust (a shoot reuses one set)."""
    touched = (dusty.transmittance < FOOTPRINT_T).any(axis=2).astype(np.uint8)
    footprint = cv2.dilate(touched, np.ones((5, 5), np.uint8)).astype(bool)
    grey = clean_f.mean(axis=2)
    masks = []
    h, w = grey.shape
    for d in dusty.defects:
        r = int(np.ceil(d.radius * 1.5 + d.width + 2))
        y0, y1 = max(0, int(d.y) - r), min(h, int(d.y) + r + 1)
        x0, x1 = max(0, int(d.x) - r), min(w, int(d.x) + r + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        sl = (slice(y0, y1), slice(x0, x1))
        smooth = float(grey[sl].std()) <= SMOOTH_STD
        masks.append(DefectPatch(d, sl, footprint[sl], smooth))
    return DustCase(name, _to_u8(clean_f), _to_u8(dusty.dusty), footprint, dusty.defects, masks)


@dataclass
class CaseScore:
    name: str
    size: tuple[int, int]
    removed: float
    removed_smooth: float | None
    smooth_spots: int
    spots: int
    outside: float
    clean_change: float | None = None
    clean_tiles_skipped: float | None = None


def _sq(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.square(a.astype(np.float64) - b.astype(np.float64)).sum())


def score_case(case: DustCase, out: np.ndarray, clean_out: MethodResult | None) -> CaseScore:
    fp = case.footprint
    base = _sq(case.dusty[fp], case.clean[fp])
    err = _sq(out[fp], case.clean[fp])
    s_base = s_err = 0.0
    n_smooth = 0
    for patch in case.patches:
        sl, m = patch.window, patch.footprint
        if patch.smooth:
            n_smooth += 1
            s_base += _sq(case.dusty[sl][m], case.clean[sl][m])
            s_err += _sq(out[sl][m], case.clean[sl][m])
    outside = np.abs(out[~fp].astype(np.int16) - case.dusty[~fp]).mean()
    score = CaseScore(
        case.name,
        case.clean.shape[:2],
        1.0 - err / max(base, 1e-9),
        (1.0 - s_err / s_base) if s_base > 0 else None,
        n_smooth,
        len(case.defects),
        float(outside),
    )
    if clean_out is not None:
        score.clean_change = float(np.abs(clean_out.image.astype(np.int16) - case.clean).mean())
        if clean_out.tiles_total:
            score.clean_tiles_skipped = clean_out.tiles_skipped / clean_out.tiles_total
    return score


def evaluate_dust(
    photos: Sequence[Path], method: Method, seed: int = 0, with_clean: bool = True
) -> list[CaseScore]:
    """Score `method` on every photo (one case per photo, seeds seed, seed+1, ...)."""
    scores = []
    for i, path in enumerate(photos):
        case = make_case(Path(path), seed + i)
        out = method(case.dusty).image
        clean_out = method(case.clean) if with_clean else None
        scores.append(score_case(case, out, clean_out))
    return scores


def pooled(scores: Sequence[CaseScore]) -> dict[str, float | None]:
    """Means over photos (removed shares are averaged per photo)."""

    def mean(xs: list[float | None]) -> float | None:
        vals = [x for x in xs if x is not None]
        return float(np.mean(vals)) if vals else None

    return {
        "removed": mean([s.removed for s in scores]),
        "removed_smooth": mean([s.removed_smooth for s in scores]),
        "outside": mean([s.outside for s in scores]),
        "clean_change": mean([s.clean_change for s in scores]),
        "clean_tiles_skipped": mean([s.clean_tiles_skipped for s in scores]),
    }
