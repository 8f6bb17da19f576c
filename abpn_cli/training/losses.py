"""Training losses (ABPN Sec. 4.4): L = 1 L_mse + 0.1 L_perc + 0.1 L_adv + 1 L_dice + 0.1 L_tv.

Deviation from the paper, stated once here and in the model card: L_perc is a VGG perceptual
loss in the paper, but no pretrained VGG/LPIPS weights can be obtained offline on these
machines (no torchvision, no hub). It is replaced by a structural loss, 1 - SSIM(R_l, R_gt_l),
which is differentiable, weight-free and, like the VGG term, rewards local structure rather
than per-pixel agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from abpn_cli.model import ABPNOutput, pyr_down
from abpn_cli.training.metrics import ssim_torch

# Decision: a thumbnail pixel counts as "edited" when any channel of |I_l - R_gt_l| exceeds
# 0.01 (~2.5/255). Above 8-bit rounding and JPEG noise of the pair, below any visible edit.
MASK_THRESHOLD = 0.01
DICE_SMOOTH = 1.0  # keeps dice ~0 (not 1) for crops with no edit and a predicted empty mask
# Decision: the PatchGAN scores only the central 256x256 window of R_0. Its patches are local
# (46 px receptive field) and training crops are random, so a window is an unbiased sample of
# the same per-patch loss, at 1/4 of the discriminator's cost on 512 crops.
DISC_WINDOW = 256


@dataclass(frozen=True)
class LossWeights:
    """Per-term weights; the defaults are the paper's. adv = 0 switches the GAN off."""

    mse: float = 1.0
    perc: float = 0.1
    adv: float = 0.1
    dice: float = 1.0
    tv: float = 0.1


def target_pyramid(target: Tensor, levels: int) -> list[Tensor]:
    """R_gt_0..R_gt_l with the same binomial pyr_down the model uses for I_i."""
    pyr = [target]
    for _ in range(levels):
        pyr.append(pyr_down(pyr[-1]))
    return pyr


def multiscale_mse(results: list[Tensor], targets: list[Tensor]) -> Tensor:
    """L_mse = sum_i ||R_gt_i - R_i||^2 (mean over pixels per level, summed over levels)."""
    return torch.stack([F.mse_loss(r, t) for r, t in zip(results, targets, strict=True)]).sum()


def structural_loss(result_l: Tensor, target_l: Tensor) -> Tensor:
    """Offline stand-in for the VGG perceptual loss: 1 - mean SSIM on the thumbnail R_l."""
    return 1.0 - ssim_torch(result_l, target_l)


def mask_target(image_l: Tensor, target_l: Tensor, size: tuple[int, int]) -> Tensor:
    """M_gt: threshold |I_l - R_gt_l| at I_l resolution, then max-pool to M's size.

    Max-pooling a binary map marks a mask cell as edited if any thumbnail pixel under it is,
    so the mask covers every edit (a thin scratch is not averaged away at I_l/4).
    """
    changed = ((image_l - target_l).abs().amax(dim=1, keepdim=True) > MASK_THRESHOLD).to(
        image_l.dtype
    )
    return F.adaptive_max_pool2d(changed, size)


def dice_loss(pred: Tensor, gt: Tensor, smooth: float = DICE_SMOOTH) -> Tensor:
    """Soft dice 1 - (2|P.G| + s) / (|P| + |G| + s), per sample then averaged."""
    p = pred.flatten(1)
    g = gt.flatten(1)
    inter = (p * g).sum(1)
    return (1.0 - (2.0 * inter + smooth) / (p.sum(1) + g.sum(1) + smooth)).mean()


def total_variation(blend: Tensor) -> Tensor:
    """Mean *squared* difference between vertical and horizontal neighbours.

    Decision, measured: the paper gives only "TV of every B_i" with weight 0.1. The L1 form
    (mean |difference|) at 0.1 stopped the network from editing at all: its cost grows with the
    edit's amplitude a while the MSE gain grows with a^2, so faint blemishes are never worth
    removing. Tiny config, 128 crops, l = 1, batch 8, lr 2e-3, val PSNR gain over the input after
    200 steps: L1 @ 0.1 +0.06 dB (300 steps), L1 @ 0.01 +1.33 dB, L2 @ 0.1 +1.85 dB, no TV
    +2.12 dB. The squared form, as in the common PyTorch TVLoss, keeps the paper's weight and
    still penalises sharp blend transitions, which is what keeps B smooth under upsampling.
    """
    dh = (blend[:, :, 1:, :] - blend[:, :, :-1, :]).square().mean()
    dw = (blend[:, :, :, 1:] - blend[:, :, :, :-1]).square().mean()
    return dh + dw


def blend_tv(blends: list[Tensor]) -> Tensor:
    """L_tv over every blend layer B_0..B_l: keeps blend layers smooth so they upsample well."""
    return torch.stack([total_variation(b) for b in blends]).sum()


def center_window(x: Tensor, size: int | None) -> Tensor:
    """The central size x size window of a crop (the whole crop if it is not larger)."""
    h, w = x.shape[-2:]
    if size is None or (h <= size and w <= size):
        return x
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[:, :, top : top + min(size, h), left : left + min(size, w)]


def lsgan_generator_loss(fake_scores: Tensor) -> Tensor:
    """Least-squares GAN, generator side: push D(I, R_0) towards the 'real' label 1."""
    return 0.5 * ((fake_scores - 1.0) ** 2).mean()


def lsgan_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Least-squares GAN, discriminator side: real -> 1, fake -> 0."""
    return 0.5 * (((real_scores - 1.0) ** 2).mean() + (fake_scores**2).mean())


def generator_losses(
    out: ABPNOutput,
    image: Tensor,
    target: Tensor,
    weights: LossWeights,
    discriminator: nn.Module | None = None,
    disc_window: int | None = DISC_WINDOW,
) -> dict[str, Tensor]:
    """All generator terms for one batch plus their weighted `total`.

    `image` and `target` are the full crops (I_0, R_gt_0); the level count is taken from
    `out.results`. The adversarial term is computed only when a discriminator is given and
    its weight is non-zero, so `adv = 0` costs nothing.
    """
    levels = len(out.results) - 1
    targets = target_pyramid(target, levels)
    image_l = image
    for _ in range(levels):
        image_l = pyr_down(image_l)
    terms: dict[str, Tensor] = {
        "mse": multiscale_mse(out.results, targets),
        "perc": structural_loss(out.results[levels], targets[levels]),
        "dice": dice_loss(out.mask, mask_target(image_l, targets[levels], out.mask.shape[-2:])),
        "tv": blend_tv(out.blends),
    }
    if discriminator is not None and weights.adv > 0:
        win_i, win_r = center_window(image, disc_window), center_window(out.result, disc_window)
        terms["adv"] = lsgan_generator_loss(discriminator(win_i, win_r))
    total = torch.zeros((), dtype=image.dtype, device=image.device)
    for name, value in terms.items():
        total = total + getattr(weights, name) * value
    terms["total"] = total
    return terms


def discriminator_loss(
    discriminator: nn.Module,
    image: Tensor,
    result: Tensor,
    target: Tensor,
    disc_window: int | None = DISC_WINDOW,
) -> Tensor:
    """D step: the retouch R_0 is detached so only D's weights move."""
    image, result, target = (center_window(t, disc_window) for t in (image, result, target))
    real = discriminator(image, target)
    fake = discriminator(image, result.detach())
    return lsgan_discriminator_loss(real, fake)
