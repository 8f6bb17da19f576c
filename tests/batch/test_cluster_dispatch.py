"""The Ray dispatcher against a stand-in for Ray (no cluster, no model): a worker that Ray is
still restarting is asked again later, and waiting for it holds up no other worker's results."""

from __future__ import annotations

import itertools
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import pytest

from abpn_cli.batch import RecordingUI
from abpn_cli.batch import cluster as cluster_mod
from abpn_cli.batch.cluster import ClusterSettings, _Dispatcher, _Slot
from abpn_cli.batch.cluster_worker import WorkerOutcome
from abpn_cli.batch.context import ResultBook
from abpn_cli.batch.control import StopControl
from abpn_cli.batch.plan import Job
from abpn_cli.batch.report import FileResult

_order = itertools.count()


class _RayError(Exception):
    pass


class _RayActorError(_RayError):
    pass


class _Ref:
    """An object ref that is ready at once, with a value or an error; refs come back from
    `wait` oldest first, as results that finished first would."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error, self.order = value, error, next(_order)


class _FakeRay:
    exceptions = SimpleNamespace(RayError=_RayError, RayActorError=_RayActorError)

    def wait(self, refs: list[_Ref], num_returns: int, timeout: float) -> tuple[list, list]:
        ready = sorted(refs, key=lambda r: r.order)[:num_returns]
        return ready, [r for r in refs if r not in ready]

    def get(self, ref: _Ref) -> Any:
        if ref.error is not None:
            raise ref.error
        return ref.value


class _Method:
    def __init__(self, call) -> None:
        self.remote = call


class _Actor:
    """Processes every file at once; `describe` fails while Ray is "restarting" it."""

    def __init__(self, name: str, restarting_pings: int = 0) -> None:
        self.name, self.restarting_pings, self.pinged = name, restarting_pings, 0
        self.describe = _Method(self._describe)
        self.process = _Method(self._process)

    def _describe(self) -> _Ref:
        self.pinged += 1
        if self.pinged <= self.restarting_pings:
            return _Ref(error=_RayActorError("the actor is restarting"))
        return _Ref((self.name, None))

    def _process(self, job: Job) -> _Ref:
        return _Ref(WorkerOutcome(FileResult(job.source, job.output, "ok", worker=self.name)))


def _jobs(n: int) -> list[Job]:
    names = [f"p{i}.png" for i in range(n)]
    return [
        Job(i, Path("/in", name), name, PurePosixPath(name), Path("/out", name), name, "png")
        for i, name in enumerate(names)
    ]


class _Events(RecordingUI):
    """The UI, and the dispatcher's sleeps, in one ordered list."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def finished(self, result: FileResult, source: str) -> None:
        super().finished(result, source)
        self.events.append(f"{result.status} {result.worker}")


def _dispatch(monkeypatch, actors: list[_Actor], n_jobs: int) -> tuple[_Events, StopControl]:
    """Run the dispatcher with actors[0] just lost (restarting, its first ping out)."""
    ui, stop = _Events(), StopControl()
    monkeypatch.setattr(cluster_mod, "REPING_SECONDS", 0.01)
    real_sleep = cluster_mod.time.sleep

    def sleep(seconds: float) -> None:
        ui.events.append("sleep")
        real_sleep(seconds)

    monkeypatch.setattr(cluster_mod.time, "sleep", sleep)
    ctx = SimpleNamespace(ui=ui, stop=stop, book=ResultBook(ui), journal=None)
    slots = [_Slot(a, a.name) for a in actors]
    settings = ClusterSettings(workers=len(actors), inflight=2, start_timeout=60)
    dispatcher = _Dispatcher(_FakeRay(), ctx, slots, settings)  # type: ignore[arg-type]
    slots[0].restarting, slots[0].down_since = True, cluster_mod.time.monotonic()
    dispatcher.pings[actors[0].describe.remote()] = slots[0]
    dispatcher.run(_jobs(n_jobs))
    return ui, stop


def test_a_restarting_worker_holds_up_no_other_workers_results(monkeypatch):
    restarting, healthy = _Actor("w0", restarting_pings=1_000), _Actor("w1")
    ui, stop = _dispatch(monkeypatch, [restarting, healthy], n_jobs=6)

    assert stop.reason is None
    assert ui.events == ["ok w1"] * 6  # no sleep came between the results


@pytest.mark.parametrize("still_restarting", [1, 3])
def test_a_worker_still_restarting_is_asked_again_and_then_gets_the_files(
    monkeypatch, still_restarting
):
    worker = _Actor("w0", restarting_pings=still_restarting)
    ui, stop = _dispatch(monkeypatch, [worker], n_jobs=3)

    assert stop.reason is None  # a worker with a re-ping to come is not "all workers lost"
    assert worker.pinged == still_restarting + 1
    assert [e for e in ui.events if e != "sleep"] == ["ok w0"] * 3
    assert not [line for line in ui.lines if line.startswith("warning")]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free, and nothing listens once it is closed


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_head_nothing_listens_on_is_refused_before_ray_init(scheme, monkeypatch):
    from abpn_cli.batch.errors import BatchEnvironmentError

    inits: list[Any] = []
    fake = SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: inits.append(kw))
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    with pytest.raises(BatchEnvironmentError, match=f"cannot reach Ray at {address}"):
        cluster_mod._connect(fake, ClusterSettings(address=address))
    assert inits == []  # ray.init, which would retry for minutes, was never called
