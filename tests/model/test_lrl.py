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


@torch.no_grad()
def test_forward_where_runs_no_lam_when_no_window_needs_one():
    lrl = make_tiny_model(seed=6).lrl
    x = _thumb(7)
    mask, _ = lrl(x)
    branch = lrl.retouch_branch
    calls = []
    hook = branch.lams[0].register_forward_hook(lambda *a: calls.append(1))
    _, where = lrl.forward_where(x, float(mask.max()) + 0.01)
    hook.remove()
    assert torch.equal(where, x) and calls == []


@torch.no_grad()
def test_a_lam_over_boxes_is_the_dense_lam_inside_them_and_zero_outside():
    model = make_tiny_model(seed=8)
    lam = model.lrl.retouch_branch.lams[3]  # the last coarse LAM: I_l/8 features, F_skip_2
    g = torch.Generator().manual_seed(9)
    x = torch.rand(1, model.config.lrb_widths[2], 12, 20, generator=g)  # half the skip's scale
    skip = torch.rand(1, model.config.encoder_widths[1], 24, 40, generator=g)
    mask = torch.rand(1, 1, 24, 40, generator=g)
    boxes = [(0, 5, 0, 7), (10, 24, 33, 40), (8, 12, 15, 21)]  # two at the border, one inside
    dense = lam(x, skip, mask)
    out = lam.forward_boxes(x, skip, mask, boxes)
    inside = torch.zeros(24, 40, dtype=torch.bool)
    for y0, y1, x0, x1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert torch.allclose(out[..., inside], dense[..., inside], atol=1e-6)
    assert torch.equal(out[..., ~inside], torch.zeros_like(out[..., ~inside]))
