"""ABPN: the whole network, dense (every level at once), for training and as the reference.

The engine (abpn_cli.engine) runs the same modules level by level and in tiles; the methods
exported here (`coarse`, `refine`, `apply_blend`, `down`, `up_laplacian`) are what it calls on a
TorchScript model file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from abpn_cli.model.blend import AdaptiveBlend
from abpn_cli.model.lrl import LocalRetouchingLayer
from abpn_cli.model.pyramid import laplacian_pyramid, pyr_down, pyr_up
from abpn_cli.model.refine import RefiningModule, upsample2x

ENCODER_DEPTH = 6  # six stride-2 blocks: padded thumbnails are multiples of 2^6


@dataclass(frozen=True)
class ABPNConfig:
    """Widths and the training thumbnail size; stored in every model file."""

    encoder_widths: list[int] = field(default_factory=lambda: [24, 48, 96, 128, 192, 256])
    mask_widths: list[int] = field(default_factory=lambda: [128, 96, 64, 32])
    lrb_widths: list[int] = field(default_factory=lambda: [128, 96, 64, 48, 32, 16])
    refine_hidden: int = 16
    thumbnail: int = 256  # long side of I_l the LRL was trained on; picks l at inference
    # Decision (docs/ARCHITECTURE.md): R_l = I_l + up(M) * tanh(.), so where the mask is 0
    # the thumbnail, hence the blend layer, is exactly the identity. False: the ungated form.
    gate_residual: bool = False
    detail_input: bool = False  # the encoder also sees a log-domain high-pass of I_l
    multiplicative: bool = False  # R_l = I_l * exp(residual): the edit is a gain (dust)
    blend_init: str = "soft_light"  # starting j_i, k_i: "soft_light" or "multiply"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ABPNConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


class ABPNOutput(NamedTuple):
    """Result R_0, mask M (I_l/4), blend B_0, and per-level R_i, B_i (index = level)."""

    result: Tensor
    mask: Tensor
    blend: Tensor
    results: list[Tensor]
    blends: list[Tensor]


class ABPN(nn.Module):
    """Adaptive Blend Pyramid Network (Lei et al., CVPR 2022)."""

    def __init__(self, config: ABPNConfig | None = None) -> None:
        super().__init__()
        cfg = config or ABPNConfig()
        if len(cfg.encoder_widths) != ENCODER_DEPTH:
            raise ValueError("encoder_widths needs exactly six entries")
        if len(cfg.mask_widths) != 4 or len(cfg.lrb_widths) != 6:
            raise ValueError("mask_widths needs four entries and lrb_widths six")
        self.config = cfg
        self.lrl = LocalRetouchingLayer(
            list(cfg.encoder_widths),
            list(cfg.mask_widths),
            list(cfg.lrb_widths),
            gate_residual=cfg.gate_residual,
            detail_input=cfg.detail_input,
            multiplicative=cfg.multiplicative,
        )
        self.blend_fn = AdaptiveBlend(cfg.blend_init)
        self.refiner = RefiningModule(cfg.refine_hidden)

    def forward(self, image: Tensor, levels: int) -> ABPNOutput:
        """Dense pass: image (N,3,H,W) in [0,1], H and W multiples of 2^(levels+6)."""
        gauss, high = laplacian_pyramid(image, levels)
        mask, retouched = self.lrl(gauss[levels])
        blend = self.blend_fn.reverse(gauss[levels], retouched)  # B_l = f_r(I_l, R_l)
        blends = [blend]
        results = [retouched]
        for i in range(levels - 1, -1, -1):
            blend = self.refiner(upsample2x(blend), high[i])  # Eq. 5
            blends.insert(0, blend)
            results.insert(0, self.blend_fn(gauss[i], blend))  # R_i = f_a(I_i, B_i)
        return ABPNOutput(results[0], mask, blends[0], results, blends)

    @torch.jit.export
    def coarse(self, thumb: Tensor) -> tuple[Tensor, Tensor]:
        """LRL + R-ABM on I_l: returns (M, B_l)."""
        mask, retouched = self.lrl(thumb)
        return mask, self.blend_fn.reverse(thumb, retouched)

    @torch.jit.export
    def coarse_where(self, thumb: Tensor, floor: float) -> tuple[Tensor, Tensor]:
        """`coarse` for a caller that drops edits where M < floor: the costly full-resolution
        part of the LRL runs only near such mask values (exact there, identity elsewhere)."""
        mask, retouched = self.lrl.forward_where(thumb, floor)
        return mask, self.blend_fn.reverse(thumb, retouched)

    @torch.jit.export
    def refine(self, blend_coarse: Tensor, high: Tensor) -> Tensor:
        """One pyramid level of Eq. 5: B_i from B_{i+1} and H_i."""
        return self.refiner(upsample2x(blend_coarse), high)

    @torch.jit.export
    def apply_blend(self, image: Tensor, blend: Tensor) -> Tensor:
        """ABM: R_i = f_a(I_i, B_i)."""
        return self.blend_fn(image, blend)

    @torch.jit.export
    def down(self, image: Tensor) -> Tensor:
        return pyr_down(image)

    @torch.jit.export
    def up_laplacian(self, image: Tensor) -> Tensor:
        return pyr_up(image)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
