"""The bounded queue between the caller and the worker.

The caller's side is a single ``deque.append`` after a length check: it never blocks and never
waits for the worker. When the queue is full the event is shed and counted by reason; nothing is
ever dropped without a count. ``deque.append`` and ``deque.popleft`` are atomic under the GIL, so
no lock is taken on the hot path; the counters of the (rare) slow paths take one.

The event count alone does not bound memory when inputs are large (100,000 queued images of
600 KB are 60 GB while the worker is behind), so events whose inputs and outputs hold at least
:data:`LARGE_EVENT_BYTES` (an array, a DataFrame, a list of arrays or of rows: see
:func:`unsized_bytes`; outputs as arrays, such as an ensemble's members) also reserve their bytes against ``max_bytes`` (under the lock: such
calls are rare and slow anyway) and are shed as ``queue_bytes_full`` beyond it; so do feedback
events of 128 labels or more (a few hundred thousand labels in one call are as large as an
image). Small events keep the lock-free path; ``capacity`` bounds them.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["EventQueue", "LARGE_EVENT_BYTES", "SHED_REASONS", "event_bytes", "unsized_bytes"]

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


#: Bytes counted per cell of a table without ``nbytes`` (a pandas or polars DataFrame) and of rows
#: given as lists: a float64's, the least such a cell holds.
CELL_BYTES = 8


def unsized_bytes(inputs: Any) -> int:
    """About the bytes of a caller's inputs without ``nbytes``, from their shape alone (no walk
    over the rows): a DataFrame's cells, or a list of arrays (a batch of images) or of rows (lists
    or dicts), counted as ``len`` times its first element.

    Without it a DataFrame or a list of images reserved nothing, and ``queue.capacity`` of them
    were held while the worker was behind (a DataFrame of 1,000 rows takes the worker some 10 ms:
    a few callers outpace it, at 160 KB an event). Such inputs may change after the call (a column
    added to the DataFrame), so :meth:`EventQueue.put` remembers what it reserved instead of
    measuring again when the event is drained."""
    kind = inputs.__class__
    if kind is list or kind is tuple:  # rows as lists (JSON-like) first: the common case, no attribute lookup
        if not inputs:
            return 0
        first = inputs[0]
        kind = first.__class__
        if kind is list or kind is tuple or kind is dict:
            return len(inputs) * len(first) * CELL_BYTES
        n = getattr(first, "nbytes", None)
        return len(inputs) * n if n.__class__ is int else 0
    shape = getattr(inputs, "shape", None)
    if shape.__class__ is tuple and len(shape) == 2:  # pandas, polars
        rows, cols = shape
        return rows * cols * CELL_BYTES if rows.__class__ is int and cols.__class__ is int else 0
    return 0


def event_bytes(event: tuple[Any, ...]) -> int:
    """Bytes a queued event holds when its inputs and outputs are large arrays (``nbytes``: numpy,
    torch, pandas Series), or when it is a feedback event of many labels (``FEEDBACK_ROW_BYTES``
    each), else 0: the amount it reserves in the byte budget."""
    kind = event[0]
    if kind == _PREDICTION:  # the caller's hot path: one comparison before the prediction's own check
        try:
            n = getattr(event[2], "nbytes", 0)
            out = getattr(event[3], "nbytes", 0)
        except Exception:  # noqa: BLE001 - the caller's object whose __getattr__ raises: no size (see put)
            return 0
        if out.__class__ is int and n.__class__ is int:
            n += out
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
    sample_rate
        Share of calls kept (``queue.sample_rate``): every way in (:meth:`Monitor.observe`, its
        ``observe_error``, the decorator, the sidecar, :class:`ForwardingMonitor`) asks
        :meth:`skip_by_sampling` or :meth:`sample_events`, so that all of them sample alike.
    seed
        Seed of the sampling draws (``seed`` of the monitor's config), for reproducible tests.
    """

    __slots__ = ("capacity", "max_bytes", "sample_rate", "reserved", "items", "closed", "_lock", "_dropped",
                 "_sampled_out", "_wake", "_sizes", "_random", "on_first_event", "on_closed")

    def __init__(self, capacity: int = 100_000, max_bytes: int = 256 * 1024 * 1024, *, sample_rate: float = 1.0,
                 seed: int | None = None) -> None:
        if int(capacity) < 1:
            raise ValueError(f"queue capacity must be a positive integer, got {capacity!r}")
        if int(max_bytes) < 1:
            raise ValueError(f"queue max_bytes must be a positive integer, got {max_bytes!r}")
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
        self.capacity = int(capacity)
        self.max_bytes = int(max_bytes)
        self.sample_rate = float(sample_rate)
        self._random = random.Random(seed).random
        #: Bytes of the large events now queued (written under the lock).
        self.reserved = 0
        self.items: deque[Any] = deque()
        self.closed = False
        self._lock = threading.Lock()
        self._dropped: dict[str, int] = {}
        self._sampled_out = 0
        self._wake = threading.Event()
        #: id of a large event queued by :meth:`put` -> the bytes it reserved (given back when it is
        #: drained, whatever its inputs have become since)
        self._sizes: dict[int, int] = {}
        #: called once, before the next event is queued, then cleared: a forked child's monitor
        #: starts its threads when it is first used (see :meth:`after_fork`)
        self.on_first_event: Callable[[], None] | None = None
        #: called with each event refused because the queue is closed (the monitor says the first)
        self.on_closed: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def put(self, event: Any) -> bool:
        """Enqueue without blocking; returns False (and counts why) when the event is shed."""
        if self.on_first_event is not None:
            self._first_event()
        if event[0] == _PREDICTION:  # the caller's hot path: one attribute read for an array's inputs
            try:
                n = getattr(event[2], "nbytes", None)
                if n is None:
                    n = unsized_bytes(event[2])
                out = getattr(event[3], "nbytes", 0)  # outputs too: an ensemble's (rows, members, classes)
            except Exception:  # noqa: BLE001 - the caller's object whose __getattr__ raises: no size, as one without
                n = out = 0  # nbytes (the event was lost, counted as the monitor's internal_error)
            if out.__class__ is int and n.__class__ is int:
                n += out
            size = n if n.__class__ is int and n >= LARGE_EVENT_BYTES else 0
        else:
            size = event_bytes(event)
        if size:
            if not self.reserve(size):
                return False
            self._sizes[id(event)] = size  # the event is alive while queued: its id is its own
        if len(self.items) < self.capacity and not self.closed:
            self.items.append(event)
            return True
        if size:
            self._sizes.pop(id(event), None)
            self.release(size)
        if self.closed:
            self.drop("closed")
            if self.on_closed is not None:
                self.on_closed()
        else:
            self.drop("queue_full")
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

    def skip_by_sampling(self) -> bool:
        """Whether this call is left out by the sampling rate (then counted as sampled out).

        A call the model answered and one where it raised are sampled alike: were errors always
        kept, errors over calls would read ten times the model's error rate at ``sample_rate``
        0.1. Callers on a hot path test ``sample_rate < 1`` first and skip the call entirely."""
        if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
            self.sampled_out()
            return True
        return False

    def sample_events(self, events: list[Any]) -> list[Any]:
        """The events of a batch the sampling rate keeps, the others counted as sampled out.
        Feedback is always kept: a label dropped here would leave its prediction unlabelled."""
        if self.sample_rate >= 1.0:
            return events
        rand, rate = self._random, self.sample_rate
        keep = [e for e in events if e[0] == _FEEDBACK or rand() < rate]
        if len(keep) < len(events):
            self.sampled_out(len(events) - len(keep))
        return keep

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
            sizes = self._sizes
            # what put() reserved; the events a server enqueued in bulk are measured again
            freed = sum([sizes.pop(id(e), None) or event_bytes(e) for e in out]) if sizes else sum(map(event_bytes, out))
            if freed:
                self.release(freed)
        return out

    def after_fork(self) -> None:
        """In a forked child: the events queued are the parent's (its worker processes them), and
        a lock a parent's thread held at the fork would stay held for good, blocking every caller
        of large inputs; so the child starts empty, with a fresh lock and wake-up event."""
        self.items.clear()
        self._sizes.clear()
        self.reserved = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def _first_event(self) -> None:
        with self._lock:
            start, self.on_first_event = self.on_first_event, None
        if start is not None:
            start()

    def wake(self) -> None:
        """Ask the worker to drain now instead of at its next poll (used when it stops)."""
        self._wake.set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when :meth:`wake` was called."""
        woken = self._wake.wait(timeout)
        self._wake.clear()
        return woken
