"""Batch retouching: walk and plan, resume journal, pipelined read/retouch/write, report."""

from abpn_cli.batch.errors import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_USAGE,
    BatchUsageError,
    NothingToProcessError,
)
from abpn_cli.batch.pipeline import run_pipelined, run_simple
from abpn_cli.batch.plan import Job, Plan, make_plan, walk_folder
from abpn_cli.batch.progress import BatchUI, ConsoleUI, RecordingUI
from abpn_cli.batch.report import FileResult, Summary, summary_line
from abpn_cli.batch.runner import BatchOutcome, run_batch
from abpn_cli.batch.settings import FORMAT_CHOICES, BatchSettings, parse_levels

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING",
    "EXIT_OK",
    "EXIT_USAGE",
    "FORMAT_CHOICES",
    "BatchOutcome",
    "BatchSettings",
    "BatchUI",
    "BatchUsageError",
    "ConsoleUI",
    "FileResult",
    "Job",
    "NothingToProcessError",
    "Plan",
    "RecordingUI",
    "Summary",
    "make_plan",
    "parse_levels",
    "run_batch",
    "run_pipelined",
    "run_simple",
    "summary_line",
    "walk_folder",
]
