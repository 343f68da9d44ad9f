"""Histogram observations buffered between two exports in bounded memory.

Detectors see batches in :meth:`update` but may only write metrics in :meth:`export`. Keeping
the raw values until then would grow with traffic; this keeps, per Prometheus bucket, the count
and the sum of the values observed since the last export, which is all a Prometheus histogram
records. On export the counts and the sum go to the writer as they are
(:meth:`~monitor.store.MetricStore.observe_buckets`): the buckets are the metric's own, so
nothing is binned twice and the histogram's ``_sum`` stays exact.

Examples
--------
>>> import numpy as np
>>> h = PendingHistogram((0.5, 1.0))
>>> h.add(np.array([0.2, 0.4, 0.9, 3.0]))
>>> h.counts.tolist(), round(h.total, 2)
([2.0, 1.0, 1.0], 4.5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from monitor.stats.bins import UnitBins

if TYPE_CHECKING:
    from monitor.store import LabelValues, MetricWriter

__all__ = ["GroupedPendingHistogram", "PendingHistogram"]


class _Held:
    """Values (with their group, for grouped histograms) copied into buffers allocated on first
    use, handed to ``bin`` in one call when ``capacity`` wait or when the owner drains them."""

    __slots__ = ("capacity", "count", "_values", "_group")

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.count = 0
        self._values: np.ndarray | None = None
        self._group: np.ndarray | None = None

    def add(self, v: np.ndarray, group: np.ndarray | None, bin: Callable[[np.ndarray, np.ndarray | None], None]) -> None:
        n = v.size
        if self.count + n > self.capacity:
            self.drain(bin)
            if n > self.capacity:
                bin(v, group)
                return
        if self._values is None:
            self._values = np.empty(self.capacity)
            if group is not None:
                self._group = np.empty(self.capacity, dtype=np.int64)
        self._values[self.count:self.count + n] = v
        if self._group is not None:
            self._group[self.count:self.count + n] = group
        self.count += n

    def clear(self) -> None:
        """Forget the held values."""
        self.count = 0

    def drain(self, bin: Callable[[np.ndarray, np.ndarray | None], None]) -> None:
        if self.count:
            assert self._values is not None
            n, self.count = self.count, 0
            bin(self._values[:n], None if self._group is None else self._group[:n])


class _Binned:
    """What the two histograms share: counts and sums binned from values held in a :class:`_Held`
    until they are read (:meth:`_bin` is each one's binning)."""

    def __init__(self, buckets: tuple[float, ...], counts_shape: tuple[int, ...], sums_shape: tuple[int, ...], capacity: int) -> None:
        self.bounds = np.asarray(buckets, dtype=np.float64)
        # each value's bucket, the first bound at or above it ("le" buckets, as the store): by a
        # guide table when the bounds lie in [0, 1] (confidences, margins, entropies), else searched
        self._buckets = UnitBins(self.bounds, side="left")
        self._counts = np.zeros(counts_shape)
        self._sums = np.zeros(sums_shape)
        self._held = _Held(capacity)  # values not yet binned

    @property
    def counts(self) -> np.ndarray:
        """Values per bucket (per group and bucket) since the last flush; the last bucket is ``+Inf``."""
        self._bin_held()
        return self._counts

    @property
    def sums(self) -> np.ndarray:
        """Sum of the values per bucket (per group) since the last flush."""
        self._bin_held()
        return self._sums

    def _bin_held(self) -> None:
        self._held.drain(self._bin)

    def _bin(self, v: np.ndarray, group: np.ndarray | None) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        """Forget the observations since the last flush."""
        self._held.clear()
        self._counts[:] = 0.0
        self._sums[:] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.copy(), "sums": self.sums.copy()}

    def _load(self, state: dict[str, Any]) -> None:
        self._counts = np.asarray(state["counts"], dtype=np.float64).copy()
        self._sums = np.asarray(state["sums"], dtype=np.float64).copy()
        self._held.clear()


class PendingHistogram(_Binned):
    """Per-bucket counts and sums of values observed since the last :meth:`flush`.

    Values are copied into a buffer of ``capacity`` and binned in one pass when it is full or
    when the counts are read: binning costs a few array passes and two ``bincount`` calls
    whatever the number of values, which on the worker's small batches is mostly call overhead.
    Memory stays bounded by ``capacity`` (allocated on first use, so unused histograms cost nothing).

    Parameters
    ----------
    buckets
        Upper bounds of the metric's buckets, as in its catalog spec (``+Inf`` implied).
    capacity
        Values buffered before they are binned.
    """

    def __init__(self, buckets: tuple[float, ...], capacity: int = 4096) -> None:
        nb = len(buckets) + 1
        super().__init__(buckets, (nb,), (nb,), capacity)
        self._observed = 0  # values since the last flush, binned or not

    @property
    def total(self) -> float:
        return float(self.sums.sum())

    @property
    def pending(self) -> int:
        """Number of values observed since the last flush."""
        return self._observed

    def add(self, values: np.ndarray) -> None:
        """Buffer finite values (the output decoder has already refused rows with NaN or inf,
        so the scores derived from them need no second check on the hot path)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size:
            self._observed += v.size
            self._held.add(v, None, self._bin)

    def _bin(self, v: np.ndarray, group: np.ndarray | None = None) -> None:
        nb = len(self._counts)
        if self._buckets.cells:
            # bounds in [0, 1]: each value's bucket from the guide table (a few array passes, no
            # sort), counted and summed by bucket; the sums add the values in arrival order, which
            # moves the histogram's _sum by float rounding only (1e-15 of it) from the sorted order
            idx = self._buckets.index(v)
            self._counts += np.bincount(idx, minlength=nb)
            self._sums += np.bincount(idx, weights=v, minlength=nb)
            return
        # other bounds: sorted once, the values fall into the buckets as runs: the bounds are
        # searched among the values (a dozen searches) instead of every value among the bounds (a
        # mispredicted binary search per value, four times the cost)
        s = np.sort(v)
        edges = np.empty(nb + 1, dtype=np.intp)
        edges[0], edges[-1] = 0, s.size
        edges[1:-1] = np.searchsorted(s, self.bounds, side="right")  # values <= each bound: "le" buckets, as the store
        counts = np.diff(edges)
        self._counts += counts
        full = counts > 0
        # a run per non-empty bucket: each sum ends where the next non-empty bucket starts
        self._sums[full] += np.add.reduceat(s, edges[:-1][full])

    def flush(self, out: "MetricWriter", name: str, labels: "LabelValues" = None) -> None:
        """Write the buffered observations to ``out`` and forget them."""
        if not self._observed:
            return
        out.observe_buckets(name, self.counts, float(self._sums.sum()), labels)
        self.discard()

    def discard(self) -> None:
        super().discard()
        self._observed = 0

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load(state)
        self._observed = int(round(float(self._counts.sum())))


class GroupedPendingHistogram(_Binned):
    """:class:`PendingHistogram` with one histogram per group (a segment slot): values and their
    groups are buffered together and binned in one pass when the buffer is full or the counts
    are read, so that slicing by segment costs two copies per batch instead of a search and
    three ``bincount`` calls per batch.

    Parameters
    ----------
    buckets
        Upper bounds of the metric's buckets (``+Inf`` implied).
    groups
        Number of groups; values carry their group's index.
    capacity
        Values buffered before they are binned.

    >>> h = GroupedPendingHistogram((0.5, 1.0), groups=2)
    >>> h.add(np.array([0.2, 0.9, 3.0]), np.array([0, 1, 1]))
    >>> h.counts.tolist(), h.sums.tolist()
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [0.2, 3.9])
    """

    def __init__(self, buckets: tuple[float, ...], groups: int, capacity: int = 4096) -> None:
        self.groups = int(groups)
        self._nb = len(buckets) + 1
        super().__init__(buckets, (self.groups, self._nb), (self.groups,), capacity)

    def add(self, values: np.ndarray, group: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size:
            self._held.add(v, np.asarray(group, dtype=np.int64), self._bin)

    def _bin(self, v: np.ndarray, group: np.ndarray | None) -> None:
        assert group is not None
        nb, g = self._nb, self.groups
        idx = self._buckets.index(v)  # first bound >= value: "le" buckets, as the store
        self._counts += np.bincount(group * nb + idx, minlength=g * nb).reshape(g, nb)
        self._sums += np.bincount(group, weights=v, minlength=g)

    def flush(self, out: "MetricWriter", name: str, names: tuple[str, ...]) -> None:
        """Write each group's buffered observations (labelled with its name in ``names``) and
        forget them; groups without observations write nothing."""
        counts, sums = self.counts, self.sums
        for i in np.flatnonzero(counts.sum(axis=1)).tolist():
            out.observe_buckets(name, counts[i], float(sums[i]), (names[i],))
        self.discard()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        counts = np.asarray(state["counts"], dtype=np.float64)
        if counts.shape != self._counts.shape:
            raise ValueError("histogram state was saved with another number of groups or buckets")
        self._load(state)
