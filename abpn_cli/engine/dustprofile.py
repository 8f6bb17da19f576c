"""Sensor dust profile: the shoot's dust shadows, measured once, divided out of every frame.

Why: a particle on the sensor darkens the same place of every frame of a shoot by the same
factor (at one aperture). The model has to find each spot anew in each photo and misses it on
texture (foliage, fabric), where the eye barely sees it but the light is still missing. Measured
once from a flat reference frame (a plain wall, a grey card or the sky, stopped down: the
workflow of Capture One's LCC and Canon's Dust Delete Data; several are combined by their
per-pixel median), the shadow's transmittance t is known, and dividing it out restores the
texture under the spot whatever the background. Ordinary photos of the shoot are refused:
their median keeps too much scene (docs/DUST.md has the figures).

Estimate, on a grey working copy (long side WORK_SIDE) in log linear light L:
  background B = normalised Gaussian convolution of L (sigma BG_SIGMA of the long side) with
  the spots found so far given no weight (two rounds); residual D = L - B per frame; the
  profile's residual is the per-pixel median of D over the frames, lightly smoothed. A spot is
  a connected place whose residual dips below log(1 - CORE_ATTENUATION), grown to where it is
  below log(1 - EDGE_ATTENUATION), no wider than MAX_DIAMETER; it keeps its window's residual
  (<= 0, feathered to 0 at the window's rim): that is log t.
Apply: inside each window ``out = srgb(lin(in) / t)`` (sRGB-encoded frames); every pixel
outside the windows stays bit for bit.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.imaging.colour import linear_to_srgb, srgb_to_linear
from abpn_cli.imaging.pixels import max_value

WORK_SIDE = 2048  # long side of the working copy (a 6K frame: 3 px per working pixel)
BG_SIGMA = 0.012  # background blur, of the long side (wider than the largest dust's radius)
LIN_EPS = 1e-3  # log(lin + eps): black stays finite
CORE_ATTENUATION = 0.02  # a spot's darkest place takes at least 2 % of the light
EDGE_ATTENUATION = 0.006  # ... and extends to where it takes 0.6 %
CORE_NOISE, EDGE_NOISE = 5.0, 3.0  # ... and both levels at least this many noise sigmas
MIN_CORE_PIXELS = 3  # working pixels below the core level (noise makes single specks)
MAX_DIAMETER = 0.06  # of the long side (spots reach ~2 %, fibres ~5 %, plus a soft rim)
MAX_GAIN = 2.0  # no correction brightens by more (t >= 0.5)
MAX_FRAMES = 24  # frames used for the median (evenly chosen); memory ~12 MB per frame
BRIGHT_LEVEL = 0.02  # residual above this is scene detail: dust only darkens
MAX_BRIGHT_SHARE = 0.004  # ... and a usable residual has almost none of it
APERTURE_STOPS = 1.2  # a frame further from the reference's aperture gets a note (one
# nominal stop, f/11 -> f/16, is 1.08 by the numbers)
ASPECT_TOLERANCE = 0.01  # a frame's aspect must match the profile's (same sensor, same crop)
FORMAT = "abpn-dust-profile/1"


class DustProfileError(ValueError):
    """A profile that cannot be built, read or applied, with the reason in words."""


@dataclass(frozen=True)
class ProfileSpot:
    """One dust shadow: its window (fractions of the frame) and log t over it."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of width/height
    log_t: np.ndarray  # (h, w) float32 <= 0, working pixels; 0 at the window's rim

    @property
    def attenuation(self) -> float:
        """Light taken at the darkest place (0.1 = 10 %)."""
        return float(1.0 - np.exp(self.log_t.min()))


@dataclass(frozen=True)
class DustProfile:
    """A sensor's dust shadows for frames of one aspect ratio (stored orientation)."""

    width: int  # working copy, pixels (the aspect the profile applies to)
    height: int
    frames: int  # how many frames it was measured from
    spots: tuple[ProfileSpot, ...]
    f_number: float | None = None  # the reference's aperture (EXIF), when it said
    sha256: str = ""  # of the file it was read from (what a batch's resume compares)

    def matches(self, width: int, height: int) -> bool:
        """Same aspect as the frames it was measured on (rotated or cropped frames are not)."""
        return same_aspect((width, height), (self.width, self.height))


def same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """(w, h) pairs of one aspect within ASPECT_TOLERANCE: one sensor, one crop."""
    return abs(a[0] / a[1] - b[0] / b[1]) <= ASPECT_TOLERANCE * b[0] / b[1]


def aspect_label(width: int, height: int) -> str:
    """ "3:2" for 6000x4000 (and for a 2048x1365 working copy): the nearest ratio of small
    whole numbers, as photographers name a frame's shape."""
    ratio = Fraction(width, height).limit_denominator(16)
    return f"{ratio.numerator}:{ratio.denominator}"


def grey_log(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8/uint16 -> (h, w) float32 log linear grey at `size` = (w, h)."""
    scale = max_value(pixels.dtype)
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA).astype(np.float32) / scale
    lin = srgb_to_linear(small).mean(axis=2)
    return np.log(lin + LIN_EPS)


def _background(log_grey: np.ndarray, excluded: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: the Gaussian mean of the pixels not excluded."""
    weight = (~excluded).astype(np.float32)
    pad = int(np.ceil(3 * sigma))
    lg = np.pad(log_grey, pad, mode="reflect", reflect_type="odd")
    wt = np.pad(weight, pad, mode="reflect")
    num = cv2.GaussianBlur(lg * wt, (0, 0), sigma)[pad:-pad, pad:-pad]
    den = cv2.GaussianBlur(wt, (0, 0), sigma)[pad:-pad, pad:-pad]
    return num / np.maximum(den, 1e-4)


def _residual(stack: list[np.ndarray], excluded: np.ndarray, sigma: float) -> np.ndarray:
    """Median over frames of L - B, smoothed by a 1 px Gaussian (noise)."""
    d = np.stack([g - _background(g, excluded, sigma) for g in stack])
    return cv2.GaussianBlur(np.median(d, axis=0).astype(np.float32), (0, 0), 1.0)


def _spot_labels(residual: np.ndarray, long_side: int) -> tuple[np.ndarray, list[int]]:
    """Connected places below the edge level that hold a core; too-wide ones dropped. The
    levels rise above the residual's noise (its median absolute deviation) where it is high."""
    noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    edge = (residual < min(np.log1p(-EDGE_ATTENUATION), -EDGE_NOISE * noise)).astype(np.uint8)
    core = residual < min(np.log1p(-CORE_ATTENUATION), -CORE_NOISE * noise)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(edge, connectivity=8)
    cores = np.bincount(labels[core], minlength=n)
    limit = MAX_DIAMETER * long_side
    keep = [
        i
        for i in range(1, n)
        if cores[i] >= MIN_CORE_PIXELS
        and max(stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]) <= limit
    ]
    return labels, keep


def _spot(residual: np.ndarray, labels: np.ndarray, label: int) -> ProfileSpot:
    """The spot's window (its extent plus a margin) and its feathered, clipped log t."""
    h, w = residual.shape
    ys, xs = np.nonzero(labels == label)
    margin = max(3, int(0.5 * max(np.ptp(ys), np.ptp(xs))))
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + margin + 1)
    inside = (labels[y0:y1, x0:x1] == label).astype(np.uint8)
    grown = cv2.dilate(inside, np.ones((5, 5), np.uint8)).astype(np.float32)
    feather = cv2.GaussianBlur(grown, (0, 0), 1.0)
    log_t = np.clip(residual[y0:y1, x0:x1], np.log(1.0 / MAX_GAIN), 0.0) * feather
    box = (x0 / w, y0 / h, x1 / w, y1 / h)
    return ProfileSpot(box, log_t.astype(np.float32))


def _check_quiet(residual: np.ndarray, excluded: np.ndarray, frames: int) -> None:
    """Refuse a residual full of scene detail: dust only darkens, a scene also brightens."""
    bright = float((residual[~excluded] > BRIGHT_LEVEL).mean())
    if bright > MAX_BRIGHT_SHARE:
        what = "the frame is not flat" if frames == 1 else f"the {frames} frames are not flat"
        raise DustProfileError(
            f"{what}: {100 * bright:.1f} % of it is scene detail (at most "
            f"{100 * MAX_BRIGHT_SHARE:.1f} % can be told from dust); shoot a plain wall, a grey "
            "card or a clear sky, stopped down and out of focus, and measure that"
        )


def build_profile(frames: Iterable[np.ndarray]) -> DustProfile:
    """Measure the dust shadows shared by `frames` ((H, W, 3) uint8/uint16, one aspect)."""
    stack: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    for pixels in frames:
        h, w = pixels.shape[:2]
        if size is None:
            size = working_size(w, h)
        elif not same_aspect((w, h), size):
            raise DustProfileError(
                f"frames of one shape are needed: a {w}x{h} frame among {size[0]}:{size[1]}"
            )
        stack.append(grey_log(pixels, size))
    if size is None:
        raise DustProfileError("no frames to measure a dust profile from")
    long_side = max(size)
    sigma = BG_SIGMA * long_side
    excluded = np.zeros(stack[0].shape, bool)
    for _ in range(2):  # round 1 finds the spots, round 2 measures them without their own dip
        residual = _residual(stack, excluded, sigma)
        labels, keep = _spot_labels(residual, long_side)
        found = np.isin(labels, keep)
        excluded = cv2.dilate(found.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    _check_quiet(residual, excluded, len(stack))
    spots = tuple(_spot(residual, labels, i) for i in keep)
    return DustProfile(size[0], size[1], len(stack), spots)


def working_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the grey working copy of a width x height frame (long side <= WORK_SIDE)."""
    k = min(1.0, WORK_SIDE / max(height, width))
    return max(8, round(width * k)), max(8, round(height * k))


def spots_of_residual(residual: np.ndarray) -> tuple[ProfileSpot, ...]:
    """The spots of a log t map already measured (<= 0 on the working grid; e.g. learned
    from the model's corrections), found, clipped and feathered as `build_profile` does."""
    labels, keep = _spot_labels(residual, max(residual.shape))
    return tuple(_spot(residual, labels, i) for i in keep)


def _full_window(spot: ProfileSpot, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = spot.box
    return (
        int(np.floor(x0 * width)),
        int(np.floor(y0 * height)),
        max(int(np.ceil(x1 * width)), int(np.floor(x0 * width)) + 1),
        max(int(np.ceil(y1 * height)), int(np.floor(y0 * height)) + 1),
    )


def apply_profile(pixels: np.ndarray, profile: DustProfile) -> int:
    """Divide the profile's shadows out of (H, W, 3) uint8/uint16 `pixels`, in place.

    Returns how many spots changed a pixel. Pixels outside the spots' windows, and inside
    where t rounds to 1, are left as they are."""
    height, width = pixels.shape[:2]
    if not profile.matches(width, height):
        raise DustProfileError(
            f"the dust profile is for {profile.width}:{profile.height} frames, not {width}x{height}"
            " (rotated or cropped?)"
        )
    scale = max_value(pixels.dtype)
    changed = 0
    for spot in profile.spots:
        x0, y0, x1, y1 = _full_window(spot, width, height)
        log_t = cv2.resize(spot.log_t, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        window = pixels[y0:y1, x0:x1]
        lin = srgb_to_linear(window.astype(np.float32) / scale)
        fixed = linear_to_srgb(lin * np.exp(-log_t)[:, :, None])
        new = np.clip(np.round(fixed * scale), 0, scale).astype(pixels.dtype)
        clear = log_t > -1e-5  # t rounds to 1: the pixel stays as it was
        new[clear] = window[clear]
        if not np.array_equal(new, window):
            changed += 1
            window[...] = new
    return changed


def profile_bytes(profile: DustProfile) -> bytes:
    """The profile file: an .npz of plain arrays, read back without pickle (the caller writes
    it atomically)."""
    shapes = np.array([s.log_t.shape for s in profile.spots], np.int32).reshape(-1, 2)
    flat = [s.log_t.ravel() for s in profile.spots]
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        format=np.array(FORMAT),
        size=np.array([profile.width, profile.height, profile.frames], np.int32),
        f_number=np.array(np.nan if profile.f_number is None else profile.f_number),
        boxes=np.array([s.box for s in profile.spots], np.float64).reshape(-1, 4),
        shapes=shapes,
        values=np.concatenate(flat).astype(np.float32) if flat else np.zeros(0, np.float32),
    )
    return buf.getvalue()


def load_profile(path: Path) -> DustProfile:
    """A profile file (`profile_bytes`), or a DustProfileError that says what is wrong."""
    try:
        raw = Path(path).read_bytes()
        if not raw.startswith(b"PK\x03\x04"):  # np.load would call it pickled data
            raise DustProfileError(f"{path} is not a dust profile (write one with dust-profile)")
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise DustProfileError(f"{path} is a {z['format']} file, not {FORMAT}")
            width, height, frames = (int(v) for v in z["size"])
            f_num = float(z["f_number"]) if "f_number" in z.files else float("nan")
            boxes, shapes, values = z["boxes"], z["shapes"], z["values"]
    except DustProfileError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DustProfileError(f"cannot read dust profile {path}: {exc}") from exc
    ends = np.cumsum([h * w for h, w in shapes]).tolist()
    if len(boxes) != len(shapes) or (ends[-1] if ends else 0) != len(values):
        raise DustProfileError(f"dust profile {path} is damaged (its arrays disagree)")
    spots, start = [], 0
    for box, (h, w), end in zip(boxes, shapes, ends, strict=True):
        log_t = values[start:end].reshape(h, w)
        spots.append(ProfileSpot(tuple(float(v) for v in box), log_t))
        start = end
    f_number = None if np.isnan(f_num) else f_num
    return DustProfile(
        width, height, frames, tuple(spots), f_number, hashlib.sha256(raw).hexdigest()
    )


def aperture_note(profile: DustProfile, f_number: float | None) -> str | None:
    """Why a frame's correction may be off: shot more than APERTURE_STOPS from the
    reference's aperture, its shadows are larger and fainter (wider open) or smaller and
    darker than those measured. None when close, or when either aperture is unknown."""
    ref = profile.f_number
    if ref is None or f_number is None or ref <= 0 or f_number <= 0:
        return None
    stops = 2.0 * float(np.log2(f_number / ref))
    if abs(stops) <= APERTURE_STOPS:
        return None
    how = "larger and fainter" if stops < 0 else "smaller and darker"
    return (
        f"reference at f/{ref:g}, this frame at f/{f_number:g} ({abs(stops):.1f} stops): "
        f"its dust shadows are {how} than measured"
    )
