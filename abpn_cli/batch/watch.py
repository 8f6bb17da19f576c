"""`abpn watch IN --out OUT`: a hot folder for tethered capture, with the batch's contract.

A file is taken once it is complete: the writer closed it after writing or renamed it into
place (inotify events through `watchdog`), or -- on network shares, where such events never
arrive, or with `--poll` -- its size and mtime have not changed for `settle` seconds. Each round
with something new runs the ordinary batch over IN (`run_batch`) with the files still arriving
excluded, so everything `retouch` guarantees holds: atomic writes, the journal (finished files
are skipped, never redone), per-file isolation, the report of the whole folder, Ctrl-C
finishing or discarding the write in flight (exit 130).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from abpn_cli.batch.errors import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    BatchUsageError,
)
from abpn_cli.batch.plan import check_locations, walk_folder
from abpn_cli.batch.progress import BatchUI
from abpn_cli.batch.runner import run_batch
from abpn_cli.batch.settings import BatchSettings
from abpn_cli.imaging import SUPPORTED_SUFFIXES

Stamp = tuple[int, int]  # (size, mtime_ns)


@dataclass(frozen=True)
class WatchSettings:
    batch: BatchSettings  # inputs: the one hot folder
    interval: float = 2.0  # seconds between looks (events wake the loop sooner)
    settle: float = 3.0  # without a close event, a file is complete when unchanged this long
    max_idle: float | None = None  # stop after this long with nothing new (scripts, tests)
    poll: bool = False  # never use file-system events (network shares)

    def __post_init__(self) -> None:
        if len(self.batch.inputs) != 1 or not self.batch.inputs[0].is_dir():
            raise BatchUsageError("abpn watch takes exactly one existing folder to watch")
        if self.interval <= 0 or self.settle < 0:
            raise BatchUsageError("--interval must be positive and --settle not negative")
        # refused now, not silently at the first arrival
        check_locations(self.batch, "choose an --out outside the hot folder")


def _stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except OSError:  # removed meanwhile
        return None
    return st.st_size, st.st_mtime_ns


def _scan(folder: Path, recursive: bool) -> dict[Path, Stamp]:
    """(size, mtime_ns) of every supported photo under the folder right now."""
    found = {}
    for rel in walk_folder(folder, SUPPORTED_SUFFIXES, recursive):
        stamp = _stamp(folder.absolute() / rel)
        if stamp is not None:
            found[folder.absolute() / rel] = stamp
    return found


@dataclass
class Arrivals:
    """Which files are complete: closed after writing (events) or unchanged for `settle` s."""

    settle: float
    wake: threading.Event = field(default_factory=threading.Event)
    closed: dict[Path, Stamp] = field(default_factory=dict)  # stamp when the writer let go
    stable_since: dict[Path, tuple[Stamp, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def complete(self, path: str | bytes) -> None:
        """A writer closed `path` after writing, or renamed it into place (event thread)."""
        p = Path(path.decode() if isinstance(path, bytes) else path).absolute()
        stamp = _stamp(p)
        if stamp is not None:
            with self.lock:
                self.closed[p] = stamp
        self.wake.set()

    def ready(self, current: dict[Path, Stamp], now: float) -> set[Path]:
        with self.lock:
            closed = dict(self.closed)
        out = set()
        for path, stamp in current.items():
            if self.stable_since.get(path, (None, 0.0))[0] != stamp:
                self.stable_since[path] = (stamp, now)
            if closed.get(path) == stamp or now - self.stable_since[path][1] >= self.settle:
                out.add(path)  # a close event only counts if nothing was written since
        return out


def start_events(folder: Path, recursive: bool, arrivals: Arrivals) -> tuple[Any, str]:
    """A running watchdog observer (or None) and how the folder is watched, for the user."""
    try:
        from watchdog.events import (
            DirCreatedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer
    except ImportError:
        return None, "polling (watchdog is not installed)"

    class Handler(FileSystemEventHandler):
        def on_closed(self, event: Any) -> None:
            arrivals.complete(event.src_path)

        def on_moved(self, event: Any) -> None:
            arrivals.complete(event.dest_path)

        def on_any_event(self, event: Any) -> None:
            arrivals.wake.set()

    # Only what writers do: reads (ours too -- every round lists the folder, every batch reads
    # its files) would wake the loop for nothing, and one still in flight when the observer
    # stops makes watchdog log "queue_events() called when the thread is inactive".
    writes = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent]
    writes += [FileDeletedEvent, DirCreatedEvent, DirMovedEvent]
    observer = Observer()
    try:
        observer.schedule(Handler(), str(folder), recursive=recursive, event_filter=writes)
        observer.start()
    except OSError as exc:  # inotify watch limit, unsupported file system
        return None, f"polling (no file-system events: {exc})"
    return observer, "file-system events, polling as a fallback"


def _tally(session: dict[Path, str]) -> str:
    """The session's count: each file once, by how its latest round ended."""
    ok = sum(status == "ok" for status in session.values())
    return f"{ok} retouched, {len(session) - ok} failed in this session"


def run_watch(
    settings: WatchSettings, ui: Callable[[], BatchUI], say: Callable[[str], None]
) -> int:
    """Watch until Ctrl-C (or max_idle); returns the exit code (0, 1 if a file failed, 130)."""
    folder = settings.batch.inputs[0]
    arrivals = Arrivals(settings.settle)
    observer, how = (None, "polling (--poll)")
    if not settings.poll:
        observer, how = start_events(folder, settings.batch.recursive, arrivals)
    say(f"watching by {how}")
    session: dict[Path, str] = {}  # each file's latest ok/failed this session (the last words)
    taken: dict[Path, Stamp] = {}
    said: frozenset[Path] = frozenset()
    failed = False
    last_new = time.monotonic()
    try:
        while True:
            current = _scan(folder, settings.batch.recursive)
            ready = {
                p for p in arrivals.ready(current, time.monotonic()) if taken.get(p) != current[p]
            }
            waiting = frozenset(p for p in current if p not in ready and taken.get(p) != current[p])
            if ready:
                outcome = run_batch(replace(settings.batch, exclude=waiting), ui())
                if outcome.exit_code == EXIT_INTERRUPTED:
                    return EXIT_INTERRUPTED
                if outcome.exit_code in (EXIT_USAGE, EXIT_ENVIRONMENT):  # no round can fix it
                    say(f"error: {outcome.message}")
                    return outcome.exit_code
                failed |= outcome.exit_code == EXIT_FAILED
                ended = [r for r in outcome.results if r.status in ("ok", "failed")]
                session.update((r.input, r.status) for r in ended)
                taken.update((p, current[p]) for p in ready)
                last_new = time.monotonic()
            if waiting and waiting != said:
                say(f"waiting for {len(waiting)} file(s) to finish arriving")
            said = waiting
            if waiting:  # a file still arriving is not idleness: it is waited for
                last_new = time.monotonic()
            if settings.max_idle is not None and time.monotonic() - last_new > settings.max_idle:
                say(f"stopped watching after {settings.max_idle:g} s idle: {_tally(session)}")
                return EXIT_FAILED if failed else EXIT_OK
            arrivals.wake.wait(settings.interval)
            arrivals.wake.clear()
    except KeyboardInterrupt:
        say(f"stopped watching: {_tally(session)}")
        return EXIT_INTERRUPTED
    finally:
        if observer is not None:
            observer.stop()  # stops and joins the emitter; the join waits for the dispatcher
            observer.join()
