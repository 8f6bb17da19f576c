"""`abpn doctor`: every check with a real verdict, and the model line read from its card."""

from typer.testing import CliRunner

from abpn_cli.cli import app
from abpn_cli.doctor import describe_model
from abpn_cli.engine import load_model


def test_doctor_reports_the_model_it_was_given(tiny_model_file):
    result = CliRunner().invoke(
        app, ["doctor", "--model", str(tiny_model_file)], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 0, result.output
    assert "imagecodecs" in result.output and "tiny.pt" in result.output


def test_doctor_fails_with_exit_4_when_the_model_is_missing(tmp_path):
    result = CliRunner().invoke(app, ["doctor", "--model", str(tmp_path / "none.pt")])
    assert result.exit_code == 4


def test_model_description_reads_steps_from_the_training_metadata(tmp_path):
    from abpn_cli.engine import ModelCard, save_model_file
    from tests.conftest import make_tiny_model

    path = tmp_path / "m.pt"
    save_model_file(make_tiny_model(), path, ModelCard(kind="train", steps=1234))
    text = describe_model(load_model(path, "cpu"))
    assert "steps 1234" in text and "thumbnail 64" in text


def test_a_missing_optional_format_library_is_named_but_not_fatal(tiny_model_file, monkeypatch):
    import importlib

    from abpn_cli import doctor

    real = importlib.import_module

    def no_rawpy(name, *args):
        if name == "rawpy":
            raise ImportError("No module named 'rawpy'")
        return real(name, *args)

    monkeypatch.setattr(doctor.importlib, "import_module", no_rawpy)
    checks = {c.name: c for c in doctor.run_checks(tiny_model_file, "cpu")}
    raw = checks["rawpy (camera RAW)"]
    assert not raw.ok and not raw.required and raw.detail == "missing: camera RAW unavailable"
    assert checks["pillow_heif (HEIC/HEIF)"].ok and doctor.exit_code(list(checks.values())) == 0
