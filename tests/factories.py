"""Test images, every one generated (none checked in), one function per kind, so that a kind
is written once and the test modules import it from here.

Arrays first (uint8 unless a docstring says float RGB in [0, 1]), then the writers that put
them into files. Each builder is deterministic in its seed: tests compare runs and thresholds
against these exact pixels, so changing one changes what the tests measure.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# --------------------------------------------------------------------------- arrays


def pattern(h: int, w: int, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """Smooth-ish asymmetric RGB test image (the top-left corner is unique): codec and
    orientation tests see at once when pixels moved or changed."""
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [x * top // max(w - 1, 1), y * top // max(h - 1, 1), (x + y) * top // (h + w)], 2
    )
    noise = rng.integers(0, top // 16, (h, w, 3))
    img = np.clip(base + noise, 0, top).astype(dtype)
    img[: h // 4, : w // 4] = top  # bright marker in the stored top-left corner
    return img


def gradient_photo(
    h: int, w: int, seed: int = 0, wave_px: float = 40.0, grain: float = 0.04
) -> np.ndarray:
    """A photo-like uint8 RGB: colour gradients, a horizontal wave of `wave_px` pixels per
    radian and blurred grain (so smoothing filters and resampling change it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.3 + 0.5 * xx / w, 0.4 + 0.4 * yy / h, 0.5 + 0.2 * np.sin(xx / wave_px)], 2)
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.0)
    return (np.clip(base + grain * tex[:, :, None], 0, 1) * 255 + 0.5).astype(np.uint8)


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Float RGB: smooth colour gradients plus fine texture (a clean photo for defects)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [0.6 + 0.25 * np.sin(xx / w * 3), 0.5 + 0.2 * np.cos(yy / h * 2), 0.45 + 0.1 * xx / w],
        axis=2,
    )
    tex = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.0) * 0.03
    return np.clip(base + tex[:, :, None], 0.0, 1.0).astype(np.float32)


def blurred_noise(h: int, w: int, seed: int) -> np.ndarray:
    """Float RGB: blurred uniform noise stretched to [0, 1] (texture everywhere: metrics)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 1.5)
    return np.clip((img - img.min()) / (img.max() - img.min()), 0, 1).astype(np.float32)


def landscape(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Float RGB: smooth sky over a noisy ground, both kinds of place a sensor meets."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[: h // 2] = np.linspace(0.5, 0.8, h // 2)[:, None, None] * np.array([0.6, 0.8, 1.0])
    img[h // 2 :] = 0.3 + 0.2 * rng.random((h - h // 2, w, 3))
    return img


def ramp(h: int = 256, w: int = 384, seed: int = 0) -> np.ndarray:
    """Float RGB: a left-to-right grey ramp with faint noise (dust is seen on any level)."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0.2, 0.9, w, dtype=np.float32)[None, :, None]
    return np.clip(gradient + 0.02 * rng.standard_normal((h, w, 3)).astype(np.float32), 0, 1)


def scene(seed: int, h: int = 192, w: int = 256) -> np.ndarray:
    """Float RGB: a smooth colourful 'photo' with a few red discs (a local edit's target)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.15, 0.85, size=(5, 6, 3)).astype(np.float32)
    coarse[..., 0] *= 0.6  # keep the background from looking red
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 0.12, img.shape).astype(np.float32)  # texture, like a real photo
    img += cv2.GaussianBlur(noise, (0, 0), 1.5) + rng.normal(0, 0.03, img.shape).astype(np.float32)
    for _ in range(3):
        centre = (int(rng.integers(30, w - 30)), int(rng.integers(30, h - 30)))
        cv2.circle(img, centre, int(rng.integers(14, 28)), (0.8, 0.15, 0.15), -1)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.0), 0, 1)


def grey_card(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Float RGB: a dust reference frame (a grey card stopped down): vignetting and sensor
    noise, no detail."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    grey = 0.78 - 0.35 * r2 + rng.normal(0, 0.8 / 255, (h, w)).astype(np.float32)
    return np.repeat(np.clip(grey, 0, 1)[:, :, None], 3, axis=2)


def to_u8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8, rounded (a camera's quantisation)."""
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- files


def touch(root: Path, *names: str) -> None:
    """Placeholder files (one byte each) under `root`: what a walk or a plan sees, not pixels."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def make_photo(path: Path, size: tuple[int, int] = (260, 200), seed: int = 0) -> Path:
    """A smooth-ish random RGB image (so JPEG stays small), saved by Pillow by extension."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((w, h), Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def write_rgb(path: Path, pixels: np.ndarray) -> Path:
    """Write RGB (or grey) pixels with OpenCV, independent of the code under test; float
    pixels in [0, 1] are rounded to 8 bits first."""
    if pixels.dtype.kind == "f":
        pixels = (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = pixels[:, :, ::-1] if pixels.ndim == 3 else pixels
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr)), path
    return path


EVAL_SIZE = 128


def eval_clean(seed: int, size: int = EVAL_SIZE) -> np.ndarray:
    """The clean square photo of an eval pair (gradient_photo with six waves across)."""
    return gradient_photo(size, size, seed, wave_px=size / 6, grain=0.05)


def write_eval_pairs(
    root: Path, n: int = 2, with_region: bool = True, size: int = EVAL_SIZE
) -> Path:
    """n pairs for `abpn eval`: `after` clean, `before` = after plus a dark disc (the edited
    region, written to region/ as well unless `with_region` is off)."""
    for i in range(n):
        after = eval_clean(i, size)
        region = np.zeros((size, size), np.uint8)
        cv2.circle(region, (40 + 20 * i, 50), 14, 255, -1)
        before = after.copy()
        before[region > 0] = (before[region > 0] * 0.6).astype(np.uint8)
        write_rgb(root / "before" / f"p{i}.png", before)
        write_rgb(root / "after" / f"p{i}.png", after)
        if with_region:
            write_rgb(root / "region" / f"p{i}.png", region)
    return root
