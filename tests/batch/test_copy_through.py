"""A frame the model leaves alone is written as its source file's own bytes (no re-encode)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from abpn_cli.batch.fsutil import atomic_copy
from abpn_cli.cli import app
from abpn_cli.engine import ModelCard, save_model_file
from tests.batch.conftest import temp_files
from tests.conftest import make_tiny_model
from tests.factories import make_photo


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """'quiet': its mask is ~0 everywhere, so every tile is copied; 'busy': edits all over."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name, bias in (("quiet", -30.0), ("busy", 30.0)):
        paths[name] = folder / f"{name}.pt"
        save_model_file(make_tiny_model(mask_bias=bias), paths[name], ModelCard(kind="test"))
    return paths


def _run(shoot: Path, out: Path, model: Path, *extra: str) -> dict:
    report = out.parent / f"{out.name}.json"
    argv = ["retouch", str(shoot), "--out", str(out), "--model", str(model), "--device", "cpu"]
    result = CliRunner().invoke(app, [*argv, "--report", str(report), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text())


def _write_16bit_tiff(path: Path) -> Path:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 65536, (26, 33, 3), dtype=np.uint16)
    pixels = np.repeat(np.repeat(small, 8, 0), 8, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, pixels, photometric="rgb", compression="zlib")
    return path


@pytest.mark.parametrize("name", ["a.jpg", "a.png", "a.webp", "a16.tif"])
def test_a_clean_frame_is_copied_byte_for_byte(tmp_path, models, name):
    shoot = tmp_path / "shoot"
    src = _write_16bit_tiff(shoot / name) if name.endswith(".tif") else make_photo(shoot / name)
    report = _run(shoot, tmp_path / "out", models["quiet"])
    (entry,) = report["files"]
    assert entry["status"] == "ok" and entry["tiles"]["untouched"] == entry["tiles"]["total"]
    assert entry["source_copied"] is True
    assert (tmp_path / "out" / name).read_bytes() == src.read_bytes()
    assert temp_files(tmp_path / "out") == []
    again = _run(shoot, tmp_path / "out", models["quiet"])  # the journal knows the copy
    assert again["files"][0]["status"] == "skipped"


@pytest.mark.parametrize(
    ("model", "extra", "name"),
    [
        ("quiet", ("--jpeg-quality", "80"), "a.jpg"),  # asked for: honoured
        ("quiet", ("--format", "png"), "a.png"),  # another container
        ("busy", (), "a.jpg"),  # something was edited
    ],
)
def test_encoded_when_asked_converted_or_edited(tmp_path, models, model, extra, name):
    shoot = tmp_path / "shoot"
    src = make_photo(shoot / "a.jpg")
    report = _run(shoot, tmp_path / "out", models[model], *extra)
    (entry,) = report["files"]
    assert entry["status"] == "ok" and entry["source_copied"] is False
    written = tmp_path / "out" / name
    assert written.read_bytes() != src.read_bytes()
    with Image.open(written) as im:
        assert im.size == (260, 200)


def test_atomic_copy_gives_up_if_the_source_changed(tmp_path):
    src, dest = tmp_path / "src.jpg", tmp_path / "out" / "dest.jpg"
    src.write_bytes(b"abc")
    assert atomic_copy(src, dest, lambda: False) is None
    assert not dest.exists() and temp_files(tmp_path) == []
    written = atomic_copy(src, dest, lambda: True)
    assert written is not None and written.size == 3 and dest.read_bytes() == b"abc"
