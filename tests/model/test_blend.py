import torch

from abpn_cli.model import ABPN, BLEND_MAX, BLEND_MIN, AdaptiveBlend
from tests.conftest import TINY


def test_half_blend_is_identity_at_init():
    abm = AdaptiveBlend()
    image = torch.rand(2, 3, 17, 19)
    assert torch.allclose(abm(image, torch.full_like(image, 0.5)), image, atol=1e-6)


def test_init_is_pegtop_soft_light():
    abm = AdaptiveBlend()
    i, b = torch.rand(1000), torch.rand(1000)
    assert torch.allclose(abm(i, b), (1 - 2 * b) * i**2 + 2 * b * i, atol=1e-6)


def test_reverse_then_forward_recovers_the_result():
    abm = AdaptiveBlend()
    image = torch.rand(4, 3, 32, 32) * 0.9 + 0.05  # away from the guarded points 0 and 1
    target = (image + 0.1 * torch.randn_like(image)).clamp(image**2, 2 * image - image**2)
    blend = abm.reverse(image, target)
    assert torch.allclose(abm(image, blend), target, atol=1e-4)


def test_reverse_is_guarded_at_zero_and_one():
    abm = AdaptiveBlend()
    image = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5])
    result = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5])
    blend = abm.reverse(image, result)
    assert torch.isfinite(blend).all()
    assert blend.min() >= BLEND_MIN and blend.max() <= BLEND_MAX


def test_forward_pass_has_no_nan_on_black_and_white_inputs():
    model = ABPN(TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        image = torch.zeros(1, 3, 256, 256)
        image[:, :, :, 128:] = 1.0
        out = model(image, 2)
    tensors = [out.result, out.mask, out.blend, *out.results, *out.blends]
    assert all(torch.isfinite(t).all() for t in tensors)
