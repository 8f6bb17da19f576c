"""`--cluster ray` on a real local Ray cluster (2 CPUs, started by the test): a worker is
killed mid-batch, and the batch contract (bytes, exactly once, report, exit code, resume)
must hold as in a local run. Without Ray, `--cluster ray` is a one-line exit 4."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.batch.cluster import WORKER_LOST, ClusterSettings, RayDriver
from abpn_cli.batch.report import FileResult
from abpn_cli.exitcodes import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tests.batch.conftest import outputs, temp_files, tree_hashes
from tests.factories import make_photo

# one xdist worker runs the whole module (pyproject: --dist loadgroup): with the tests split,
# two 2-CPU clusters ran on 2 cores and workers were not placed within the start timeout
pytestmark = pytest.mark.xdist_group("ray")
REPO = Path(__file__).resolve().parents[2]
N_FILES = 8
TEST_SECONDS = 150  # ~15 s each here, on 2 busy cores


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the module: 2 CPUs, no dashboard, no auth token."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # address="local": a cluster of its own, never one another test process started
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="warning",
    )
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def time_bound():
    """No test here may hang CI: each is cut off (as a failure) after TEST_SECONDS."""

    def expire(_signum, _frame):
        raise TimeoutError(f"cluster test ran over {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class KillingUI(RecordingUI):
    """Kills (SIGKILL) the worker of the first finished file: its next file is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.killed: str | None = None

    def finished(self, result: FileResult, source: str) -> None:
        super().finished(result, source)
        if self.killed is None and result.worker is not None:
            self.killed = result.worker
            os.kill(int(result.worker.rsplit(":", 1)[1]), signal.SIGKILL)


def _shoot(root: Path) -> Path:
    for i in range(N_FILES):
        make_photo(root / "in" / f"card{i % 2}" / f"p{i:02d}.png", (640, 480), seed=i)
    return root / "in"


def _settings(src: Path, out: Path, model: Path, report: Path | None = None) -> BatchSettings:
    return BatchSettings(inputs=(src,), out=out, model=model, device="cpu", report=report)


def _journal_outputs(out: Path) -> Counter:
    lines = (out / ".abpn/journal.jsonl").read_bytes().splitlines()
    return Counter(json.loads(line)["output"] for line in lines if line.strip())


def _without_state(out: Path) -> dict[str, str]:
    return {k: v for k, v in tree_hashes(out).items() if not k.startswith(".abpn")}


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """The engine's CPU result depends on torch's thread count (by 1 LSB in a handful of
    pixels), so a local run is compared at the thread count of a 1-CPU worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _driver(retries: int) -> RayDriver:
    cluster = ClusterSettings(workers=2, inflight=2, file_retries=retries, start_timeout=60)
    return RayDriver(cluster)


def test_killed_worker_costs_a_retry_and_the_batch_matches_a_local_run(
    ray_cluster, tmp_path, tiny_model_file
):
    src = _shoot(tmp_path)
    with _torch_threads(1):  # as many as each worker has (1 CPU): see _torch_threads
        local = run_batch(_settings(src, tmp_path / "local", tiny_model_file), RecordingUI())
    assert local.exit_code == EXIT_OK

    out, report = tmp_path / "out", tmp_path / "report.json"
    ui = KillingUI()
    outcome = run_batch(_settings(src, out, tiny_model_file, report), ui, driver=_driver(2))

    assert ui.killed is not None
    assert any(WORKER_LOST in line and "sending it again" in line for line in ui.lines)
    assert outcome.exit_code == EXIT_OK, [r.error for r in outcome.results if r.status != "ok"]
    data = json.loads(report.read_text())
    assert data["summary"]["ok"] == N_FILES and data["summary"]["failed"] == 0
    assert sorted(f["input"] for f in data["files"]) == sorted(str(p) for p in src.rglob("*.png"))
    assert all(f["status"] == "ok" and f["worker"].startswith("w") for f in data["files"])
    assert len({f["worker"] for f in data["files"]}) >= 2
    assert _journal_outputs(out) == Counter({o: 1 for o in outputs(out)})  # each exactly once
    assert len(outputs(out)) == N_FILES and not temp_files(out)
    assert _without_state(out) == _without_state(tmp_path / "local")  # byte-identical

    before = {p: (out / p).stat().st_mtime_ns for p in outputs(out)}
    again = run_batch(
        _settings(src, out, tiny_model_file, report), RecordingUI(), driver=_driver(2)
    )
    assert again.exit_code == EXIT_OK
    assert [r.status for r in again.results] == ["skipped"] * N_FILES
    assert all(r.error is None for r in again.results)  # skipped because done
    assert {p: (out / p).stat().st_mtime_ns for p in outputs(out)} == before  # not rewritten


def test_a_file_out_of_retries_fails_as_worker_lost_and_a_rerun_redoes_only_it(
    ray_cluster, tmp_path, tiny_model_file
):
    src, out = _shoot(tmp_path), tmp_path / "out"
    outcome = run_batch(_settings(src, out, tiny_model_file), KillingUI(), driver=_driver(0))

    failed = [r for r in outcome.results if r.status == "failed"]
    assert outcome.exit_code == EXIT_FAILED
    assert 1 <= len(failed) <= 2  # what the killed worker held: the file it was on (+ 1 sent)
    assert all(r.error.startswith(WORKER_LOST) for r in failed)
    assert not temp_files(out)
    assert sorted(outputs(out)) == sorted(_journal_outputs(out))  # nothing unjournaled

    again = run_batch(_settings(src, out, tiny_model_file), RecordingUI(), driver=_driver(0))
    assert again.exit_code == EXIT_OK, (again.message, [(r.status, r.error) for r in again.results])
    redone = sorted(str(r.input) for r in again.results if r.status == "ok")
    assert redone == sorted(str(r.input) for r in failed)
    assert len(outputs(out)) == N_FILES


def test_cluster_ray_without_ray_installed_is_one_line_exit_4(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    src = _shoot(tmp_path)
    result, _ = cli(src, "--out", tmp_path / "out", "--cluster", "ray")
    assert result.exit_code == EXIT_ENVIRONMENT
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'abpn[ray]'" in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_ctrl_c_on_the_driver_stops_the_cluster_work_with_130_and_a_rerun_resumes(
    ray_cluster, tmp_path, tiny_model_file
):
    for i in range(3 * N_FILES):
        make_photo(tmp_path / "in" / f"p{i:02d}.png", (640, 480), seed=i)
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    address = ray_cluster.get_runtime_context().gcs_address
    args = [src, "--out", out, "--model", tiny_model_file, "--device", "cpu", "--report", report]
    cmd = [sys.executable, "-m", "abpn_cli", "retouch", *map(str, args), "--cluster", "ray"]
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_AUTH_MODE="disabled")
    proc = subprocess.Popen(
        [*cmd, "--ray-address", address, "--ray-workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while len(outputs(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, stderr.decode()[-2000:]
    summary = json.loads(report.read_text())["summary"]
    assert summary["interrupted"] and summary["not_processed"] > 0
    assert not temp_files(out)
    assert sorted(outputs(out)) == sorted(_journal_outputs(out))  # no unjournaled output

    again = run_batch(_settings(src, out, tiny_model_file), RecordingUI(), driver=_driver(2))
    assert again.exit_code == EXIT_OK
    assert sum(r.status == "ok" for r in again.results) == summary["not_processed"]
    assert _journal_outputs(out) == Counter({o: 1 for o in outputs(out)})
    assert len(outputs(out)) == 3 * N_FILES


def test_asking_for_cuda_on_a_cluster_without_gpus_is_exit_4_and_writes_no_output(
    ray_cluster, tmp_path, tiny_model_file
):
    src, out = _shoot(tmp_path), tmp_path / "out"
    settings = BatchSettings(inputs=(src,), out=out, model=tiny_model_file, device="cuda")
    outcome = run_batch(settings, RecordingUI(), driver=_driver(2))
    assert outcome.exit_code == EXIT_ENVIRONMENT
    assert "no GPU" in (outcome.message or "")
    assert outputs(out) == [] and not temp_files(out)
