"""PatchGAN discriminator for the adversarial term L_adv (ABPN Sec. 4.4).

The paper names a PatchGAN-style discriminator on R_0 and nothing more. Decision: a small
conditional PatchGAN (pix2pix style) that sees Cat(I_0, R) so it judges "is this a plausible
retouch of *this* input" rather than "is this a plausible photo": four 4x4 stride-2 convs,
widths 32-64-128-1, spectral norm on every conv (stable with a least-squares loss and no
batch-size dependence), LeakyReLU(0.2). Each output logit sees a 46x46 patch of the crop.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """D(I, R) -> (N, 1, H/16, W/16) patch scores; least-squares targets 1 (real) / 0 (fake)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), in_channels: int = 6) -> None:
        super().__init__()
        chans = [in_channels, *widths]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [
                spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)),
                nn.LeakyReLU(0.2),
            ]
        layers.append(spectral_norm(nn.Conv2d(chans[-1], 1, 4, stride=2, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor, result: Tensor) -> Tensor:
        return self.net(torch.cat([image, result], dim=1))
