"""The bounded queue between the caller and the worker.

The caller's side is a single ``deque.append`` after a length check: it never blocks and never
waits for the worker. When the queue is full the event is shed and counted by reason; nothing is
ever dropped without a count. ``deque.append`` and ``deque.popleft`` are atomic under the GIL, so
no lock is taken on the hot path; the counters of the (rare) slow paths take one.

The event count alone does not bound memory when inputs are large (100,000 queued images of
600 KB are 60 GB while the worker is behind), so events whose inputs are an array of at least
:data:`LARGE_EVENT_BYTES` also reserve their bytes against ``max_bytes`` (under the lock: such
calls are rare and slow anyway) and are shed as ``queue_bytes_full`` beyond it; so do feedback
events of 128 labels or more (a few hundred thousand labels in one call are as large as an
image). Small events keep the lock-free path; ``capacity`` bounds them.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["EventQueue", "LARGE_EVENT_BYTES", "SHED_REASONS", "event_bytes"]

#: Every reason a monitor's queue counts a shed event under (``monitor_events_dropped_total``):
#: full (``queue_full``, ``queue_bytes_full``), closed, the decorator's extractor raising
#: (``extractor_error``, ``monitor.decorator.EXTRACTOR_ERROR``), a failure inside the monitor
#: (``internal_error``), a timestamp that is not a time (``invalid_timestamp``). The monitor exports
#: each at 0 from its start, so that the first shed event is an increase a rule sees (a counter
#: born at 1 is none); a test keeps this list complete.
SHED_REASONS: tuple[str, ...] = ("queue_full", "queue_bytes_full", "closed", "extractor_error", "internal_error",
                                 "invalid_timestamp")

#: Inputs of at least this many bytes are accounted against the queue's byte budget.
LARGE_EVENT_BYTES = 16 * 1024
_PREDICTION = 0  # monitor.events.PREDICTION, without importing it on the hot path


_FEEDBACK = 2  # monitor.events.FEEDBACK
#: What one label of a queued feedback event holds, about: its request id and label as Python
#: objects, and the two list slots that point at them.
FEEDBACK_ROW_BYTES = 128


def event_bytes(event: tuple[Any, ...]) -> int:
    """Bytes a queued event holds when its inputs are a large array (``nbytes``: numpy, torch,
    pandas Series), or when it is a feedback event of many labels (``FEEDBACK_ROW_BYTES`` each),
    else 0: the amount it reserves in the byte budget."""
    kind = event[0]
    if kind == _PREDICTION:  # the caller's hot path: one comparison before the prediction's own check
        n = getattr(event[2], "nbytes", 0)
        return n if n.__class__ is int and n >= LARGE_EVENT_BYTES else 0
    if kind == _FEEDBACK:
        try:
            n = len(event[2]) * FEEDBACK_ROW_BYTES
        except TypeError:
            return 0
        return n if n >= LARGE_EVENT_BYTES else 0
    return 0


class EventQueue:
    """A bounded FIFO of raw events.

    Parameters
    ----------
    capacity
        Events held at most; further events are shed (``queue_full``) until the worker drains.
    max_bytes
        Bytes of large inputs held at most (see the module notes); further large events are shed
        (``queue_bytes_full``).
    """

    __slots__ = ("capacity", "max_bytes", "reserved", "items", "closed", "_lock", "_dropped", "_sampled_out", "_wake")

    def __init__(self, capacity: int = 100_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        if int(capacity) < 1:
            raise ValueError(f"queue capacity must be a positive integer, got {capacity!r}")
        if int(max_bytes) < 1:
            raise ValueError(f"queue max_bytes must be a positive integer, got {max_bytes!r}")
        self.capacity = int(capacity)
        self.max_bytes = int(max_bytes)
        #: Bytes of the large events now queued (written under the lock).
        self.reserved = 0
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
        size = event_bytes(event)
        if size and not self.reserve(size):
            return False
        if len(self.items) < self.capacity and not self.closed:
            self.items.append(event)
            return True
        if size:
            self.release(size)
        self.drop("closed" if self.closed else "queue_full")
        return False

    def reserve(self, size: int, events: int = 1) -> bool:
        """Take ``size`` bytes of the budget for large events about to be queued; False (the
        ``events`` counted as shed) when they do not fit."""
        with self._lock:
            if self.reserved + size > self.max_bytes:
                self._dropped["queue_bytes_full"] = self._dropped.get("queue_bytes_full", 0) + events
                return False
            self.reserved += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.reserved -= size

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
        if self.reserved:  # large events were queued: give their bytes back
            freed = sum(event_bytes(e) for e in out)
            if freed:
                self.release(freed)
        return out

    def after_fork(self) -> None:
        """In a forked child: the events queued are the parent's (its worker processes them), and
        a lock a parent's thread held at the fork would stay held for good, blocking every caller
        of large inputs; so the child starts empty, with a fresh lock and wake-up event."""
        self.items.clear()
        self.reserved = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def wake(self) -> None:
        """Ask the worker to drain now instead of at its next poll (used when it stops)."""
        self._wake.set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when :meth:`wake` was called."""
        woken = self._wake.wait(timeout)
        self._wake.clear()
        return woken
