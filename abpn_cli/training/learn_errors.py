"""What `abpn learn` raises: one base class, and a subclass per exit code it means."""

from __future__ import annotations

from pathlib import Path


class LearnError(Exception):
    """Base class: something `abpn learn` cannot do, with a message for the user."""


class LearnUsageError(LearnError):
    """Bad settings (exit 2)."""


class PairCheckError(LearnUsageError):
    """An exemplar pair cannot be learned from (exit 2)."""


class BaseModelError(LearnError):
    """The base model is missing or unreadable (exit 4)."""


class LearnInterrupted(LearnError):
    """Ctrl-C: no model file was written; `checkpoint` holds the state so far (if any)."""

    def __init__(self, message: str, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
