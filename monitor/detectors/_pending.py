"""Histogram observations buffered between two exports in bounded memory.

Detectors see batches in :meth:`update` but may only write metrics in :meth:`export`. Keeping
the raw values until then would grow with traffic; this keeps, per Prometheus bucket, the count
and the sum of the values observed since the last export, which is all a Prometheus histogram
records. On export each bucket is replayed as its count of copies of its mean value: the mean of
values inside a bucket lies inside that bucket, so the writer puts them in the same bucket and
the histogram's ``_sum`` stays exact.

Examples
--------
>>> import numpy as np
>>> h = PendingHistogram((0.5, 1.0))
>>> h.add(np.array([0.2, 0.4, 0.9, 3.0]))
>>> h.counts.tolist(), round(h.total, 2)
([2.0, 1.0, 1.0], 4.5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from monitor.store import LabelValues, MetricWriter

__all__ = ["PendingHistogram"]


class PendingHistogram:
    """Per-bucket counts and sums of values observed since the last :meth:`flush`.

    Parameters
    ----------
    buckets
        Upper bounds of the metric's buckets, as in its catalog spec (``+Inf`` implied).
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = np.asarray(buckets, dtype=np.float64)
        nb = len(self.bounds) + 1
        self.counts = np.zeros(nb)
        self.sums = np.zeros(nb)

    @property
    def total(self) -> float:
        return float(self.sums.sum())

    def add(self, values: np.ndarray) -> None:
        """Buffer finite values (the output decoder has already refused rows with NaN or inf,
        so the scores derived from them need no second check on the hot path)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        idx = np.searchsorted(self.bounds, v, side="left")  # "le" buckets, as the store
        nb = len(self.counts)
        self.counts += np.bincount(idx, minlength=nb)
        self.sums += np.bincount(idx, weights=v, minlength=nb)

    def flush(self, out: "MetricWriter", name: str, labels: "LabelValues" = None) -> None:
        """Write the buffered observations to ``out`` and forget them."""
        nz = np.flatnonzero(self.counts)
        if nz.size == 0:
            return
        counts = self.counts[nz]
        means = self.sums[nz] / counts
        upper = np.append(self.bounds, np.inf)[nz]
        lower = np.append(-np.inf, self.bounds)[nz]
        means = np.minimum(means, upper)
        means = np.where(means > lower, means, np.nextafter(lower, np.inf))
        out.observe(name, np.repeat(means, counts.astype(np.int64)), labels)
        self.counts[:] = 0.0
        self.sums[:] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.copy(), "sums": self.sums.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = np.asarray(state["counts"], dtype=np.float64).copy()
        self.sums = np.asarray(state["sums"], dtype=np.float64).copy()
