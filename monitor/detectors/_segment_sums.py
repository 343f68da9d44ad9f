"""A detector's windowed sums again, one block per segment: the sliced view of its figures.

A detector that keeps its figures as sums in flat sliding windows (see
:func:`monitor.detectors._accumulate.accumulate`) gets them per segment by adding the same
per-row contributions a second time, at ``field * slots + segment`` in a window ``slots`` times
as wide: the per-segment figures are then the same arithmetic on a column of the totals. The
segment of each row is mapped to a slot by :class:`~monitor.detectors._segment_slots.SegmentSlots`
(first ``cap`` values, later ones folded into ``other`` and counted), so that a detector slices
its figures with the same cap, names and overflow rule as the segments detector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.detectors._accumulate import Part, accumulate
from monitor.detectors._segment_slots import SegmentSlots
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SegmentSums"]


class SegmentSums:
    """Per-segment sliding-window sums of a few named windows.

    Parameters
    ----------
    cap
        Distinct segment values given a block of their own (the monitor's ``segment_cap``).
    window_s, n_slots
        The owner's sliding event-time window and its resolution.
    widths
        Fields per segment of each named window (e.g. ``{"pred": 2, "labels": 9}``).

    Examples
    --------
    >>> sums = SegmentSums(2, 60.0, 6, {"pred": 2})
    >>> seg = np.array(["eu", "us", "eu", "asia"], dtype=object)
    >>> sums.add("pred", np.array([1.0, 2.0, 3.0, 4.0]), seg, [(0, 1.0), (1, np.array([1.0, 2.0, 3.0, 4.0]))])
    >>> sums.names, sums.totals("pred").tolist()   # rows and sum of values per segment, "other" last
    (('eu', 'us', 'other'), [[2.0, 1.0, 1.0], [4.0, 2.0, 4.0]])
    >>> sums.slots.take_overflow()   # "asia" came after the cap: counted once, as a row
    1
    """

    def __init__(self, cap: int, window_s: float, n_slots: int, widths: "Mapping[str, int]") -> None:
        self.slots = SegmentSlots(cap)
        self.widths = dict(widths)
        s = self.slots.size
        self.windows = {name: SlidingWindow(window_s, (w * s,), n_slots) for name, w in self.widths.items()}

    @property
    def names(self) -> tuple[str, ...]:
        """Learned segment names, then ``other``."""
        return self.slots.names

    def add(self, name: str, ts: np.ndarray, segments: np.ndarray, parts: list[Part], rows: bool = True) -> None:
        """Add the owner's per-row ``parts`` to window ``name``, each row in its segment's block.

        Each part's position is a field index (an int: one figure per row); its weights a scalar
        or one per row. ``rows``: the rows are predictions, whose overflow into ``other`` is
        counted (labels belong to rows counted when they were predicted). The parts go in as one
        contribution, ``(field, row)`` flattened, so that the segments cost one ``bincount`` per
        batch rather than one per figure (which doubled the update path's cost at 256 rows)."""
        n = len(ts)
        if n == 0:
            return
        seg = self.slots.assign(segments, rows)
        s = self.slots.size
        weights = np.empty((len(parts), n))
        for k, (_, w) in enumerate(parts):
            weights[k] = w
        fields = np.array([int(pos) for pos, _ in parts], dtype=np.int64)  # type: ignore[call-overload]
        positions = (fields[:, None] * s + seg[None, :]).ravel()
        span = (float(ts.min()), float(ts.max()))
        accumulate(self.windows[name], np.tile(ts, len(parts)), [(positions, weights.ravel())], span)

    def advance(self, now: float) -> None:
        for w in self.windows.values():
            w.advance(now)

    def totals(self, name: str) -> np.ndarray:
        """Window ``name``'s sums as ``(fields, segments)``: one column per slot, ``other`` last."""
        return self.windows[name].total().reshape(self.widths[name], self.slots.size)

    def state_dict(self) -> dict[str, Any]:
        return {"windows": {name: w.state_dict() for name, w in self.windows.items()}, **self.slots.state_dict()}

    def load_state_dict(self, state: "Mapping[str, Any]") -> bool:
        """Restore, or start empty (False) when the state was saved with another layout (another
        ``segment_cap``, other quantile levels): the per-segment figures then refill within one
        window instead of the whole checkpoint being refused (which would lose every figure)."""
        saved = state.get("windows", {})
        fresh = {name: SlidingWindow(w.window_s, w.shape, w.n_slots) for name, w in self.windows.items()}
        slots = SegmentSlots(self.slots.cap)
        try:
            for name, w in fresh.items():
                w.load_state_dict(saved[name])
            slots.load_state_dict(dict(state))
        except (KeyError, ValueError):
            return False
        self.windows, self.slots = fresh, slots
        return True
