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

    def forward_boxes(
        self, x: Tensor, skip: Tensor, mask: Tensor, boxes: list[tuple[int, int, int, int]]
    ) -> Tensor:
        """`forward` only inside `boxes` (y0, y1, x0, x1 at this scale), zero elsewhere: each is
        computed from its box grown by the 3x3 reach, so it equals the dense result there."""
        inp = torch.cat([_up_to(x, skip), skip, _up_to(mask, skip)], dim=1)
        h, w = skip.shape[2], skip.shape[3]
        out = inp.new_zeros(inp.shape[0], self.gated.conv.out_channels // 2, h, w)
        for y0, y1, x0, x1 in boxes:
            gy0, gx0 = max(y0 - 1, 0), max(x0 - 1, 0)
            r = self.gated(inp[:, :, gy0 : min(y1 + 1, h), gx0 : min(x1 + 1, w)])
            out[:, :, y0:y1, x0:x1] = r[:, :, y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0]
        return out


FINE_LAMS_FROM = 4  # LAMs 5-6 (index 4, 5) run at I_l/2 and I_l
WINDOW = 32  # I_l px: the fine LAMs' window in forward_where (a multiple of 4)
WINDOW_HALO = 12  # I_l px each side: the fine part reaches ~7 (tests: 8 exact, 4 not)


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
        self.fine_from, self.window, self.window_halo = FINE_LAMS_FROM, WINDOW, WINDOW_HALO
        cins = [widths[5], *lrb_widths[:5]]
        skip_ch = [widths[4], widths[3], widths[2], widths[1], widths[0], 3]
        self.lams = nn.ModuleList(
            [LocalAttentiveModule(cins[i], skip_ch[i], lrb_widths[i]) for i in range(6)]
        )
        self.head = nn.Conv2d(lrb_widths[5], 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, skips: list[Tensor], mask: Tensor) -> Tensor:
        return self._fine(self._coarse(skips, mask), skips[1], skips[0], mask)

    def _coarse(
        self,
        skips: list[Tensor],
        mask: Tensor,
        boxes: list[tuple[int, int, int, int]] | None = None,
    ) -> Tensor:
        """LAMs 1-4, from F_skip_6 to I_l/4 (1/16 of the thumbnail's pixels); with `boxes`
        (I_l/4 cells) the last, the costliest of the four, runs only inside them."""
        x = skips[6]
        for i, lam in enumerate(self.lams):
            if i < self.fine_from:
                if boxes is not None and i == self.fine_from - 1:
                    x = lam.forward_boxes(x, skips[5 - i], mask, boxes)
                else:
                    x = lam(x, skips[5 - i], mask)
        return x

    def _fine(self, x: Tensor, skip1: Tensor, thumb: Tensor, mask: Tensor) -> Tensor:
        """LAMs 5-6 (I_l/2 and I_l) and the head: most of the LRL's cost."""
        for i, lam in enumerate(self.lams):
            if i >= self.fine_from:
                x = lam(x, skip1 if i == self.fine_from else thumb, mask)
        # decision (docs/ARCHITECTURE.md): R_l = clamp(I_l + [up(M) *] tanh(.)), bounded
        residual = torch.tanh(self.head(x))
        if self.gate_residual:
            residual = residual * _up_to(mask, thumb)
        if self.multiplicative:  # R_l = I_l * exp([up(M) *] tanh(.)): a gain in (1/e, e)
            return (thumb * torch.exp(residual)).clamp(0.0, 1.0)
        return (thumb + residual).clamp(0.0, 1.0)

    def _windows(self, mask: Tensor, floor: float) -> list[tuple[int, int, int, int, int, int]]:
        """(cy, cx, y0, y1, x0, x1) in I_l/4 cells: each WINDOW-px window where M, dilated by one
        cell, reaches `floor`, and the window grown by WINDOW_HALO that computes it."""
        need = F.max_pool2d((mask >= floor).to(mask.dtype), 3, stride=1, padding=1)
        hq, wq = mask.shape[2], mask.shape[3]
        n, halo = self.window // 4, self.window_halo // 4
        out: list[tuple[int, int, int, int, int, int]] = []
        for cy in range(0, hq, n):
            for cx in range(0, wq, n):
                if bool(need[:, :, cy : cy + n, cx : cx + n].max() >= 0.5):
                    y0, x0 = max(cy - halo, 0), max(cx - halo, 0)
                    out.append((cy, cx, y0, min(cy + n + halo, hq), x0, min(cx + n + halo, wq)))
        return out

    def forward_where(self, skips: list[Tensor], mask: Tensor, floor: float) -> Tensor:
        """R_l with the fine LAMs, and the last coarse one, run only in WINDOW-px windows of I_l
        where M, dilated by one cell, reaches `floor`; elsewhere R_l = I_l.

        Exact for a caller that drops every edit where M < floor (the engine's sensitivity
        gate, bilinear from the mask: hence the one-cell dilation): each window is computed
        with a WINDOW_HALO-px margin, wider than the fine LAMs' reach. A frame with no such
        window costs no LAM at all. (N, C, H/4, W/4) mask, skips as `forward`.
        """
        out = skips[0].clone()
        windows = self._windows(mask, floor)
        if len(windows) == 0:
            return out
        x = self._coarse(skips, mask, [(y0, y1, x0, x1) for _, _, y0, y1, x0, x1 in windows])
        hq, wq, n = mask.shape[2], mask.shape[3], self.window // 4
        for cy, cx, y0, y1, x0, x1 in windows:
            r = self._fine(
                x[:, :, y0:y1, x0:x1],
                skips[1][:, :, 2 * y0 : 2 * y1, 2 * x0 : 2 * x1],
                skips[0][:, :, 4 * y0 : 4 * y1, 4 * x0 : 4 * x1],
                mask[:, :, y0:y1, x0:x1],
            )
            ey, ex = min(cy + n, hq), min(cx + n, wq)
            out[:, :, 4 * cy : 4 * ey, 4 * cx : 4 * ex] = r[
                :, :, 4 * (cy - y0) : 4 * (ey - y0), 4 * (cx - x0) : 4 * (ex - x0)
            ]
        return out


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

    def forward_where(self, thumb: Tensor, floor: float) -> tuple[Tensor, Tensor]:
        """(M, R_l) with R_l = I_l wherever M stays under `floor` (see the branch's method)."""
        skips = self.encoder(thumb)
        mask = self.mask_branch(skips)
        return mask, self.retouch_branch.forward_where(skips, mask, floor)
