import torch

from abpn_cli.model import ABPN, ABPNConfig, count_parameters
from tests.conftest import TINY, make_tiny_model


def test_default_model_is_small_enough_for_cpu_training():
    assert count_parameters(ABPN(ABPNConfig())) <= 5_000_000


def test_untrained_model_is_the_identity():
    model = ABPN(TINY).eval()
    image = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        out = model(image, 2)
    assert torch.allclose(out.result, image, atol=1e-5)


def test_output_shapes_per_level():
    model = make_tiny_model()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 512, 256), 3)
    assert out.result.shape == (2, 3, 512, 256)
    assert out.mask.shape == (2, 1, 512 // 8 // 4, 256 // 8 // 4)  # M at I_l / 4
    assert [r.shape[-2] for r in out.results] == [512, 256, 128, 64]
    assert [b.shape[-1] for b in out.blends] == [256, 128, 64, 32]
    assert torch.equal(out.blend, out.blends[0])


def test_one_refining_module_serves_every_level():
    model = make_tiny_model()
    refiners = [m for m in model.modules() if type(m).__name__ == "RefiningModule"]
    assert len(refiners) == 1


def test_scripted_equals_eager():
    model = make_tiny_model()
    scripted = torch.jit.script(model)
    image = torch.rand(1, 3, 256, 384)
    with torch.no_grad():
        a, b = model(image, 2), scripted(image, 2)
    assert torch.equal(a.result, b.result)
    assert torch.equal(a.mask, b.mask)


def test_gradients_reach_every_part():
    model = make_tiny_model().train()
    image = torch.rand(2, 3, 256, 256)
    out = model(image, 2)
    loss = sum(((r - 0.5) ** 2).mean() for r in out.results) + out.mask.mean()
    loss.backward()
    for name in ["lrl.encoder", "lrl.mask_branch", "lrl.retouch_branch", "refiner", "blend_fn"]:
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def _gain_model(seed: int = 0) -> ABPN:
    from dataclasses import replace

    torch.manual_seed(seed)
    model = ABPN(replace(TINY, gate_residual=True, multiplicative=True))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def test_multiplicative_edit_is_a_gain_and_zero_stays_zero():
    """R_l = I_l * exp(up(M) * tanh(.)): the edit scales each pixel, so black stays black and
    the ratio R/I is the same gain the additive form would need to copy the texture for."""
    model = _gain_model()
    thumb = torch.rand(2, 3, 64, 64)
    thumb[:, :, :8, :8] = 0.0
    with torch.no_grad():
        mask, out = model.lrl(thumb)
    assert torch.equal(out[:, :, :8, :8], thumb[:, :, :8, :8])
    gain = out / thumb.clamp(min=1e-6)
    up = torch.nn.functional.interpolate(mask, size=(64, 64), mode="bilinear")
    inside = (thumb > 0.05) & (out < 1.0)
    assert (gain[inside] <= torch.exp(up.expand_as(gain))[inside] + 1e-5).all()
    assert (gain[inside] >= torch.exp(-up.expand_as(gain))[inside] - 1e-5).all()
    assert (out - thumb).abs().max() > 1e-4  # it does edit


def test_multiplicative_model_scripts_and_loads_additive_weights():
    additive = make_tiny_model()
    model = ABPN(ABPNConfig.from_dict({**additive.config.to_dict(), "multiplicative": True}))
    model.load_state_dict(additive.state_dict())  # same weights, another output form
    scripted = torch.jit.script(model.eval())
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.allclose(scripted.coarse(x)[1], model.coarse(x)[1], atol=1e-6)
    assert ABPNConfig.from_dict({}).multiplicative is False  # old model files stay additive
