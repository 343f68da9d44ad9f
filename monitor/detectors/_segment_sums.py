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

from monitor.detectors._accumulate import Part, PendingRows
from monitor.detectors._segment_slots import SegmentSlots
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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

    Rows are mapped to their segment's slot as they come (slots are learned in that order and the
    overflow is counted then) but reach the windows in bulk, held as :class:`PendingRows` until
    2,048 wait or the sums are read: adding a batch to a window costs a dozen array operations
    whatever its size, which at 32 rows per batch doubled the regression detector's update cost
    when paid per batch. :meth:`totals` and :meth:`state_dict` fold the held rows first.

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
        # held rows per window and layout of contributions: (field, scalar weight or None) per part
        self._pending: dict[tuple[str, tuple[tuple[int, float | None], ...]], PendingRows] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """Learned segment names, then the overflow's ``other`` (see :attr:`SegmentSlots.names`)."""
        return self.slots.names

    def add(self, name: str, ts: np.ndarray, segments: np.ndarray, parts: list[Part], rows: bool = True) -> None:
        """Add the owner's per-row ``parts`` to window ``name``, each row in its segment's block.

        Each part's position is a field index (an int: one figure per row); its weights a scalar
        or one per row. ``rows``: the rows are predictions, whose overflow into ``other`` is
        counted (labels belong to rows counted when they were predicted)."""
        if len(ts) == 0:
            return
        seg = self.slots.assign(segments, rows)
        layout = tuple((int(pos), float(w) if isinstance(w, (int, float)) else None) for pos, w in parts)  # type: ignore[call-overload]
        pending = self._pending.get((name, layout))
        if pending is None:
            pending = self._pending[(name, layout)] = PendingRows(self.windows[name], self._contributions(layout))
        pending.add(ts, seg=seg, **{f"w{k}": np.asarray(w) for k, (_, w) in enumerate(parts) if layout[k][1] is None})

    def _contributions(self, layout: tuple[tuple[int, float | None], ...]) -> Callable[[dict[str, np.ndarray]], list[Part]]:
        s = self.slots.size

        def parts(rows: dict[str, np.ndarray]) -> list[Part]:
            seg = rows["seg"]
            return [(field * s + seg, rows[f"w{k}"] if scalar is None else scalar) for k, (field, scalar) in enumerate(layout)]

        return parts

    def fold(self) -> None:
        """Add every held row to its window."""
        for pending in self._pending.values():
            pending.fold()

    def advance(self, now: float) -> None:
        for w in self.windows.values():
            w.advance(now)

    def totals(self, name: str) -> np.ndarray:
        """Window ``name``'s sums as ``(fields, segments)``: one column per slot, the overflow slot last."""
        self.fold()
        return self.windows[name].total().reshape(self.widths[name], self.slots.size)

    def state_dict(self) -> dict[str, Any]:
        self.fold()
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
        self.windows, self.slots, self._pending = fresh, slots, {}
        return True
