"""Confidence drift: has the distribution of the model's certainty changed against the reference?

Before accuracy can be measured (labels are late or never come), a change in how sure the model
is often gives the shift away: inputs from outside the training distribution usually lower the
max probability and raise the entropy, and a broken upstream feature can do the opposite. Over a
sliding event-time window, the max probability and the normalised entropy are binned at the
reference's quantiles and compared with the reference by the two-sample Kolmogorov-Smirnov test
on bins (:func:`monitor.stats.univariate.ks_binned`, exact for moderate counts and correct with
ties). Both the p-value and the KS distance (effect size) are exported, so that an alert can
require a minimum effect and large windows do not turn trivial differences into alarms.

With ``by_segment: true`` the same test runs per segment (each with ``min_rows`` rows in the
window): the segment's window against the **whole reference**, which is not sliced, since a
reference rarely carries segment values. That answers "does this segment look like the
population the model was validated on?", not "has this segment changed?": a segment that always
differed from the population (a harder region, a device whose inputs are noisier) shows as
drifted from its first full window and stays so. Its p-value history tells the two apart (drifted
since the start: a standing difference, to read as "not validated on this segment"; drifted from
some time on: a change). A comparison of each segment with its own first window was left out on
purpose: that baseline is whatever traffic came first (already shifted, or a few quiet minutes),
it is lost or must be kept per segment across restarts, and a slow drift becomes its new normal.
Segment p-values use the asymptotic KS distribution (Stephens' correction) even where the whole
window's are exact: the exact lattice recursion costs 2-16 ms per test against a reference under
~1,400 rows, times two scores and up to ``segment_cap + 1`` segments at every refresh (the
asymptotic ones are computed for every segment in one array operation); on binned data (ties)
the asymptotic p-value is conservative, i.e. errs towards silence (seeded: 1.3-2% of unshifted
segments below 0.05). With up to
``segment_cap + 1`` p-values per score, an alert must correct for multiple tests: Bonferroni,
p < alpha / (segments with a p-value), as the shipped rule does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import (
    check_reference_width,
    RefreshingDetector,
    config_params,
    load_windows_state,
    output_features,
    Refresh,
    time_span,
    put_figure,
    put_figures,
    reference_probabilities,
    windows_state,
)
from monitor.detectors._segment_counts import SegmentCounting, SegmentCounts, ks_rows, segment_values
from monitor.stats import univariate as uni
from monitor.stats.bins import UnitBins
from monitor.stats.calibration import ATC_TIE_TOLERANCE as SCORE_TIE_TOLERANCE
from monitor.stats.uncertainty import normalized_entropy, top_two
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["ConfidenceDriftDetector"]

SCORES = ("confidence", "entropy")


class ConfidenceDriftDetector(SegmentCounting, RefreshingDetector):
    """KS test of the window's confidence and entropy distributions against the reference.

    Parameters
    ----------
    reference
        Held-out data with the model's probabilities (``reference.scores``).
    window_s, n_slots
        Sliding event-time window and its resolution.
    n_bins
        Bins at reference quantiles (ties at 1.0 share a bin, so there may be fewer).
    min_rows
        Below this many rows in the window the figures are absent.
    refresh
        Relative change of the window's row count that triggers recomputing the figures at
        export (they are also recomputed when the window slides); 0 recomputes every export.
        The per-segment figures are recomputed with the whole window's.
    by_segment
        Also test each segment's window against the (whole) reference: off by default, as it
        multiplies the series (2 figures x 2 scores per segment), adds per-row work (a segment
        look-up and a second window) and up to ``2 x (segment_cap + 1)`` tests per refresh.
    segment_cap
        Distinct segment values tested on their own (defaults to the monitor's ``segment_cap``,
        as the segments detector's); later values share ``other``.
    """

    kind: ClassVar[str] = "confidence_drift"
    #: Sliding-window histograms: rows may come late (see :attr:`Detector.deferrable`).
    deferrable: ClassVar[bool] = True

    def __init__(self, reference: "Reference", window_s: float = 3600.0, n_slots: int = 12, n_bins: int = 20, min_rows: int = 200, refresh: float = 0.05,
                 by_segment: bool = False, segment_cap: int = 20) -> None:
        probs, _ = reference_probabilities(reference, self.kind)
        if segment_cap < 1:
            raise ValueError(f"confidence_drift: segment_cap must be at least 1, got {segment_cap}")
        self.by_segment = bool(by_segment)
        self.segment_cap = int(segment_cap)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.n_bins = int(n_bins)
        self.min_rows = int(min_rows)
        self.refresh = float(refresh)
        conf, _second = top_two(probs)
        ent = normalized_entropy(probs)
        # The edges are reference values (quantiles), and a model with few distinct scores (a tree's
        # leaves, a k-NN vote) puts most rows exactly on them; the same row live differs in the 8th
        # digit (float32, renormalised by the output decoder) and fell in the bin below, drifted
        # (KS distance 0.40 on the reference's own rows). A value within the tolerance below an edge
        # counts as on it, for the reference's rows and the live ones alike.
        self._edges = {"confidence": _score_edges(conf, n_bins), "entropy": _score_edges(ent, n_bins)}
        self._ref = {"confidence": uni.histogram(conf, self._edges["confidence"]), "entropy": uni.histogram(ent, self._edges["entropy"])}
        # the live rows' bins by a guide table (both scores lie in [0, 1]): searchsorted's numbers
        self._bins = {s: UnitBins(self._edges[s], side="right") for s in SCORES}
        self._k = probs.shape[1]
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "ConfidenceDriftDetector":
        return cls(reference, **config_params(cls, context, params, window_s="window_s", segment_cap="segment_cap"))  # type: ignore[arg-type]

    def _reset(self) -> None:
        self._nb = {s: len(self._edges[s]) + 1 for s in SCORES}
        self._offset = {"confidence": 0, "entropy": self._nb["confidence"]}
        self._window = SlidingWindow(self.window_s, (sum(self._nb.values()),), self.n_slots)
        self._refresh = Refresh(self.refresh)
        self._segments = SegmentCounts(self.segment_cap, sum(self._nb.values()), self.window_s, self.n_slots) if self.by_segment else None

    def update(self, batch: "Batch") -> None:
        feats = output_features(batch)
        if feats is None or batch.scores is None:
            return
        check_reference_width(self.kind, batch.scores.shape[1], self._k)
        self._refresh.add(len(batch))
        # the bins of uni.bin_index; the scores are finite (the output decoder refuses NaN rows),
        # so its NaN check is skipped on the hot path
        conf_bin = self._bins["confidence"].index(feats.conf) + self._offset["confidence"]
        entropy_bin = self._bins["entropy"].index(feats.entropy) + self._offset["entropy"]
        span = time_span(batch)
        accumulate(self._window, batch.ts, [(conf_bin, 1.0), (entropy_bin, 1.0)], span)
        if self._segments is not None:
            self._segments.add(segment_values(batch, len(conf_bin)), batch.ts, [conf_bin, entropy_bin], span)

    def advance(self, now: float) -> None:
        self._window.advance(now)
        if self._segments is not None:
            self._segments.advance(now)

    def results(self) -> dict[str, uni.TestResult | None]:
        """KS result per score over the current window (None below ``min_rows``)."""
        total = self._window.total()
        out: dict[str, uni.TestResult | None] = {}
        for s in SCORES:
            cur = total[self._offset[s]:self._offset[s] + self._nb[s]]
            out[s] = uni.ks_binned(self._ref[s], cur) if cur.sum() >= max(self.min_rows, 1) else None
        return out

    def segment_results(self) -> dict[str, dict[str, uni.TestResult | None]]:
        """KS result per segment and score, each segment's window against the whole reference
        (None below ``min_rows`` rows of the segment; asymptotic p-values, see the module notes).
        Empty without ``by_segment``."""
        if self._segments is None:
            return {}
        totals = self._segments.totals()
        enough = (totals[:, :self._nb["confidence"]].sum(axis=1) >= max(self.min_rows, 1)).tolist()
        found = {s: ks_rows(self._ref[s], totals[:, self._offset[s]:self._offset[s] + self._nb[s]]) for s in SCORES}
        return {name: {s: uni.TestResult(float(found[s][0][i]), float(found[s][1][i]), "asymptotic") if enough[i] else None
                       for s in SCORES}
                for i, name in enumerate(self._segments.names)}

    def export(self, out: "MetricWriter") -> None:
        if self._segments is not None:
            self._segments.export_overflow(out)
        slot_end = self._window.newest_slot_end
        if not self._refresh.due(slot_end):
            return
        results = self.results()
        self._refresh.done(slot_end, float(self._window.total()[:self._nb["confidence"]].sum()))
        for s, res in results.items():
            put_figure(out, names.CONFIDENCE_DRIFT_PVALUE, None if res is None else res.pvalue, (s,))
            put_figure(out, names.CONFIDENCE_DRIFT_DISTANCE, None if res is None else res.statistic, (s,))
        if self._segments is not None and self._segments.slots.carried:  # none before a row carries a segment
            found = [((seg, s), res) for seg, by_score in self.segment_results().items() for s, res in by_score.items()]
            put_figures(out, names.SEGMENT_CONFIDENCE_DRIFT_PVALUE, [(key, None if res is None else res.pvalue) for key, res in found])
            put_figures(out, names.SEGMENT_CONFIDENCE_DRIFT_DISTANCE, [(key, None if res is None else res.statistic) for key, res in found])

    def state_dict(self) -> dict[str, Any]:
        return {"windows": windows_state({"main": self._window}),
                **({"segments": self._segments.state_dict()} if self._segments is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"main": self._window}, state["windows"])
        if self._segments is not None:  # saved without segments (before by_segment, or off): they refill
            if not self._segments.load_state_dict(state.get("segments")) and state.get("segments") is not None:
                self._note_restore("its per-segment figures were saved with another segments.cap (or layout)")


def _score_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner edges of a score's bins: the reference's quantiles, each lowered by the tie tolerance.

    A reference of one value (one-hot probabilities, a fully grown decision tree's or a
    1-nearest-neighbour vote's: every confidence 1.0, every entropy 0) has no quantile edge, and
    one bin took every live score: KS distance 0 and p-value 1 whatever the model answered. It
    gets three bins instead, below, on (within the tolerance) and above its value, so that
    scores leaving it are counted apart and the same scores live are not.
    """
    edges = uni.quantile_edges(values, n_bins)
    finite = values[np.isfinite(values)]
    if edges.size == 0 and finite.size:
        v = float(finite[0])
        return np.array([v - SCORE_TIE_TOLERANCE, v + SCORE_TIE_TOLERANCE])
    return edges - SCORE_TIE_TOLERANCE
