"""Adaptive blend modules (ABPN Sec. 4.3, Eq. 2-4).

One module holds the six learnable scalars j_i, k_i that the paper shares between every ABM
and the R-ABM, so both directions always use the same blend.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Decision (docs/ARCHITECTURE.md): guard the R-ABM division and bound the blend layer.
# B in [-1, 2] is symmetric around the identity 0.5 and covers edits up to full darken/brighten.
BLEND_MIN = -1.0
BLEND_MAX = 2.0
DEN_EPS = 1e-3
NEUTRAL_BLEND = 0.5  # the identity of both named initialisations below

# Named starting points (j_0, j_1, j_2), (k_0, k_1, k_2) for R = sum_i (j_i B + k_i) I^i:
# soft light (Pegtop) R = (1-2B) I^2 + 2B I, the paper-faithful default;
# multiply R = 2B I, whose inverse B = R / 2I is a pure gain, independent of the texture
# under it (measured better for sensor dust, see docs/ARCHITECTURE.md).
BLEND_INITS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "soft_light": ((0.0, 2.0, -2.0), (0.0, 0.0, 1.0)),
    "multiply": ((0.0, 2.0, 0.0), (0.0, 0.0, 0.0)),
}


def blend_apply(image: Tensor, blend: Tensor, j: Tensor, k: Tensor) -> Tensor:
    """R = f_a(I, B) = sum_i (j_i B + k_i) I^i   (Eq. 3).

    image, blend: (N, 3, H, W) (blend broadcastable); j, k: (3,) scalars, cast to I's dtype.
    """
    j = j.to(image.dtype)
    k = k.to(image.dtype)
    sq = image * image
    return (j[0] * blend + k[0]) + (j[1] * blend + k[1]) * image + (j[2] * blend + k[2]) * sq


class AdaptiveBlend(nn.Module):
    """ABM f_a and R-ABM f_r with shared scalars, initialised to a named blend mode."""

    def __init__(self, init: str = "soft_light") -> None:
        super().__init__()
        if init not in BLEND_INITS:
            raise ValueError(f"unknown blend_init {init!r}: one of {sorted(BLEND_INITS)}")
        j, k = BLEND_INITS[init]
        self.blend_min = BLEND_MIN
        self.blend_max = BLEND_MAX
        self.den_eps = DEN_EPS
        self.neutral = NEUTRAL_BLEND
        self.j = nn.Parameter(torch.tensor(j))
        self.k = nn.Parameter(torch.tensor(k))

    def forward(self, image: Tensor, blend: Tensor) -> Tensor:
        """R = f_a(I, B) (Eq. 3), see `blend_apply`."""
        return blend_apply(image, blend, self.j, self.k)

    @torch.jit.export
    def reverse(self, image: Tensor, result: Tensor) -> Tensor:
        """B = f_r(I, R) = (R - sum_i k_i I^i) / sum_i j_i I^i   (Eq. 4), guarded.

        Where |den| < eps the blend has (almost) no effect on R, so every B inverts it; the
        neutral value is returned there rather than a huge clamped one, so that upsampling B
        does not carry a meaningless value from a clipped pixel onto its neighbours.
        """
        j = self.j.to(image.dtype)
        k = self.k.to(image.dtype)
        sq = image * image
        num = result - (k[0] + k[1] * image + k[2] * sq)
        den = j[0] + j[1] * image + j[2] * sq
        degenerate = den.abs() < self.den_eps
        # sign-preserving clamp |den| >= eps: soft light's den vanishes at I = 0 and I = 1
        den = torch.where(den >= 0, den.clamp(min=self.den_eps), den.clamp(max=-self.den_eps))
        blend = (num / den).clamp(self.blend_min, self.blend_max)
        return torch.where(degenerate, torch.full_like(blend, self.neutral), blend)

    @torch.jit.export
    def identity_blend(self, image: Tensor) -> Tensor:
        """The blend layer that leaves `image` unchanged under the current scalars."""
        return self.reverse(image, image)
