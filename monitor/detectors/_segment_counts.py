"""A detector's count vector kept once per segment, over a sliding event-time window.

The label-free tests against the reference (confidence drift, prediction drift, output
diversity) read one vector of counts over the window: histogram bins of the max probability and
the entropy, or predicted-class counts. Sliced by ``segment`` (``by_segment: true``), each
segment gets its own copy of that vector, laid out segment after segment in one flat
:class:`~monitor.windows.SlidingWindow` (position ``slot * width + i``), so that one
:func:`~monitor.detectors._accumulate.accumulate` call per batch fills every segment.

Segment values get their slots from a :class:`~monitor.detectors._segment_slots.SegmentSlots`
of their own (the same cap and, for the same batches, the same names as the segments
detector's). Overflow into ``other`` is not counted here: the segments detector counts it in
``monitor_segment_overflow_rows``, and counting it again would double that counter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.detectors._accumulate import Part, accumulate
from monitor.detectors._segment_slots import SegmentSlots
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch

__all__ = ["SegmentCounts", "segment_values"]


def segment_values(batch: "Batch", n: int) -> np.ndarray:
    """The batch's segment column (``None`` for rows without one: the segment ``unset``)."""
    seg = getattr(batch, "segment", None)
    if seg is None:
        out = np.empty(n, dtype=object)
        out[:] = None
        return out
    return seg


class SegmentCounts:
    """Per-segment copies of a ``width``-long count vector over a sliding window.

    Parameters
    ----------
    cap
        Distinct segment values with a slot of their own; later values share ``other``.
    width
        Length of the vector each segment keeps (bins, classes).
    window_s, n_slots
        The owner's sliding event-time window and its resolution.

    >>> counts = SegmentCounts(cap=3, width=3, window_s=60.0, n_slots=6)
    >>> counts.add(np.array(["eu", "us", "eu", None], dtype=object), np.array([1.0, 2.0, 3.0, 4.0]),
    ...            [np.array([0, 2, 0, 1])])
    >>> counts.names, counts.totals().tolist()
    (('eu', 'us', 'unset', 'other'), [[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    """

    def __init__(self, cap: int, width: int, window_s: float, n_slots: int) -> None:
        self.width = int(width)
        self.slots = SegmentSlots(cap)
        self.window = SlidingWindow(window_s, (self.slots.size * self.width,), n_slots)

    @property
    def names(self) -> tuple[str, ...]:
        """Every slot's segment name, ``other`` last: the series a detector writes or removes
        (all of them at each export, so that a segment whose rows left the window loses its
        figures instead of keeping stale ones)."""
        return self.slots.names

    def add(self, segments: np.ndarray, ts: np.ndarray, positions: list[np.ndarray], span: tuple[float, float] | None = None) -> None:
        """Count each row at each of its ``positions`` (indices into the width) in its segment's copy."""
        # rows=False: overflow into "other" is the segments detector's to count, not this one's
        base = self.slots.assign(segments, rows=False) * self.width
        parts: list[Part] = [(base + pos, 1.0) for pos in positions]
        accumulate(self.window, ts, parts, span)

    def advance(self, now: float) -> None:
        self.window.advance(now)

    def totals(self) -> np.ndarray:
        """Window totals, one row per name of :attr:`names` (the learned segments, then ``other``,
        whose slot is the last whatever the number learned)."""
        t = self.window.total().reshape(self.slots.size, self.width)
        return t[list(range(self.slots.learned)) + [self.slots.cap]]

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window.state_dict(), "slots": self.slots.state_dict()}

    def load_state_dict(self, state: dict[str, Any] | None) -> bool:
        """Restore a saved state; False (and left empty, to refill over one window) when there is
        none (saved before ``by_segment`` or with it off) or it was saved with another segment cap
        or layout (its slots would not line up with this detector's)."""
        if state is None or np.shape(state["window"]["data"])[1:] != self.window.shape:
            return False
        self.window.load_state_dict(state["window"])
        self.slots.load_state_dict(state["slots"])
        return True
