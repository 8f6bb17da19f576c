"""Training data from files: photo discovery, before/after pair matching, image loading.

- Pixels are read as stored (no EXIF rotation) and scaled by their container's range to
  float32 RGB in [0, 1]; gray is replicated, alpha dropped (:func:`load_rgb_float`).
- Pairs match by relative path without extension, DIR/before/<rel> <-> DIR/after/<rel>
  (:func:`find_pairs`), and both sides of a pair are decoded the same way whatever their
  formats (:func:`load_rgb_uniform`), so a resampling difference never looks like an edit.

The crop datasets that train on these arrays are in :mod:`abpn_cli.training.crops`, the
eval-set writer in :mod:`abpn_cli.training.eval_set`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
_SHOW = 5  # how many unmatched names an error message lists


class ImageLoadError(ValueError):
    """A file could not be decoded as an RGB image."""


class PairError(ValueError):
    """A before/after pair cannot be used (e.g. the two sizes differ)."""


# --------------------------------------------------------------------------- discovery


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_photos(dirs: Sequence[Path]) -> list[Path]:
    """Image files under `dirs` (recursive; files may be given directly), sorted, de-duplicated.

    Hidden files (``.name``, e.g. macOS ``._IMG.jpg`` resource forks) are skipped.
    """
    found: dict[Path, Path] = {}
    for entry in dirs:
        entry = Path(entry)
        if entry.is_file():
            candidates = [entry] if _is_image(entry) else []
        elif entry.is_dir():
            candidates = [p for p in entry.rglob("*") if p.is_file() and _is_image(p)]
        else:
            raise FileNotFoundError(f"no such file or folder: {entry}")
        for p in candidates:
            found.setdefault(p.resolve(), p)
    return sorted(found.values())


def _index_side(root: Path, side: str) -> dict[str, Path]:
    """Map 'relative/path/without/extension' -> file, refusing ambiguous keys."""
    index: dict[str, Path] = {}
    for p in find_photos([root]):
        key = p.relative_to(root).with_suffix("").as_posix()
        if key in index:
            raise ValueError(
                f"ambiguous {side} files: {index[key].relative_to(root)} and "
                f"{p.relative_to(root)} both match '{key}' (pairs match by path without extension)"
            )
        index[key] = p
    return index


def _listing(root: Path, paths: list[Path]) -> str:
    names = [p.relative_to(root).as_posix() for p in paths[:_SHOW]]
    more = f" (and {len(paths) - _SHOW} more)" if len(paths) > _SHOW else ""
    return ", ".join(names) + more


def find_pairs(pairs_dir: Path, strict: bool = True) -> list[tuple[Path, Path]]:
    """Match DIR/before/<rel> with DIR/after/<rel> by relative path without extension.

    Raises ValueError when a side is missing, when nothing matches, and (if `strict`) when any
    file has no partner, naming the first few. Sizes are checked at load (:func:`load_pair`).
    """
    pairs_dir = Path(pairs_dir)
    before_dir, after_dir = pairs_dir / "before", pairs_dir / "after"
    missing = [f"'{d.name}/'" for d in (before_dir, after_dir) if not d.is_dir()]
    if missing:
        raise ValueError(
            f"{pairs_dir}: missing folder {' and '.join(missing)} (layout: DIR/before, DIR/after)"
        )
    before, after = _index_side(before_dir, "before"), _index_side(after_dir, "after")
    keys = sorted(before.keys() & after.keys())
    if not keys:
        raise ValueError(
            f"no before/after pairs in {pairs_dir}: before/ has {len(before)} image(s), after/ has "
            f"{len(after)}; files are matched by relative path without extension "
            "(before/a/x.jpg <-> after/a/x.png)"
        )
    if strict:
        lonely_b = [before[k] for k in sorted(before.keys() - after.keys())]
        lonely_a = [after[k] for k in sorted(after.keys() - before.keys())]
        problems = []
        if lonely_b:
            problems.append(
                f"{len(lonely_b)} in before/ without a match: {_listing(before_dir, lonely_b)}"
            )
        if lonely_a:
            problems.append(
                f"{len(lonely_a)} in after/ without a match: {_listing(after_dir, lonely_a)}"
            )
        if problems:
            raise ValueError(f"unmatched files in {pairs_dir}: " + "; ".join(problems))
    return [(before[k], after[k]) for k in keys]


# --------------------------------------------------------------------------- loading


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as stored (no EXIF rotation), from the header when possible."""
    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception:
        h, w = _decode(path, None).shape[:2]
        return w, h


def _decode(path: Path, reduce: int | None) -> np.ndarray:
    """Raw decode as stored: BGR(A)/gray, native dtype; `reduce` 2/4/8 = JPEG DCT downscale."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageLoadError(f"{path}: cannot read ({exc})") from exc
    flags = cv2.IMREAD_UNCHANGED
    if reduce in (2, 4, 8):  # 8-bit JPEG only: decoding at 1/2-1/8 is several times faster
        flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}.get(
            reduce, cv2.IMREAD_REDUCED_COLOR_8
        ) | cv2.IMREAD_IGNORE_ORIENTATION
    img = cv2.imdecode(data, flags) if data.size else None
    if img is None:
        try:  # formats/variants OpenCV lacks; 8-bit RGB is enough for training
            with Image.open(path) as im:
                return np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])
        except Exception as exc:
            raise ImageLoadError(f"{path}: not a readable image ({exc})") from exc
    return img


def _to_rgb_float(img: np.ndarray, path: Path) -> np.ndarray:
    if img.dtype == np.uint8:
        scale = 1.0 / 255.0
    elif img.dtype == np.uint16:
        scale = 1.0 / 65535.0
    elif img.dtype in (np.float32, np.float64):
        scale = 1.0
    else:
        raise ImageLoadError(f"{path}: unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        rgb = np.repeat(img[:, :, :1], 3, axis=2)
    elif channels in (3, 4):  # BGR, BGRA: alpha is dropped, colour kept as stored
        rgb = img[:, :, 2::-1]
    else:
        raise ImageLoadError(f"{path}: unsupported channel count {channels}")
    out = rgb.astype(np.float32)
    out *= np.float32(scale)
    return np.clip(out, 0.0, 1.0, out=out)


def resize_long(img: np.ndarray, long_side: int) -> np.ndarray:
    """`img` at `long_side` (INTER_AREA down, INTER_CUBIC up; floats stay in [0, 1]).

    At its own size `img` comes back as it is (not a copy). The thumbnail cache
    (:func:`abpn_cli.training.thumbs.load_thumbs`) stores this function's output keyed by the
    photo alone, not by this code: a change here makes fresh thumbnails differ from cached ones.
    """
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    if abs(s - 1.0) < 1e-9:
        return img
    size = (max(1, round(w * s)), max(1, round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    out = cv2.resize(img, size, interpolation=interp)
    return np.clip(out, 0.0, 1.0, out=out) if out.dtype.kind == "f" else out


def load_rgb_float(path: Path, max_side: int | None = None) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1], pixels as stored (no EXIF rotation), alpha dropped.

    8/16-bit and float files are scaled by their container range, gray is replicated to RGB.
    With `max_side`, images whose long side exceeds it are reduced with INTER_AREA (JPEGs are
    first decoded at 1/2-1/8 scale when that still leaves >= max_side pixels).
    """
    path = Path(path)
    reduce = None
    if max_side is not None and path.suffix.lower() in (".jpg", ".jpeg"):
        long_side = max(image_size(path))
        for r in (8, 4, 2):
            if long_side // r >= max_side:
                reduce = r
                break
    img = _to_rgb_float(_decode(path, reduce), path)
    if max_side is not None and max(img.shape[:2]) > max_side:
        img = resize_long(img, max_side)
    return np.ascontiguousarray(img)


def load_pair(
    before: Path, after: Path, max_side: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float32 RGB, after checking that their stored sizes agree (PairError)."""
    wb, hb = image_size(before)
    wa, ha = image_size(after)
    if (wb, hb) != (wa, ha):
        raise PairError(f"size mismatch: before {wb}x{hb} vs after {wa}x{ha} ({before}, {after})")
    return load_rgb_uniform(before, max_side), load_rgb_uniform(after, max_side)


def load_rgb_uniform(path: Path, max_side: int | None) -> np.ndarray:
    """Float RGB at `max_side`, decoded the same way whatever the format (for pairs).

    Not load_rgb_float(path, max_side): that decodes big JPEGs at 1/2-1/8 scale in the DCT, a
    different resampling from a PNG/TIFF partner's full decode + INTER_AREA. Measured: a
    4224x3168 JPEG and a lossless PNG of its exact pixels then differ by > 2 % on 3 % of the
    pixels at 1024 px, mostly along edges - a fake 'edit' the network would learn.
    """
    img = load_rgb_float(path)
    if max_side is not None and max(img.shape[:2]) > max_side:
        img = resize_long(img, max_side)
    return np.ascontiguousarray(img)
