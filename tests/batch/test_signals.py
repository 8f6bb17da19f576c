"""Kill -9, Ctrl-C and SIGTERM against a real `abpn retouch` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tests.batch.conftest import outputs, temp_files
from tests.factories import make_photo

REPO = Path(__file__).resolve().parents[2]
N_FILES = 12


def _env(delay: float) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, ABPN_TEST_DELAY=str(delay), PYTHONPATH=path)
    env.pop("COLUMNS", None)
    return env


def _start(args: list[str], delay: float) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO / "tests/batch/slow_cli.py"), "retouch", *args]
    return subprocess.Popen(
        cmd, env=_env(delay), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"abpn exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the batch to make progress")
        time.sleep(0.01)


def _shoot(tmp_path: Path) -> Path:
    for i in range(N_FILES):
        make_photo(tmp_path / "in" / f"sub{i % 3}" / f"p{i:02d}.png", (240, 200), seed=i)
    return tmp_path / "in"


def _decodes(path: Path) -> None:
    with Image.open(path) as im:
        im.load()


def _journal_runs(out: Path) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for line in (out / ".abpn/journal.jsonl").read_bytes().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        runs.setdefault(rec["run"], []).append(rec["output"])
    return runs


def test_kill_9_halfway_then_rerun_finishes_every_file_exactly_once(tmp_path, tiny_model_file):
    src, out = _shoot(tmp_path), tmp_path / "out"
    args = [str(src), "--out", str(out), "--model", str(tiny_model_file), "--device", "cpu"]
    proc = _start(args, delay=0.15)
    try:  # kill while at least 3 outputs are final and a write is half done
        _wait_for(proc, lambda: len(outputs(out)) >= 3 and temp_files(out))
    finally:
        proc.kill()
        proc.wait()
    done_before = outputs(out)
    assert 3 <= len(done_before) < N_FILES
    for name in done_before:  # nothing under a final name is ever partial
        _decodes(out / name)

    report = tmp_path / "r.json"
    rerun = subprocess.run(
        [sys.executable, "-m", "abpn_cli", "retouch", *args, "--report", str(report)],
        env=_env(0),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert len(outputs(out)) == N_FILES and temp_files(out) == []
    for name in outputs(out):
        _decodes(out / name)
    first, second = _journal_runs(out).values()
    assert not set(first) & set(second)
    assert Counter(first + second) == Counter(r.replace("\\", "/") for r in outputs(out))
    statuses = Counter(f["status"] for f in json.loads(report.read_text())["files"])
    assert statuses == {"skipped": len(first), "ok": len(second)}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_with_report_and_no_temp_files(tmp_path, tiny_model_file, sig):
    src, out, report = _shoot(tmp_path), tmp_path / "out", tmp_path / "r.json"
    args = [str(src), "--out", str(out), "--model", str(tiny_model_file), "--device", "cpu"]
    proc = _start([*args, "--report", str(report)], delay=0.15)
    _wait_for(proc, lambda: len(outputs(out)) >= 2)
    proc.send_signal(sig)
    try:
        _stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert temp_files(out) == []
    data = json.loads(report.read_text())
    assert data["summary"]["interrupted"] is True
    files = data["files"]
    assert len(files) == N_FILES
    ok = [f for f in files if f["status"] == "ok"]
    rest = [f for f in files if f["status"] != "ok"]
    assert 2 <= len(ok) < N_FILES
    assert all(f["status"] == "skipped" and "interrupted" in f["error"] for f in rest)
    assert sorted(Path(f["output"]).name for f in ok) == sorted(Path(n).name for n in outputs(out))
    for name in outputs(out):
        _decodes(out / name)
