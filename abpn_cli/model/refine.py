"""Refining module of the blend pyramid layer (ABPN Eq. 5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def upsample2x(x: Tensor) -> Tensor:
    """Bilinear x2, the `up` of Eq. 5 (align_corners=False keeps it local and tileable)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class RefiningModule(nn.Module):
    """B_i = phi2(h(phi1(Cat(up(B_{i+1}), H_i)))) + up(B_{i+1})   (Eq. 5).

    Decision (docs/ARCHITECTURE.md): one instance is shared by all levels, so weights trained
    at l = 1-2
    serve any l at inference.
    """

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.phi1 = nn.Conv2d(6, hidden, 3, padding=1)
        self.phi2 = nn.Conv2d(hidden, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        # start as pure upsampling so an untrained pyramid is the identity expansion
        nn.init.zeros_(self.phi2.weight)
        nn.init.zeros_(self.phi2.bias)

    def forward(self, blend_up: Tensor, high: Tensor) -> Tensor:
        """Refine an already upsampled coarse blend with the level's high frequencies."""
        return self.phi2(self.act(self.phi1(torch.cat([blend_up, high], dim=1)))) + blend_up
