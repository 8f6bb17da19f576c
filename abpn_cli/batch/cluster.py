"""`abpn retouch --cluster ray`: the same batch, its files spread over a Ray cluster's actors.

The driver (this process) plans, locks OUT, keeps the journal and the report exactly as a
local run does (`runner.py`); only the per-file work moves to long-lived actors
(`cluster_worker.py`). Files go out as paths, at most `inflight` per actor (backpressure: no
frame is queued anywhere but on the worker that will process it). A worker that dies costs
each file it held a retry, up to `file_retries`, then "worker lost". Ray is imported lazily,
so the package works without the `ray` extra.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import secrets
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abpn_cli.batch.cluster_worker import FileWorker, WorkerOutcome, WorkerSpec
from abpn_cli.batch.context import BatchContext
from abpn_cli.batch.errors import BatchEnvironmentError, BatchUsageError
from abpn_cli.batch.fsutil import (
    atomic_write_bytes,
    clean_stale_temps,
    describe_os_error,
    is_fatal_write_error,
)
from abpn_cli.batch.plan import Job
from abpn_cli.batch.report import FileResult
from abpn_cli.exitcodes import EXIT_ENVIRONMENT, EXIT_USAGE, ExitRule

RAY_HINT = "pip install 'abpn[ray]'"
WORKER_LOST = "worker lost"  # error prefix of a file whose workers kept dying
POLL_SECONDS = 0.2  # how often the dispatch loop looks at the stop flag
REPING_SECONDS = 0.2  # how soon a worker Ray is still restarting is asked again
STOP_GRACE_SECONDS = 3.0  # on a stop, results that arrive this soon are still journaled


@dataclass(frozen=True)
class ClusterSettings:
    """How to reach the cluster and how hard to use it (defaults suit most clusters)."""

    address: str | None = None  # None: RAY_ADDRESS, else a new local cluster; "local": new one
    workers: int | None = None  # None: one per GPU, else one per `cpus_per_worker` CPUs
    cpus_per_worker: int = 1
    inflight: int = 2  # files sent ahead to one actor: one computing, one waiting
    file_retries: int = 2  # a file whose worker died is sent again this many times
    worker_restarts: int = 3  # Ray restarts a dead actor (model reloaded) this many times
    start_timeout: float = 300.0  # seconds for the actors to be placed and load the model
    local_cpus: int | None = None  # CPUs of a cluster started here (None: all)

    def __post_init__(self) -> None:
        if (self.workers is not None and self.workers < 1) or self.cpus_per_worker < 1:
            raise ValueError("--ray-workers and CPUs per worker must be at least 1")
        if self.inflight < 1 or self.file_retries < 0 or self.worker_restarts < 0:
            raise ValueError("in-flight files must be >= 1, retries and restarts >= 0")


def import_ray() -> Any:
    """The ray module, or BatchEnvironmentError with the one line that says how to get it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise BatchEnvironmentError(
            f"--cluster ray needs Ray, which is not installed here: {RAY_HINT}"
        ) from exc


@dataclass
class _Slot:
    """One actor and what the driver knows of it."""

    actor: Any
    name: str
    inflight: int = 0
    losses: int = 0
    dead: bool = False
    restarting: bool = False  # lost a file; gets none until it answers a ping again
    down_since: float = 0.0  # monotonic time of that loss
    reping_at: float | None = None  # still restarting at the last ping: ask again then


class RayDriver:
    """Called by the runner in place of the local pipeline, with the same context."""

    def __init__(self, cluster: ClusterSettings | None = None) -> None:
        self.cluster = cluster or ClusterSettings()

    def __call__(self, ctx: BatchContext, jobs: list[Job]) -> None:
        if not jobs:  # a rerun with everything done needs no cluster at all
            ctx.book.freeze()
            return
        ray = import_ray()
        started_here = _connect(ray, self.cluster)
        slots: list[_Slot] = []
        token = secrets.token_hex(8)
        probe = ctx.plan.state_dir / f"cluster-probe-{token}"  # kept for restarted actors too
        try:
            atomic_write_bytes(probe, token.encode())
            slots = _start_workers(ray, ctx, self.cluster, (probe, token))
            _Dispatcher(ray, ctx, slots, self.cluster).run(jobs)
        finally:
            ctx.book.freeze()
            with contextlib.suppress(OSError):
                probe.unlink()
            for slot in slots:
                with contextlib.suppress(Exception):
                    ray.kill(slot.actor, no_restart=True)
            if started_here:
                ray.shutdown()
            removed = clean_stale_temps(ctx.plan.out)  # what killed workers were writing
            if removed:
                ctx.ui.warn(f"removed {len(removed)} temp file(s) left by stopped workers")


REACH_SECONDS = 5.0  # a head that does not accept a TCP connection by then is not there


def _check_reachable(address: str | None) -> None:
    """Refuse a host:port nothing listens on before ray.init, which would retry it for
    minutes, deaf to Ctrl-C (measured: still waiting after 10 min on 127.0.0.1:1)."""
    if not address or address in ("local", "auto"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # not host:port: ray.init says what is wrong with it
    try:
        socket.create_connection((host, int(port)), timeout=REACH_SECONDS).close()
    except OSError as exc:
        raise BatchEnvironmentError(
            f"cannot reach Ray at {address}: {exc.strerror or exc} "
            "(is `ray start --head` running there?)"
        ) from exc


def _connect(ray: Any, cluster: ClusterSettings) -> bool:
    """Join (or start) the cluster; True if this call started Ray and must shut it down.

    ray.init installs its own SIGINT/SIGTERM handlers; the batch's are put back, so Ctrl-C
    still means "stop cleanly, report, exit 130".
    """
    if ray.is_initialized():  # a script or test already connected: use that cluster
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if cluster.address == "local":
        kwargs["num_cpus"] = cluster.local_cpus
    _check_reachable(cluster.address or os.environ.get("RAY_ADDRESS"))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(address=cluster.address, **kwargs)
    except Exception as exc:
        where = cluster.address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
        raise BatchEnvironmentError(f"cannot connect to Ray at {where}: {exc}") from exc
    finally:
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
    return True


def _start_workers(
    ray: Any, ctx: BatchContext, cluster: ClusterSettings, probe: tuple[Path, str]
) -> list[_Slot]:
    """Create the actors, wait until each has loaded the model; drop those that could not."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if ctx.settings.device != "cpu" else 0
    if ctx.settings.device.startswith("cuda") and not gpus:
        raise BatchEnvironmentError(f"--device {ctx.settings.device}: the Ray cluster has no GPU")
    count = (
        cluster.workers or gpus or max(1, int(resources.get("CPU", 1)) // cluster.cpus_per_worker)
    )
    spec = WorkerSpec(
        settings=ctx.settings,
        plan=dataclasses.replace(ctx.plan, jobs=(), skipped=()),
        fingerprint=ctx.fingerprint,
        run_id=ctx.run_id,
        model_sha256=ctx.model.sha256,
        device="cuda" if gpus else "cpu",
        threads=cluster.cpus_per_worker,
        probe=probe[0],
        token=probe[1],
    )
    remote = ray.remote(FileWorker).options(
        num_cpus=cluster.cpus_per_worker,
        num_gpus=1 if gpus else 0,
        max_restarts=cluster.worker_restarts,
        max_task_retries=0,  # the driver decides about retries: it counts them per file
    )
    # by value, not ray.put: a restarted actor must not depend on an object that may be gone
    actors = [remote.remote(f"w{i}", spec) for i in range(count)]
    return _await_ready(ray, ctx, actors, cluster.start_timeout)


def _await_ready(ray: Any, ctx: BatchContext, actors: list[Any], timeout: float) -> list[_Slot]:
    """Slots of the actors that started; polled, so Ctrl-C is not held up by a slow start."""
    calls = {actor.describe.remote(): actor for actor in actors}
    ready: list[Any] = []
    late = list(calls)
    deadline = time.monotonic() + timeout
    while late and time.monotonic() < deadline and not ctx.stop.stopped:
        done, late = ray.wait(late, num_returns=len(late), timeout=POLL_SECONDS)
        ready.extend(done)
    if ctx.stop.stopped:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        return []
    slots: list[_Slot] = []
    problems: list[str] = []
    for ref in ready:
        try:
            name, problem = ray.get(ref)
        except ray.exceptions.RayError as exc:
            name, problem = "worker", f"could not start: {_first_line(exc)}"
        if problem is None:
            slots.append(_Slot(calls[ref], name))
        else:
            problems.append(problem)
            ray.kill(calls[ref], no_restart=True)
    for ref in late:
        problems.append(f"a worker was not placed within {timeout:.0f} s (too few free CPUs/GPUs)")
        ray.kill(calls[ref], no_restart=True)
    if not slots:
        raise BatchEnvironmentError("no Ray worker could start: " + "; ".join(problems[:3]))
    for problem in problems:
        ctx.ui.warn(f"Ray worker dropped: {problem}")
    return slots


def _first_line(exc: BaseException) -> str:
    """A remote exception's own message (RayTaskError.cause), not Ray's traceback banner."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class _Dispatcher:
    """Keeps every live actor fed with up to `inflight` files and collects what comes back."""

    def __init__(
        self, ray: Any, ctx: BatchContext, slots: list[_Slot], cluster: ClusterSettings
    ) -> None:
        self.ray, self.ctx, self.slots, self.cluster = ray, ctx, slots, cluster
        self.pending: deque[Job] = deque()
        self.inflight: dict[Any, tuple[Job, _Slot]] = {}
        self.pings: dict[Any, _Slot] = {}  # describe() calls to workers Ray is restarting
        self.attempts: dict[int, int] = {}

    def run(self, jobs: list[Job]) -> None:
        self.pending.extend(jobs)
        while (self.pending or self.inflight) and not self.ctx.stop.stopped:
            self._fill()
            reping_to_come = self._reping()
            if not (self.inflight or self.pings or reping_to_come):
                self.ctx.stop.request("all Ray workers lost")
                break
            waiting = [*self.inflight, *self.pings]
            if not waiting:  # only a re-ping to come: nothing else can arrive before it
                time.sleep(POLL_SECONDS)
                continue
            ready, _ = self.ray.wait(waiting, num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                if ref in self.pings:
                    self._pinged(ref)
                else:
                    self._collect(ref)
        if self.inflight:  # stopping: keep what finishes within the grace, drop the rest
            done, _ = self.ray.wait(
                list(self.inflight), num_returns=len(self.inflight), timeout=STOP_GRACE_SECONDS
            )
            for ref in done:
                self._collect(ref, stopping=True)

    def _fill(self) -> None:
        # a worker Ray is restarting gets nothing: measured, files sent to it while it
        # restarts fail at once and burn their retries on the same dead worker
        for slot in self.slots:
            while (
                self.pending
                and not (slot.dead or slot.restarting)
                and slot.inflight < self.cluster.inflight
            ):
                job = self.pending.popleft()
                self.inflight[slot.actor.process.remote(job)] = (job, slot)
                slot.inflight += 1
                self.ctx.ui.started(job.shown)

    def _collect(self, ref: Any, stopping: bool = False) -> None:
        job, slot = self.inflight.pop(ref)
        slot.inflight -= 1
        try:
            outcome: WorkerOutcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            if stopping:  # Ctrl-C may have reached the workers too: "not processed"
                return
            if isinstance(exc, self.ray.exceptions.RayActorError):
                self._lost(job, slot, exc)
                return
            # a bug on the worker: this file only
            self.ctx.book.record(job, _failed(job, f"worker error: {_first_line(exc)}"))
            return
        if outcome.problem is not None:  # restarted, but could not start again: drop it
            slot.dead = True
            if stopping:
                return
            self.ctx.ui.warn(f"Ray worker dropped: {outcome.problem}")
            self.pending.appendleft(job)
            return
        slot.name = outcome.result.worker or slot.name  # a restarted actor has a new pid
        self._accept(job, outcome)

    def _accept(self, job: Job, outcome: WorkerOutcome) -> None:
        """Journal first, then report: an 'ok' in the report is always resumable."""
        result = outcome.result
        if outcome.record is not None:
            try:
                self.ctx.journal.append(outcome.record)
            except OSError as exc:
                reason = describe_os_error(exc)
                if is_fatal_write_error(exc):
                    self.ctx.stop.request(reason)
                result = dataclasses.replace(
                    result, status="failed", error=f"cannot write the journal: {reason}", edit=None
                )
        if outcome.stop_reason is not None:  # disk full on the shared OUT: stop everyone
            self.ctx.stop.request(outcome.stop_reason)
        self.ctx.book.record(job, result)

    def _pinged(self, ref: Any) -> None:
        """A restarting worker answered: back in service, or still down (asked again later)."""
        slot = self.pings.pop(ref)
        try:
            name, problem = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            if time.monotonic() - slot.down_since > self.cluster.start_timeout:
                slot.dead = True
                self.ctx.ui.warn(
                    f"Ray worker dropped: {slot.name} did not come back: {_first_line(exc)}"
                )
            elif not slot.dead:  # Ray is still bringing it back: `_reping` asks again soon;
                # no sleep here, which would hold up the other workers' results meanwhile
                slot.reping_at = time.monotonic() + REPING_SECONDS
            return
        slot.restarting = False
        slot.name = name
        if problem is not None:
            slot.dead = True
            self.ctx.ui.warn(f"Ray worker dropped: {problem}")

    def _reping(self) -> bool:
        """Ping again the restarting workers whose re-ping is due (see `_pinged`); True while
        one is still to come: that worker counts as alive, not as "all Ray workers lost"."""
        now, waiting = time.monotonic(), False
        for slot in self.slots:
            if slot.reping_at is None or slot.dead:
                continue
            if slot.reping_at <= now:
                slot.reping_at = None
                self.pings[slot.actor.describe.remote()] = slot
            else:
                waiting = True
        return waiting

    def _lost(self, job: Job, slot: _Slot, exc: BaseException) -> None:
        """The actor died under this file: retry it elsewhere (bounded), else fail it."""
        if not slot.restarting:  # one death, however many files it held
            slot.losses += 1
            if slot.losses > self.cluster.worker_restarts:
                slot.dead = True  # Ray will not restart it again
            else:
                slot.restarting, slot.down_since = True, time.monotonic()
                self.pings[slot.actor.describe.remote()] = slot
        tries = self.attempts[job.index] = self.attempts.get(job.index, 0) + 1
        if tries <= self.cluster.file_retries:
            self.ctx.ui.warn(
                f"{WORKER_LOST}: {slot.name} died while on {job.shown}; "
                f"sending it again ({tries}/{self.cluster.file_retries})"
            )
            self.pending.appendleft(job)
            return
        why = f"{WORKER_LOST}: {slot.name} died while on this file ({tries} attempt(s))"
        self.ctx.book.record(job, _failed(job, why, slot.name))


def _failed(job: Job, reason: str, worker: str | None = None) -> FileResult:
    return FileResult(job.source, job.output, "failed", reason, worker=worker)


__all__ = ["WORKER_LOST", "ClusterSettings", "RayDriver", "import_ray"]


def driver_for(cluster: str, address: str | None, workers: int | None) -> RayDriver | None:
    """`--cluster`: None for a local run, else the Ray driver, once Ray is known importable."""
    if cluster.lower() == "none":
        if workers is not None:  # asked for workers, would get one local process: say so
            raise BatchUsageError("--ray-workers needs --cluster ray")
        return None
    if cluster.lower() != "ray":
        raise BatchUsageError(f"--cluster must be none or ray, not {cluster!r}")
    settings = ClusterSettings(address=address, workers=workers)  # ValueError: exit 2
    import_ray()
    return RayDriver(settings)


# Ray missing is one unwrapped line (cron logs want it so); bad --cluster/--ray-* are usage
CLUSTER_EXITS = (
    ExitRule(BatchEnvironmentError, EXIT_ENVIRONMENT, lambda exc: f"error: {exc}"),
    ExitRule(ValueError, EXIT_USAGE),
)
