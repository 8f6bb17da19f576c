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
