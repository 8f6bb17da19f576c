"""Run ABPN on one image: levels, padding, coarse LRL, then tiled pyramid expansion.

Memory stays bounded: levels >= 1 are held as float tensors (a quarter of the frame or less),
and level 0 is only ever materialised tile by tile (input, H_0, B_0, R_0 of one tile), then
written straight into the output array in the input's own dtype. Tiles whose receptive
region the predicted mask says is untouched are copied from the input unchanged (exact), so
cost follows the edited area, not the image area.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from abpn_cli.engine.cvpyramid import pyr_down_hwc, pyr_down_native
from abpn_cli.engine.geometry import (
    Tile,
    choose_levels,
    padded_size,
    padded_window,
    reflect_pad,
    tile_grid,
)
from abpn_cli.engine.modelfile import LoadedModel
from abpn_cli.engine.spots import (
    KEEP_ALL,
    Spot,
    find_spots,
    gate_floor,
    mask_threshold,
    sensitivity_gate,
    visibility_floor,
    visible_spots,
)
from abpn_cli.engine.tiles import (
    HALO,
    crop,
    down_tiled,
    half_tile,
    inner,
    to_pixels,
    to_tensor,
)
from abpn_cli.imaging.pixels import max_value
from abpn_cli.model.blend import (
    NEUTRAL_BLEND,  # written for skipped tiles in the blend dump
    blend_apply,
)
from abpn_cli.model.refine import upsample2x


@dataclass(frozen=True)
class RetouchOptions:
    levels: int | None = None  # None: choose from image size and training thumbnail
    strength: float = 1.0  # opacity of the edit: R = I + s (R_model - I)
    want_mask: bool = False
    want_blend: bool = False
    tile: int = 512  # level-0 tile side; 512 measured ~2x faster than 1024 (cache)
    skip_untouched: bool = True
    skip_threshold: float = 0.05  # mask value under which a tile counts as untouched
    sensitivity: float = KEEP_ALL  # 1: every edit the model proposes; lower drops unsure ones


@dataclass
class RetouchResult:
    image: np.ndarray  # same shape and dtype as the input
    mask: np.ndarray | None  # (H, W) float32 in [0, 1]
    blend: np.ndarray | None  # (H, W, 3) float32
    levels: int
    tiles_total: int
    tiles_skipped: int
    seconds: float
    spot_count: int = 0
    spots: list[Spot] = field(default_factory=list)


def _apply_blend(model: LoadedModel, image: Tensor, blend: Tensor) -> Tensor:
    """ABM: R = f_a(I, B) with the model's own scalars (Eq. 3)."""
    if model.blend_jk is None:
        return model.module.apply_blend(image, blend)
    return blend_apply(image, blend, *model.blend_jk)


def _gaussian_levels(
    pixels: np.ndarray,
    size: tuple[int, int],
    scale: float,
    model: LoadedModel,
    levels: int,
    tile: int,
) -> list[Tensor]:
    """I_1 .. I_l of the frame reflect-padded to `size`; level 1 from the native-dtype frame.

    On the CPU in float32, OpenCV's pyrDown (the same operator, ~25x faster than the conv)
    on HWC arrays padded band by band, handed to torch as channels_last views; elsewhere the
    model's own `down` on the padded frame.
    """
    if model.device.type == "cpu" and model.dtype == torch.float32:
        arrays = [pyr_down_native(pixels, scale, size)]
        for _ in range(1, levels):
            arrays.append(pyr_down_hwc(arrays[-1]))
        return [torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0) for a in arrays]
    gauss = [down_tiled(reflect_pad(pixels, *size), scale, model, tile)]
    for _ in range(1, levels):
        gauss.append(down_tiled(gauss[-1], scale, model, tile))
    return gauss


def _refine_tile(
    model: LoadedModel, fine: Tensor, coarse: Tensor, blend: Tensor, t: Tile
) -> Tensor:
    """B_i and I_i over the tile window from I_i (window), I_{i+1} and B_{i+1} (full)."""
    ct = half_tile(t)
    if model.refine_is_upsample:  # phi2 == 0: Eq. 5 is exactly up(B_{i+1})
        return upsample2x(crop(blend, ct))
    high = fine - model.module.up_laplacian(crop(coarse, ct))  # H_i = I_i - up(I_{i+1})
    return model.module.refine(crop(blend, ct), high)  # Eq. 5


UPSAMPLE_MARGIN = 4  # B_l pixels around a tile: each expand spoils ~1 coarse px at a crop's edge


def _upsampled_blend(blend: Tensor, t: Tile, levels: int) -> Tensor:
    """B_0 over the tile window straight from B_l when every refiner only upsamples (Eq. 5
    with phi2 == 0): up^l of a crop of B_l, so no intermediate level is made for the whole
    frame (on a clean 6K frame that was ~0.15 s of upsampling tiles that are copied anyway)."""
    cell = 2**levels
    h, w = blend.shape[2], blend.shape[3]
    cy0, cx0 = max(0, t.ya // cell - UPSAMPLE_MARGIN), max(0, t.xa // cell - UPSAMPLE_MARGIN)
    cy1 = min(h, -(-t.yb // cell) + UPSAMPLE_MARGIN)
    cx1 = min(w, -(-t.xb // cell) + UPSAMPLE_MARGIN)
    b = blend[:, :, cy0:cy1, cx0:cx1]
    for _ in range(levels):
        b = upsample2x(b)
    oy, ox = t.ya - cy0 * cell, t.xa - cx0 * cell
    return b[:, :, oy : oy + t.yb - t.ya, ox : ox + t.xb - t.xa]


def _refine_level_tiled(
    model: LoadedModel,
    fine: Tensor,
    coarse: Tensor,
    blend: Tensor,
    options: RetouchOptions,
    skip: tuple[_SkipMaps, int] | None,
) -> Tensor:
    """B_i over the whole level; with `skip` = (maps, this level), untouched tiles get the
    coarse blend only upsampled (their level-0 pixels are copied anyway)."""
    h, w = fine.shape[2], fine.shape[3]
    out = torch.empty_like(fine)
    for t in tile_grid(h, w, h, w, options.tile, HALO):
        if skip is not None and skip[0].untouched(t, skip[1]):
            b = upsample2x(crop(blend, half_tile(t)))
        else:
            b = _refine_tile(model, crop(fine, t), coarse, blend, t)
        out[:, :, t.y0 : t.y1, t.x0 : t.x1] = inner(b, t)
    return out


def _gated_coarse(
    model: LoadedModel, thumb: Tensor, options: RetouchOptions
) -> tuple[Tensor, Tensor]:
    """(M after the sensitivity gate, B_l with unsure edits faded to the identity).

    Where the gate is exactly 0 the blend is the identity whatever the LRL says, so a model
    file with `coarse_where` computes its costly full-resolution part only elsewhere."""
    floor = gate_floor(options.sensitivity)
    if floor > 0.0 and model.has_coarse_where:
        mask, blend = model.module.coarse_where(thumb, floor)
    else:
        mask, blend = model.module.coarse(thumb)  # LRL + R-ABM on I_l
    if options.sensitivity >= 1.0:
        return mask, blend
    gate = sensitivity_gate(mask, options.sensitivity)
    gate_l = F.interpolate(gate, size=thumb.shape[2:], mode="bilinear", align_corners=False)
    identity = model.module.blend_fn.identity_blend(thumb)
    return mask * gate, identity + gate_l * (blend - identity)


def _thumb_edit(model: LoadedModel, thumb: Tensor, blend: Tensor) -> Tensor:
    """|R_l - I_l|, max over channels: (N, 1, h_l, w_l), what the edit does at the thumbnail."""
    return (_apply_blend(model, thumb, blend).clamp(0.0, 1.0) - thumb).abs().amax(1, keepdim=True)


def _coarse(
    model: LoadedModel, thumb: Tensor, options: RetouchOptions
) -> tuple[Tensor, Tensor, Tensor]:
    """(M, B_l, |R_l - I_l|) at the thumbnail after the sensitivity gate and, where the floor
    is above 0, with everything but the visible spots set to the identity (engine.spots)."""
    mask, blend = _gated_coarse(model, thumb, options)
    edit = _thumb_edit(model, thumb, blend)
    floor = visibility_floor(options.sensitivity)
    if floor <= 0.0:
        return mask, blend, edit
    keep_np = visible_spots(edit[0, 0].float().cpu().numpy(), floor)
    keep = torch.from_numpy(keep_np).to(blend)[None, None]
    identity = model.module.blend_fn.identity_blend(thumb)
    blend = identity + keep * (blend - identity)
    mask = mask * F.adaptive_max_pool2d(keep.to(mask), mask.shape[-2:])
    return mask, blend, edit * keep


def _window_below(grid: Tensor, t: Tile, stride: int, threshold: float) -> bool:
    """True when `grid` (stride level-i px per cell), dilated by a cell, stays under threshold
    over the tile's input window."""
    y0, x0 = max(0, t.ya // stride - 1), max(0, t.xa // stride - 1)
    y1, x1 = -(-t.yb // stride) + 1, -(-t.xb // stride) + 1
    return bool(grid[:, :, y0:y1, x0:x1].max() < threshold)


@dataclass(frozen=True)
class _SkipMaps:
    """When a tile is left untouched: the gated mask is under `skip_threshold` over its window,
    or the thumbnail's edit there is under half a step of the output's bit depth (a change
    rounding would undo; the refiner of the shipped model only upsamples, so the edit cannot
    grow on the way up)."""

    mask: Tensor  # gated M at I_l / 4
    edit: Tensor  # _thumb_edit at I_l
    levels: int
    mask_threshold: float
    edit_threshold: float

    def untouched(self, t: Tile, level: int) -> bool:
        cell = 2 ** (self.levels - level)  # level-`level` pixels per thumbnail pixel
        return _window_below(self.mask, t, 4 * cell, self.mask_threshold) or _window_below(
            self.edit, t, cell, self.edit_threshold
        )


def _check_options(pixels: np.ndarray, options: RetouchOptions) -> None:
    """Refuse a bad image shape or option before any work (ValueError, a clear message)."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {pixels.shape}")
    check_options(options)


def check_options(options: RetouchOptions) -> None:
    """ValueError for an option no image can be retouched with (the options' one check)."""
    if not 0.0 <= options.strength <= 1.0:
        raise ValueError("strength must be within 0..1")
    mask_threshold(options.sensitivity)  # raises ValueError outside 0..1
    if options.tile < 64 or options.tile % 2:
        raise ValueError("tile must be an even number >= 64")


def _levels(model: LoadedModel, height: int, width: int, options: RetouchOptions) -> int:
    levels = options.levels
    if levels is None:
        levels = choose_levels(height, width, model.config.thumbnail)
    if levels < 0 or levels > 8:
        raise ValueError("levels must be within 0..8")
    return levels


@dataclass
class _Level0:
    """What the level-0 pass writes: the output, the blend dump if asked, tiles skipped."""

    out: np.ndarray
    blend: np.ndarray | None
    total: int = 0
    skipped: int = 0
    edited: list[tuple[Tile, np.ndarray]] = field(default_factory=list)  # written at the end


def _expand_level0(
    model: LoadedModel,
    pixels: np.ndarray,
    size: tuple[int, int],
    gauss: list[Tensor],
    blend: Tensor,
    maps: _SkipMaps,
    options: RetouchOptions,
    on_tile: Callable[[int, int], None] | None,
    out: np.ndarray,
) -> _Level0:
    """R_0 tile by tile in the input's dtype into `out`, which already holds the input (so
    untouched tiles stay exact for free); edited tiles are written after every tile has read
    its window, as `out` may be `pixels` itself and the windows overlap."""
    height, width = pixels.shape[:2]
    scale = max_value(pixels.dtype)
    want_blend = options.want_blend
    res = _Level0(out, np.empty((height, width, 3), np.float32) if want_blend else None)
    tiles = tile_grid(height, width, *size, options.tile, HALO)
    res.total = len(tiles)
    for k, t in enumerate(tiles):
        if on_tile is not None:
            on_tile(k, len(tiles))
        hy, hx = min(t.y1, height), min(t.x1, width)
        if options.skip_untouched and maps.untouched(t, 0):
            if res.blend is not None:
                res.blend[t.y0 : hy, t.x0 : hx] = NEUTRAL_BLEND
            res.skipped += 1
            continue
        image = to_tensor(padded_window(pixels, t.ya, t.yb, t.xa, t.xb), scale, model)
        if model.refine_is_upsample:  # `blend` is B_l (see retouch)
            b0 = _upsampled_blend(blend, t, len(gauss))
        else:
            b0 = _refine_tile(model, image, gauss[0], blend, t)
        result = _apply_blend(model, image, b0).clamp(0.0, 1.0)  # R_0 = f_a(I_0, B_0)
        if options.strength < 1.0:
            result = image + options.strength * (result - image)
        kept = inner(result, t)[:, :, : hy - t.y0, : hx - t.x0]
        res.edited.append((t, to_pixels(kept, scale, pixels.dtype)))
        if res.blend is not None:
            b_inner = inner(b0, t)[:, :, : hy - t.y0, : hx - t.x0]
            res.blend[t.y0 : hy, t.x0 : hx] = b_inner[0].float().permute(1, 2, 0).cpu().numpy()
    for t, tile_pixels in res.edited:
        res.out[t.y0 : t.y0 + tile_pixels.shape[0], t.x0 : t.x0 + tile_pixels.shape[1]] = (
            tile_pixels
        )
    return res


@torch.inference_mode()
def retouch(
    model: LoadedModel,
    pixels: np.ndarray,
    options: RetouchOptions,
    on_tile: Callable[[int, int], None] | None = None,
    out: np.ndarray | None = None,
) -> RetouchResult:
    """Retouch one (H, W, 3) uint8/uint16 image; the result has the input's shape and dtype.

    `on_tile(done, total)` is told after each full-resolution tile (the UI's per-file bar).
    `out` receives the result (None: a new array); `out=pixels` retouches in place, which
    spares a copy of the frame when the caller no longer needs the original (the batch).
    """
    start = time.perf_counter()
    _check_options(pixels, options)
    if out is not None and (out.shape != pixels.shape or out.dtype != pixels.dtype):
        raise ValueError(f"out must be {pixels.shape} {pixels.dtype}, got {out.shape} {out.dtype}")
    scale = max_value(pixels.dtype)
    height, width = pixels.shape[:2]
    levels = _levels(model, height, width, options)
    ph, pw = padded_size(height, width, levels)
    if levels == 0:
        res = _retouch_dense(model, reflect_pad(pixels, ph, pw), pixels, scale, options, start)
        if out is not None:
            out[...] = res.image
            res.image = out
        return res
    gauss = _gaussian_levels(pixels, (ph, pw), scale, model, levels, options.tile)
    mask, blend, edit = _coarse(model, gauss[-1], options)
    spot_count, spots = find_spots(edit[0, 0].float().cpu().numpy(), 2.0**levels, height, width)
    maps = _SkipMaps(mask, edit, levels, options.skip_threshold, 0.5 / scale)
    if not model.refine_is_upsample:  # else level 0 upsamples B_l itself, per tile it needs
        for i in range(levels - 2, -1, -1):  # B_{l-1} .. B_1, each from the next coarser level
            skip = (maps, i + 1) if options.skip_untouched else None
            blend = _refine_level_tiled(model, gauss[i], gauss[i + 1], blend, options, skip)
    if out is None:
        out = pixels.copy()
    elif out is not pixels:
        out[...] = pixels
    level0 = _expand_level0(model, pixels, (ph, pw), gauss, blend, maps, options, on_tile, out)
    return RetouchResult(
        image=level0.out,
        mask=_full_mask(mask, height, width, ph, pw) if options.want_mask else None,
        blend=level0.blend,
        levels=levels,
        tiles_total=level0.total,
        tiles_skipped=level0.skipped,
        seconds=time.perf_counter() - start,
        spot_count=spot_count,
        spots=spots,
    )


def _full_mask(mask: Tensor, height: int, width: int, ph: int, pw: int) -> np.ndarray:
    """Upsample M (I_l/4) bilinearly to the padded frame and crop to the image."""
    full = F.interpolate(mask.float(), size=(ph, pw), mode="bilinear", align_corners=False)
    return full[0, 0, :height, :width].cpu().numpy().astype(np.float32)


def _retouch_dense(
    model: LoadedModel,
    padded: np.ndarray,
    pixels: np.ndarray,
    scale: float,
    options: RetouchOptions,
    start: float,
) -> RetouchResult:
    """l = 0: the image is its own thumbnail (small images only)."""
    height, width = pixels.shape[:2]
    image = to_tensor(padded, scale, model)
    mask, blend, edit = _coarse(model, image, options)
    spot_count, spots = find_spots(edit[0, 0].float().cpu().numpy(), 1.0, height, width)
    result = _apply_blend(model, image, blend).clamp(0.0, 1.0)
    if options.strength < 1.0:
        result = image + options.strength * (result - image)
    out = to_pixels(result[:, :, :height, :width], scale, pixels.dtype)
    blend_np = None
    if options.want_blend:
        blend_np = blend[0, :, :height, :width].float().permute(1, 2, 0).cpu().numpy()
    return RetouchResult(
        image=out,
        mask=_full_mask(mask, height, width, *padded.shape[:2]) if options.want_mask else None,
        blend=blend_np,
        levels=0,
        tiles_total=1,
        tiles_skipped=0,
        seconds=time.perf_counter() - start,
        spot_count=spot_count,
        spots=spots,
    )
