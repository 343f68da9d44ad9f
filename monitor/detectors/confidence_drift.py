"""Confidence drift: has the distribution of the model's certainty changed against the reference?

Before accuracy can be measured (labels are late or never come), a change in how sure the model
is often gives the shift away: inputs from outside the training distribution usually lower the
max probability and raise the entropy, and a broken upstream feature can do the opposite. Over a
sliding event-time window, the max probability and the normalised entropy are binned at the
reference's quantiles and compared with the reference by the two-sample Kolmogorov-Smirnov test
on bins (:func:`monitor.stats.univariate.ks_binned`, exact for moderate counts and correct with
ties). Both the p-value and the KS distance (effect size) are exported, so that an alert can
require a minimum effect and large windows do not turn trivial differences into alarms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import (
    RefreshingDetector,
    config_params,
    load_windows_state,
    output_features,
    Refresh,
    time_span,
    put_figure,
    reference_probabilities,
    windows_state,
)
from monitor.stats import univariate as uni
from monitor.stats.uncertainty import normalized_entropy, top_two
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["ConfidenceDriftDetector"]

SCORES = ("confidence", "entropy")


class ConfidenceDriftDetector(RefreshingDetector):
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
    """

    kind: ClassVar[str] = "confidence_drift"
    #: Sliding-window histograms: rows may come late (see :attr:`Detector.deferrable`).
    deferrable: ClassVar[bool] = True

    def __init__(self, reference: "Reference", window_s: float = 3600.0, n_slots: int = 12, n_bins: int = 20, min_rows: int = 200, refresh: float = 0.05) -> None:
        probs, _ = reference_probabilities(reference, self.kind)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.n_bins = int(n_bins)
        self.min_rows = int(min_rows)
        self.refresh = float(refresh)
        conf, _second = top_two(probs)
        ent = normalized_entropy(probs)
        self._edges = {"confidence": uni.quantile_edges(conf, n_bins), "entropy": uni.quantile_edges(ent, n_bins)}
        self._ref = {"confidence": uni.histogram(conf, self._edges["confidence"]), "entropy": uni.histogram(ent, self._edges["entropy"])}
        self._k = probs.shape[1]
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "ConfidenceDriftDetector":
        return cls(reference, **config_params(cls, context, params, window_s="window_s"))  # type: ignore[arg-type]

    def _reset(self) -> None:
        self._nb = {s: len(self._edges[s]) + 1 for s in SCORES}
        self._offset = {"confidence": 0, "entropy": self._nb["confidence"]}
        self._window = SlidingWindow(self.window_s, (sum(self._nb.values()),), self.n_slots)
        self._refresh = Refresh(self.refresh)

    def update(self, batch: "Batch") -> None:
        feats = output_features(batch)
        if feats is None or batch.scores is None or batch.scores.shape[1] != self._k:
            return
        self._refresh.add(len(batch))
        # the bins of uni.bin_index; the scores are finite (the output decoder refuses NaN rows),
        # so its NaN check is skipped on the hot path
        accumulate(
            self._window,
            batch.ts,
            [
                (np.searchsorted(self._edges["confidence"], feats.conf, side="right") + self._offset["confidence"], 1.0),
                (np.searchsorted(self._edges["entropy"], feats.entropy, side="right") + self._offset["entropy"], 1.0),
            ],
            time_span(batch),
        )

    def advance(self, now: float) -> None:
        self._window.advance(now)

    def results(self) -> dict[str, uni.TestResult | None]:
        """KS result per score over the current window (None below ``min_rows``)."""
        total = self._window.total()
        out: dict[str, uni.TestResult | None] = {}
        for s in SCORES:
            cur = total[self._offset[s]:self._offset[s] + self._nb[s]]
            out[s] = uni.ks_binned(self._ref[s], cur) if cur.sum() >= max(self.min_rows, 1) else None
        return out

    def export(self, out: "MetricWriter") -> None:
        slot_end = self._window.newest_slot_end
        if not self._refresh.due(slot_end):
            return
        results = self.results()
        self._refresh.done(slot_end, float(self._window.total()[:self._nb["confidence"]].sum()))
        for s, res in results.items():
            put_figure(out, names.CONFIDENCE_DRIFT_PVALUE, None if res is None else res.pvalue, (s,))
            put_figure(out, names.CONFIDENCE_DRIFT_DISTANCE, None if res is None else res.statistic, (s,))

    def state_dict(self) -> dict[str, Any]:
        return {"windows": windows_state({"main": self._window})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"main": self._window}, state["windows"])
