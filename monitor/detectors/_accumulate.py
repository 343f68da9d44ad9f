"""Adding sparse per-row contributions to a flat :class:`~monitor.windows.SlidingWindow` in one pass.

The confidence and calibration detectors keep all their windowed statistics in one flat vector
per time slot (histogram counts, sums, sums of squares at fixed offsets). Each row contributes to
a handful of positions of that vector. Rather than one ``np.add.at`` per statistic, the
contributions of a whole batch are summed per (slot, position) with one ``np.bincount`` and
added to the window as one row per distinct slot (usually one): this keeps the per-event cost of
all the windowed figures to a few tens of nanoseconds.

Examples
--------
>>> import numpy as np
>>> from monitor.windows import SlidingWindow
>>> w = SlidingWindow(60.0, shape=(4,), n_slots=6)
>>> ts = np.array([1.0, 2.0, 3.0])
>>> accumulate(w, ts, [(np.array([0, 1, 1]), 1.0), (3, np.array([0.5, 0.25, 0.25]))])
>>> w.total().tolist()
[1.0, 2.0, 0.0, 1.0]
"""

from __future__ import annotations

import math
from typing import Callable, Union

import numpy as np

from monitor.windows import SlidingWindow

__all__ = ["Part", "PendingRows", "accumulate"]

#: One contribution: (positions, weights). ``positions`` is an int array ``(n,)`` (one position
#: per row) or a single int (every row adds to the same position); ``weights`` is ``(n,)`` or a scalar.
Part = tuple[Union[np.ndarray, int], Union[np.ndarray, float]]


def accumulate(window: SlidingWindow, ts: np.ndarray, parts: list[Part], span: tuple[float, float] | None = None) -> None:
    """Add every part's weights at its positions, per event-time slot, into ``window``.

    ``window`` must have a 1-D shape ``(d,)``; positions index into it. Rows may come in any
    time order (labels arrive out of order); rows already outside the window are counted in
    ``window.expired`` by the window itself. ``span`` is ``(ts.min(), ts.max())`` when the caller
    has it already (the windows of several detectors are filled from the rows of one batch).
    """
    ts = np.asarray(ts, dtype=np.float64)
    n = ts.shape[0]
    if n == 0:
        return
    d = window.shape[0]
    slot_s = window.window_s / window.n_slots
    oldest, newest = (float(ts.min()), float(ts.max())) if span is None else span
    first = math.floor(oldest / slot_s)
    if math.floor(newest / slot_s) == first:
        agg = _one_bincount(parts, n, d) if d >= WIDE else None
        if agg is not None:
            window.add_summed((first + 0.5) * slot_s, agg, n)
            return
        agg = np.zeros(d)
        for pos, w in parts:
            scalar_w = isinstance(w, (int, float))
            if isinstance(pos, (int, np.integer)):
                agg[pos] += float(w) * n if scalar_w else float(w.sum())  # type: ignore[union-attr]
            elif scalar_w:
                counts = np.bincount(pos, minlength=d)
                agg += counts if w == 1.0 else counts * float(w)  # unit weights (the usual case): no product
            else:
                agg += np.bincount(pos, weights=w, minlength=d)  # type: ignore[arg-type]
        window.add_summed((first + 0.5) * slot_s, agg, n)
        return
    slots = np.floor(ts / slot_s).astype(np.int64)
    uniq, inv = np.unique(slots, return_inverse=True)
    u = len(uniq)
    agg = np.zeros(u * d)
    for pos, w in parts:
        weights = np.broadcast_to(np.asarray(w, dtype=np.float64), (n,))
        flat = inv * d + pos
        agg += np.bincount(flat, weights=weights, minlength=u * d)
    window.add((uniq + 0.5) * slot_s, None, agg.reshape(u, d))


#: Positions from which a window counts as wide: its parts at per-row positions are added by one
#: ``bincount`` over all of them (:func:`_one_bincount`) rather than one each, every one of which
#: wrote and added a vector of the window's length (the segments detector's labelled terms hold
#: 8,379 positions: 37 us a fold of 375 rows that way, 27 us by one bincount). Below a few
#: thousand positions the one bincount's fixed cost (about 8 us: the checks, the joined columns)
#: exceeds what it saves (measured at 400 and 1,050: 6-9 us dearer).
WIDE = 4096


def _one_bincount(parts: list[Part], n: int, d: int) -> np.ndarray | None:
    """The single-slot sum of ``parts`` (see :func:`accumulate`) by one ``bincount`` over the
    positions of every per-row part, or None where that could change a float: when two per-row
    parts' position ranges overlap, a single position lies in one of those ranges, or a per-row
    part has a scalar weight other than 1 (its sum was ``count * w``). Otherwise every position
    gets the additions it got before, in the same order: from one per-row part's rows in row
    order (a bincount's), then the single positions' (two values add alike in either order), and
    unit weights sum to the same whole counts."""
    per_row = [(pos, w) for pos, w in parts if not isinstance(pos, (int, np.integer))]
    if len(per_row) < 2 or any(isinstance(w, (int, float)) and w != 1.0 for _, w in per_row):
        return None
    flat = np.concatenate([pos for pos, _ in per_row])  # type: ignore[misc]
    starts = np.arange(0, flat.size, n)
    ranges = sorted(zip(np.minimum.reduceat(flat, starts).tolist(), np.maximum.reduceat(flat, starts).tolist()))
    if any(hi >= lo for (_, hi), (lo, _) in zip(ranges, ranges[1:])):
        return None
    single = [(int(pos), w) for pos, w in parts if isinstance(pos, (int, np.integer))]
    if any(lo <= pos <= hi for pos, _ in single for lo, hi in ranges):
        return None
    weights = np.empty(flat.size)
    for i, (_, w) in enumerate(per_row):
        weights[i * n:(i + 1) * n] = w
    agg = np.bincount(flat, weights=weights, minlength=d)
    for pos, w in single:
        agg[pos] += float(w) * n if isinstance(w, (int, float)) else float(w.sum())  # type: ignore[union-attr]
    return agg


class PendingRows:
    """Rows waiting to be added to one window, added together by one :func:`accumulate` call.

    Labelled rows arrive in small batches (one feedback request holds a few dozen rows) and
    adding a batch to a window costs a dozen array operations whatever its size; keeping the
    batches' per-row columns until ``capacity`` rows wait, or until the window is read, pays
    that cost once. ``parts`` turns the columns of the waiting rows into the contributions to
    add (see :func:`accumulate`). The owner calls :meth:`fold` before reading the window
    (export, figures, saved state): the sums then equal those added batch by batch, up to
    floating-point association. Rows that have left the window by then are dropped, as they
    would have been zeroed (``window.expired`` counts them; rows already outside the model's
    window when the worker took them are exported as ``monitor_rows_outside_window_total``).
    Memory is bounded by ``capacity`` rows.

    Examples
    --------
    >>> w = SlidingWindow(60.0, shape=(3,), n_slots=6)
    >>> rows = PendingRows(w, lambda c: [(c["cls"], 1.0), (2, c["score"])], capacity=100)
    >>> rows.add(np.array([1.0, 2.0]), cls=np.array([0, 1]), score=np.array([0.5, 0.25]))
    >>> rows.add(np.array([3.0]), cls=np.array([1]), score=np.array([0.25]))
    >>> w.total().tolist()
    [0.0, 0.0, 0.0]
    >>> rows.fold()
    >>> w.total().tolist()
    [1.0, 2.0, 1.0]
    """

    def __init__(self, window: SlidingWindow, parts: Callable[[dict[str, np.ndarray]], list[Part]], capacity: int = 2048) -> None:
        self.window = window
        self.parts = parts
        self.capacity = int(capacity)
        self.clear()

    def __len__(self) -> int:
        return self._rows

    def add(self, ts: np.ndarray, **columns: np.ndarray) -> None:
        """Keep one batch's rows: their event times and per-row columns (the same names at every call)."""
        if len(ts) == 0:
            return
        self._ts.append(ts)
        self._columns.append(columns)
        self._rows += len(ts)
        if self._rows >= self.capacity:
            self.fold()

    def fold(self) -> None:
        """Add every waiting row to the window."""
        if not self._ts:
            return
        if len(self._ts) == 1:
            ts, columns = self._ts[0], self._columns[0]
        else:
            ts = np.concatenate(self._ts)
            columns = {name: np.concatenate([c[name] for c in self._columns]) for name in self._columns[0]}
        self.clear()
        accumulate(self.window, ts, self.parts(columns))

    def clear(self) -> None:
        """Forget the waiting rows."""
        self._ts: list[np.ndarray] = []
        self._columns: list[dict[str, np.ndarray]] = []
        self._rows = 0
