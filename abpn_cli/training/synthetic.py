"""Synthetic local defects: (before, after, region) training pairs from any clean photo.

One module on purpose, though over 400 lines: this docstring (a sixth of it) is the
specification of the training distribution and the code below implements it paragraph by
paragraph; the three defect kinds share the samplers (``_u``, ``_i``, ``_sample_points``) and
the 128-px grid, and every function stays short.

Why: ABPN learns *local* retouching, and real before/after pairs are scarce. Adding defects to
a clean photo inside a random region gives unlimited pairs whose target is known exactly:
``after`` is the clean photo (bit-identical), ``before`` equals it bit-exactly outside the
region, and inside it the defects are scaled by the soft region mask.

How a pair is built (:func:`make_pair`)
---------------------------------------
1. **Region** (``DefectParams.coverage``, ``blob_scale``, ``edge``): Gaussian-blurred white
   noise on a 128-px grid (blobs about ``blob_scale`` x the long side across), thresholded with a
   smoothstep edge ``edge`` noise-std wide; the threshold is bisected so the mean of the soft
   mask hits a target drawn from ``coverage`` (default 0.12-0.38, so the realised mean stays in
   10-40 % of the frame after resampling). Far from the blobs the mask is exactly 0.
2. **Defect kinds**: 1-3 (``kinds_per_pair``) of ``creases``, ``blotches``, ``spots``, drawn
   without replacement. Every kind contributes a per-channel relative change ``delta`` (H, W, 3).
3. **Composite**: ``before = clip(clean + region * delta * (clean + floor), 0, 1)`` and
   ``before = clean`` wherever ``region == 0``. ``floor`` (0.03) lets shading show on black.

All sizes are fractions of the long side of the frame, so a defect looks the same at any
resolution; the network's thumbnail (long side ~256) must see it, hence minimum widths of
about 1/150 of the long side for creases.

Defect kinds and their parameters (defaults in the dataclasses below)
---------------------------------------------------------------------
``creases`` (:class:`CreaseParams`) -- fabric wrinkles. 2-4 groups (``groups``) of 2-6
(``per_group``) roughly parallel smooth curves, each group centred on a point of the region:
a centre line ``v = w(u)`` made of two sines (``bend`` amplitude 0-0.06, ``wavelength``
0.5-1.5 of the long side) whose creases fan out or converge along its length (``fan``
-0.7..0.7) and drift sideways individually (``wiggle`` 0-1.5 widths). Across each curve the
shading profile is a derivative of Gaussian (light on one side, shadow on the other, the same
side for the whole group; the light side is softer, ``soft_side`` 1-2x) plus an optional dark
``valley`` (0-0.5). Visible width (4 sigma) 1/80-1/25 of the long side (``width``; >= 1/150
so a crease spans >= ~2 thumbnail pixels), neighbour gap 1-3 widths (``spacing``), peak
multiplicative amplitude 0.04-0.25 (``amplitude``), group length 0.3-0.8 of the long side
(``length``), each crease 50-100 % of it with tapered, narrower ends and +-30 % amplitude
wobble. Rendered through a (t across, u along) lookup table with ``cv2.remap``, so the
per-pixel cost is a few array ops per group; wide creases (big frames) use a coarser grid.

``blotches`` (:class:`BlotchParams`) -- skin blotches / stains. 2-5 (``count``) soft elliptical
patches (aspect 0.5-1, profile ``exp(-1.5 q^3)``: flat-ish core, soft edge), radius 1/12-1/4
of the long side (``radius``), edges made irregular by smooth noise (``irregularity`` 0.5),
computed on a 128-px grid and upsampled (bicubic). Colour modes (``mode_weights``
redness/dark/light = 0.5/0.35/0.15): redness ``(+0.15, -0.5, -0.35)``, dark-brown
``(-0.45, -0.55, -0.65)``, light ``(+0.5, +0.5, +0.45)``, times a strength 0.06-0.25.

``spots`` (:class:`SpotParams`) -- acne / dust / blemishes. 20-120 (``count``) small soft
Gaussian blobs (sigma = radius / 2), radius log-uniform 1/300-1/60 of the long side
(``radius``), aspect 0.6-1, strength 0.2-0.6. Colour modes (``mode_weights`` red/dark/light
= 0.5/0.4/0.1): red acne ``(-0.15, -0.6, -0.5)`` plus a faint reddish halo twice as wide
(``halo`` 0.3), dark dust/mole ``(-0.6, -0.7, -0.75)``, light dust ``(+0.35, +0.35, +0.35)``.

Speed (one core, 1024x1024, all three kinds): ~0.05-0.1 s; 4096x4096: ~1-1.5 s.

Determinism: every random number comes from the ``numpy.random.Generator`` passed in, and the
OpenCV calls used (resize, GaussianBlur, remap) are deterministic, so a seed fixes the pair on
a given machine (float SIMD paths may differ in the last bit between CPU generations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

KINDS: tuple[str, ...] = ("creases", "blotches", "spots")
_LOWRES = 128  # long side of the grid that smooth fields (region, blotches) are computed on


@dataclass(frozen=True)
class CreaseParams:
    """Fabric creases; lengths are fractions of the long side, ranges are (low, high)."""

    groups: tuple[int, int] = (2, 4)
    per_group: tuple[int, int] = (2, 6)
    amplitude: tuple[float, float] = (0.04, 0.25)
    width: tuple[float, float] = (1 / 80, 1 / 25)
    spacing: tuple[float, float] = (1.0, 3.0)
    length: tuple[float, float] = (0.3, 0.8)
    bend: tuple[float, float] = (0.0, 0.06)
    wavelength: tuple[float, float] = (0.5, 1.5)
    fan: tuple[float, float] = (-0.7, 0.7)
    soft_side: tuple[float, float] = (1.0, 2.0)
    valley: tuple[float, float] = (0.0, 0.5)
    wiggle: tuple[float, float] = (0.0, 1.5)


@dataclass(frozen=True)
class BlotchParams:
    """Soft tone / redness patches; radius is a fraction of the long side."""

    count: tuple[int, int] = (2, 5)
    radius: tuple[float, float] = (1 / 12, 1 / 4)
    aspect: tuple[float, float] = (0.5, 1.0)
    strength: tuple[float, float] = (0.06, 0.25)
    irregularity: float = 0.5
    mode_weights: tuple[float, float, float] = (0.5, 0.35, 0.15)  # redness, dark, light


@dataclass(frozen=True)
class SpotParams:
    """Small darker / redder blobs; radius is a fraction of the long side (log-uniform)."""

    count: tuple[int, int] = (20, 120)
    radius: tuple[float, float] = (1 / 300, 1 / 60)
    aspect: tuple[float, float] = (0.6, 1.0)
    strength: tuple[float, float] = (0.2, 0.6)
    halo: float = 0.3
    mode_weights: tuple[float, float, float] = (0.5, 0.4, 0.1)  # red, dark, light


@dataclass(frozen=True)
class DefectParams:
    """Everything that shapes a synthetic pair; the defaults are the training distribution."""

    coverage: tuple[float, float] = (0.12, 0.38)
    blob_scale: tuple[float, float] = (0.15, 0.4)
    edge: tuple[float, float] = (0.5, 1.5)
    kinds: tuple[str, ...] = KINDS
    kinds_per_pair: tuple[int, int] = (1, 3)
    floor: float = 0.03
    creases: CreaseParams = field(default_factory=CreaseParams)
    blotches: BlotchParams = field(default_factory=BlotchParams)
    spots: SpotParams = field(default_factory=SpotParams)


@dataclass(frozen=True, eq=False)
class SyntheticPair:
    """before/after (H, W, 3) float32 in [0, 1]; region (H, W) float32 in [0, 1]."""

    before: np.ndarray
    after: np.ndarray
    region: np.ndarray
    kinds: tuple[str, ...] = ()


_BLOTCH_COLOURS = np.array(
    [[0.15, -0.5, -0.35], [-0.45, -0.55, -0.65], [0.5, 0.5, 0.45]], dtype=np.float32
)
_SPOT_COLOURS = np.array(
    [[-0.15, -0.6, -0.5], [-0.6, -0.7, -0.75], [0.35, 0.35, 0.35]], dtype=np.float32
)
_HALO_COLOUR = np.array([0.05, -0.3, -0.25], dtype=np.float32)


def _u(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _i(rng: np.random.Generator, bounds: Sequence[int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _lowres_shape(h: int, w: int, long_side: int = _LOWRES) -> tuple[int, int]:
    s = min(1.0, long_side / max(h, w))
    return max(2, round(h * s)), max(2, round(w * s))


def _smooth_noise(shape: tuple[int, int], cell: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean unit-std noise with round features about `cell` pixels across."""
    noise = rng.standard_normal(shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), cell / 3.0, borderType=cv2.BORDER_REFLECT_101)
    noise -= noise.mean()
    return noise / (noise.std() + 1e-12)


def random_region(
    shape: tuple[int, int], rng: np.random.Generator, params: DefectParams | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Soft target region at full size (H, W) and at the 128-px grid; exactly 0 far outside."""
    p = params or DefectParams()
    h, w = shape
    lh, lw = _lowres_shape(h, w)
    noise = _smooth_noise((lh, lw), max(lh, lw) * _u(rng, p.blob_scale), rng)
    edge = _u(rng, p.edge)
    target = _u(rng, p.coverage)
    lo, hi = float(noise.min()) - edge, float(noise.max()) + edge
    for _ in range(40):  # mean coverage is monotone in the threshold
        t = 0.5 * (lo + hi)
        if _smoothstep((noise - t) / edge + 0.5).mean() > target:
            lo = t
        else:
            hi = t
    low = _smoothstep((noise - 0.5 * (lo + hi)) / edge + 0.5).astype(np.float32)
    full = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(full, 0.0, 1.0, out=full), low


def _sample_points(
    region_low: np.ndarray, shape: tuple[int, int], n: int, rng: np.random.Generator
) -> np.ndarray:
    """n (y, x) points in full-size pixels, drawn with probability ~ region^2 (the core)."""
    weights = region_low.astype(np.float64).ravel() ** 2
    weights /= weights.sum()
    idx = rng.choice(weights.size, size=n, p=weights)
    lh, lw = region_low.shape
    ys = (idx // lw + rng.random(n)) * (shape[0] / lh)
    xs = (idx % lw + rng.random(n)) * (shape[1] / lw)
    return np.stack([ys, xs], axis=1)


def _crease_profile(
    d: np.ndarray, sigma_neg: np.ndarray, sigma_pos: np.ndarray, valley: float
) -> np.ndarray:
    """Derivative-of-Gaussian across a crease (peak +-1 at d = -+sigma) plus a dark valley."""
    sigma = np.where(d < 0, sigma_neg, sigma_pos)
    z = d / sigma
    g = np.exp(-0.5 * z * z)
    return -z * g * np.exp(0.5) - valley * g


_CREASE_TABLE_U = 64  # lookup-table samples along a crease group


@dataclass(frozen=True, eq=False)
class _CreaseLayout:
    """What one group's creases share, drawn before anything is rendered."""

    n: int  # creases in the group
    length: float  # group length, pixels
    base_width: float  # visible width (4 sigma) of a typical crease, pixels
    sigmas: np.ndarray  # (n,) profile sigma of each crease
    offsets: np.ndarray  # (n,) distance of each crease from the group's centre line
    amp: float  # peak multiplicative amplitude
    sign: float  # +1 / -1: which side the light comes from (the whole group)


def _crease_layout(long_side: float, rng: np.random.Generator, p: CreaseParams) -> _CreaseLayout:
    """Draw how many creases, how long, how wide and how far apart (the group's skeleton)."""
    n = _i(rng, p.per_group)
    group_len = long_side * _u(rng, p.length)
    base_width = long_side * _u(rng, p.width)
    sigmas = base_width / 4.0 * rng.uniform(0.75, 1.25, n)
    gaps = rng.uniform(p.spacing[0], p.spacing[1], max(n - 1, 0)) * base_width
    offsets = np.concatenate([[0.0], np.cumsum(gaps)])
    offsets -= offsets.mean()
    amp = _u(rng, p.amplitude)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return _CreaseLayout(n, group_len, base_width, sigmas, offsets, amp, sign)


def _crease_table(
    g: _CreaseLayout, rng: np.random.Generator, p: CreaseParams
) -> tuple[np.ndarray, float, float]:
    """Lookup table T[t, u] (float32) and its t range: shading at distance t across the group,
    position u along it. Tabulating once makes the per-pixel cost a single remap; each crease
    drifts sideways along its length and is narrower near its tapered ends."""
    us = np.linspace(-g.length / 2, g.length / 2, _CREASE_TABLE_U)
    wiggles = rng.uniform(p.wiggle[0], p.wiggle[1], g.n) * g.base_width
    sig_max = float(g.sigmas.max()) * p.soft_side[1]
    t_min = g.offsets[0] - wiggles.max() - 5 * sig_max
    t_max = g.offsets[-1] + wiggles.max() + 5 * sig_max
    n_t = int(min(1024, np.ceil((t_max - t_min) / (g.sigmas.min() / 3)) + 1))
    ts = np.linspace(t_min, t_max, n_t)[:, None]
    table = np.zeros((n_t, _CREASE_TABLE_U), dtype=np.float64)
    for k in range(g.n):
        seg = g.length * rng.uniform(0.5, 1.0)
        start = rng.uniform(-g.length / 2, g.length / 2 - seg)
        taper = 0.3 * seg
        along = _smoothstep((us - start) / taper) * _smoothstep((start + seg - us) / taper)
        along *= 1.0 + 0.3 * np.sin(
            2 * np.pi * us / seg * rng.uniform(0.5, 2) + rng.uniform(0, 6.3)
        )
        drift = wiggles[k] * np.sin(
            2 * np.pi * us / seg * rng.uniform(0.3, 1.2) + rng.uniform(0, 6.3)
        )
        narrow = 0.6 + 0.4 * np.sqrt(along / max(float(along.max()), 1e-6))
        soft = _u(rng, p.soft_side)
        s_k = g.sigmas[k] * narrow
        s_neg, s_pos = (s_k * soft, s_k) if g.sign > 0 else (s_k, s_k * soft)
        across = _crease_profile(ts - g.offsets[k] - drift, s_neg, s_pos, _u(rng, p.valley))
        table += (g.sign * g.amp * rng.uniform(0.6, 1.0)) * across * along
    return table.astype(np.float32), float(t_min), float(t_max)


def _crease_coords(
    grid: tuple[int, int],
    f: int,
    centre: np.ndarray,
    long_side: float,
    length: float,
    rng: np.random.Generator,
    p: CreaseParams,
) -> tuple[np.ndarray, np.ndarray]:
    """(u along, v across) of every cell of a `grid` of f x f pixel cells, float32: a random
    orientation, a centre line bent by two sines, creases fanning out along u."""
    hc, wc = grid
    theta = rng.uniform(0, np.pi)
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    xs = ((np.arange(wc, dtype=np.float32) + 0.5) * f - 0.5 - np.float32(centre[1]))[None, :]
    ys = ((np.arange(hc, dtype=np.float32) + 0.5) * f - 0.5 - np.float32(centre[0]))[:, None]
    u = xs * c + ys * s
    v = ys * c - xs * s
    amp1 = long_side * _u(rng, p.bend)
    lam1 = long_side * _u(rng, p.wavelength)
    lam2 = lam1 * rng.uniform(0.3, 0.6)
    k1, k2 = np.float32(2 * np.pi / lam1), np.float32(2 * np.pi / lam2)
    ph1, ph2 = np.float32(rng.uniform(0, 2 * np.pi)), np.float32(rng.uniform(0, 2 * np.pi))
    v -= np.float32(amp1) * np.sin(u * k1 + ph1)
    v -= np.float32(amp1 * rng.uniform(0, 0.5)) * np.sin(u * k2 + ph2)
    fan = np.float32(_u(rng, p.fan) / length)
    v /= np.maximum(1.0 + fan * u, np.float32(0.3))  # spacing and width grow along u
    return u, v


def _crease_group(
    shape: tuple[int, int], centre: np.ndarray, rng: np.random.Generator, p: CreaseParams
) -> np.ndarray:
    """Shading (H, W) of one group of roughly parallel creases, relative (0 = unchanged)."""
    h, w = shape
    long_side = float(max(h, w))
    g = _crease_layout(long_side, rng, p)
    table, t_min, t_max = _crease_table(g, rng, p)
    n_t, n_u = table.shape
    # Per-pixel (u, t) maps, on a coarser grid when the creases are wide (big frames).
    f = max(1, int(g.sigmas.min() / 2.5))
    u, v = _crease_coords((-(-h // f), -(-w // f)), f, centre, long_side, g.length, rng, p)
    map_u = u
    map_u += np.float32(g.length / 2)
    map_u *= np.float32((n_u - 1) / g.length)
    map_t = v
    map_t -= np.float32(t_min)
    map_t *= np.float32((n_t - 1) / (t_max - t_min))
    np.clip(map_u, -4, n_u + 4, out=map_u)  # remap stores coordinates as int16
    np.clip(map_t, -4, n_t + 4, out=map_t)
    shade = cv2.remap(
        table, map_u, map_t, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    if f > 1:
        shade = cv2.resize(shade, (w, h), interpolation=cv2.INTER_LINEAR)
    return shade


def crease_delta(
    shape: tuple[int, int], region_low: np.ndarray, rng: np.random.Generator, p: CreaseParams
) -> np.ndarray:
    """Multiplicative crease shading (H, W), grey (same for R, G, B)."""
    groups = _i(rng, p.groups)
    centres = _sample_points(region_low, shape, groups, rng)
    total = _crease_group(shape, centres[0], rng, p)
    for g in range(1, groups):
        total += _crease_group(shape, centres[g], rng, p)
    return total


def blotch_delta(
    shape: tuple[int, int], region_low: np.ndarray, rng: np.random.Generator, p: BlotchParams
) -> np.ndarray:
    """Per-channel relative change (H, W, 3) of a few soft colour/tone patches."""
    h, w = shape
    lh, lw = region_low.shape
    long_low = float(max(lh, lw))
    n = _i(rng, p.count)
    centres = _sample_points(region_low, (lh, lw), n, rng)
    yy = np.arange(lh, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(lw, dtype=np.float32)[None, :] + 0.5
    low = np.zeros((lh, lw, 3), dtype=np.float32)
    modes = rng.choice(3, size=n, p=np.asarray(p.mode_weights) / sum(p.mode_weights))
    for k in range(n):
        r = long_low * _u(rng, p.radius)
        aspect = _u(rng, p.aspect)
        th = rng.uniform(0, np.pi)
        dy, dx = yy - centres[k, 0], xx - centres[k, 1]
        a = (dx * np.cos(th) + dy * np.sin(th)) / r
        b = (dy * np.cos(th) - dx * np.sin(th)) / (r * aspect)
        q2 = a * a + b * b
        blob = np.exp(-1.5 * q2 * np.sqrt(q2))  # flat-ish core, soft edge
        wobble = _smooth_noise((lh, lw), max(2.0, r), rng)
        blob *= np.clip(1.0 + p.irregularity * wobble, 0.0, None)
        low += blob[:, :, None] * (_u(rng, p.strength) * _BLOTCH_COLOURS[modes[k]])
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)


def add_spots(
    delta: np.ndarray, region_low: np.ndarray, rng: np.random.Generator, p: SpotParams
) -> None:
    """Accumulate many small soft blemishes into `delta` (H, W, 3) in place (patch-wise)."""
    h, w = delta.shape[:2]
    long_side = float(max(h, w))
    n = _i(rng, p.count)
    centres = _sample_points(region_low, (h, w), n, rng)
    radii = long_side * np.exp(rng.uniform(np.log(p.radius[0]), np.log(p.radius[1]), n))
    modes = rng.choice(3, size=n, p=np.asarray(p.mode_weights) / sum(p.mode_weights))
    for k in range(n):
        sigma = radii[k] / 2.0
        aspect = _u(rng, p.aspect)
        th = rng.uniform(0, np.pi)
        strength = _u(rng, p.strength)
        halo = p.halo if modes[k] == 0 else 0.0
        reach = int(np.ceil(3 * sigma * (2.0 if halo else 1.0))) + 1
        cy, cx = centres[k]
        y0, y1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1)
        x0, x1 = max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - np.float32(cy)
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - np.float32(cx)
        a = (dx * np.cos(th) + dy * np.sin(th)) / sigma
        b = (dy * np.cos(th) - dx * np.sin(th)) / (sigma * aspect)
        q = a * a + b * b
        patch = np.exp(-0.5 * q)[:, :, None] * (strength * _SPOT_COLOURS[modes[k]])
        if halo:
            patch += np.exp(-0.125 * q)[:, :, None] * (halo * strength * _HALO_COLOUR)
        delta[y0:y1, x0:x1] += patch


def make_pair(
    clean: np.ndarray, rng: np.random.Generator, params: DefectParams | None = None
) -> SyntheticPair:
    """Add 1-3 kinds of local defects inside a random soft region of `clean` (H, W, 3) in [0,1].

    `after` is `clean` itself (as float32, not copied); `before` differs only where region > 0.
    """
    p = params or DefectParams()
    clean = np.asarray(clean, dtype=np.float32)
    if clean.ndim != 3 or clean.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {clean.shape}")
    h, w = clean.shape[:2]
    if not p.kinds or any(k not in KINDS for k in p.kinds):
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {p.kinds}")
    region, region_low = random_region((h, w), rng, p)
    n_kinds = min(len(p.kinds), _i(rng, p.kinds_per_pair))
    picked = rng.choice(len(p.kinds), size=n_kinds, replace=False)
    kinds = tuple(p.kinds[i] for i in sorted(picked))

    delta = (
        blotch_delta((h, w), region_low, rng, p.blotches)
        if "blotches" in kinds
        else np.zeros((h, w, 3), dtype=np.float32)
    )
    if "creases" in kinds:
        delta += crease_delta((h, w), region_low, rng, p.creases)[:, :, None]
    if "spots" in kinds:
        add_spots(delta, region_low, rng, p.spots)

    delta *= region[:, :, None]
    before = clean + np.float32(p.floor)
    before *= delta
    before += clean
    np.clip(before, 0.0, 1.0, out=before)
    np.copyto(before, clean, where=(region == 0)[:, :, None])  # exact outside, by construction
    return SyntheticPair(before=before, after=clean, region=region, kinds=kinds)


def make_pair_from_seed(
    clean: np.ndarray, seed: int | Sequence[int], params: DefectParams | None = None
) -> SyntheticPair:
    """make_pair with `numpy.random.default_rng(seed)`: the same seed gives the same pair."""
    return make_pair(clean, np.random.default_rng(seed), params)
