"""`abpn watch`: files copied in slowly by a real writer process are done once, never half."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch.conftest import outputs
from tests.factories import make_photo

WRITER = """
import sys, time
src, dest, chunks = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
step = len(data) // chunks + 1
with open(dest, "wb") as f:
    for i in range(0, len(data), step):
        f.write(data[i:i + step]); f.flush(); time.sleep(0.4)
"""


@pytest.mark.parametrize(
    ("mode", "settle", "how"),
    [
        # events: a settle far longer than the test proves the close-after-write event is used
        ([], "60", "watching by file-system events"),
        (["--poll"], "1.0", "watching by polling (--poll)"),
    ],
)
def test_slowly_copied_files_are_retouched_exactly_once_and_never_half_written(
    tmp_path, tiny_model_file, mode, settle, how
):
    hot, out = tmp_path / "hot", tmp_path / "out"
    hot.mkdir()
    sources = [make_photo(tmp_path / f"src{i}.png", size=(300, 220), seed=i) for i in range(2)]
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "abpn_cli",
            "watch",
            str(hot),
            "--out",
            str(out),
            "--model",
            str(tiny_model_file),
            "--device",
            "cpu",
            "--interval",
            "0.2",
            "--settle",
            settle,
            *mode,
            "--max-idle",
            "6",
            "--report",
            str(tmp_path / "r.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        head = [watcher.stdout.readline() for _ in range(2)]  # started, then how it watches
        assert any(how in line for line in head), head  # files closed before it are settled
        for i, src in enumerate(sources):  # chunked writes, 0.4 s apart: ~2 s per file
            subprocess.run(
                [sys.executable, "-c", WRITER, str(src), str(hot / f"shot{i}.png"), "5"],
                check=True,
                timeout=60,
            )
            time.sleep(0.5)
        log, _ = watcher.communicate(timeout=120)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, log
    assert outputs(out) == ["shot0.png", "shot1.png"]
    journal = (out / ".abpn" / "journal.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["output"] for line in journal) == ["shot0.png", "shot1.png"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["failed"] == 0  # a half-written PNG would have failed to decode
    assert "waiting for 1 file(s) to finish arriving" in log
    assert all(Path(f["input"]).name.startswith("shot") for f in report["files"])


def test_ctrl_c_stops_watching_with_exit_130(tmp_path, tiny_model_file):
    import signal

    (tmp_path / "hot").mkdir()
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "abpn_cli",
            "watch",
            str(tmp_path / "hot"),
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(tiny_model_file),
            "--interval",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    head = [watcher.stdout.readline() for _ in range(2)]  # it is watching now
    assert "watching by" in head[-1], head
    time.sleep(0.5)
    watcher.send_signal(signal.SIGINT)
    log, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 130, log
    assert "stopped watching" in log


def test_stopping_the_observer_logs_nothing(tmp_path, caplog):
    """Every round lists the hot folder, an inotify event of its own; one still in flight
    when --max-idle stopped the observer made watchdog log "InotifyEmitter.queue_events()
    called when the thread is inactive" (about one stop in four at this interval)."""
    import logging

    from abpn_cli.batch import BatchSettings
    from abpn_cli.batch.watch import WatchSettings, run_watch

    hot = tmp_path / "hot"
    hot.mkdir()
    (hot / "notes.txt").write_text("not a photo")  # listed every round, never taken
    settings = WatchSettings(
        batch=BatchSettings.given(inputs=(hot,), out=tmp_path / "out"),
        interval=0.01,
        max_idle=0.05,
    )
    said: list[str] = []
    with caplog.at_level(logging.WARNING, logger="watchdog"):
        for _ in range(30):
            assert run_watch(settings, lambda: None, said.append) == 0
    if "watching by file-system events, polling as a fallback" not in said:
        pytest.skip(f"no file-system events here: {said[0]}")
    assert [r.getMessage() for r in caplog.records] == []


def test_max_idle_waits_for_a_file_still_arriving(tmp_path, tiny_model_file):
    """--max-idle counts from the last activity: a file that is still settling when the idle
    time runs out is waited for and retouched, not left behind."""
    from abpn_cli.batch import BatchSettings, RecordingUI
    from abpn_cli.batch.watch import WatchSettings, run_watch

    hot, out = tmp_path / "hot", tmp_path / "out"
    make_photo(hot / "late.png")  # just written: polling needs it unchanged for `settle`
    batch = BatchSettings.given(inputs=(hot,), out=out, model=tiny_model_file, device="cpu")
    settings = WatchSettings(batch=batch, interval=0.05, settle=1.0, max_idle=0.2, poll=True)
    said: list[str] = []
    assert run_watch(settings, RecordingUI, said.append) == 0
    assert outputs(out) == ["late.png"]
    assert "waiting for 1 file(s) to finish arriving" in said
    assert said[-1] == "stopped watching after 0.2 s idle: 1 retouched, 0 failed in this session"


def test_the_last_words_count_what_the_session_retouched_and_failed(tmp_path, tiny_model_file):
    from abpn_cli.batch import BatchSettings, RecordingUI
    from abpn_cli.batch.watch import WatchSettings, run_watch

    hot, out = tmp_path / "hot", tmp_path / "out"
    make_photo(hot / "a.png")
    (hot / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    batch = BatchSettings.given(inputs=(hot,), out=out, model=tiny_model_file, device="cpu")
    settings = WatchSettings(batch=batch, interval=0.05, settle=0.0, max_idle=0.3, poll=True)
    said: list[str] = []
    assert run_watch(settings, RecordingUI, said.append) == 1  # a file failed
    assert said[-1].endswith(": 1 retouched, 1 failed in this session")


def test_an_out_inside_the_hot_folder_is_refused_at_once(tmp_path, tiny_model_file):
    from typer.testing import CliRunner

    from abpn_cli.cli import app

    hot = tmp_path / "hot"
    make_photo(hot / "a.png")
    argv = ["watch", str(hot), "--out", str(hot / "out"), "--model", str(tiny_model_file)]
    result = CliRunner().invoke(app, [*argv, "--max-idle", "30"], catch_exceptions=False)
    assert result.exit_code == 2 and "inside the input folder" in result.output, result.output
    assert "choose an --out outside the hot folder" in " ".join(result.output.split())
    assert "--allow-out-inside-input" not in result.output  # watch has no such option
    assert sorted(p.name for p in hot.iterdir()) == ["a.png"]


def test_a_round_that_cannot_run_stops_the_watch_with_its_reason(tmp_path):
    """A model file gone missing is not fixed by waiting: exit 4 with the reason, not a
    watch that sits idle and says nothing."""
    from abpn_cli.batch import BatchSettings, RecordingUI
    from abpn_cli.batch.watch import WatchSettings, run_watch

    hot, out = tmp_path / "hot", tmp_path / "out"
    make_photo(hot / "a.png")
    batch = BatchSettings.given(inputs=(hot,), out=out, model=tmp_path / "gone.pt", device="cpu")
    settings = WatchSettings(batch=batch, interval=0.05, settle=0.0, max_idle=30, poll=True)
    said: list[str] = []
    assert run_watch(settings, RecordingUI, said.append) == 4
    assert any(line.startswith("error: ") and "gone.pt" in line for line in said), said
