"""`abpn learn`'s pair checks: is this before/after pair one photo and one edit of it?

Each check fails with a clear :class:`PairCheckError`: unreadable or absurdly large files,
different sizes, a different photo, the same photo shifted, and no edit at all. Both sides are
decoded in full and resampled alike to ``max_side`` (the resolution learning trains at; see
`data.load_rgb_uniform`): 0.7-1.9 s per 4K-6K pair. Those arrays are what the trainer gets
(16-bit PNGs in the run folder). The criteria, measured on 10 photos of data/photos (4K long
side) with the 'warm the sky' edit, a strong global grade, shifts of 1-5 px, 180-degree
rotations and random other photos:

- *different photo*: grey-level correlation (256-px thumbnails, Gaussian sigma 1) below
  0.8 **and** phase-correlation peak below 0.3. Same photo, local or strong global edit:
  correlation >= 0.985, peak >= 0.88; other photo or rotated: correlation <= 0.55 (one pair
  of unrelated photos reached 0.54), peak <= 0.08.
- *shifted*: ``cv2.phaseCorrelate`` (Hanning window) of the greyscale pair at ``max_side``,
  scaled to the original's pixels, refused at >= 1.5 px **if** undoing it confirms it: the
  median |before - after| (grey, blurred sigma 1) must drop below 0.6x. Measured on 4-6K
  photos checked at 1024 px: aligned pairs <= 0.1 px, and the median of an aligned local
  edit is ~0, so a biased or spurious estimate (a strong edit dominating a flat synthetic
  picture measured 0.6 px, even a 44 px 'shift') is never confirmed; real shifts of 1/2/3 px
  measure 0.7-1.1 / 1.7-2.4 / 2.9-3.4 px with the median dropping to 0.10-0.51x.
- *no edit*: fewer than 10 pixels whose largest channel changed by more than 2 % (the
  data pipeline's edit threshold) at ``max_side``: nothing a crop could learn from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.engine.modelfile import file_sha256
from abpn_cli.training.data import ImageLoadError, find_pairs, image_size, load_rgb_uniform
from abpn_cli.training.learn_errors import PairCheckError

# --- pair-check thresholds (see the module docstring for the measurements behind them)
CORR_SIDE = 256  # long side of the thumbnails whose grey levels are correlated
CORR_SIGMA = 1.0  # Gaussian blur (thumbnail px) before correlating: robust to noise/texture
DIFFERENT_CORR = 0.8  # below this correlation ...
DIFFERENT_PEAK = 0.3  # ... and this phase-correlation peak: a different photo
MAX_SHIFT_PX = 1.5  # original-resolution pixels
SHIFT_CONFIRM_RATIO = 0.6  # undoing a real shift must cut the median residual below this
EDIT_THRESHOLD = 0.02  # a pixel is edited when a channel moves by more (data pipeline's value)
MIN_EDITED_PIXELS = 10  # at max_side; fewer: nothing to learn
GLOBAL_EDIT_FRACTION = 0.6  # warn when more of the photo changed by > GLOBAL_EDIT_DELTA
GLOBAL_EDIT_DELTA = 0.1
MAX_PIXELS = 400_000_000  # same image-bomb limit as `abpn retouch`


@dataclass
class PairInfo:
    """A checked exemplar pair."""

    before: Path
    after: Path
    width: int
    height: int
    sha256_before: str
    sha256_after: str
    edited_fraction: float  # at max_side, pixels changed by > EDIT_THRESHOLD
    shift_px: tuple[float, float]  # measured (dx, dy), original pixels (maybe unconfirmed)
    shift_peak: float  # phase-correlation peak
    correlation: float
    warnings: list[str] = field(default_factory=list)
    images: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.before.name


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb @ np.array([0.299, 0.587, 0.114], np.float32))


def _thumb(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), cv2.INTER_AREA)


def grey_correlation(before: np.ndarray, after: np.ndarray) -> float:
    """Pearson correlation of blurred grey thumbnails (1 = same picture up to gain/offset)."""
    a = cv2.GaussianBlur(_thumb(_grey(before), CORR_SIDE), (0, 0), CORR_SIGMA)
    b = cv2.GaussianBlur(_thumb(_grey(after), CORR_SIDE), (0, 0), CORR_SIGMA)
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else (1.0 if np.allclose(a, b) else 0.0)


def phase_shift(before: np.ndarray, after: np.ndarray) -> tuple[float, float, float]:
    """(dx, dy, peak) of `after` relative to `before` in these arrays' pixels (sub-pixel)."""
    gb, ga = _grey(before).astype(np.float64), _grey(after).astype(np.float64)
    if min(gb.shape) < 8:
        return 0.0, 0.0, 1.0
    window = cv2.createHanningWindow((gb.shape[1], gb.shape[0]), cv2.CV_64F)
    (dx, dy), peak = cv2.phaseCorrelate(gb, ga, window)
    return float(dx), float(dy), float(peak)


def shift_confirmed(before: np.ndarray, after: np.ndarray, dx: float, dy: float) -> bool:
    """True when moving `after` back by (dx, dy) explains the difference: the median grey
    residual (robust to the edited part) drops below SHIFT_CONFIRM_RATIO of what it was."""
    gb = cv2.GaussianBlur(_grey(before), (0, 0), 1.0)
    ga = cv2.GaussianBlur(_grey(after), (0, 0), 1.0)
    h, w = gb.shape
    undo = np.float32([[1, 0, -dx], [0, 1, -dy]])
    back = cv2.warpAffine(ga, undo, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    my, mx = math.ceil(abs(dy)) + 2, math.ceil(abs(dx)) + 2
    if h <= 2 * my or w <= 2 * mx:
        return False
    inner = (slice(my, h - my), slice(mx, w - mx))
    r0 = float(np.median(np.abs(gb - ga)[inner]))
    r1 = float(np.median(np.abs(gb - back)[inner]))
    return r1 < SHIFT_CONFIRM_RATIO * r0


def _check_files(before: Path, after: Path, label: str) -> tuple[int, int]:
    """(width, height) of a pair whose files exist and agree in size, under the pixel limit;
    read from the headers, before anything is decoded."""
    for side, p in (("before", before), ("after", after)):
        if not p.is_file():
            raise PairCheckError(f"{side} file not found: {p}")
    try:
        wb, hb = image_size(before)
        wa, ha = image_size(after)
    except ImageLoadError as exc:
        raise PairCheckError(str(exc)) from exc
    if (wb, hb) != (wa, ha):
        raise PairCheckError(f"size mismatch: before {wb}x{hb} vs after {wa}x{ha} ({label})")
    if wb * hb > MAX_PIXELS:
        raise PairCheckError(
            f"{label}: {wb}x{hb} is over the {MAX_PIXELS // 1_000_000} MP limit (image bomb?)"
        )
    return wb, hb


def _load(before: Path, after: Path, label: str, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sides at `max_side`, decoded alike (what the checks and the trainer see)."""
    try:
        return load_rgb_uniform(before, max_side), load_rgb_uniform(after, max_side)
    except (ImageLoadError, ValueError) as exc:
        raise PairCheckError(f"{label}: {exc}") from exc


def _edit_map(b: np.ndarray, a: np.ndarray, label: str) -> tuple[np.ndarray, int]:
    """(largest per-channel change per pixel, edited pixel count); refuses a pair with no edit."""
    diff = np.abs(b - a).max(axis=2)
    edited = int((diff > EDIT_THRESHOLD).sum())
    if edited < MIN_EDITED_PIXELS:
        raise PairCheckError(
            f"{label}: after does not differ from before (no pixel changed by more than "
            f"{EDIT_THRESHOLD:.0%} at {max(b.shape[:2])} px): nothing to learn"
        )
    return diff, edited


def _check_alignment(
    b: np.ndarray, a: np.ndarray, label: str, scale: float
) -> tuple[float, float, float, float]:
    """(correlation, dx, dy, peak), the shift in original pixels (`scale` per checked pixel);
    refuses a different photo and a confirmed shift."""
    corr = grey_correlation(b, a)
    dx, dy, peak = phase_shift(b, a)
    if corr < DIFFERENT_CORR and peak < DIFFERENT_PEAK:
        raise PairCheckError(
            f"{label}: before and after look like different photos (grey-level correlation "
            f"{corr:.2f}, phase-correlation peak {peak:.2f}): check which files were paired"
        )
    if math.hypot(dx, dy) * scale >= MAX_SHIFT_PX and shift_confirmed(b, a, dx, dy):
        raise PairCheckError(
            f"{label}: after is shifted by ({dx * scale:+.1f}, {dy * scale:+.1f}) px relative "
            "to before: export both from the same crop"
        )
    return corr, dx * scale, dy * scale, peak


def _global_edit_warnings(diff: np.ndarray, label: str) -> list[str]:
    """A warning when most of the photo changed a lot: a grade, not a local retouch."""
    strong = float((diff > GLOBAL_EDIT_DELTA).mean())
    if strong <= GLOBAL_EDIT_FRACTION:
        return []
    return [
        f"{label}: {strong:.0%} of the photo changed by more than {GLOBAL_EDIT_DELTA:.0%}; "
        "ABPN learns local edits, a global grade is better done with a preset"
    ]


def check_pair(
    before: Path, after: Path, max_side: int = 1024, keep_images: bool = False
) -> PairInfo:
    """Check one exemplar pair (module docstring lists the criteria); PairCheckError if bad.

    With `keep_images`, the checked (before, after) at `max_side` ride along in `.images`."""
    before, after = Path(before), Path(after)
    label = f"{before.name} / {after.name}"
    width, height = _check_files(before, after, label)
    b, a = _load(before, after, label, max_side)
    diff, edited = _edit_map(b, a, label)
    corr, dx, dy, peak = _check_alignment(b, a, label, max(width, height) / max(b.shape[:2]))
    return PairInfo(
        before=before,
        after=after,
        width=width,
        height=height,
        sha256_before=file_sha256(before),
        sha256_after=file_sha256(after),
        edited_fraction=edited / diff.size,
        shift_px=(round(dx, 3), round(dy, 3)),
        shift_peak=peak,
        correlation=corr,
        warnings=_global_edit_warnings(diff, label),
        images=(b, a) if keep_images else None,
    )


def check_pairs(
    pairs: Sequence[tuple[Path, Path]], max_side: int = 1024, keep_images: bool = False
) -> list[PairInfo]:
    """Check every pair (stops at the first bad one: its message names it)."""
    if not pairs:
        raise PairCheckError("no exemplar pairs given")
    return [check_pair(b, a, max_side, keep_images) for b, a in pairs]


def pairs_from_dir(pairs_dir: Path) -> list[tuple[Path, Path]]:
    """DIR/before/<rel> <-> DIR/after/<rel> (the layout `abpn train` and `abpn eval` use)."""
    try:
        return find_pairs(Path(pairs_dir), strict=True)
    except (ValueError, FileNotFoundError) as exc:
        raise PairCheckError(str(exc)) from exc
