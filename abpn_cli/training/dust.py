"""Sensor dust and lint: a physical model of the shadows they cast, for training and tests.

Why this task: a dust particle sits on the sensor's filter stack, so its shadow lands at the
same place in every frame whatever the scene, and the clean photo is known exactly: the
defect can be simulated faithfully, unlike a blemish or a crease whose look depends on the
subject (a first default model trained on those learned "change nothing").

The model (Zhou & Lin, "Removal of Image Artifacts Due to Sensor Dust", CVPR 2007; DxO notes)
------------------------------------------------------------------------------------------
* A particle a short distance in front of the photosites casts a *defocused* shadow: a soft
  disc whose diameter and softness grow as the aperture opens (f/4: big, faint, blurry;
  f/22: small, darker, crisp). Diffraction can leave a **lighter core**.
* It removes a fraction ``a`` of the light (3-25 %) in *linear* light and is nearly
  neutral in colour (per-channel ``a`` within a few per cent of each other), so it is
  rendered as a transmittance ``t = 1 - a * profile`` multiplied into linear RGB:
  ``dusty = srgb(linear(clean) * t)``. Overlapping defects multiply.
* **Fibres** (lint, hair) are thin curved shadows: a quadratic Bezier, 1-5 % of the long
  side long, of a small width, with the same soft edge.
* Sizes are fractions of the frame's long side (``DustParams``) so a shoot looks the same
  at any resolution: spot diameters log-uniform from 0.26 % (2 px on a 768 px thumbnail,
  16 px on a 6000 px frame) to 2 % of the long side.

Profile: with half-width ``h`` (disc radius, or half the fibre width) and softness ``s``
(edge width / h), ``profile(d) = 1 - smoothstep((d - h (1 - s/2)) / (h s))`` of the distance
``d`` to the disc centre or the fibre's curve; a core multiplies it by
``1 - core * exp(-(d / 0.4 h)^2)``. Each defect is evaluated on a 2x2 (fibres 4x4)
supersampled local patch and box-averaged, so a 2 px spot is anti-aliased.

Outside every defect's patch the transmittance is exactly 1, so the dusty image equals the
clean one bit for bit there (after the same float round trip: callers get ``clean`` itself
back wherever ``t == 1``).

Determinism: every random number comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from abpn_cli.imaging.colour import linear_to_srgb, srgb_to_linear


@dataclass(frozen=True)
class DustParams:
    """Ranges (low, high) of the generator; lengths are fractions of the frame's long side."""

    count: tuple[int, int] = (1, 6)  # defects per image (crop or frame), uniform
    diameter: tuple[float, float] = (0.0026, 0.02)  # spot diameter, log-uniform
    attenuation: tuple[float, float] = (0.03, 0.25)  # light removed at the centre (linear)
    softness: tuple[float, float] = (0.2, 1.0)  # edge width / radius, grows with the aperture
    core_prob: float = 0.3  # share of spots with a lighter (diffraction) core
    core: tuple[float, float] = (0.2, 0.6)  # how much lighter the core is
    tint: float = 0.04  # per-channel relative spread of the attenuation (near neutral)
    fibre_prob: float = 0.15  # share of defects that are fibres
    fibre_length: tuple[float, float] = (0.01, 0.05)
    fibre_width: tuple[float, float] = (0.0015, 0.004)  # >= ~1 px on a 768 px thumbnail
    fibre_bend: tuple[float, float] = (-0.35, 0.35)  # control-point offset / length


@dataclass(frozen=True)
class DustDefect:
    """One rendered defect in pixel units of the image it was made for."""

    kind: str  # "spot" | "fibre"
    y: float  # centre (spots) or curve midpoint (fibres)
    x: float
    radius: float  # disc radius, or half the fibre's length (its extent)
    attenuation: tuple[float, float, float]  # per channel, linear light
    softness: float
    core: float = 0.0
    width: float = 0.0  # fibres: full width
    curve: tuple[tuple[float, float], ...] = ()  # fibres: (y, x) control points P0, P1, P2

    @property
    def strength(self) -> float:
        return float(np.mean(self.attenuation))


@dataclass
class DustyImage:
    """A dusty image, its clean target, the transmittance and the defects that made it."""

    dusty: np.ndarray  # (H, W, 3) float32 in [0, 1]
    clean: np.ndarray  # (H, W, 3) float32, the target
    transmittance: np.ndarray  # (H, W, 3) float32 in (0, 1]; exactly 1 outside the defects
    defects: list[DustDefect] = field(default_factory=list)


# ----------------------------------------------------------------------------- sampling


def _u(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _log_u(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _attenuation(rng: np.random.Generator, mean: float, tint: float) -> tuple[float, ...]:
    rel = 1.0 + np.clip(rng.normal(0.0, tint, 3), -2.5 * tint, 2.5 * tint)
    return tuple(float(np.clip(mean * r, 0.0, 0.95)) for r in rel)


def sample_spot(
    rng: np.random.Generator, y: float, x: float, long_side: float, p: DustParams
) -> DustDefect:
    """A disc shadow; one 'aperture' draw couples size, softness and strength."""
    rel = _log_u(rng, p.diameter)
    diameter = rel * long_side
    # wider aperture -> larger, softer, fainter shadow (the shadow spreads the same blocked
    # light over more area); `open_` in [0, 1] is where the diameter fell in its log range
    open_ = float(np.log(rel / p.diameter[0]) / np.log(p.diameter[1] / p.diameter[0]))
    soft = p.softness[0] + (p.softness[1] - p.softness[0]) * np.clip(
        0.6 * open_ + 0.4 * rng.random(), 0.0, 1.0
    )
    lo, hi = p.attenuation
    strength = lo + (hi - lo) * np.clip(0.65 * (1.0 - open_) + 0.35 * rng.random(), 0.0, 1.0)
    core = _u(rng, p.core) if rng.random() < p.core_prob else 0.0
    return DustDefect(
        "spot", y, x, diameter / 2.0, _attenuation(rng, strength, p.tint), float(soft), core
    )


def sample_fibre(
    rng: np.random.Generator, y: float, x: float, long_side: float, p: DustParams
) -> DustDefect:
    """A thin curved shadow: quadratic Bezier centred on (y, x)."""
    length = _u(rng, p.fibre_length) * long_side
    width = max(1.0, _u(rng, p.fibre_width) * long_side)
    angle = rng.uniform(0.0, np.pi)
    dy, dx = np.sin(angle) * length / 2.0, np.cos(angle) * length / 2.0
    bend = _u(rng, p.fibre_bend) * length
    p0 = (y - dy, x - dx)
    p2 = (y + dy, x + dx)
    p1 = (y + np.cos(angle) * bend, x - np.sin(angle) * bend)
    strength = _u(rng, p.attenuation)
    curve = tuple((float(a), float(b)) for a, b in (p0, p1, p2))
    return DustDefect(
        "fibre",
        y,
        x,
        length / 2.0 + abs(bend),
        _attenuation(rng, strength, p.tint),
        _u(rng, (0.5, 1.0)),
        width=width,
        curve=curve,
    )


def sample_defects(
    rng: np.random.Generator,
    shape: tuple[int, int],
    long_side: float,
    params: DustParams | None = None,
    count: int | None = None,
    favoured: np.ndarray | None = None,
    favour: float = 0.0,
) -> list[DustDefect]:
    """Defects uniformly over an (H, W) image that is part of a frame `long_side` px long.

    With `favoured` ((K, 2) candidate (y, x) centres, e.g. smooth places), each defect is put
    on one of them with probability `favour` (training only: a sensor does not choose, but
    dust on texture is invisible and teaches nothing). The rest land anywhere.
    """
    p = params or DustParams()
    n = int(rng.integers(p.count[0], p.count[1] + 1)) if count is None else count
    h, w = shape
    out = []
    for _ in range(n):
        if favoured is not None and len(favoured) and rng.random() < favour:
            y, x = favoured[int(rng.integers(0, len(favoured)))] + rng.uniform(-1, 1, 2)
        else:
            y, x = rng.uniform(0, h), rng.uniform(0, w)
        maker = sample_fibre if rng.random() < p.fibre_prob else sample_spot
        out.append(maker(rng, y, x, long_side, p))
    return out


# ----------------------------------------------------------------------------- rendering


def _profile(d: np.ndarray, half: float, soft: float, core: float) -> np.ndarray:
    edge = max(half * soft, 1e-3)
    t = np.clip((d - half * (1.0 - soft / 2.0)) / edge, 0.0, 1.0)
    prof = 1.0 - t * t * (3.0 - 2.0 * t)
    if core > 0:
        prof = prof * (1.0 - core * np.exp(-((d / (0.4 * half)) ** 2)))
    return prof


def _patch_bounds(defect: DustDefect, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    reach = defect.radius * 1.6 + defect.width + 2.0
    y0, y1 = int(np.floor(defect.y - reach)), int(np.ceil(defect.y + reach)) + 1
    x0, x1 = int(np.floor(defect.x - reach)), int(np.ceil(defect.x + reach)) + 1
    y0, x0 = max(0, y0), max(0, x0)
    y1, x1 = min(shape[0], y1), min(shape[1], x1)
    if y0 >= y1 or x0 >= x1:
        return None
    return y0, y1, x0, x1


def _fibre_distance(defect: DustDefect, ys: np.ndarray, xs: np.ndarray, ss: int) -> np.ndarray:
    """Distance (px) from supersampled pixel centres to the fibre's Bezier curve."""
    (a0, b0), (a1, b1), (a2, b2) = defect.curve
    n = max(16, int(4 * defect.radius))
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = ((1 - t) ** 2) * np.array([a0, b0]) + 2 * (1 - t) * t * np.array([a1, b1])
    pts = pts + (t**2) * np.array([a2, b2])
    canvas = np.full((len(ys), len(xs)), 255, np.uint8)
    poly = (pts[:, ::-1] - np.array([xs[0], ys[0]])) * ss  # (x, y) in supersampled pixels
    cv2.polylines(canvas, [np.round(poly).astype(np.int32)], False, 0, 1)
    return cv2.distanceTransform(canvas, cv2.DIST_L2, 5) / ss


def _defect_alpha(defect: DustDefect, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Profile of one defect over pixels [y0, y1) x [x0, x1), box-averaged supersamples."""
    ss = 4 if defect.kind == "fibre" else 2
    ys = y0 + (np.arange((y1 - y0) * ss) + 0.5) / ss
    xs = x0 + (np.arange((x1 - x0) * ss) + 0.5) / ss
    if defect.kind == "fibre":
        dist = _fibre_distance(defect, ys, xs, ss)
        prof = _profile(dist, defect.width / 2.0, defect.softness, 0.0)
    else:
        dist = np.hypot(ys[:, None] - defect.y, xs[None, :] - defect.x)
        prof = _profile(dist, defect.radius, defect.softness, defect.core)
    prof = prof.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    return prof.astype(np.float32)


def transmittance(shape: tuple[int, int], defects: Sequence[DustDefect]) -> np.ndarray:
    """(H, W, 3) float32 fraction of linear light that reaches each pixel (1 = clear)."""
    t = np.ones((*shape, 3), np.float32)
    for d in defects:
        bounds = _patch_bounds(d, shape)
        if bounds is None:
            continue
        y0, y1, x0, x1 = bounds
        prof = _defect_alpha(d, y0, y1, x0, x1)
        att = np.asarray(d.attenuation, np.float32)
        t[y0:y1, x0:x1] *= 1.0 - prof[:, :, None] * att
    return t


def apply_dust(clean: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """dusty = srgb(linear(clean) * t); exactly `clean` wherever t == 1."""
    clean = np.asarray(clean, np.float32)
    touched = (trans < 1.0).any(axis=2)
    out = clean.copy()
    if touched.any():
        out[touched] = linear_to_srgb(srgb_to_linear(clean[touched]) * trans[touched])
    return out


def add_dust(
    clean: np.ndarray,
    rng: np.random.Generator,
    long_side: float | None = None,
    params: DustParams | None = None,
    defects: Sequence[DustDefect] | None = None,
    favoured: np.ndarray | None = None,
    favour: float = 0.0,
) -> DustyImage:
    """Dust on a clean (H, W, 3) float image in [0, 1] (a crop of a frame `long_side` long).

    Pass `defects` to reuse the same dust (a shoot: every frame has the same spots).
    """
    h, w = clean.shape[:2]
    if defects is None:
        defects = sample_defects(
            rng, (h, w), long_side or max(h, w), params, favoured=favoured, favour=favour
        )
    trans = transmittance((h, w), defects)
    return DustyImage(apply_dust(clean, trans), np.asarray(clean, np.float32), trans, list(defects))


def scale_defects(defects: Sequence[DustDefect], factor: float) -> list[DustDefect]:
    """The same dust for the frame resized by `factor` (a shoot at another resolution)."""
    out = []
    for d in defects:
        curve = tuple((a * factor, b * factor) for a, b in d.curve)
        out.append(
            DustDefect(
                d.kind,
                d.y * factor,
                d.x * factor,
                d.radius * factor,
                d.attenuation,
                d.softness,
                d.core,
                d.width * factor,
                curve,
            )
        )
    return out
