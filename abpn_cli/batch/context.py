"""What the stages of one batch run share (`BatchContext`) and where their results go
(`ResultBook`): built once per run by the runner, or per actor by a Ray worker."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from abpn_cli.batch.control import StopControl
from abpn_cli.batch.journal import JournalSink
from abpn_cli.batch.plan import Job, Plan
from abpn_cli.batch.progress import BatchUI
from abpn_cli.batch.report import NOT_DONE, FileResult
from abpn_cli.batch.settings import BatchSettings
from abpn_cli.engine import LoadedModel, RetouchOptions
from abpn_cli.engine.dustprofile import DustProfile


class ResultBook:
    """Thread-safe results by job index; reports each to the UI once; frozen at the end."""

    def __init__(self, ui: BatchUI) -> None:
        self.ui = ui
        self._results: dict[int, FileResult] = {}
        self._lock = threading.Lock()
        self._frozen = False

    def preset(self, job: Job, result: FileResult) -> None:
        """A result known before processing (skipped: done); not shown as progress."""
        with self._lock:
            self._results[job.index] = result

    def record(self, job: Job, result: FileResult) -> None:
        with self._lock:
            if self._frozen or job.index in self._results:
                return
            self._results[job.index] = result
        self.ui.finished(result, job.shown)

    def freeze(self) -> None:
        with self._lock:
            self._frozen = True

    def collect(self, jobs: tuple[Job, ...], stop_reason: str | None) -> list[FileResult]:
        """Results in plan order; jobs never reached are 'skipped' with the reason why."""
        why = f"{NOT_DONE}: {stop_reason or 'batch stopped'}"
        with self._lock:
            return [
                self._results.get(j.index) or FileResult(j.source, j.output, "skipped", why)
                for j in jobs
            ]


@dataclass
class BatchContext:
    """Everything the stages share; built once per run by the runner."""

    settings: BatchSettings
    plan: Plan
    model: LoadedModel
    fingerprint: str
    journal: JournalSink  # the journal file, or a Ray worker's hand-back to the driver
    ui: BatchUI
    stop: StopControl
    book: ResultBook
    run_id: str
    profile: DustProfile | None = None  # --dust-profile, read once per run (or per worker)
    options: RetouchOptions = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.options = self.settings.retouch_options()
