"""Shared fixtures: tiny ABPN models with non-trivial random weights (fast on CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from abpn_cli.model import ABPN, ABPNConfig

TINY = ABPNConfig(
    encoder_widths=[8, 8, 16, 16, 16, 16],
    mask_widths=[16, 8, 8, 8],
    lrb_widths=[16, 8, 8, 8, 8, 8],
    refine_hidden=8,
    thumbnail=64,
)


def make_tiny_model(
    seed: int = 0, mask_bias: float | None = None, upsample_only: bool = False
) -> ABPN:
    """A tiny ABPN whose zero-initialised heads are perturbed so it really edits pixels;
    `upsample_only` keeps phi2 at zero, as in the shipped dust model (Eq. 5 only upsamples)."""
    torch.manual_seed(seed)
    model = ABPN(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        if mask_bias is not None:
            model.lrl.mask_branch.head.bias.fill_(mask_bias)
        if upsample_only:
            model.refiner.phi2.weight.zero_()
            model.refiner.phi2.bias.zero_()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    from abpn_cli.engine import ModelCard, save_model_file

    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    save_model_file(
        make_tiny_model(), path, ModelCard(kind="test", details={"note": "random test weights"})
    )
    return path
