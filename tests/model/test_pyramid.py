import torch
import torch.nn.functional as F

from abpn_cli.model.pyramid import binomial_kernel, laplacian_pyramid, pyr_down, pyr_up


def _literal_expand(x: torch.Tensor) -> torch.Tensor:
    """Reflect-pad by one, zero-insert, filter with 4x the 5x5 binomial kernel."""
    n, c, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    up = torch.zeros(n, c, 2 * h + 4, 2 * w + 4, dtype=x.dtype)
    up[:, :, ::2, ::2] = xp
    full = F.conv2d(F.pad(up, (2, 2, 2, 2)), binomial_kernel(c, x.dtype, x.device) * 4, groups=c)
    return full[:, :, 2 : 2 + 2 * h, 2 : 2 + 2 * w]


def test_polyphase_expand_equals_zero_insertion_filtering():
    x = torch.rand(2, 3, 7, 10, dtype=torch.float64)
    assert torch.allclose(pyr_up(x), _literal_expand(x), atol=1e-12)


def test_down_uses_the_binomial_kernel_and_halves():
    x = torch.rand(1, 3, 16, 12, dtype=torch.float64)
    ref = F.conv2d(
        F.pad(x, (2, 2, 2, 2), mode="reflect"), binomial_kernel(3, x.dtype, x.device), groups=3
    )[:, :, ::2, ::2]
    assert pyr_down(x).shape == (1, 3, 8, 6)
    assert torch.allclose(pyr_down(x), ref, atol=1e-12)


def test_constant_image_has_zero_high_frequencies():
    x = torch.full((1, 3, 32, 32), 0.3, dtype=torch.float64)
    gauss, high = laplacian_pyramid(x, 3)
    assert [g.shape[-1] for g in gauss] == [32, 16, 8, 4]
    for h in high:
        assert h.abs().max() < 1e-12


def test_pyramid_reconstructs_exactly():
    x = torch.rand(1, 3, 64, 48, dtype=torch.float64)
    gauss, high = laplacian_pyramid(x, 3)
    rec = gauss[-1]
    for i in range(2, -1, -1):
        rec = pyr_up(rec) + high[i]
    assert torch.allclose(rec, x, atol=1e-12)
