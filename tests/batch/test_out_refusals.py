"""OUT that a run cannot use (held by another run, or not creatable): exit 4, nothing
processed, and every file is in the report as not processed with the reason why."""

from __future__ import annotations

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.batch.fsutil import OutLock
from abpn_cli.batch.report import NOT_DONE
from abpn_cli.exitcodes import EXIT_ENVIRONMENT
from tests.batch.conftest import outputs
from tests.factories import make_photo


def _settings(tmp_path, out, model) -> BatchSettings:
    make_photo(tmp_path / "in/a.jpg")
    return BatchSettings(inputs=(tmp_path / "in",), out=out, model=model, device="cpu")


def test_out_locked_by_another_run_is_exit_4_and_writes_nothing(tmp_path, tiny_model_file):
    out = tmp_path / "out"
    other_run = OutLock(out / ".abpn/lock")
    assert other_run.acquire()
    try:
        outcome = run_batch(_settings(tmp_path, out, tiny_model_file), RecordingUI())
    finally:
        other_run.release()

    assert outcome.exit_code == EXIT_ENVIRONMENT
    assert "another abpn run is writing into" in (outcome.message or "")
    assert [r.error for r in outcome.results] == [f"{NOT_DONE}: OUT is locked by another run"]
    assert outputs(out) == []


def test_out_that_cannot_be_created_is_exit_4(tmp_path, tiny_model_file):
    (tmp_path / "file").write_text("not a folder")
    outcome = run_batch(_settings(tmp_path, tmp_path / "file/out", tiny_model_file), RecordingUI())

    assert outcome.exit_code == EXIT_ENVIRONMENT
    assert "cannot create --out" in (outcome.message or "")
    assert [r.error for r in outcome.results] == [f"{NOT_DONE}: OUT could not be created"]
