"""Adaptive blend modules (ABPN Sec. 4.3, Eq. 2-4).

One module holds the six learnable scalars j_i, k_i that the paper shares between every ABM
and the R-ABM, so both directions always use the same blend.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Decision (ABPN.md): guard the R-ABM division and bound the blend layer. B in [-1, 2] is
# symmetric around the soft-light identity 0.5 and covers edits up to full darken/brighten.
BLEND_MIN = -1.0
BLEND_MAX = 2.0
DEN_EPS = 1e-3


class AdaptiveBlend(nn.Module):
    """ABM f_a and R-ABM f_r with shared scalars, initialised to the Pegtop soft-light blend."""

    def __init__(self) -> None:
        super().__init__()
        self.blend_min = BLEND_MIN
        self.blend_max = BLEND_MAX
        self.den_eps = DEN_EPS
        # soft light: R = (1-2B) I^2 + 2B I  ->  j = (0, 2, -2), k = (0, 0, 1)
        self.j = nn.Parameter(torch.tensor([0.0, 2.0, -2.0]))
        self.k = nn.Parameter(torch.tensor([0.0, 0.0, 1.0]))

    def forward(self, image: Tensor, blend: Tensor) -> Tensor:
        """R = f_a(I, B) = sum_i (j_i B + k_i) I^i   (Eq. 3)."""
        j = self.j.to(image.dtype)
        k = self.k.to(image.dtype)
        sq = image * image
        return (j[0] * blend + k[0]) + (j[1] * blend + k[1]) * image + (j[2] * blend + k[2]) * sq

    @torch.jit.export
    def reverse(self, image: Tensor, result: Tensor) -> Tensor:
        """B = f_r(I, R) = (R - sum_i k_i I^i) / sum_i j_i I^i   (Eq. 4), guarded."""
        j = self.j.to(image.dtype)
        k = self.k.to(image.dtype)
        sq = image * image
        num = result - (k[0] + k[1] * image + k[2] * sq)
        den = j[0] + j[1] * image + j[2] * sq
        # sign-preserving clamp |den| >= eps: at init den vanishes at I = 0 and I = 1
        den = torch.where(den >= 0, den.clamp(min=self.den_eps), den.clamp(max=-self.den_eps))
        return (num / den).clamp(self.blend_min, self.blend_max)

    @torch.jit.export
    def identity_blend(self, image: Tensor) -> Tensor:
        """The blend layer that leaves `image` unchanged under the current scalars."""
        return self.reverse(image, image)
