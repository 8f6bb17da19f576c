"""One batch run end to end: plan, load, resume, process, report, exit code.

Order matters for safety: every usage check runs before anything is created; OUT is created
and locked only for a real (non dry) run; leftover temp files are removed under the lock.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from abpn_cli.batch.context import BatchContext, ResultBook
from abpn_cli.batch.control import INTERRUPTED, StopControl
from abpn_cli.batch.dustmap import (
    DustMapNote,
    FrameSpots,
    recurring_spots,
    reference_size,
    render_map,
    same_shape,
    write_map_png,
)
from abpn_cli.batch.errors import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_USAGE,
    BatchEnvironmentError,
    BatchUsageError,
    NothingToProcessError,
)
from abpn_cli.batch.fsutil import OutLock, atomic_write, clean_stale_temps, describe_os_error
from abpn_cli.batch.journal import (
    JOURNAL_NAME,
    Journal,
    JournalState,
    compact_if_needed,
    decide,
    read_journal,
)
from abpn_cli.batch.pipeline import run_pipelined, run_simple
from abpn_cli.batch.plan import QA_DIR, STATE_DIR, Job, Plan, make_plan
from abpn_cli.batch.progress import BatchUI
from abpn_cli.batch.report import (
    NOT_DONE,
    SKIPPED,
    EditSummary,
    FileResult,
    Summary,
    build_report,
    write_report,
)
from abpn_cli.batch.review import LAST_REPORT
from abpn_cli.batch.settings import BatchSettings
from abpn_cli.batch.sidecars import refresh_sidecar
from abpn_cli.engine import (
    EngineError,
    LoadedModel,
    default_model_path,
    inspect_model_file,
    load_model,
    resolve_device,
)
from abpn_cli.engine.dustprofile import DustProfile, DustProfileError, load_profile
from abpn_cli.engine.modelcard import ModelCard
from abpn_cli.engine.modelfile import file_sha256
from abpn_cli.imaging import SUPPORTED_SUFFIXES

DUST_MAP_NAME = "dust-map.png"

Mode = Literal["pipelined", "simple"]
# Runs the per-file work in place of the local pipeline (`cluster.RayDriver`); it may raise
# BatchEnvironmentError before it sends any file (exit 4).
Driver = Callable[[BatchContext, list[Job]], None]
_LOCAL: dict[str, Driver] = {"pipelined": run_pipelined, "simple": run_simple}


@dataclass(frozen=True)
class BatchOutcome:
    """What the CLI needs to print and exit with."""

    exit_code: int
    results: tuple[FileResult, ...] = ()
    summary: Summary | None = None
    message: str | None = None  # the reason for exit codes 2, 3, 4 (or a report problem)
    dry_run: bool = False
    dust_map: DustMapNote | None = None  # written for a batch of two or more frames


@dataclass
class _ModelInfo:
    path: Path | None
    sha256: str | None


def run_batch(
    settings: BatchSettings,
    ui: BatchUI,
    mode: Mode = "pipelined",
    suffixes: Iterable[str] = SUPPORTED_SUFFIXES,
    driver: Driver | None = None,
) -> BatchOutcome:
    """Run the whole batch; never raises for per-file or environment problems."""
    stop = StopControl()
    started = time.perf_counter()
    try:
        with stop.signals_installed():
            return _run(settings, ui, driver or _LOCAL[mode], frozenset(suffixes), stop, started)
    finally:
        ui.close()


def _run(
    settings: BatchSettings,
    ui: BatchUI,
    driver: Driver,
    suffixes: frozenset[str],
    stop: StopControl,
    started: float,
) -> BatchOutcome:
    """Plan and load the model (nothing written yet), then process under the OUT lock."""
    info = _ModelInfo(settings.model or default_model_path(), None)
    try:
        with stop.abortable():
            plan = make_plan(settings, suffixes, warn=ui.warn)
    except BatchUsageError as exc:
        return BatchOutcome(EXIT_USAGE, message=str(exc))
    except NothingToProcessError as exc:
        return _finish(settings, ui, info, [], None, started, EXIT_NOTHING, str(exc))
    except KeyboardInterrupt:
        return _finish(settings, ui, info, [], INTERRUPTED, started, EXIT_INTERRUPTED)

    if settings.dry_run:
        return _dry_run(settings, plan, ui)

    # a cluster's workers load the model on their own devices; here it is only checked
    device = settings.device if driver in _LOCAL.values() else "cpu"
    try:
        with stop.abortable():
            model = load_model(settings.model, device)
    except EngineError as exc:
        results = _unprocessed(plan.jobs, "model could not be loaded")
        return _finish(settings, ui, info, results, None, started, EXIT_ENVIRONMENT, str(exc))
    except KeyboardInterrupt:
        results = _unprocessed(plan.jobs, INTERRUPTED)
        return _finish(settings, ui, info, results, INTERRUPTED, started, EXIT_INTERRUPTED)
    info = _ModelInfo(model.path, model.sha256)
    try:
        settings = settings.for_model(ModelCard.from_meta(model.metadata).sensitivity)
        profile = _read_profile(settings)
    except (BatchUsageError, DustProfileError) as exc:
        what = "dust profile" if isinstance(exc, DustProfileError) else "model's sensitivity"
        results = _unprocessed(plan.jobs, f"the {what} could not be used")
        return _finish(settings, ui, info, results, None, started, EXIT_USAGE, str(exc))

    lock, refused = _lock_out(settings, plan)
    if refused is not None:
        why, message = refused
        results = _unprocessed(plan.jobs, why)
        return _finish(settings, ui, info, results, None, started, EXIT_ENVIRONMENT, message)
    try:
        results = _process(settings, ui, driver, plan, (model, profile), stop)
    except BatchEnvironmentError as exc:  # e.g. the cluster is unreachable: nothing was sent
        results = _unprocessed(plan.jobs, "the workers could not start")
        return _finish(settings, ui, info, results, None, started, EXIT_ENVIRONMENT, str(exc))
    except KeyboardInterrupt:  # only possible before processing starts (abortable phases)
        stop.request(INTERRUPTED)
        results = _unprocessed(plan.jobs, INTERRUPTED)
    except OSError as exc:  # OUT/.abpn unusable (permissions, read-only, full)
        results = _unprocessed(plan.jobs, "OUT is not writable")
        message = f"cannot use --out {settings.out}: {describe_os_error(exc)}"
        return _finish(settings, ui, info, results, None, started, EXIT_ENVIRONMENT, message)
    finally:
        lock.release()
    code = _exit_code(results, stop.reason)
    return _finish(settings, ui, info, results + _not_photos(plan), stop.reason, started, code)


def _read_profile(settings: BatchSettings) -> DustProfile | None:
    """--dust-profile, read once per run (before OUT is touched); raises DustProfileError."""
    return load_profile(settings.dust_profile) if settings.dust_profile else None


def _lock_out(settings: BatchSettings, plan: Plan) -> tuple[OutLock, tuple[str, str] | None]:
    """Create OUT and take its lock; else (why the files were not processed, the message)."""
    lock = OutLock(plan.state_dir / "lock")
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
        locked = lock.acquire()
    except OSError as exc:
        message = f"cannot create --out {settings.out}: {describe_os_error(exc)}"
        return lock, ("OUT could not be created", message)
    if not locked:
        message = f"another abpn run is writing into {settings.out} (lock {lock.path} is held)"
        return lock, ("OUT is locked by another run", message)
    return lock, None


def _process(
    settings: BatchSettings,
    ui: BatchUI,
    driver: Driver,
    plan: Plan,
    loaded: tuple[LoadedModel, DustProfile | None],
    stop: StopControl,
) -> list[FileResult]:
    """Clean leftovers, decide what is done, run the rest; results in plan order."""
    model, profile = loaded
    removed = clean_stale_temps(plan.out)
    if removed:
        ui.warn(f"removed {len(removed)} leftover temp file(s) from an interrupted run")
    journal_path = plan.state_dir / JOURNAL_NAME
    state = read_journal(journal_path)
    compact_if_needed(journal_path, state)
    fingerprint = settings.fingerprint(model.sha256, profile.sha256 if profile else "")
    book = ResultBook(ui)
    todo: list[Job] = []
    with stop.abortable():
        for job, decision in _decisions(settings, plan, state, fingerprint):
            if decision.done:
                book.preset(job, _skipped_done(job, state, plan))
            else:
                todo.append(dataclasses.replace(job, qa_only=True) if decision.qa_only else job)
    journal = Journal(journal_path)
    ctx = BatchContext(
        settings=settings,
        plan=plan,
        model=model,
        fingerprint=fingerprint,
        journal=journal,
        ui=ui,
        stop=stop,
        book=book,
        run_id=f"{os.getpid()}-{secrets.token_hex(4)}",
        profile=profile,
    )
    ui.start(len(todo), len(plan.jobs) - len(todo))
    try:
        driver(ctx, todo)
    except BatchEnvironmentError:
        raise
    except Exception as exc:  # a bug: still report what was done, exit 1
        stop.request(f"internal error: {type(exc).__name__}: {exc}")
        ui.error(f"internal error: {type(exc).__name__}: {exc}")
    finally:
        journal.close()
    return book.collect(plan.jobs, stop.reason)


def _decisions(settings: BatchSettings, plan: Plan, state: JournalState, fingerprint: str):
    for job in plan.jobs:
        record = state.records.get(job.out_rel)
        yield job, decide(job, record, fingerprint, plan.out, settings.overwrite)


def _skipped_done(job: Job, state: JournalState, plan: Plan) -> FileResult:
    """A file done before: the earlier run's figures, and its sidecar brought up to date
    (batch.sidecars); a sidecar that cannot be copied fails the file, so it is seen."""
    record = state.records[job.out_rel]
    error = refresh_sidecar(job, plan)
    return FileResult(
        input=job.source,
        output=job.output,
        status="failed" if error else "skipped",
        error=error,
        width=record.width,
        height=record.height,
        bit_depth=record.bit_depth,
        edit=None if record.edit is None else EditSummary.from_json(record.edit),
        done_before=(record.run, record.finished),
        develop=record.develop,
        damaged=record.damaged,
    )


def _not_photos(plan: Plan) -> list[FileResult]:
    """Files the walk met and skipped (hidden, unsupported type), each with its reason."""
    return [FileResult(s.source, None, "skipped", f"{SKIPPED}: {s.reason}") for s in plan.skipped]


def _unprocessed(jobs: Iterable[Job], why: str) -> list[FileResult]:
    return [FileResult(j.source, j.output, "skipped", f"{NOT_DONE}: {why}") for j in jobs]


def _exit_code(results: list[FileResult], stop_reason: str | None) -> int:
    if stop_reason == INTERRUPTED:
        return EXIT_INTERRUPTED
    if stop_reason is not None or any(r.status == "failed" for r in results):
        return EXIT_FAILED
    return EXIT_OK


def _finish(
    settings: BatchSettings,
    ui: BatchUI,
    info: _ModelInfo,
    results: list[FileResult],
    stop_reason: str | None,
    started: float,
    code: int,
    message: str | None = None,
) -> BatchOutcome:
    """Write the dust map and the report (also on failure and interrupt); build the outcome."""
    # a stopped run (Ctrl-C, disk full) writes nothing more; its rerun makes the map
    dust_map = _write_dust_map(settings, results, ui) if stop_reason is None else None
    summary = Summary.of(results, time.perf_counter() - started, stop_reason)
    report = build_report(
        model_path=info.path,
        model_sha256=info.sha256,
        settings=settings.report_dict(),
        results=results,
        summary=summary,
        error=message,
    )
    if dust_map is not None:
        report["dust_map"] = dust_map
    state_dir = settings.out / STATE_DIR
    targets = [settings.report] if settings.report is not None else []
    if state_dir.is_dir():  # what `abpn review OUT` reads when no --report is given
        targets.append(state_dir / LAST_REPORT)
    for target in targets:
        try:
            write_report(target, report)
        except OSError as exc:
            ui.error(f"could not write the report {target}: {describe_os_error(exc)}")
            if target == settings.report:
                code = EXIT_FAILED if code == EXIT_OK else code
    note = None
    if dust_map is not None:
        note = DustMapNote.of(dust_map, settings.out, settings.dust_profile, settings.inputs)
    return BatchOutcome(code, tuple(results), summary, message, dust_map=note)


def _write_dust_map(
    settings: BatchSettings, results: list[FileResult], ui: BatchUI
) -> dict[str, Any] | None:
    """OUT/_qa/dust-map.png and its report entry, over every frame retouched (now or before)."""
    retouched = [
        FrameSpots(r.width, r.height, r.edit.spots)
        for r in results
        if r.edit is not None and r.width and r.height
    ]
    frames = same_shape(retouched)
    if len(frames) < 2:
        return None
    recurring = recurring_spots(frames)
    width, height = reference_size(frames)
    dest = settings.out / QA_DIR / DUST_MAP_NAME
    try:
        image = render_map(frames, recurring)
        atomic_write(dest, lambda tmp: write_map_png(image, tmp))
    except OSError as exc:
        ui.error(f"could not write the dust map {dest}: {describe_os_error(exc)}")
        return None
    return {
        "frames": len(frames),
        "image": f"{QA_DIR}/{DUST_MAP_NAME}",
        "frame_size": [width, height],
        "other_shape": len(retouched) - len(frames),  # frames left out: another aspect ratio
        "recurring": [r.to_json(width, height) for r in recurring],
    }


def _dry_run(settings: BatchSettings, plan: Plan, ui: BatchUI) -> BatchOutcome:
    """List the plan with resume status; read-only (nothing is created, not even OUT)."""
    path = settings.model if settings.model is not None else default_model_path()
    try:
        card = ModelCard.from_meta(inspect_model_file(path))
        resolve_device(settings.device)
        sha = file_sha256(path)
    except EngineError as exc:
        return BatchOutcome(EXIT_ENVIRONMENT, message=str(exc), dry_run=True)
    except OSError as exc:
        return BatchOutcome(
            EXIT_ENVIRONMENT, message=f"cannot read model {path}: {exc}", dry_run=True
        )
    try:
        settings = settings.for_model(card.sensitivity)
        profile = _read_profile(settings)
    except (DustProfileError, BatchUsageError) as exc:
        return BatchOutcome(EXIT_USAGE, message=str(exc), dry_run=True)
    state = read_journal(plan.state_dir / JOURNAL_NAME)
    fingerprint = settings.fingerprint(sha, profile.sha256 if profile else "")
    todo = 0
    for job, decision in _decisions(settings, plan, state, fingerprint):
        ui.plan_line(job.shown, str(job.output), decision.label)
        todo += not decision.done
    message = f"dry run: {todo} to process, {len(plan.jobs) - todo} already done; nothing written"
    return BatchOutcome(EXIT_OK, message=message, dry_run=True)
