"""Local retouching layer (ABPN Sec. 4.2): mutual encoder, mask branch, retouching branch.

It runs on the thumbnail I_l only, so its cost does not grow with the photo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from abpn_cli.model.pyramid import pyr_down, pyr_up


class ConvBlock(nn.Module):
    """3x3 conv + BatchNorm + activation; stride 2 in the encoder."""

    def __init__(self, cin: int, cout: int, stride: int = 1, leaky: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.LeakyReLU(0.2) if leaky else nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


DETAIL_EPS = 0.02  # log(I + eps): keeps black finite, ~5/255 of shadow noise
DETAIL_GAIN = 10.0  # a 10 % multiplicative change -> ~1.0 in the detail channels


def log_detail(thumb: Tensor, eps: float = DETAIL_EPS, gain: float = DETAIL_GAIN) -> Tensor:
    """Log-domain high-pass: log(I + eps) minus its two-level binomial low-pass, x gain.

    (N, 3, H, W) in [0, 1] -> (N, 3, H, W), H and W multiples of 4. A multiplicative shading
    such as a dust shadow becomes an additive bump of the same size on any background.
    """
    lg = torch.log(thumb + eps)
    low = pyr_up(pyr_up(pyr_down(pyr_down(lg))))
    return (lg - low) * gain


class MutualEncoder(nn.Module):
    """Six stride-2 conv blocks; returns F_skip_0..F_skip_6 (F_skip_0 = I_l).

    With `detail_input` the first block sees Cat(I_l, log_detail(I_l)). Decision, measured:
    a small CNN learning dust masks from I_l alone stayed at chance after 100 steps (mask
    0.252 on dust vs 0.252 elsewhere); with the detail channels it separated (0.279 vs 0.160).
    """

    def __init__(self, widths: list[int], detail_input: bool = False) -> None:
        super().__init__()
        self.detail_input = detail_input
        chans = [6 if detail_input else 3, *widths]
        self.blocks = nn.ModuleList(
            [ConvBlock(chans[i], chans[i + 1], stride=2) for i in range(len(widths))]
        )

    def forward(self, thumb: Tensor) -> list[Tensor]:
        skips = [thumb]
        x = torch.cat([thumb, log_detail(thumb)], dim=1) if self.detail_input else thumb
        for block in self.blocks:
            x = block(x)
            skips.append(x)
        return skips


def _up_to(x: Tensor, ref: Tensor) -> Tensor:
    return F.interpolate(x, size=(ref.shape[2], ref.shape[3]), mode="bilinear", align_corners=False)


class MaskBranch(nn.Module):
    """Mask prediction branch: four U-Net up blocks from F_skip_6 to I_l/4, then a 1x1 head."""

    def __init__(self, widths: list[int], mask_widths: list[int]) -> None:
        super().__init__()
        # up block i goes from scale 2^(6-i) to 2^(5-i) and concatenates F_skip_(5-i)
        cins = [widths[5], *mask_widths[:3]]
        skips = [widths[4], widths[3], widths[2], widths[1]]
        self.blocks = nn.ModuleList(
            [ConvBlock(cins[i] + skips[i], mask_widths[i], leaky=True) for i in range(4)]
        )
        self.head = nn.Conv2d(mask_widths[3], 1, 1)

    def forward(self, skips: list[Tensor]) -> Tensor:
        x = skips[6]
        for i, block in enumerate(self.blocks):
            skip = skips[5 - i]
            x = block(torch.cat([_up_to(x, skip), skip], dim=1))
        return torch.sigmoid(self.head(x))  # M at I_l / 4


class GatedConv(nn.Module):
    """Gated convolution (Yu et al. 2019): act(conv_f(x)) * sigmoid(conv_g(x))."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        feat, gate = self.conv(x).chunk(2, dim=1)
        return self.act(feat) * torch.sigmoid(gate)


class LocalAttentiveModule(nn.Module):
    """LAM: gated conv over Cat(up(features), F_skip_i, M resized to this scale)."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.gated = GatedConv(cin + cskip + 1, cout)

    def forward(self, x: Tensor, skip: Tensor, mask: Tensor) -> Tensor:
        m = _up_to(mask, skip)
        return self.gated(torch.cat([_up_to(x, skip), skip, m], dim=1))


class LocalRetouchingBranch(nn.Module):
    """Six LAMs from F_skip_6 back to the thumbnail; predicts a bounded residual on I_l.

    With `gate_residual` the residual is multiplied by the mask upsampled to I_l, so the
    retouched thumbnail equals I_l exactly wherever M = 0: the mask, which the engine uses to
    skip untouched tiles, is then also what bounds the edit.

    With `multiplicative` the head predicts a log gain instead: R_l = I_l * exp(g). A dust
    shadow is a smooth multiplicative shading, so on texture the additive residual has to
    copy the texture times the shading, while the log gain stays as smooth as the shadow.
    """

    def __init__(
        self,
        widths: list[int],
        lrb_widths: list[int],
        gate_residual: bool = False,
        multiplicative: bool = False,
    ) -> None:
        super().__init__()
        self.gate_residual = gate_residual
        self.multiplicative = multiplicative
        cins = [widths[5], *lrb_widths[:5]]
        skip_ch = [widths[4], widths[3], widths[2], widths[1], widths[0], 3]
        self.lams = nn.ModuleList(
            [LocalAttentiveModule(cins[i], skip_ch[i], lrb_widths[i]) for i in range(6)]
        )
        self.head = nn.Conv2d(lrb_widths[5], 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, skips: list[Tensor], mask: Tensor) -> Tensor:
        x = skips[6]
        for i, lam in enumerate(self.lams):
            x = lam(x, skips[5 - i], mask)
        # decision (docs/ARCHITECTURE.md): R_l = clamp(I_l + [up(M) *] tanh(.)), bounded
        residual = torch.tanh(self.head(x))
        if self.gate_residual:
            residual = residual * _up_to(mask, skips[0])
        if self.multiplicative:  # R_l = I_l * exp([up(M) *] tanh(.)): a gain in (1/e, e)
            return (skips[0] * torch.exp(residual)).clamp(0.0, 1.0)
        return (skips[0] + residual).clamp(0.0, 1.0)


class LocalRetouchingLayer(nn.Module):
    """LRL: returns the soft mask M (at I_l/4) and the retouched thumbnail R_l."""

    def __init__(
        self,
        widths: list[int],
        mask_widths: list[int],
        lrb_widths: list[int],
        gate_residual: bool = False,
        detail_input: bool = False,
        multiplicative: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = MutualEncoder(widths, detail_input)
        self.mask_branch = MaskBranch(widths, mask_widths)
        self.retouch_branch = LocalRetouchingBranch(
            widths, lrb_widths, gate_residual, multiplicative
        )

    def forward(self, thumb: Tensor) -> tuple[Tensor, Tensor]:
        skips = self.encoder(thumb)
        mask = self.mask_branch(skips)
        return mask, self.retouch_branch(skips, mask)
