"""Each loss term behaves as the recipe needs: zero when it should be, finite, differentiable."""

from __future__ import annotations

import torch

from abpn_cli.model import ABPN
from abpn_cli.training.discriminator import PatchDiscriminator
from abpn_cli.training.losses import (
    MASK_THRESHOLD,
    LossWeights,
    blend_tv,
    center_window,
    dice_loss,
    discriminator_loss,
    generator_losses,
    mask_target,
    multiscale_mse,
    structural_loss,
    target_pyramid,
    total_variation,
)
from tests.conftest import TINY


def _smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic").clamp(0, 1)


def test_mse_is_zero_when_output_equals_target() -> None:
    img = _smooth_images(2, 64)
    pyr = target_pyramid(img, 2)
    assert [p.shape[-1] for p in pyr] == [64, 32, 16]
    assert float(multiscale_mse(pyr, pyr)) == 0.0
    shifted = [p + 0.1 for p in pyr]
    assert abs(float(multiscale_mse(shifted, pyr)) - 3 * 0.01) < 1e-6


def test_structural_loss_zero_for_identical_and_positive_otherwise() -> None:
    img = _smooth_images(2, 64)
    assert abs(float(structural_loss(img, img))) < 1e-5
    noisy = (img + 0.2 * torch.rand_like(img)).clamp(0, 1)
    assert float(structural_loss(noisy, img)) > 0.01


def test_dice_of_perfect_mask_is_about_zero_and_of_inverted_mask_about_one() -> None:
    gt = torch.zeros(2, 1, 16, 16)
    gt[:, :, 4:12, 4:12] = 1
    assert float(dice_loss(gt, gt)) < 0.01
    assert float(dice_loss(1 - gt, gt)) > 0.95
    # no edit and an empty prediction: nothing to penalise
    empty = torch.zeros(2, 1, 16, 16)
    assert float(dice_loss(empty, empty)) == 0.0


def test_mask_target_marks_edited_cells_at_mask_resolution() -> None:
    image = _smooth_images(1, 64)
    target = image.clone()
    target[:, :, 10:12, 40:42] += 5 * MASK_THRESHOLD  # a tiny edit must survive pooling
    target[:, :, 30:40, 0:10] += 0.5 * MASK_THRESHOLD  # below the threshold: not an edit
    m = mask_target(image, target, (16, 16))
    assert m.shape == (1, 1, 16, 16)
    assert m[0, 0, 2, 10] == 1.0
    assert float(m.sum()) == 1.0


def test_tv_of_constant_blend_is_zero() -> None:
    flat = torch.full((2, 3, 32, 32), 0.5)
    assert float(total_variation(flat)) == 0.0
    assert float(blend_tv([flat, flat[:, :, :16, :16]])) == 0.0
    ramp = torch.linspace(0, 1, 32).expand(2, 3, 32, 32)
    assert float(total_variation(ramp)) > 0.0


def test_generator_losses_finite_and_differentiable_with_and_without_gan() -> None:
    torch.manual_seed(0)
    model = ABPN(TINY)
    image = _smooth_images(2, 128, seed=1)
    target = image.clone()
    target[:, :, 32:64, 32:64] = (target[:, :, 32:64, 32:64] * 0.8).clamp(0, 1)
    out = model(image, 1)
    disc = PatchDiscriminator()
    terms = generator_losses(out, image, target, LossWeights(), disc)
    assert set(terms) == {"mse", "perc", "dice", "tv", "adv", "total"}
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    assert all(p.grad is not None for p in model.lrl.parameters() if p.requires_grad)
    assert float(discriminator_loss(disc, image, out.result, target).detach()) > 0

    no_gan = generator_losses(model(image, 1), image, target, LossWeights(adv=0.0), disc)
    assert "adv" not in no_gan


def test_identity_network_on_identity_pair_scores_zero_mse_and_tv() -> None:
    """The untrained ABPN is the identity (zero-initialised heads), so on a pair with no edit
    the pixel and smoothness terms vanish: what training starts from."""
    model = ABPN(TINY).eval()
    image = _smooth_images(2, 128, seed=2) * 0.8 + 0.1  # keep away from the R-ABM poles
    with torch.no_grad():
        out = model(image, 1)
    terms = generator_losses(out, image, image, LossWeights(adv=0.0))
    assert float(terms["mse"]) < 1e-8
    assert float(terms["perc"]) < 1e-4
    assert float(terms["tv"]) < 1e-5  # soft-light identity blend is the constant 0.5


def test_discriminator_sees_the_central_window_only() -> None:
    x = torch.arange(512.0).expand(1, 3, 512, 512)
    w = center_window(x, 256)
    assert w.shape == (1, 3, 256, 256) and float(w[0, 0, 0, 0]) == 128.0
    small = torch.rand(1, 3, 128, 128)
    assert center_window(small, 256) is small
