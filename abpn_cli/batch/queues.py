"""A queue bounded by bytes as well as items, so 6K 16-bit frames cannot exhaust RAM.

A single item larger than the byte budget is still admitted when the queue is empty (else a
huge frame would deadlock the pipeline); so at most max(budget, one frame) is held.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1  # how often blocked calls look at the cancel event


class Closed:
    """Returned by `get` once the queue is closed and drained (or the wait was cancelled)."""


CLOSED = Closed()


class ByteBoundedQueue(Generic[T]):
    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("queue bounds must be positive")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._closed = False
        self._cond = threading.Condition()
        self.peak_bytes = 0

    def _has_room(self, nbytes: int) -> bool:
        if not self._items:
            return True
        return len(self._items) < self.max_items and self._bytes + nbytes <= self.max_bytes

    def put(self, item: T, nbytes: int, cancel: threading.Event | None = None) -> bool:
        """Block until there is room; False (item dropped) if closed or cancelled."""
        with self._cond:
            while not self._has_room(nbytes):
                if self._closed or (cancel is not None and cancel.is_set()):
                    return False
                self._cond.wait(POLL_SECONDS)
            if self._closed or (cancel is not None and cancel.is_set()):
                return False
            self._items.append((item, nbytes))
            self._bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self._cond.notify_all()
            return True

    def get(self, cancel: threading.Event | None = None) -> T | Closed:
        """Next item; CLOSED when closed and empty, or when `cancel` is set while waiting."""
        with self._cond:
            while not self._items:
                if self._closed or (cancel is not None and cancel.is_set()):
                    return CLOSED
                self._cond.wait(POLL_SECONDS)
            item, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more puts; getters drain what is left, then see CLOSED."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self) -> list[T]:
        """Remove and return everything queued (used to discard work on a stop)."""
        with self._cond:
            items = [item for item, _n in self._items]
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()
            return items

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
