"""The batch's --sensitivity when none is given: the model card's own, else the dust default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.batch.settings import DEFAULT_SENSITIVITY
from abpn_cli.engine import ModelCard, save_model_file
from tests.conftest import make_tiny_model
from tests.factories import make_photo


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """One network (mask ~0.18 everywhere: under the default gate, kept at 1.0), two cards."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name, sensitivity in (("dust", None), ("look", 1.0)):
        paths[name] = folder / f"{name}.pt"
        card = ModelCard(kind="test", sensitivity=sensitivity)
        save_model_file(make_tiny_model(seed=5, mask_bias=-1.5), paths[name], card)
    return paths


def _run(tmp_path: Path, model: Path, name: str, **kw) -> tuple[np.ndarray, dict]:
    shoot = tmp_path / "shoot"
    out, report = tmp_path / f"out-{name}", tmp_path / f"{name}.json"
    settings = BatchSettings(
        inputs=(shoot,), out=out, model=model, device="cpu", report=report, quiet=True, **kw
    )
    outcome = run_batch(settings, RecordingUI())
    assert outcome.exit_code == 0, outcome.message
    return np.asarray(Image.open(out / "a.png")), json.loads(report.read_text())


@pytest.mark.parametrize(
    ("model", "given", "applied"),
    [("dust", None, DEFAULT_SENSITIVITY), ("look", None, 1.0), ("look", 0.05, 0.05)],
)
def test_the_model_card_decides_the_sensitivity_unless_it_is_given(
    tmp_path, models, model, given, applied
):
    source = np.asarray(Image.open(make_photo(tmp_path / "shoot/a.png", size=(256, 192))))
    pixels, report = _run(tmp_path, models[model], "run", sensitivity=given)
    assert report["settings"]["sensitivity"] == applied
    if applied < 1.0:  # the mask stays under the gate: the photo comes back as it was
        assert np.array_equal(pixels, source)
    else:  # a look applies what it learned
        assert np.abs(pixels.astype(int) - source).mean() > 0.5


def test_a_card_outside_0_to_1_is_a_clear_usage_error(tmp_path):
    path = tmp_path / "odd.pt"
    save_model_file(make_tiny_model(), path, ModelCard(kind="test", sensitivity=7.0))
    make_photo(tmp_path / "shoot/a.png")
    settings = BatchSettings(inputs=(tmp_path / "shoot",), out=tmp_path / "out", model=path,
                             device="cpu", quiet=True)  # fmt: skip
    outcome = run_batch(settings, RecordingUI())
    assert outcome.exit_code == 2 and "sensitivity 7.0" in outcome.message
    assert not (tmp_path / "out" / "a.png").exists()
