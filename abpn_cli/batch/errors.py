"""Errors and exit codes of a batch run (the numbers are part of the public contract)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING = 3
EXIT_ENVIRONMENT = 4
EXIT_INTERRUPTED = 130


class BatchUsageError(ValueError):
    """The invocation itself is wrong or unsafe (exit 2): nothing has been written."""


class NothingToProcessError(Exception):
    """No supported photo was found in the inputs (exit 3)."""


class OutputLockedError(Exception):
    """Another abpn run holds the lock on OUT (exit 4: the environment is busy)."""
