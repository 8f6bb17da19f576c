import pytest
import torch
import torch.nn.functional as F

from abpn_cli.model.lrl import WINDOW
from tests.conftest import make_tiny_model


def _thumb(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 128, 192, generator=g)  # several WINDOW-px windows each way


@torch.no_grad()
def test_forward_where_with_floor_zero_is_the_dense_forward():
    lrl = make_tiny_model(seed=1).lrl
    x = _thumb()
    mask, dense = lrl(x)
    mask_w, where = lrl.forward_where(x, 0.0)
    assert torch.equal(mask, mask_w)
    assert torch.allclose(dense, where, atol=1e-5)  # every window, halo wide enough


@torch.no_grad()
def test_forward_where_is_exact_where_the_mask_reaches_the_floor_and_identity_elsewhere():
    lrl = make_tiny_model(seed=2).lrl
    x = _thumb(3)
    mask, dense = lrl(x)
    floor = float(mask.quantile(0.995))  # a few windows only
    _, where = lrl.forward_where(x, floor)
    near = F.max_pool2d((mask >= floor).float(), 3, stride=1, padding=1)
    near = F.interpolate(near, scale_factor=4.0, mode="nearest").bool().expand_as(x)
    assert near.any() and not near.all()
    assert torch.allclose(where[near], dense[near], atol=1e-5)
    far = F.max_pool2d(near[:, :1].float(), WINDOW, stride=WINDOW) == 0  # untouched windows
    far = F.interpolate(far.float(), scale_factor=float(WINDOW)).bool().expand_as(x)
    assert far.any()
    assert torch.equal(where[far], x[far])


@pytest.mark.parametrize("method", ["coarse", "coarse_where"])
def test_the_coarse_methods_script(method):
    scripted = torch.jit.script(make_tiny_model(seed=4))
    x = _thumb(5)
    args = (x,) if method == "coarse" else (x, 0.0)
    mask, blend = getattr(scripted, method)(*args)
    assert mask.shape == (1, 1, 32, 48) and blend.shape == x.shape
