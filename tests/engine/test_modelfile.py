import pickle
import zipfile

import pytest
import torch

from abpn_cli.engine import EngineError, ModelCard, inspect_model_file, load_eager, load_model
from abpn_cli.engine.modelfile import file_sha256, weights_sha256
from tests.conftest import make_tiny_model


def test_model_file_carries_config_and_metadata(tiny_model_file):
    meta = inspect_model_file(tiny_model_file)
    assert meta["config"]["thumbnail"] == 64
    assert ModelCard.from_meta(meta).details == {"note": "random test weights"}
    assert meta["weights_sha256"] == weights_sha256(make_tiny_model())
    loaded = load_model(tiny_model_file, "cpu")
    assert loaded.sha256 == file_sha256(tiny_model_file)
    assert loaded.config.thumbnail == 64


def test_saved_and_reloaded_model_gives_identical_outputs(tiny_model_file):
    eager = make_tiny_model()
    loaded = load_model(tiny_model_file, "cpu")
    image = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        a = eager(image, 2).result
        b = loaded.module(image.contiguous(memory_format=torch.channels_last), 2).result
    assert torch.allclose(a, b, atol=1e-5)


def test_load_eager_round_trips_the_weights(tiny_model_file):
    model, meta = load_eager(tiny_model_file)
    assert weights_sha256(model) == meta["weights_sha256"]


def test_missing_and_non_model_files_are_clear_errors(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        load_model(tmp_path / "nope.pt", "cpu")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello")
    with pytest.raises(EngineError, match="not an abpn model file"):
        load_model(junk, "cpu")


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch EXPLOITED",))


def test_pickle_payloads_are_refused_before_anything_runs(tiny_model_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(tiny_model_file) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps(_Exploit(), protocol=2)
            dst.writestr(info, data)
    with pytest.raises(EngineError, match="unsafe model file"):
        load_model(evil, "cpu")
    assert not (tmp_path / "EXPLOITED").exists()


def test_a_plain_torch_pickle_is_not_a_model_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": make_tiny_model().state_dict()}, path)
    with pytest.raises(EngineError):
        load_model(path, "cpu")


def test_model_files_are_readable_by_others(tiny_model_file):
    assert tiny_model_file.stat().st_mode & 0o044 == 0o044
