"""Model cards: one shape for every writer, and files written before it read the same way."""

import pytest

from abpn_cli.engine import ModelCard, default_model_path, inspect_model_file

LEGACY = [
    # the trainer and the dust trainer's `training` block (the first shipped default has one)
    ({"training": {"stage": "lrl", "steps": 5068, "samples": 121632, "minutes": 92.0}},
     ("train-dust", 5068, 121632)),
    ({"training": {"steps": 1400, "crop": 512, "init_from": "base.pt"}}, ("train", 1400, None)),
    # learn's top-level layout
    ({"kind": "learned", "steps": 30, "base_model": {"path": "b.pt"}, "exemplars": []},
     ("learned", 30, None)),
    # export's
    ({"trained_steps": 77, "metrics": {"psnr": 30.0}, "source": "last.ckpt"}, ("export", 77, None)),
    ({"format": "abpn-torchscript/1"}, ("unknown", None, None)),
]  # fmt: skip


@pytest.mark.parametrize(("meta", "expected"), LEGACY)
def test_files_from_before_the_card_describe_themselves(meta, expected):
    card = ModelCard.from_meta(meta)
    assert (card.kind, card.steps, card.samples) == expected


def test_a_card_round_trips_through_the_metadata_and_rejects_unknown_kinds():
    card = ModelCard(kind="train-dust", steps=3, samples=72, minutes=0.5, details={"val": 0.4})
    assert ModelCard.from_meta({"format": "x", **card.to_meta()}) == card
    assert card.summary == "train-dust, steps 3, 72 samples"
    with pytest.raises(ValueError, match="kind"):
        ModelCard(kind="magic")


def test_the_shipped_default_model_says_how_it_was_trained():
    card = ModelCard.from_meta(inspect_model_file(default_model_path()))
    assert card.kind == "train-dust" and card.steps and card.samples
