"""What the user sees while training commands run (the batch's own is `batch/progress.py`):
a rich bar on a TTY and, in logs, a plain line every so often; the closing lines each command
prints. Renderers only: they read events and reports, they decide nothing."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:  # the renderers never need torch themselves
    from abpn_cli.training.dust_train import ValScore
    from abpn_cli.training.eval_report import EvalReport
    from abpn_cli.training.evaluate import FileResult
    from abpn_cli.training.learn import LearnEvent, LearnReport
    from abpn_cli.training.trainer import TrainEvent, TrainReport

PLAIN_EVERY_STEPS = 10  # `abpn train` without a TTY: one line per this many steps
PLAIN_EVERY_S = 15.0  # `abpn learn` without a TTY: one line per this many seconds


class _BarConsole:
    """A rich bar that is shown only on a terminal; usable as a context manager."""

    def __init__(self, first: ProgressColumn, last: ProgressColumn, console: Console | None):
        self.console = console or Console()
        self.tty = self.console.is_terminal
        self.bar = Progress(
            first,
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            last,
            console=self.console,
            disable=not self.tty,
        )

    def __enter__(self) -> _BarConsole:
        self.bar.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.__exit__(kind, exc, tb)

    def _line(self, text: str) -> None:
        self.bar.console.print(text, highlight=False, soft_wrap=True)


class TrainConsole(_BarConsole):
    """`abpn train`: steps on the bar, validations and interrupts as lines."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(
            TextColumn("step {task.completed}/{task.total}"), TimeRemainingColumn(), console
        )
        self.task = self.bar.add_task("train", total=None, info="")

    def show(self, ev: TrainEvent) -> None:
        """The trainer's progress callback."""
        loss = " ".join(f"{k} {v:.4f}" for k, v in ev.losses.items())
        if ev.kind == "step":
            info = f"{loss} | {ev.steps_per_s:.2f} it/s lr {ev.lr:.1e}"
            self.bar.update(self.task, completed=ev.step, total=ev.total_steps, info=info)
            if not self.tty and (ev.step % PLAIN_EVERY_STEPS == 0 or ev.step == ev.total_steps):
                eta = f"{ev.eta_s / 60:.1f} min"
                print(f"step {ev.step}/{ev.total_steps} {info} eta {eta}", flush=True)
        elif ev.kind == "val" and ev.val is not None:
            v = ev.val
            self._line(
                f"val @ {v.step}: PSNR input {v.psnr_input:.2f} dB -> output "
                f"{v.psnr_output:.2f} dB, change outside edits {v.locality_255:.2f}/255 "
                f"({v.preview})"
            )
        elif ev.kind == "checkpoint" and not self.tty:
            print(f"checkpoint @ {ev.step}: {ev.path}", flush=True)
        elif ev.kind == "start":
            self.bar.update(self.task, completed=ev.step, total=ev.total_steps)
        elif ev.kind == "interrupted":
            self._line(f"interrupted at step {ev.step}; saved {ev.path}; --resume to go on")


class LearnConsole(_BarConsole):
    """`abpn learn`: the time budget (or steps) on the bar, status lines as they come."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(TextColumn("{task.description}"), TimeElapsedColumn(), console)
        self.task = self.bar.add_task("learn", total=None, info="")
        self._last_print = 0.0

    def show(self, ev: LearnEvent) -> None:
        """The learner's progress callback."""
        if ev.kind != "step":
            self._line(ev.message)
            return
        info = f"step {ev.step} loss {ev.losses.get('total', 0):.4f} lr {ev.lr:.0e}"
        if ev.budget_s is not None:
            self.bar.update(self.task, completed=min(ev.elapsed_s, ev.budget_s), total=ev.budget_s)
        else:
            self.bar.update(self.task, completed=ev.step, total=ev.total_steps)
        self.bar.update(self.task, info=info)
        if not self.tty and ev.elapsed_s - self._last_print >= PLAIN_EVERY_S:
            self._last_print = ev.elapsed_s
            print(f"{ev.elapsed_s:5.0f} s  {info}", flush=True)


def train_summary(report: TrainReport) -> str:
    """The closing line of `abpn train`."""
    val = report.val
    saved = f"model {report.model_path}" if report.model_path else f"{report.checkpoint}"
    return (
        f"{report.steps_done}/{report.total_steps} steps in {report.wall_s / 60:.1f} min "
        f"({report.s_per_step:.2f} s/step); "
        + (f"val PSNR {val.psnr_input:.2f} -> {val.psnr_output:.2f} dB; " if val else "")
        + saved
    )


def learn_summary(report: LearnReport) -> str:
    """The closing lines of `abpn learn`: the held-out score and how to use the model."""
    h = report.heldout
    score = (
        f"; held out {h.pair}: {h.psnr_nothing:.2f} dB nothing, {h.psnr_base:.2f} dB base, "
        f"{h.psnr_learned:.2f} dB learned"
        if h is not None and h.psnr_learned is not None
        else ""
    )
    return (
        f"learned {report.steps} steps in {report.seconds / 60:.1f} min{score}\n"
        f"wrote {report.model_path} (sha256 {report.model_sha256}) and {report.card_path}; "
        f"use it with: abpn retouch --model {report.model_path} ..."
    )


def dust_summary(score: ValScore | None) -> str | None:
    """The closing line of `abpn train-dust` (none when nothing was validated)."""
    if score is None:
        return None
    return f"last validation: {100 * (1 - score.left):.1f} % of the dust error removed"


def eval_file_line(result: FileResult) -> str:
    """`abpn eval`'s line per scored file (stderr, so stdout carries only the table)."""
    r = result
    return f"{r.name}: PSNR {r.psnr_in:.2f} -> {r.psnr_out:.2f} dB ({r.seconds:.2f} s)"


def eval_table(result: EvalReport) -> Table:
    """`abpn eval`'s table: a row per file and the mean."""
    from abpn_cli.training import eval_report as rep

    table = Table(*rep.TABLE_COLUMNS, title=f"abpn eval: {result.settings['method']}")
    for f in result.files:
        table.add_row(*rep.file_row(f))
    table.add_row(*rep.summary_row(result.summary), style="bold")
    return table
