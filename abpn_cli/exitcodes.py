"""Exit codes of every abpn command (docs/PRODUCT.md): one owner, no dependencies, so the CLI
can use them without importing torch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

EXIT_OK = 0  # all done
EXIT_FAILED = 1  # some files (or a training run) failed
EXIT_USAGE = 2  # bad options or inputs
EXIT_NOTHING = 3  # nothing to process
EXIT_ENVIRONMENT = 4  # model missing/unreadable, device unavailable
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM, after finishing or discarding in-flight writes


@dataclass(frozen=True)
class ExitRule:
    """One exception a command's runner documents: the exit code it means and, for notices
    such as Ctrl-C, the plain line shown instead of `error: <message>`."""

    catch: type[BaseException] | tuple[type[BaseException], ...]
    code: int
    notice: Callable[[BaseException], str] | None = None


def rule_for(exc: BaseException, rules: Sequence[ExitRule]) -> ExitRule | None:
    """The first rule that catches `exc` (rules go from the most specific class on)."""
    return next((r for r in rules if isinstance(exc, r.catch)), None)
