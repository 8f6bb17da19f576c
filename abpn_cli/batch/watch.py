"""`abpn watch IN --out OUT`: a hot folder for tethered capture, with the batch's contract.

A file is taken once it is complete: its size and mtime have not changed for `settle`
seconds (polling, so it works on network shares where change events never arrive). Each
round with something new runs the ordinary batch over IN (`run_batch`) with the files still
arriving excluded, so everything `retouch` guarantees holds: atomic writes, the journal
(finished files are skipped, never redone), per-file isolation, the report of the whole
folder, Ctrl-C finishing or discarding the write in flight (exit 130).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from abpn_cli.batch.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BatchUsageError
from abpn_cli.batch.plan import walk_folder
from abpn_cli.batch.progress import BatchUI
from abpn_cli.batch.runner import run_batch
from abpn_cli.batch.settings import BatchSettings
from abpn_cli.imaging import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class WatchSettings:
    batch: BatchSettings  # inputs: the one hot folder
    interval: float = 2.0  # seconds between looks
    settle: float = 3.0  # a file is complete when unchanged this long
    max_idle: float | None = None  # stop after this long with nothing new (scripts, tests)

    def __post_init__(self) -> None:
        if len(self.batch.inputs) != 1 or not self.batch.inputs[0].is_dir():
            raise BatchUsageError("abpn watch takes exactly one existing folder to watch")
        if self.interval <= 0 or self.settle < 0:
            raise BatchUsageError("--interval must be positive and --settle not negative")


def _scan(folder: Path, recursive: bool) -> dict[Path, tuple[int, int]]:
    """(size, mtime_ns) of every supported photo under the folder right now."""
    found = {}
    for rel in walk_folder(folder, SUPPORTED_SUFFIXES, recursive):
        path = folder.absolute() / rel
        try:
            st = path.stat()
        except OSError:  # removed between the walk and the stat
            continue
        found[path] = (st.st_size, st.st_mtime_ns)
    return found


def run_watch(
    settings: WatchSettings, ui: Callable[[], BatchUI], say: Callable[[str], None]
) -> int:
    """Watch until Ctrl-C (or max_idle); returns the exit code (0, 1 if a file failed, 130)."""
    folder = settings.batch.inputs[0]
    stable_since: dict[Path, tuple[tuple[int, int], float]] = {}
    taken: dict[Path, tuple[int, int]] = {}
    failed = False
    last_new = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            current = _scan(folder, settings.batch.recursive)
            for path, stamp in current.items():
                if stable_since.get(path, (None, 0.0))[0] != stamp:
                    stable_since[path] = (stamp, now)
            ready = {
                p
                for p, (st, t0) in stable_since.items()
                if p in current and now - t0 >= settings.settle and taken.get(p) != st
            }
            waiting = frozenset(p for p in current if p not in ready and taken.get(p) != current[p])
            if ready:
                outcome = run_batch(replace(settings.batch, exclude=waiting), ui())
                if outcome.exit_code == EXIT_INTERRUPTED:
                    return EXIT_INTERRUPTED
                failed |= outcome.exit_code == EXIT_FAILED
                taken.update((p, current[p]) for p in ready)
                last_new = time.monotonic()
            if waiting:
                say(f"waiting for {len(waiting)} file(s) to finish arriving")
            if settings.max_idle is not None and time.monotonic() - last_new > settings.max_idle:
                return EXIT_FAILED if failed else EXIT_OK
            time.sleep(settings.interval)
    except KeyboardInterrupt:
        say("stopped watching")
        return EXIT_INTERRUPTED
