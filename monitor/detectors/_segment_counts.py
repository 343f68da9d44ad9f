"""A detector's count vector kept once per segment, over a sliding event-time window.

The label-free tests against the reference (confidence drift, prediction drift, output
diversity) read one vector of counts over the window: histogram bins of the max probability and
the entropy, or predicted-class counts. Sliced by ``segment`` (``by_segment: true``), each
segment gets its own copy of that vector, laid out segment after segment in one flat
:class:`~monitor.windows.SlidingWindow` (position ``slot * width + i``), so that one
:func:`~monitor.detectors._accumulate.accumulate` call per batch fills every segment.

The tests of every segment against the reference are computed together, one array operation
over the segments (:func:`ks_rows`, :func:`chi2_rows`, :func:`js_distance_rows`): the same
figures as :mod:`monitor.stats.univariate`'s one-sample functions, which called per segment cost
~45 us each (two KS tests and a chi-squared test with its distance for each of 21 segments, at
every rule tick, took ~1.5 ms: 0.4 us/event at 256 events/s).

Segment values get their slots from a :class:`~monitor.detectors._segment_slots.SegmentSlots`
of their own (the same cap and, for the same batches, the same names as the segments
detector's). Overflow into ``other`` is counted here only when no segments detector runs beside
(``counts_overflow``): the segments detector counts it in ``monitor_segment_overflow_rows``, and
counting it twice would double that counter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import Part, accumulate
from monitor.detectors._segment_slots import SegmentSlots
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.store import MetricWriter

__all__ = ["SegmentCounts", "SegmentCounting", "chi2_rows", "class_entropy_rows", "js_distance_rows", "ks_rows", "segment_values"]


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
        #: whether rows folded into ``other`` are counted here (``monitor_segment_overflow_rows``):
        #: the segments detector counts them when it runs; when it does not, one detector
        #: slicing by segment is given the count (:func:`monitor.detector_build.build_detectors`)
        self.counts_overflow = False

    @property
    def names(self) -> tuple[str, ...]:
        """Every slot's segment name, the overflow's ``other`` last (unless a learned segment is named
        ``other``, which then holds the overflow): the series a detector writes or removes
        (all of them at each export, so that a segment whose rows left the window loses its
        figures instead of keeping stale ones)."""
        return self.slots.names

    def add(self, segments: np.ndarray, ts: np.ndarray, positions: list[np.ndarray], span: tuple[float, float] | None = None) -> None:
        """Count each row at each of its ``positions`` (indices into the width) in its segment's copy."""
        base = self.slots.assign(segments, rows=self.counts_overflow) * self.width
        parts: list[Part] = [(base + pos, 1.0) for pos in positions]
        accumulate(self.window, ts, parts, span)

    def advance(self, now: float) -> None:
        self.window.advance(now)

    def export_overflow(self, out: "MetricWriter") -> None:
        """Add the rows folded into ``other`` since the last export to the counter, when counted here."""
        if self.counts_overflow and self.slots.carried:  # at 0 before the first overflow: increase() sees it
            out.inc(names.SEGMENT_OVERFLOW, float(self.slots.take_overflow()))

    def totals(self) -> np.ndarray:
        """Window totals, one row per name of :attr:`names` (the learned segments' slots, then the
        overflow slot, the last whatever the number learned: :attr:`SegmentSlots.columns`)."""
        t = self.window.total().reshape(self.slots.size, self.width)
        return t[self.slots.columns]

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


def ks_rows(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binned two-sample KS test of each row of ``cur`` ``(m, bins)`` against ``ref`` ``(bins,)``:
    ``(distance, pvalue)`` per row, as :func:`monitor.stats.univariate.ks_binned` with
    ``exact_budget=0`` (the asymptotic distribution with Stephens' correction: conservative on
    binned data, whose ties make the exact distribution of the distance smaller). Rows without
    counts get NaN.

    >>> from monitor.stats.univariate import ks_binned
    >>> ref, cur = np.array([30.0, 30.0, 40.0]), np.array([[10.0, 30.0, 60.0], [3.0, 3.0, 4.0], [0.0, 0.0, 0.0]])
    >>> d, p = ks_rows(ref, cur)
    >>> [ks_binned(ref, c, exact_budget=0).pvalue for c in cur[:2]] == p[:2].tolist(), bool(np.isnan(p[2]))
    (True, True)
    """
    from scipy.special import kolmogorov

    n1, n2 = float(ref.sum()), cur.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(np.cumsum(ref) / n1 - np.cumsum(cur, axis=1) / n2[:, None]).max(axis=1)
        en = n1 * n2 / (n1 + n2)
        lam = (np.sqrt(en) + 0.12 + 0.11 / np.sqrt(en)) * d
        p = np.minimum(1.0, kolmogorov(lam))
    same = d <= 1e-12
    d, p = np.where(same, 0.0, d), np.where(same, 1.0, p)
    empty = (n2 == 0) | (n1 == 0)
    return np.where(empty, np.nan, d), np.where(empty, np.nan, p)


def chi2_rows(ref: np.ndarray, cur: np.ndarray, *, draws: int = 0, seed: int = 0, memo: dict[tuple[int, bytes], float] | None = None) -> np.ndarray:
    """p-value of Pearson's chi-squared test of homogeneity of ``ref`` and each row of ``cur``, as
    :func:`monitor.stats.univariate.chi2_test` with the same ``draws`` and ``seed`` (classes empty
    in both dropped, per row): the asymptotic p-values of all rows in one array operation, then
    the Monte-Carlo one of each row that needs it by that same function, so a row and the same
    table given to :func:`~monitor.stats.univariate.chi2_test` get the same p-value. ``memo`` (a
    caller's dict, for one ``ref`` and ``seed``) keeps the drawn p-values by row: a row unchanged
    since the last call (no new rows in its window) is not drawn again.

    >>> from monitor.stats.univariate import chi2_test
    >>> ref, cur = np.array([50.0, 50.0, 0.0]), np.array([[60.0, 40.0, 0.0], [10.0, 20.0, 5.0]])
    >>> np.allclose(chi2_rows(ref, cur), [chi2_test(ref, c).pvalue for c in cur], rtol=1e-12)
    True
    >>> chi2_rows(ref, cur, draws=999).tolist() == [chi2_test(ref, c, draws=999).pvalue for c in cur]
    True
    """
    from scipy.special import chdtrc

    from monitor.stats.univariate import CHI2_MC_BELOW, CHI2_MIN_EXPECTED, chi2_test

    tot = ref[None, :] + cur
    keep = tot > 0
    n1, n2 = float(ref.sum()), cur.sum(axis=1, keepdims=True)
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        e1, e2 = tot * n1 / n, tot * n2 / n
        terms = np.where(keep, (ref[None, :] - e1) ** 2 / e1 + (cur - e2) ** 2 / e2, 0.0)
        smallest = np.where(keep, tot, np.inf).min(axis=1) * np.minimum(n1, n2[:, 0]) / n[:, 0]
    df = keep.sum(axis=1) - 1
    ok = (df >= 1) & (n2[:, 0] > 0) & (n1 > 0)
    p = np.where(ok, chdtrc(np.maximum(df, 1), terms.sum(axis=1)), 1.0)
    if draws > 0:  # chi2_test decides for the rows near either threshold too (rounding differs)
        near = ok & (p < CHI2_MC_BELOW * (1 + 1e-9)) & (smallest < CHI2_MIN_EXPECTED * (1 + 1e-9))
        for i in np.flatnonzero(near).tolist():
            key = (draws, cur[i].tobytes())
            found = memo.get(key) if memo is not None else None
            if found is None:
                found = chi2_test(ref, cur[i], draws=draws, seed=seed).pvalue
                if memo is not None:
                    memo[key] = found
            p[i] = found
    return p


def js_distance_rows(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2) of ``ref`` and each row of ``cur``, as
    :func:`monitor.stats.univariate.js_distance`.

    >>> from monitor.stats.univariate import js_distance
    >>> ref, cur = np.array([50.0, 50.0, 0.0]), np.array([[60.0, 40.0, 0.0], [10.0, 20.0, 5.0]])
    >>> np.allclose(js_distance_rows(ref, cur), [js_distance(ref, c) for c in cur], rtol=1e-12)
    True
    """
    p = ref / ref.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        q = cur / cur.sum(axis=1, keepdims=True)
        m = 0.5 * (p[None, :] + q)
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    return np.sqrt(np.maximum(0.0, 0.5 * kl_p + 0.5 * kl_q))


def class_entropy_rows(cur: np.ndarray) -> np.ndarray:
    """Entropy of each row's class distribution divided by ``log k``, as
    :func:`monitor.detectors.prediction_drift.class_distribution_entropy`.

    >>> class_entropy_rows(np.array([[5.0, 5.0], [10.0, 0.0]])).tolist()
    [1.0, 0.0]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        q = cur / cur.sum(axis=1, keepdims=True)
        h = 0.0 - np.where(q > 0, q * np.log(q), 0.0).sum(axis=1)  # a one-class row: 0, not -0
    return h / np.log(cur.shape[1]) if cur.shape[1] >= 2 else np.full(cur.shape[0], np.nan)


class SegmentCounting:
    """What a detector counting rows per segment in a :class:`SegmentCounts` (``_segments``, None
    without ``by_segment``) offers :func:`monitor.detector_build.build_detectors`."""

    _segments: SegmentCounts | None

    def count_segment_overflow(self) -> bool:
        """Count the rows folded into ``other`` here (when no segments detector runs to count
        them); False without ``by_segment``."""
        if self._segments is None:
            return False
        self._segments.counts_overflow = True
        return True
