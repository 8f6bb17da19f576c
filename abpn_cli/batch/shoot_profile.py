"""A dust profile learned from the model's own finds in a shoot (`abpn dust-profile --learn`).

Why: the model finds a spot on sky and backdrops and mostly misses the same spot on texture
(docs/DUST.md). But the particle sits at one sensor position and takes the same share of light
in every frame, so what the model corrected where it could see the spot is that spot's
transmittance in all the other frames too. No reference frame is needed, only the shoot.

Rules (each measured or argued in docs/DUST.md):
- the model's spots are clustered by position across the frames (`batch.dustmap`); a cluster
  seen in at least max(2, 25 %) of them is taken, one-off edits are left to the model;
- log t over the cluster's window is minus the median, over the frames that had the spot, of
  the model's correction log lin(after) - log lin(before) on the grey working copy; the spots of
  that map are then found, clipped and feathered as a measured profile's;
- a place whose content is the same in every frame (a tripod, one scene) is left out: a
  recurring edit there may be a dark detail of the scene, and the model sees it anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.batch.dustmap import FrameSpots, RecurringSpot, recurring_spots, reference_size
from abpn_cli.batch.fsutil import atomic_write_bytes
from abpn_cli.batch.sensor_profile import PROFILE_EXITS, profile_frames
from abpn_cli.engine import EngineError, RetouchOptions, load_model, retouch
from abpn_cli.engine.dustprofile import (
    DustProfile,
    DustProfileError,
    grey_log,
    profile_bytes,
    spots_of_residual,
    working_size,
)
from abpn_cli.engine.spots import mask_threshold
from abpn_cli.exitcodes import EXIT_ENVIRONMENT, ExitRule
from abpn_cli.imaging import ImageError, read_photo
from abpn_cli.imaging.exif import f_number
from abpn_cli.imaging.jpeg import ACCEPT_HINT

LEARN_EXITS = (
    *PROFILE_EXITS[:1],
    ExitRule(EngineError, EXIT_ENVIRONMENT),  # the model file missing or unreadable
    *PROFILE_EXITS[1:],
)
LEVEL_SIDE = 256  # long side of the coarse copy of each frame kept for the scene check
SCENE_SPREAD = 0.03  # content spread (log light) under which a place is one scene
# Why higher than the batch's default (benchmarks/dust_shoot.py, 11 frames, 14 defects): the
# recurrence rule already drops one-off false spots, so the model may look harder. Learned at
# 0.05: 8 spots, all on defects, 62.8 % of the dust error removed (with the model after); at
# 0.3: 9, all on defects, 67.6 %; at 1: 20, only 10 on defects, 68.1 % (false spots recur).
LEARN_SENSITIVITY = 0.3
WINDOW_REACH = 3.0  # a cluster's window reaches this many spot diameters from its centre


@dataclass(frozen=True)
class FrameFinds:
    """What one retouched frame says about the sensor."""

    spots: FrameSpots  # the model's spots, frame pixels as stored
    correction: np.ndarray  # (h, w) float16, working grid: log lin grey, after - before
    coarse: np.ndarray  # (h', w') float32: the frame's log lin grey, long side LEVEL_SIDE


def frame_finds(before: np.ndarray, after: np.ndarray, spots: Sequence[dict]) -> FrameFinds:
    """(H, W, 3) uint8/uint16 input and retouched output, and the spots the model reported."""
    h, w = before.shape[:2]
    size = working_size(w, h)
    grey = grey_log(before, size)
    correction = (grey_log(after, size) - grey).astype(np.float16)
    k = LEVEL_SIDE / max(size)
    coarse = cv2.resize(
        grey, (max(2, round(size[0] * k)), max(2, round(size[1] * k))), interpolation=cv2.INTER_AREA
    )
    return FrameFinds(FrameSpots(w, h, list(spots)), correction, coarse)


def _box(spot: RecurringSpot, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the spot's window on a grid of `shape`."""
    h, w = shape[:2]
    reach = int(np.ceil(WINDOW_REACH * spot.diameter * max(h, w))) + 2
    cy, cx = round(spot.y * h), round(spot.x * w)
    return max(0, cy - reach), min(h, cy + reach + 1), max(0, cx - reach), min(w, cx + reach + 1)


def content_spread(finds: Sequence[FrameFinds], spot: RecurringSpot) -> float:
    """How much the frames differ at the spot's place: the per-pixel std over all frames of
    the coarse copies (each less its own mean, so exposure does not count), averaged."""
    y0, y1, x0, x1 = _box(spot, finds[0].coarse.shape)
    patches = np.stack([f.coarse[y0:y1, x0:x1] for f in finds])
    patches = patches - patches.mean(axis=(1, 2), keepdims=True)
    return float(patches.std(axis=0).mean())


def _check_shapes(finds: Sequence[FrameFinds]) -> None:
    first = finds[0].correction.shape
    for f in finds:
        if f.correction.shape != first:
            raise DustProfileError(
                f"frames of one size are needed: a {f.spots.width}x{f.spots.height} frame among "
                f"{finds[0].spots.width}x{finds[0].spots.height} ones"
            )


@dataclass(frozen=True)
class LearnedProfile:
    profile: DustProfile
    recurring: int  # clusters seen often enough
    same_scene: int  # ... of which left out: the same content in every frame


def learn_profile(finds: Sequence[FrameFinds]) -> LearnedProfile:
    """The shoot's dust profile from its frames' finds (rules in the module's docstring)."""
    if len(finds) < 2:
        raise DustProfileError("a learned profile needs at least 2 frames of the shoot")
    _check_shapes(finds)
    shape = finds[0].correction.shape
    residual = np.zeros(shape, np.float32)
    recurring = recurring_spots([f.spots for f in finds])
    same_scene = 0
    for spot in recurring:
        if content_spread(finds, spot) < SCENE_SPREAD:
            same_scene += 1
            continue
        y0, y1, x0, x1 = _box(spot, shape)
        seen = np.stack([finds[i].correction[y0:y1, x0:x1] for i in spot.members])
        log_t = -np.median(seen.astype(np.float32), axis=0)
        residual[y0:y1, x0:x1] = np.minimum(residual[y0:y1, x0:x1], log_t)
    spots = spots_of_residual(cv2.GaussianBlur(residual, (0, 0), 1.0))
    profile = DustProfile(shape[1], shape[0], len(finds), spots)
    return LearnedProfile(profile, len(recurring), same_scene)


@dataclass(frozen=True)
class LearnSettings:
    frames: tuple[Path, ...]  # files and/or folders of the shoot
    out: Path
    model: Path | None = None  # None: the shipped default
    device: str = "auto"
    sensitivity: float | None = None  # the model's while learning; None: LEARN_SENSITIVITY


@dataclass(frozen=True)
class LearnOutcome:
    learned: LearnedProfile
    used: int  # frames the model ran on
    skipped: tuple[str, ...]  # "path: why" for frames not used (damaged, another size)


def _sensitivity(settings: LearnSettings) -> float:
    """As given, else LEARN_SENSITIVITY (checked by the range's one owner)."""
    chosen = LEARN_SENSITIVITY if settings.sensitivity is None else settings.sensitivity
    try:
        mask_threshold(chosen)
    except ValueError as exc:
        raise DustProfileError(f"--sensitivity: {exc}") from exc
    return chosen


def _frames(files: Sequence[Path], settings: LearnSettings):
    """(path, photo's f-number, finds) of each readable frame, and "path: why" for the rest."""
    options = RetouchOptions(sensitivity=_sensitivity(settings))  # before the model loads
    model = load_model(settings.model, settings.device)
    frames, skipped = [], []
    for path in files:
        try:
            photo = read_photo(path)
        except ImageError as exc:
            skipped.append(f"{path}: {str(exc).removesuffix(ACCEPT_HINT)}")
            continue
        result = retouch(model, photo.pixels, options)
        spots = [s.to_json() for s in result.spots]
        finds = frame_finds(photo.pixels, result.image, spots)
        frames.append((path, f_number(photo.meta.exif), finds))
    return frames, skipped


def run_learn_profile(settings: LearnSettings) -> LearnOutcome:
    """Run the model over the shoot's frames (evenly thinned to MAX_FRAMES), learn the
    profile from the frames of its most common size, write OUT atomically."""
    frames, skipped = _frames(profile_frames(settings.out, settings.frames), settings)
    if frames:
        size = reference_size([f.spots for _, _, f in frames])
        for path, _, f in frames:
            if (f.spots.width, f.spots.height) != size:
                skipped.append(
                    f"{path}: {f.spots.width}x{f.spots.height}, not the shoot's {size[0]}x{size[1]}"
                )
        frames = [x for x in frames if (x[2].spots.width, x[2].spots.height) == size]
    learned = learn_profile([f for _, _, f in frames])
    apertures = [a for _, a, _ in frames if a is not None]
    if apertures:
        profile = replace(learned.profile, f_number=float(np.median(apertures)))
        learned = replace(learned, profile=profile)
    atomic_write_bytes(settings.out, profile_bytes(learned.profile))
    return LearnOutcome(learned, len(frames), tuple(skipped))
