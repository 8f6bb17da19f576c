"""Errors and exit codes of a batch run (the numbers are part of the public contract)."""

from __future__ import annotations

from abpn_cli.exitcodes import (  # noqa: F401  (re-exported for the batch package)
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_USAGE,
)


class BatchUsageError(ValueError):
    """The invocation itself is wrong or unsafe (exit 2): nothing has been written."""


class NothingToProcessError(Exception):
    """No supported photo was found in the inputs (exit 3)."""


class BatchEnvironmentError(Exception):
    """The machine or cluster cannot run the batch (exit 4), found before any file was sent."""


class UnsafeWriteError(Exception):
    """Writing here would replace an input: refused, whatever the plan said."""
