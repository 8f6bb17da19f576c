from dataclasses import replace

import pytest
import torch

from abpn_cli.model import ABPN
from abpn_cli.model.abpn import count_parameters
from abpn_cli.model.lrl import ConvBlock, GatedConv
from abpn_cli.training.slim import half_widths, slim_from
from tests.conftest import TINY

DUST_LIKE = replace(TINY, gate_residual=True, detail_input=True, multiplicative=True)


def _teacher(seed: int) -> ABPN:
    """A random teacher in eval mode with live heads (the retouch head starts at zero)."""
    torch.manual_seed(seed)
    model = ABPN(DUST_LIKE)
    for head in (model.lrl.retouch_branch.head, model.lrl.mask_branch.head):
        torch.nn.init.normal_(head.weight, std=0.3)
    for mod in model.modules():
        if isinstance(mod, ConvBlock):  # non-trivial BN statistics
            mod.bn.running_mean.normal_(0.0, 0.1)
            mod.bn.running_var.uniform_(0.5, 1.5)
            mod.bn.bias.data.normal_(0.0, 0.1)
    return model.eval()


def _silence_weak_half(model: ABPN, seed: int) -> None:
    """Zero a random half of every layer's channels, so cutting them changes nothing."""
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, ConvBlock):
            n = mod.bn.weight.numel()
            dead = torch.randperm(n, generator=gen)[: n - max(4, n // 2)]
            mod.bn.weight.data[dead] = 0.0
            mod.bn.bias.data[dead] = 0.0
        elif isinstance(mod, GatedConv):
            n = mod.conv.out_channels // 2
            dead = torch.randperm(n, generator=gen)[: n - max(4, n // 2)]
            mod.conv.weight.data[dead] = 0.0  # the feature half: act(0) * gate = 0
            mod.conv.bias.data[dead] = 0.0


def _outputs(model: ABPN, thumb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model.lrl(thumb)


@pytest.mark.parametrize("seed", [0, 1])
def test_cutting_silent_channels_keeps_the_teachers_output(seed):
    teacher = _teacher(seed)
    _silence_weak_half(teacher, seed)
    student = slim_from(teacher, half_widths(DUST_LIKE)).eval()
    thumb = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(seed))
    mask_t, out_t = _outputs(teacher, thumb)
    mask_s, out_s = _outputs(student, thumb)
    assert (out_t - thumb).abs().max() > 1e-3  # the teacher really edits
    assert torch.allclose(mask_s, mask_t, atol=1e-5)
    assert torch.allclose(out_s, out_t, atol=1e-5)


def test_same_widths_copy_the_teacher_and_half_widths_quarter_the_parameters():
    teacher = _teacher(3)
    thumb = torch.rand(1, 3, 128, 128)
    copy = slim_from(teacher, DUST_LIKE).eval()
    pairs = zip(_outputs(copy, thumb), _outputs(teacher, thumb), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    half = half_widths(DUST_LIKE)
    assert half.encoder_widths == [4, 4, 8, 8, 8, 8]  # never under 4 channels
    assert half.thumbnail == DUST_LIKE.thumbnail and half.multiplicative
    big = replace(DUST_LIKE, encoder_widths=[16, 32, 64, 96, 128, 192])
    ratio = count_parameters(ABPN(half_widths(big)).lrl) / count_parameters(ABPN(big).lrl)
    assert ratio < 0.35
