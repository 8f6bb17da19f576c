"""Stopping a batch: Ctrl-C / SIGTERM, 'disk full', internal errors — one flag, one reason.

Signals only set the flag, so a write in progress always finishes (atomically) and the
report still gets written. The one exception is work that can be thrown away safely (the
model computing on a frame, planning, loading): inside `abortable()` a signal also raises
KeyboardInterrupt so a long computation does not delay the exit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

INTERRUPTED = "interrupted"
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopControl:
    def __init__(self) -> None:
        self.event = threading.Event()
        self._reason: str | None = None
        self._lock = threading.Lock()
        self._abortable = False
        self.signals_seen = 0

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    @property
    def reason(self) -> str | None:
        return self._reason

    def request(self, reason: str) -> None:
        """Ask every stage to stop; the first reason is the one reported."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
        self.event.set()

    @contextlib.contextmanager
    def abortable(self) -> Iterator[None]:
        """Mark main-thread work that a signal may abort with KeyboardInterrupt."""
        self._abortable = True
        try:
            yield
        finally:
            self._abortable = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals_seen += 1
        self.request(INTERRUPTED)
        if self._abortable:
            self._abortable = False  # a second signal must not raise inside the handler code
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def signals_installed(self) -> Iterator[None]:
        """Route SIGINT/SIGTERM here for the duration (main thread only), then restore."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
