"""Crop datasets: training samples cut from photos (synthetic defects) or real pairs.

Why it looks like this:

- Decoding a 4K-6K JPEG costs ~0.1 s, far more than a training step's crop, so datasets decode
  every photo **once** at a reduced scale and keep it in RAM as uint8 (synthetic) or uint16
  (real pairs, whose edits can be 1-2 levels), under a memory budget (``max_mb``).
- Samples are pure functions of ``(seed, epoch, index)``: ``rng = default_rng([seed, epoch,
  index])``. The same run gives the same crops whatever the number of DataLoader workers.
  Call ``set_epoch(e)`` before each epoch (it reaches workers that are re-created per epoch,
  i.e. ``persistent_workers=False``, the default).
- Both datasets return :class:`CropSample` ``(before, after, region)``: float32 tensors
  (3, crop, crop), (3, crop, crop), (1, crop, crop) in [0, 1]; the default collate stacks them.
- Scale variety: each crop reads a square window of ``crop / s`` source pixels, ``s`` drawn from
  ``scale``, resized to ``crop`` (INTER_AREA), then one of the 8 flips/90-degree rotations.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from abpn_cli.training.data import (
    ImageLoadError,
    image_size,
    load_pair,
    load_rgb_float,
    resize_long,
)
from abpn_cli.training.metrics import region_from_difference
from abpn_cli.training.synthetic import DefectParams, make_pair


class CropSample(NamedTuple):
    """One training sample: float32 CHW tensors in [0, 1]."""

    before: torch.Tensor  # (3, crop, crop)
    after: torch.Tensor  # (3, crop, crop)
    region: torch.Tensor  # (1, crop, crop)


def dihedral(img: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/90-degree rotations (code 0 = identity) of an (H, W, ...) array."""
    if code & 4:
        img = img[:, ::-1]
    return np.rot90(img, code & 3)


def _to_chw(img: np.ndarray) -> torch.Tensor:
    if img.ndim == 2:
        img = img[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))


def _crop_window(
    shape: tuple[int, int],
    crop: int,
    s: float,
    centre: tuple[float, float] | None,
    rng: np.random.Generator,
) -> tuple[int, int, int]:
    """(y, x, side) of a square source window of ~crop/s pixels, inside the image."""
    h, w = shape
    side = int(min(round(crop / s), h, w))
    if centre is None:
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
    else:
        y = int(np.clip(round(centre[0] - side / 2), 0, h - side))
        x = int(np.clip(round(centre[1] - side / 2), 0, w - side))
    return y, x, side


def _window(img: np.ndarray, y: int, x: int, side: int, crop: int, scale: float) -> np.ndarray:
    """Float32 crop resized to crop x crop (INTER_AREA down, INTER_CUBIC up)."""
    patch = img[y : y + side, x : x + side].astype(np.float32)
    patch *= np.float32(scale)
    if side != crop:
        interp = cv2.INTER_AREA if side > crop else cv2.INTER_CUBIC
        patch = cv2.resize(patch, (crop, crop), interpolation=interp)
        np.clip(patch, 0.0, 1.0, out=patch)
    return patch


def _plan_long_sides(
    sizes: list[tuple[int, int]], wanted: list[int], crop: int, bytes_per_px: int, max_mb: float
) -> list[int | None]:
    """Long side to keep each image at: wanted, shrunk to fit max_mb (short side >= crop).

    Images that still do not fit at the smallest allowed size get None (left out).
    """

    def floor_long(w: int, h: int) -> int:
        return math.ceil(crop * max(w, h) / min(w, h))

    longs = [
        max(min(t, max(w, h)), floor_long(w, h)) for (w, h), t in zip(sizes, wanted, strict=True)
    ]

    def cost(ls: list[int | None]) -> float:
        total = 0.0
        for (w, h), ln in zip(sizes, ls, strict=True):
            if ln is not None:
                total += ln * ln * min(w, h) / max(w, h) * 3 * bytes_per_px
        return total / 2**20

    budget = max_mb
    if cost(longs) <= budget:
        return list(longs)
    # shrink everything by a common factor, not below the crop floor
    lo, hi = 0.0, 1.0
    for _ in range(30):
        f = 0.5 * (lo + hi)
        trial = [
            max(floor_long(w, h), int(ln * f)) for (w, h), ln in zip(sizes, longs, strict=True)
        ]
        lo, hi = (f, hi) if cost(trial) <= budget else (lo, f)
    shrunk: list[int | None] = [
        max(floor_long(w, h), int(ln * lo)) for (w, h), ln in zip(sizes, longs, strict=True)
    ]
    while cost(shrunk) > budget:  # still too big at the floor: drop from the end
        idx = max(i for i, v in enumerate(shrunk) if v is not None)
        shrunk[idx] = None
    return shrunk


class SyntheticCropDataset(Dataset):
    """Crops of clean photos with synthetic local defects (see abpn_cli.training.synthetic).

    Each photo is decoded once, at a long side drawn from `long_side` (never upscaled unless its
    short side would fall below `crop`), shrunk further if the set exceeds `max_mb`, and kept
    as uint8. Item `i` uses photo `i % n_photos`; its crop, scale, flip/rotation and defects come
    from ``default_rng([seed, epoch, i])``.
    """

    def __init__(
        self,
        photos: Sequence[Path],
        crop: int = 512,
        length: int = 1000,
        seed: int = 0,
        long_side: tuple[int, int] = (1024, 2048),
        scale: tuple[float, float] = (0.5, 1.0),
        max_mb: float = 1024.0,
        defects: DefectParams | None = None,
        augment: bool = True,
    ) -> None:
        if not photos:
            raise ValueError("SyntheticCropDataset needs at least one photo")
        self.crop, self.length, self.seed, self.epoch = crop, length, seed, 0
        self.scale, self.defects, self.augment = scale, defects or DefectParams(), augment
        rng = np.random.default_rng([seed, 0x5EED])
        sizes, usable = [], []
        for p in photos:
            try:
                sizes.append(image_size(Path(p)))
                usable.append(Path(p))
            except ImageLoadError as exc:
                warnings.warn(f"skipping {p}: {exc}", stacklevel=2)
        wanted = [int(rng.integers(long_side[0], long_side[1] + 1)) for _ in usable]
        plan = _plan_long_sides(sizes, wanted, crop, 1, max_mb)
        self.photos: list[Path] = []
        self.images: list[np.ndarray] = []
        self.skipped: list[Path] = [p for p, ln in zip(usable, plan, strict=True) if ln is None]
        if self.skipped:
            warnings.warn(
                f"{len(self.skipped)} photo(s) left out to stay under max_mb={max_mb}", stacklevel=2
            )
        for p, ln in zip(usable, plan, strict=True):
            if ln is None:
                continue
            try:
                img = load_rgb_float(p, ln)
            except ImageLoadError as exc:
                warnings.warn(f"skipping {p}: {exc}", stacklevel=2)
                continue
            if min(img.shape[:2]) < crop:
                img = resize_long(img, math.ceil(crop * max(img.shape[:2]) / min(img.shape[:2])))
            self.photos.append(p)
            self.images.append((img * 255.0 + 0.5).astype(np.uint8))
        if not self.images:
            raise ValueError("SyntheticCropDataset: none of the photos could be loaded")

    @property
    def nbytes(self) -> int:
        return sum(im.nbytes for im in self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> CropSample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        img = self.images[index % len(self.images)]
        s = float(rng.uniform(*self.scale))
        y, x, side = _crop_window(img.shape[:2], self.crop, s, None, rng)
        clean = _window(img, y, x, side, self.crop, 1.0 / 255.0)
        if self.augment:
            clean = np.ascontiguousarray(dihedral(clean, int(rng.integers(8))))
        pair = make_pair(clean, rng, self.defects)
        return CropSample(_to_chw(pair.before), _to_chw(pair.after), _to_chw(pair.region))


class PairCropDataset(Dataset):
    """Crops of real before/after pairs, mostly where the retoucher changed something.

    Each pair is decoded once (long side <= `max_side`, shrunk further to fit `max_mb`, upscaled
    if its short side is below `crop`) and kept as uint16. A crop is centred, with probability
    ``1 - uniform_fraction``, on a point drawn proportional to the difference mass
    ``max_c |before - after| * 1[> diff_threshold]`` (on a <=128-px grid, jittered inside the
    cell), otherwise anywhere; pairs without differences are cropped anywhere. The region is
    :func:`~abpn_cli.training.metrics.region_from_difference` of the crop (threshold
    `diff_threshold`, sigma `region_sigma` crop pixels).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        crop: int = 512,
        length: int = 1000,
        seed: int = 0,
        max_side: int | None = 2048,
        scale: tuple[float, float] = (0.5, 1.0),
        uniform_fraction: float = 0.3,
        diff_threshold: float = 0.02,
        region_sigma: float = 2.0,
        max_mb: float = 1024.0,
        augment: bool = True,
    ) -> None:
        if not pairs:
            raise ValueError("PairCropDataset needs at least one pair")
        self._configure(crop, length, seed, scale, uniform_fraction, diff_threshold, region_sigma)
        self.augment = augment
        sizes = [image_size(Path(b)) for b, _ in pairs]
        wanted = [max_side or max(sz) for sz in sizes]
        plan = _plan_long_sides(sizes, wanted, crop, 4, max_mb)  # two uint16 images
        self.skipped = [pr for pr, ln in zip(pairs, plan, strict=True) if ln is None]
        if self.skipped:
            warnings.warn(
                f"{len(self.skipped)} pair(s) left out to stay under max_mb={max_mb}", stacklevel=2
            )
        for (bp, ap), ln in zip(pairs, plan, strict=True):
            if ln is not None:
                self._add(*load_pair(Path(bp), Path(ap), ln))

    @classmethod
    def from_images(
        cls,
        images: Sequence[tuple[np.ndarray, np.ndarray]],
        crop: int = 512,
        length: int = 1000,
        seed: int = 0,
        augment: bool = True,
    ) -> PairCropDataset:
        """Pairs already decoded: (before, after) float32 RGB in [0, 1] of one size each, as
        `abpn learn` holds its checked exemplars (no disk round trip, no second decode)."""
        if not images:
            raise ValueError("PairCropDataset needs at least one pair")
        ds = cls.__new__(cls)
        ds._configure(crop, length, seed, (0.5, 1.0), 0.3, 0.02, 2.0)
        ds.augment, ds.skipped = augment, []
        for before, after in images:
            if before.shape != after.shape:
                raise ValueError(f"pair sizes differ: {before.shape} vs {after.shape}")
            ds._add(before, after)
        return ds

    def _configure(
        self,
        crop: int,
        length: int,
        seed: int,
        scale: tuple[float, float],
        uniform_fraction: float,
        diff_threshold: float,
        region_sigma: float,
    ) -> None:
        self.crop, self.length, self.seed, self.epoch = crop, length, seed, 0
        self.scale, self.uniform_fraction = scale, uniform_fraction
        self.diff_threshold, self.region_sigma = diff_threshold, region_sigma
        self.images: list[tuple[np.ndarray, np.ndarray]] = []
        self.weights: list[np.ndarray | None] = []  # cumulative difference mass per grid cell
        self.grids: list[tuple[int, int]] = []

    def _add(self, b: np.ndarray, a: np.ndarray) -> None:
        """Keep one pair as uint16 (upscaled if its short side is below the crop), with the
        grid of difference mass that crop centres are drawn from."""
        if min(b.shape[:2]) < self.crop:
            target = math.ceil(self.crop * max(b.shape[:2]) / min(b.shape[:2]))
            b, a = resize_long(b, target), resize_long(a, target)
        diff = np.abs(b - a).max(axis=2)
        diff[diff <= self.diff_threshold] = 0.0
        gh, gw = _grid_shape(diff.shape)
        mass = cv2.resize(diff, (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float64)
        total = mass.sum()
        self.weights.append(np.cumsum(mass.ravel()) / total if total > 0 else None)
        self.grids.append((gh, gw))
        self.images.append((_to_u16(b), _to_u16(a)))

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes + a.nbytes for b, a in self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def _centre(self, k: int, rng: np.random.Generator) -> tuple[float, float] | None:
        cdf = self.weights[k]
        if cdf is None or rng.random() < self.uniform_fraction:
            return None
        cell = min(int(np.searchsorted(cdf, rng.random(), side="right")), cdf.size - 1)
        gh, gw = self.grids[k]
        h, w = self.images[k][0].shape[:2]
        return ((cell // gw + rng.random()) * h / gh, (cell % gw + rng.random()) * w / gw)

    def __getitem__(self, index: int) -> CropSample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        k = index % len(self.images)
        b16, a16 = self.images[k]
        s = float(rng.uniform(*self.scale))
        centre = self._centre(k, rng)
        y, x, side = _crop_window(b16.shape[:2], self.crop, s, centre, rng)
        before = _window(b16, y, x, side, self.crop, 1.0 / 65535.0)
        after = _window(a16, y, x, side, self.crop, 1.0 / 65535.0)
        if self.augment:
            code = int(rng.integers(8))
            before = np.ascontiguousarray(dihedral(before, code))
            after = np.ascontiguousarray(dihedral(after, code))
        region = region_from_difference(before, after, self.diff_threshold, self.region_sigma)
        return CropSample(_to_chw(before), _to_chw(after), _to_chw(region))


def _grid_shape(shape: tuple[int, int], long_side: int = 128) -> tuple[int, int]:
    h, w = shape
    s = min(1.0, long_side / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def _to_u16(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
