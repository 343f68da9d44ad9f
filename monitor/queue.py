"""The bounded queue between the caller and the worker.

The caller's side is a single ``deque.append`` after a length check: it never blocks and never
waits for the worker. When the queue is full the event is shed and counted by reason; nothing is
ever dropped without a count. ``deque.append`` and ``deque.popleft`` are atomic under the GIL, so
no lock is taken on the hot path; the counters of the (rare) slow paths take one.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["EventQueue"]


class EventQueue:
    """A bounded FIFO of raw events.

    Parameters
    ----------
    capacity
        Events held at most; further events are shed (``queue_full``) until the worker drains.
    """

    __slots__ = ("capacity", "items", "closed", "_lock", "_dropped", "_sampled_out", "_wake")

    def __init__(self, capacity: int = 100_000) -> None:
        if int(capacity) < 1:
            raise ValueError(f"queue capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.items: deque[Any] = deque()
        self.closed = False
        self._lock = threading.Lock()
        self._dropped: dict[str, int] = {}
        self._sampled_out = 0
        self._wake = threading.Event()

    def __len__(self) -> int:
        return len(self.items)

    def put(self, event: Any) -> bool:
        """Enqueue without blocking; returns False (and counts why) when the event is shed."""
        if len(self.items) < self.capacity and not self.closed:
            self.items.append(event)
            return True
        self.drop("closed" if self.closed else "queue_full")
        return False

    def drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + n

    def sampled_out(self, n: int = 1) -> None:
        with self._lock:
            self._sampled_out += n

    def counters(self) -> tuple[dict[str, int], int]:
        """Totals since creation: dropped by reason, and sampled out."""
        with self._lock:
            return dict(self._dropped), self._sampled_out

    def drain(self, max_items: int) -> list[Any]:
        """Take up to ``max_items`` events, oldest first (worker side)."""
        out = []
        pop = self.items.popleft
        try:
            for _ in range(max_items):
                out.append(pop())
        except IndexError:
            pass
        return out

    def wake(self) -> None:
        """Ask the worker to drain now instead of at its next poll (used by flush and when full)."""
        self._wake.set()

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()
