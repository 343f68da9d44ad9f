"""Prediction drift, label shift and output diversity, from predicted classes alone.

Over a sliding event-time window of predicted-class counts, against the reference:

* prediction drift: the chi-squared test of homogeneity of the window's and the reference's
  predicted-class counts (p-value) and their Jensen-Shannon distance (effect size);
* label shift: when the reference has labels, black-box shift estimation (Lipton et al. 2018)
  turns the change of predicted-class frequencies into estimated class weights ``q(y)/p(y)``
  through the reference confusion matrix, so on-call sees which *true* class became more or less
  frequent, not only which prediction did;
* output diversity: the entropy of the window's predicted-class distribution (normalised by
  ``log k``) and the share of its most frequent class, each next to the reference's value, so
  that a model collapsing onto one answer is seen even when its confidence looks normal.

With ``by_segment: true`` the drift test, its distance, the diversity and the top-class share
are also exported per segment (each with ``min_rows`` rows in the window), each segment's counts
against the **whole reference**, which is not sliced since a reference rarely carries segment
values: a segment whose class mix always differed from the population's (a region where one
class is more common) shows as drifted from its first full window, a standing difference rather
than a change (see :mod:`monitor.detectors.confidence_drift` for why a segment is not compared
with its own first window). Label-shift weights stay whole-window only: black-box shift
estimation needs a few hundred rows per class to be stable, more than a segment usually has.
With up to ``segment_cap + 1`` p-values, an alert must correct for multiple tests (Bonferroni:
p < alpha / segments with a p-value).

The drift p-value is the probability, were the window's rows and the reference's drawn from
one class distribution, of a chi-squared statistic at least as large as the observed. Pearson's
chi-squared distribution gives it when every expected count is at least
:data:`~monitor.stats.univariate.CHI2_MIN_EXPECTED` (10). A sparser table -- many classes, rare
classes, a short window or a small reference -- has a heavier tail than that distribution, so
there the asymptotic p-value is too small: seeded, with 50 Zipf classes, 200 rows against 2,000,
0.25% of unshifted windows fell under 0.001 (1.5% under 0.01), and against 50,000 reference rows
a class the reference never predicted, seen once in the window, gets 1e-37 where the truth is
about the window's share of all rows (0.4%). For such a table whose asymptotic p-value is under
0.05 the exported p-value is the Monte-Carlo one conditional on the table's margins
(:func:`~monitor.stats.univariate.chi2_monte_carlo`: valid at every level, seeded by ``seed``
and the table, so one table always gets the same p-value, whether it is the whole window's or a
segment's): 0.085% of 20,000 such windows under 0.001 and 1.03% under 0.01, 0.115% and 1.04%
of 100,000 others (``tests/test_prediction_drift_pvalue.py``). Unless the frequent classes
(expected counts of 10 and more) reject on their own at 1e-8: then that sub-table's asymptotic
p-value, without draws.

The draws resolve p-values down to ``alpha / 10`` (9,999 tables at the default ``alpha``, 0.001)
for the whole window and down to ``0.8 alpha / m`` for each of ``m`` segments tested (the
Bonferroni level of the segment rule; more draws than 9,999 from ``m`` = 9 on: 26,249 at the
default cap's 21). Drawing stops at the 20th table as extreme as the observed, so a large
p-value costs a few hundred tables, and a window or segment without new rows since the last
refresh is not drawn again; a table beyond every drawn one costs them all, ~3-5 us each with 50
classes and 200 rows. Worst case of one refresh, when the window and every segment are sparse
and shifted among their rare classes only (a shift of frequent classes is mostly rejected by
those alone, without draws): ``draws(1) + (segment_cap + 1) * draws(segment_cap + 1)`` tables
(9,999 + 21 x 26,249 at the defaults), measured 1.3-3 s of CPU for 21 segments of 200 rows
(against 0.4 ms; the spread is the shared machine's load), ~25 ms for the whole window alone
(``benchmarks/prediction_drift_pvalue_cost.py``); unshifted, 0.24 ms and 4.9 ms on average.
Fewer segments (``segment_cap``) or a larger ``alpha`` bound it lower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import (
    RefreshingDetector,
    check_reference_width,
    class_names,
    config_params,
    load_windows_state,
    Refresh,
    put_figure,
    put_figures,
    reference_probabilities,
    time_span,
    windows_state,
)
from monitor.detectors._segment_counts import SegmentCounting, SegmentCounts, chi2_rows, class_entropy_rows, js_distance_rows, segment_values
from monitor.stats import univariate as uni
from monitor.stats.calibration import bbse_weights
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["PredictionDriftDetector", "SegmentPredictionFigures", "class_distribution_entropy", "reference_confusion"]


def class_distribution_entropy(counts: np.ndarray) -> float:
    """Entropy of a class distribution divided by ``log k`` (1 = all classes equally predicted)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0 or len(c) < 2:
        return float("nan")
    p = c[c > 0] / total
    return float(-(p * np.log(p)).sum() / np.log(len(c)))


def reference_confusion(predicted: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Joint probabilities ``C[i, j] = P(predicted = i, true = j)`` on the reference."""
    c = np.bincount(predicted * k + labels, minlength=k * k).reshape(k, k).astype(np.float64)
    return c / max(c.sum(), 1.0)


@dataclass(frozen=True)
class SegmentPredictionFigures:
    """One segment's predicted-class figures against the whole reference (see
    :meth:`PredictionDriftDetector.segment_figures`)."""

    rows: float
    pvalue: float
    distance: float
    diversity: float
    top_class: str
    top_share: float
    top_share_reference: float


class PredictionDriftDetector(SegmentCounting, RefreshingDetector):
    """Predicted-class frequencies against the reference: drift, label-shift weights, diversity.

    Parameters
    ----------
    reference
        Held-out data with the model's probabilities; with labels for the label-shift weights.
    window_s, n_slots
        Sliding event-time window and its resolution.
    min_rows
        Below this many rows in the window the figures are absent.
    max_classes
        Label-shift weights are exported per class only up to this many classes (cardinality).
    refresh
        Relative change of the window's row count that triggers recomputing the figures at
        export (they are also recomputed when the window slides); 0 recomputes every export.
        The per-segment figures are recomputed with the whole window's.
    by_segment
        Also export each segment's drift p-value and distance, diversity and top-class share:
        off by default, as it multiplies the series (5 per segment), adds per-row work (a segment
        look-up and a second window) and ``segment_cap + 1`` tests per refresh.
    segment_cap
        Distinct segment values sliced on their own (defaults to the monitor's ``segment_cap``,
        as the segments detector's); later values share ``other``.
    alpha
        The smallest level the drift p-value is compared with (the shipped rules' 0.001; for
        segments, divided by the segments tested): the Monte-Carlo p-values of sparse tables
        resolve down to a tenth of it (see the module docstring), their cost grows as ``1 / alpha``.
    seed
        Seeds the Monte-Carlo p-values, with each table (defaults to the monitor's ``seed``).
    """

    kind: ClassVar[str] = "prediction_drift"
    #: Sliding-window class counts: rows may come late (see :attr:`Detector.deferrable`).
    deferrable: ClassVar[bool] = True

    def __init__(self, reference: "Reference", window_s: float = 3600.0, n_slots: int = 12, min_rows: int = 200, max_classes: int = 50, refresh: float = 0.05,
                 by_segment: bool = False, segment_cap: int = 20, alpha: float = 0.001, seed: int = 0) -> None:
        probs, labels = reference_probabilities(reference, self.kind)
        if segment_cap < 1:
            raise ValueError(f"prediction_drift: segment_cap must be at least 1, got {segment_cap}")
        if not 1e-5 <= alpha <= 0.1:
            raise ValueError(f"prediction_drift: alpha must be between 1e-05 and 0.1 (the level the drift p-value is "
                             f"compared with, 0.001 by default; the test's cost grows as 1 / alpha), got {alpha}")
        self.alpha = float(alpha)
        self.seed = int(seed)
        self.by_segment = bool(by_segment)
        self.segment_cap = int(segment_cap)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_rows = int(min_rows)
        self.max_classes = int(max_classes)
        self.refresh = float(refresh)
        self._k = probs.shape[1]
        pred = probs.argmax(axis=1)
        self._ref_counts = np.bincount(pred, minlength=self._k).astype(np.float64)
        self._confusion = reference_confusion(pred, labels, self._k) if labels is not None else None
        self._classes = class_names(reference, self._k)
        self._ref_entropy = class_distribution_entropy(self._ref_counts)
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "PredictionDriftDetector":
        return cls(reference, **config_params(cls, context, params, window_s="window_s", segment_cap="segment_cap", seed="seed"))  # type: ignore[arg-type]

    def _reset(self) -> None:
        self._window = SlidingWindow(self.window_s, (self._k,), self.n_slots)
        self._refresh = Refresh(self.refresh)
        self._segments = SegmentCounts(self.segment_cap, self._k, self.window_s, self.n_slots) if self.by_segment else None
        #: the class named in each segment's top-class series, to remove when another class leads
        self._segment_top: dict[str, str] = {}
        #: drawn p-values by (draws, window counts): a function of those, for this reference and seed
        self._memo: dict[tuple[int, bytes], float] = {}

    def update(self, batch: "Batch") -> None:
        pred = batch.predicted
        if pred is None or len(pred) == 0:
            return
        if batch.scores is not None and batch.scores.ndim == 2:  # scores: their width is the model's classes
            check_reference_width(self.kind, batch.scores.shape[1], self._k)
        pred = np.asarray(pred, dtype=np.int64)
        ok = (pred >= 0) & (pred < self._k)
        segments = None if self._segments is None else segment_values(batch, len(ok))
        if not ok.all():  # classes unknown to the reference cannot be compared with it
            pred, ts, span = pred[ok], batch.ts[ok], None
            segments = None if segments is None else segments[ok]
        else:
            ts, span = batch.ts, time_span(batch)
        self._refresh.add(len(pred))
        accumulate(self._window, ts, [(pred, 1.0)], span)
        if self._segments is not None and len(pred):
            self._segments.add(segments, ts, [pred], span)  # type: ignore[arg-type]

    def advance(self, now: float) -> None:
        self._window.advance(now)
        if self._segments is not None:
            self._segments.advance(now)

    # -- results ------------------------------------------------------------------------------
    @property
    def window_counts(self) -> np.ndarray:
        return self._window.total()

    def label_shift_weights(self, counts: np.ndarray | None = None) -> np.ndarray | None:
        """Estimated ``q(y)/p(y)`` per class (None without reference labels or below ``min_rows``),
        from the window's class counts (``counts`` when the caller has read them already)."""
        cur = self.window_counts if counts is None else counts
        if self._confusion is None or cur.sum() < max(self.min_rows, 1):
            return None
        return bbse_weights(self._confusion, cur / cur.sum())

    def export(self, out: "MetricWriter") -> None:
        if self._segments is not None:
            self._segments.export_overflow(out)
        slot_end = self._window.newest_slot_end
        if not self._refresh.due(slot_end):
            return
        cur = self.window_counts
        n = cur.sum()
        self._refresh.done(slot_end, float(n))
        if self._segments is not None and self._segments.slots.carried:  # none before a row carries a segment
            self._export_segments(out)
        if n < max(self.min_rows, 1):
            for name in (names.PREDICTION_DRIFT_PVALUE, names.PREDICTION_DRIFT_DISTANCE, names.OUTPUT_ENTROPY, names.OUTPUT_ENTROPY_REFERENCE):
                out.remove(name)
            for name in (names.TOP_CLASS_SHARE, names.TOP_CLASS_SHARE_REFERENCE, names.LABEL_SHIFT_WEIGHT):
                out.clear(name)
            return
        put_figure(out, names.PREDICTION_DRIFT_PVALUE, float(self._pvalues(cur[None, :], 1)[0]))
        put_figure(out, names.PREDICTION_DRIFT_DISTANCE, uni.js_distance(self._ref_counts, cur))
        put_figure(out, names.OUTPUT_ENTROPY, class_distribution_entropy(cur))
        put_figure(out, names.OUTPUT_ENTROPY_REFERENCE, self._ref_entropy)
        top = int(np.argmax(cur))
        label = (self._classes[top],)
        out.replace(names.TOP_CLASS_SHARE, [(label, float(cur[top] / n))])  # the top class may have changed
        out.replace(names.TOP_CLASS_SHARE_REFERENCE, [(label, float(self._ref_counts[top] / self._ref_counts.sum()))])
        # solved only when exported: beyond max_classes the NNLS of k classes was solved at every
        # refresh and thrown away (1,000 classes: 0.5 s; 3,000: 12 s, the worker held meanwhile)
        w = self.label_shift_weights(cur) if self._k <= self.max_classes else None
        if w is not None:
            # a class no labelled reference row holds has no weight q(y)/p(y) (p(y) = 0): absent,
            # not the 0 bbse_weights gives it, which read "this class is gone" (an alert's "x0.00")
            held = self._confusion.sum(axis=0) > 0  # type: ignore[union-attr]
            keys = [(name,) for name in self._classes]
            out.remove_many(names.LABEL_SHIFT_WEIGHT, [key for key, h in zip(keys, held.tolist()) if not h])
            out.set_many(names.LABEL_SHIFT_WEIGHT, [(key, value) for key, value, h in zip(keys, w.tolist(), held.tolist()) if h])

    def draws(self, tests: int) -> int:
        """Most tables a Monte-Carlo p-value draws when ``tests`` p-values are compared with
        ``alpha / tests`` (see :func:`monitor.stats.univariate.chi2_draws`)."""
        return uni.chi2_draws(self.alpha, tests)

    def _pvalues(self, cur: np.ndarray, tests: int) -> np.ndarray:
        """Drift p-value of each row of ``cur`` (one per test of ``tests``), drawn p-values kept
        while their window is unchanged (a quiet segment is not drawn again at every tick)."""
        if len(self._memo) > 4 * (self.segment_cap + 2):
            self._memo.clear()
        return chi2_rows(self._ref_counts, cur, draws=self.draws(tests), seed=self.seed, memo=self._memo)

    def segment_figures(self) -> dict[str, SegmentPredictionFigures | None]:
        """Per segment (learned ones, then ``other``) its figures against the whole reference,
        None below ``min_rows`` rows of the segment. Empty without ``by_segment``."""
        if self._segments is None:
            return {}
        ref, cur = self._ref_counts, self._segments.totals()
        rows = cur.sum(axis=1)
        enough = rows >= max(self.min_rows, 1)
        out: dict[str, SegmentPredictionFigures | None] = {name: None for name in self._segments.names}
        if not enough.any():
            return out
        cur, rows = cur[enough], rows[enough]  # every test in one array operation over the segments
        top = cur.argmax(axis=1)
        pvalues = self._pvalues(cur, len(cur))
        figures = zip(rows.tolist(), pvalues.tolist(), js_distance_rows(ref, cur).tolist(),
                      class_entropy_rows(cur).tolist(), top.tolist(), (cur[np.arange(len(top)), top] / rows).tolist(),
                      (ref[top] / ref.sum()).tolist())
        for i, (n, p, d, h, t, share, ref_share) in zip(np.flatnonzero(enough).tolist(), figures):
            out[self._segments.names[i]] = SegmentPredictionFigures(n, p, d, h, self._classes[t], share, ref_share)
        return out

    def _export_segments(self, out: "MetricWriter") -> None:
        found = self.segment_figures()
        put_figures(out, names.SEGMENT_PREDICTION_DRIFT_PVALUE, [((s,), None if f is None else f.pvalue) for s, f in found.items()])
        put_figures(out, names.SEGMENT_PREDICTION_DRIFT_DISTANCE, [((s,), None if f is None else f.distance) for s, f in found.items()])
        put_figures(out, names.SEGMENT_OUTPUT_ENTROPY, [((s,), None if f is None else f.diversity) for s, f in found.items()])
        # the top class is a label: a segment whose leading class changed (or that fell below
        # min_rows) loses its old series, the others are overwritten in place (never cleared, so
        # that a rule evaluated between two store calls does not see them vanish)
        stale = [(s, c) for s, c in self._segment_top.items() if found.get(s) is None or found[s].top_class != c]  # type: ignore[union-attr]
        for name in (names.SEGMENT_TOP_CLASS_SHARE, names.SEGMENT_TOP_CLASS_SHARE_REFERENCE):
            out.remove_many(name, stale)
        self._segment_top = {s: f.top_class for s, f in found.items() if f is not None}
        out.set_many(names.SEGMENT_TOP_CLASS_SHARE, [((s, f.top_class), f.top_share) for s, f in found.items() if f is not None])
        out.set_many(names.SEGMENT_TOP_CLASS_SHARE_REFERENCE,
                     [((s, f.top_class), f.top_share_reference) for s, f in found.items() if f is not None])

    def state_dict(self) -> dict[str, Any]:
        return {"windows": windows_state({"main": self._window}),
                **({"segments": self._segments.state_dict()} if self._segments is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"main": self._window}, state["windows"])
        if self._segments is not None:  # saved without segments (before by_segment, or off): they refill
            if not self._segments.load_state_dict(state.get("segments")) and state.get("segments") is not None:
                self._note_restore("its per-segment figures were saved with another segments.cap (or layout)")
