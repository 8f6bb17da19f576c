"""The Ray side of `--cluster ray`: one long-lived actor per GPU (or per CPU slot).

An actor loads the model once and then runs `pipeline.process_file` on each job it is sent,
reading the input and writing the outputs (atomically) on the shared storage itself, so
the outputs are the bytes a local run writes and no frame travels through the object store.
It never touches the journal: the record that `write_stage` makes is handed back with the
result, and the driver appends it, so a killed worker leaves nothing a rerun takes for done.

This module does not import ray: Ray wraps `FileWorker` at run time (`cluster.py`).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from abpn_cli.batch.context import BatchContext, ResultBook
from abpn_cli.batch.control import StopControl
from abpn_cli.batch.journal import JournalRecord
from abpn_cli.batch.pipeline import process_file
from abpn_cli.batch.plan import Job, Plan
from abpn_cli.batch.progress import BatchUI
from abpn_cli.batch.report import NOT_DONE, FileResult
from abpn_cli.batch.settings import BatchSettings

SHARED_HINT = "the inputs and OUT must be on shared storage, mounted at the same path on every node"


@dataclass(frozen=True)
class WorkerSpec:
    """What every actor needs, put in the object store once (never any pixels)."""

    settings: BatchSettings
    plan: Plan  # without its job list: only OUT and the inputs' identities (never overwrite)
    fingerprint: str
    run_id: str
    model_sha256: str
    device: str  # "cuda" when Ray gave the actor a GPU, else "cpu"
    threads: int
    probe: Path  # a file the driver wrote into OUT/.abpn: proves this node sees OUT
    token: str


@dataclass(frozen=True)
class WorkerOutcome:
    """One job's result, the journal record to append (if any) and a batch stop reason;
    or only `problem`, from an actor that Ray restarted but that could not start again."""

    result: FileResult
    record: JournalRecord | None = None
    stop_reason: str | None = None
    problem: str | None = None


class _HeldRecords:
    """A journal stand-in: keeps the record for the driver instead of writing a file."""

    def __init__(self) -> None:
        self.record: JournalRecord | None = None

    def append(self, record: JournalRecord) -> None:
        self.record = record


class _QuietUI(BatchUI):
    """Workers show nothing (the protocol's methods do nothing): the driver's UI reports."""


class FileWorker:
    """A Ray actor body. Problems at start are kept and reported by `describe`, not raised,
    so the driver gets a one-line reason instead of a remote traceback."""

    def __init__(self, label: str, spec: WorkerSpec) -> None:
        self.name = f"{label}@{socket.gethostname()}:{os.getpid()}"
        self.problem: str | None = None
        self._ctx: BatchContext | None = None
        try:
            self._ctx = _context(spec)
        except Exception as exc:  # reported by describe(); the driver drops this worker
            self.problem = f"{self.name}: {exc}"

    def describe(self) -> tuple[str, str | None]:
        """(name, problem): the driver waits on this before sending any file."""
        return self.name, self.problem

    def process(self, job: Job) -> WorkerOutcome:
        """Run the local pipeline's per-file function; the record goes back to the driver."""
        if self._ctx is None:
            unsent = FileResult(job.source, job.output, "skipped", f"{NOT_DONE}: worker down")
            return WorkerOutcome(unsent, problem=self.problem or f"{self.name} could not start")
        held = _HeldRecords()
        stop = StopControl()
        ctx = dataclasses.replace(self._ctx, journal=held, stop=stop)
        result = process_file(ctx, job)
        if not isinstance(result, FileResult):  # abandoned: only a stop does that
            result = FileResult(job.source, job.output, "skipped", f"{NOT_DONE}: worker stopped")
        return WorkerOutcome(
            dataclasses.replace(result, worker=self.name), held.record, stop.reason
        )


def _context(spec: WorkerSpec) -> BatchContext:
    """Check the shared storage, load the model once, build the stages' context."""
    import torch

    from abpn_cli.engine import load_model
    from abpn_cli.engine.dustprofile import load_profile

    torch.set_num_threads(max(1, spec.threads))
    try:
        seen = spec.probe.read_text()
    except OSError as exc:
        raise RuntimeError(
            f"cannot see OUT ({spec.probe.parent.parent}): {exc}; {SHARED_HINT}"
        ) from exc
    if seen != spec.token:
        raise RuntimeError(f"OUT here is another folder than the driver's; {SHARED_HINT}")
    model = load_model(spec.settings.model, spec.device)
    if model.sha256 != spec.model_sha256:
        raise RuntimeError(
            f"model {model.path} here is not the driver's (sha256 {model.sha256[:12]} vs "
            f"{spec.model_sha256[:12]}): install the same abpn version on every node"
        )
    s = spec.settings
    profile = load_profile(s.dust_profile) if s.dust_profile else None  # on shared storage
    if spec.fingerprint != s.fingerprint(model.sha256, profile.sha256 if profile else ""):
        raise RuntimeError(f"the dust profile {s.dust_profile} here is not the driver's")
    ui = _QuietUI()
    return BatchContext(
        settings=spec.settings,
        plan=spec.plan,
        model=model,
        fingerprint=spec.fingerprint,
        journal=_HeldRecords(),
        ui=ui,
        stop=StopControl(),
        book=ResultBook(ui),
        run_id=spec.run_id,
        profile=profile,
    )
