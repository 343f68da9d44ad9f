"""Bins of values in [0, 1] (probabilities, confidences, normalised entropies) found by a guide
table instead of a binary search.

``np.searchsorted(edges, values)`` costs a binary search per value, whose branches the processor
mispredicts about half the time: 25-30 ns a value against a grid of 20 to 130 edges, the largest
single kernel of the confidence detectors' hand-overs. For values in [0, 1] the search can be
replaced by a lookup (Chen and Asau's guide table, 1974): the interval is cut into ``K`` equal
cells (``K`` a power of two, so that ``floor(x * K)`` is exact), and a table gives, per cell,
the number of edges before it; one comparison with the edge inside the cell (at most one in most
cells) finishes the count. Where edges crowd (the fine calibration grid's logarithmic tail near
1, down to 1e-6 apart) a cell may hold several: the few values beyond its second edge are
searched as before. The result is exactly ``np.searchsorted``'s, for every value: values below 0
or above 1, infinities and NaN included (those are clipped onto the first or the last cell,
which the edges' range is checked to allow at construction; otherwise every call searches).

Examples
--------
>>> import numpy as np
>>> edges = np.array([0.25, 0.5, 0.5, 0.9])
>>> bins = UnitBins(edges, side="right")
>>> x = np.r_[np.linspace(-0.5, 1.5, 1001), np.nan]
>>> idx = bins.index(x)
>>> bins.cells, bool((idx == np.searchsorted(edges, x, side="right")).all()), idx[[250, 375, 550, 1000]].tolist()
(16, True, [0, 1, 3, 4])
"""

from __future__ import annotations

import numpy as np

__all__ = ["UnitBins"]

#: Arrays shorter than this are searched (``np.searchsorted``): the table's array passes cost
#: about 5 us of call overhead, more than that many binary searches. Measured crossovers (values
#: drawn as a 10-class model's confidences): 220-260 values against 12-20 edges, 150-170 against
#: 131, 300-450 against a few edges of which some cell holds two (three passes more).
SEARCH_BELOW = 256
SEARCH_BELOW_MANY_EDGES = 160  # 64 edges or more
SEARCH_BELOW_CROWDED = 384  # fewer, some cell holding two
#: Most cells of the table: 4,096 take 96 KiB (three arrays of 8-byte entries), which stays in
#: cache; parting edges 1e-6 apart (the fine calibration grid's tail) would take a million.
_MAX_CELLS = 4096


class UnitBins:
    """``np.searchsorted(edges, values, side)`` for values in [0, 1], by a guide table.

    Parameters
    ----------
    edges
        Sorted edges (1-D). The table is used when they suit it: for ``side="right"`` (edges at
        or below each value) all in ``(0, 1]``, for ``side="left"`` (edges below each value)
        all in ``[0, 1]``; any other edges (unsorted ones too) are always searched.
    side
        As ``np.searchsorted``'s.
    """

    __slots__ = ("edges", "side", "cells", "search_below", "_guide", "_first", "_second", "_crowded")

    def __init__(self, edges: np.ndarray, side: str = "right") -> None:
        if side not in ("left", "right"):
            raise ValueError(f"UnitBins: side must be 'left' or 'right', got {side!r}")
        e = np.array(edges, dtype=np.float64).ravel()
        self.edges = e
        self.side = side
        self.cells = 0  # 0: no table, every call searches
        self.search_below = SEARCH_BELOW
        self._guide = self._first = self._second = None
        self._crowded = False
        inside = e.size > 0 and bool(e[0] > 0.0 if side == "right" else e[0] >= 0.0) and bool(e[-1] <= 1.0)
        if inside and bool(np.all(e[1:] >= e[:-1])):  # (NaN edges fail the range or the order)
            self._build(e, side)

    def _build(self, e: np.ndarray, side: str) -> None:
        # about four cells per edge, so that most hold none or one; more (up to _MAX_CELLS) when
        # that parts every two edges, else the fewest, the values past a crowded cell's second
        # edge being searched
        least = 16
        while least < min(4 * e.size, _MAX_CELLS):
            least *= 2
        cells = least
        while cells <= _MAX_CELLS and self._table(e, side, cells):
            cells *= 2
        if cells > _MAX_CELLS:
            cells = least
            self._table(e, side, cells)
        self.cells = cells
        self.search_below = SEARCH_BELOW_MANY_EDGES if e.size >= 64 else SEARCH_BELOW_CROWDED if self._crowded else SEARCH_BELOW

    def _table(self, e: np.ndarray, side: str, cells: int) -> bool:
        """Build the table of ``cells`` cells; whether a cell holds two edges or more."""
        # each cell's lower end (exact); cell ``cells`` holds [1, 1 + 1/cells), the one after it
        # every value beyond, infinities and NaN
        start = np.arange(cells + 2, dtype=np.float64) / cells
        # edges counted before a value of the cell: at or below its start (right), below it (left)
        self._guide = np.searchsorted(e, start, side=side).astype(np.intp)
        # edges that a value of the cell may still pass: those from the guide's count up to the
        # cell's end (right: after the start, before the end; left: from the start, before the end)
        end = np.searchsorted(e, np.minimum(start + 1.0 / cells, 2.0), side="left")
        end[-1] = self._guide[-1]  # the last cell (beyond 1 + 1/cells, NaN) holds no edge: checked above
        # NaN where the cell holds no such edge: no value compares past it (+inf itself would)
        padded = np.append(e, [np.nan, np.nan])
        within = end - self._guide
        self._first = np.where(within >= 1, padded[np.minimum(self._guide, e.size)], np.nan)
        self._second = np.where(within >= 2, padded[np.minimum(self._guide + 1, e.size)], np.nan)
        self._crowded = bool((within >= 2).any())
        return self._crowded

    def index(self, values: np.ndarray) -> np.ndarray:
        """``np.searchsorted(self.edges, values, side=self.side)`` (intp), ``values`` 1-D float64."""
        x = np.asarray(values, dtype=np.float64)
        if not self.cells or x.ndim != 1 or x.size < self.search_below:
            return np.searchsorted(self.edges, x, side=self.side)  # type: ignore[call-overload]
        assert self._guide is not None and self._first is not None and self._second is not None
        k = float(self.cells)
        with np.errstate(over="ignore"):  # past ~1e304 the product is inf: the last cell, as it should be
            t = x * k  # exact: k is a power of two
        np.fmin(t, k + 1.0, out=t)  # far above 1, +inf and NaN: the last cell (fmin takes the number over NaN)
        np.fmax(t, 0.0, out=t)  # below 0, -inf: the first
        cell = t.astype(np.intp)  # floor, the values being >= 0
        idx = self._guide[cell]
        if self.side == "right":
            idx += x >= self._first[cell]
            if self._crowded:
                far = np.flatnonzero(x >= self._second[cell])
        else:
            idx += x > self._first[cell]
            if self._crowded:
                far = np.flatnonzero(x > self._second[cell])
        if self._crowded and far.size:  # a cell holding several edges, the value past its second
            idx[far] = np.searchsorted(self.edges, x[far], side=self.side)  # type: ignore[call-overload]
        return idx
