"""learn_models: which bases are dust models, and opening one up before a look is learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from abpn_cli.engine import ModelCard, save_model_file
from abpn_cli.training.learn_models import _thumbnail, load_base, open_for_look
from tests.conftest import make_tiny_model


@pytest.mark.parametrize(("kind", "dust"), [("train-dust", True), ("learned", False)])
def test_only_a_dust_models_card_marks_it_as_one(tmp_path: Path, kind: str, dust: bool) -> None:
    path = tmp_path / "m.pt"
    save_model_file(make_tiny_model(), path, ModelCard(kind=kind))
    assert load_base(path).dust is dust


def test_opening_a_dust_model_centres_its_mask_and_makes_its_edit_the_identity() -> None:
    rng = np.random.default_rng(3)
    befores = [rng.random((200, 300, 3), dtype=np.float32) for _ in range(2)]
    base = make_tiny_model(seed=1, mask_bias=-3.0)  # "no dust here" almost everywhere
    opened = open_for_look(base, befores, 128)
    with torch.no_grad():
        thumbs = [_thumbnail(b, 128) for b in befores]
        before_masks = torch.cat([base.lrl(t)[0].flatten() for t in thumbs])
        outputs = [opened.lrl(t) for t in thumbs]
    masks = torch.cat([mask.flatten() for mask, _ in outputs])
    assert before_masks.median() < 0.1
    assert abs(masks.median().item() - 0.5) < 0.01
    for thumb, (_, retouched) in zip(thumbs, outputs, strict=True):
        assert torch.equal(retouched, thumb.clamp(0.0, 1.0))  # R_l = I_l: nothing edited yet
    assert base.lrl.mask_branch.head.bias.item() == -3.0  # the base is left as it was
