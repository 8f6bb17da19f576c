"""What the user sees of a batch: while it runs, a rich bar on a TTY, one plain line per file
otherwise (cron logs), only errors with --quiet (called from several threads); once it has
returned, its outcome and `retouch --review`'s page."""

from __future__ import annotations

import shlex
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from abpn_cli.batch.report import FileResult, counted, summary_line
from abpn_cli.batch.review import ReviewError, ReviewSettings, run_review
from abpn_cli.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:  # the runner imports this module
    from abpn_cli.batch.dustmap import DustMapNote
    from abpn_cli.batch.runner import BatchOutcome


class BatchUI(Protocol):
    """The batch reports through this; tests can pass a recorder."""

    def warn(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...
    def plan_line(self, source: str, output: str, label: str) -> None: ...
    def start(self, total: int, skipped: int) -> None: ...
    def started(self, source: str) -> None: ...
    def tiles(self, source: str, done: int, total: int) -> None: ...
    def finished(self, result: FileResult, source: str) -> None: ...
    def close(self) -> None: ...


class _RateColumn(ProgressColumn):
    """Files and megapixels per second since the start (the ETA uses rich's own estimate)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not task.completed or elapsed <= 0:
            return Text("-.-- img/s", style="progress.data.speed")
        mp = task.fields.get("megapixels", 0.0)
        return Text(
            f"{task.completed / elapsed:.2f} img/s {mp / elapsed:.1f} MP/s {mp:.0f} MP",
            style="progress.data.speed",
        )


class ConsoleUI:
    """Plain lines go to stderr (stdout carries only the dry-run plan)."""

    def __init__(
        self,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        tty: bool | None = None,
    ) -> None:
        self.quiet = quiet
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.tty = self.stderr.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._task = None
        self._total = 0
        self._done = 0
        self._megapixels = 0.0

    def _line(self, text: str, stream: TextIO) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                stream.write(text + "\n")
                stream.flush()

    def warn(self, message: str) -> None:
        if not self.quiet:
            self._line(f"warning: {message}", self.stderr)

    def error(self, message: str) -> None:
        self._line(f"error: {message}", self.stderr)

    def plan_line(self, source: str, output: str, label: str) -> None:
        if not self.quiet:
            self._line(f"{label:<13} {source} -> {output}", self.stdout)

    def start(self, total: int, skipped: int) -> None:
        self._total = total
        if self.quiet:
            return
        if skipped:
            self._line(f"{skipped} file(s) already done with these settings: skipped", self.stderr)
        if self.tty and total:
            progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[current]}", style="dim"),
                console=Console(file=self.stderr),
                transient=False,
            )
            self._task = progress.add_task("retouching", total=total, current="", megapixels=0.0)
            progress.start()
            self._progress = progress

    def started(self, source: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, current=source)

    def tiles(self, source: str, done: int, total: int) -> None:
        """The current file's own progress: full-resolution tiles done (a 6K frame takes s)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, current=f"{source}  tile {done}/{total}")

    def finished(self, result: FileResult, source: str) -> None:
        with self._lock:
            self._done += 1
            done = self._done
            if result.width and result.height:
                self._megapixels += result.width * result.height / 1e6
        count = f"[{done:>{len(str(self._total))}}/{self._total}]"
        if result.status == "failed":
            prefix = "" if self.quiet or self._progress is not None else f"{count} "
            self._line(f"{prefix}failed: {source}: {result.error}", self.stderr)
        elif not self.quiet and self._progress is None:
            on = f" on {result.worker}" if result.worker else ""  # --cluster ray
            profile = (result.edit.profile or {}) if result.edit else {}
            if "spots" in profile:  # --dust-profile
                on += f", {counted(profile['spots'], 'sensor dust spot')} divided out"
            if result.damaged:  # --accept-damaged: say it where the file is named
                on += ", damaged input"
            self._line(
                f"{count} {result.status:<7} {source} -> {result.output} "
                f"({result.seconds:.2f} s{on})",
                self.stderr,
            )
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, megapixels=self._megapixels)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                if self._task is not None:  # the bar stays on screen: no stale "tile k/n"
                    self._progress.update(self._task, current="")
                self._progress.stop()
                self._progress = None


class RecordingUI:
    """Collects messages instead of printing (tests, library use)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def _add(self, text: str) -> None:
        with self._lock:
            self.lines.append(text)

    def warn(self, message: str) -> None:
        self._add(f"warning: {message}")

    def error(self, message: str) -> None:
        self._add(f"error: {message}")

    def plan_line(self, source: str, output: str, label: str) -> None:
        self._add(f"{label} {source} -> {output}")

    def start(self, total: int, skipped: int) -> None:
        self._add(f"start {total} {skipped}")

    def started(self, source: str) -> None:
        pass

    def tiles(self, source: str, done: int, total: int) -> None:
        pass

    def finished(self, result: FileResult, source: str) -> None:
        self._add(f"{result.status} {source} {result.error or ''}".rstrip())

    def close(self) -> None:
        pass


def _say(text: str, stream: TextIO) -> None:
    stream.write(text + "\n")
    stream.flush()


def show_outcome(outcome: BatchOutcome, quiet: bool) -> None:
    """The run's message (as an error when it failed) and, unless quiet, its summary line."""
    if outcome.exit_code and outcome.message:
        _say(f"error: {outcome.message}", sys.stderr)
    elif not quiet and outcome.message:
        _say(outcome.message, sys.stderr)
    if (
        not quiet
        and outcome.summary is not None
        and outcome.exit_code in (EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED)
    ):
        _say(summary_line(outcome.summary), sys.stdout)
    if not quiet and outcome.dust_map is not None and outcome.dust_map.recurring:
        _say(dust_map_line(outcome.dust_map), sys.stdout)


def dust_map_line(note: DustMapNote) -> str:
    """Where the shoot's recurring dust is and, without a profile, how to take it out of the
    frames where the model missed it (the model sees a spot on texture only now and then)."""
    n = note.recurring
    spots = "spot recurs" if n == 1 else "spots recur"
    line = (
        f"dust map: {n} {spots} across the {note.frames} frames ({note.image}): sensor dust, "
        "clean the sensor there"
    )
    if note.profiled:
        return line
    shoot = " ".join(shlex.quote(str(p)) for p in note.inputs) or "SHOOT"
    return (
        f"{line}; `abpn dust-profile {shoot} --learn -o shoot.npz`, then this retouch again "
        f"with `--dust-profile shoot.npz`, takes it out of every frame, also where the model "
        f"missed it"
    )


def review_after_batch(out: Path, report: Path | None, quiet: bool) -> None:
    """`retouch --review`: the page over the batch just run; a problem with it is shown but
    leaves the batch's exit code as it is (the outputs are written)."""
    try:
        page = run_review(ReviewSettings(out=out, report=report)).page
    except ReviewError as exc:
        _say(f"error: {exc}", sys.stderr)
        return
    if not quiet:
        _say(f"review: {page}", sys.stdout)
