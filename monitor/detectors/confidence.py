"""Confidence distributions of every call: what the model says about its own certainty.

Exports, from the outputs alone (no reference, no labels):

* histograms of the max probability, the margin (top-1 minus top-2), the normalised entropy,
  the energy score when the model returns logits, and for ensembles / MC-dropout the mutual
  information between members (epistemic uncertainty) and the variance of the top class;
* over a sliding event-time window: the mean confidence and the abstain rate (share of rows
  whose max probability is below ``abstain_threshold``), absent below ``min_rows`` rows.

Binary models given as one column arrive here as two columns (the output decoder expands them).

Examples
--------
>>> import numpy as np
>>> from monitor.batch import Batch
>>> from monitor.store import MetricStore
>>> det = ConfidenceDetector(abstain_threshold=0.6, min_rows=2)
>>> det.update(Batch.from_arrays(np.zeros((3, 1)), np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8]])))
>>> store = MetricStore("m")
>>> det.export(store)
>>> round(store.value("monitor_abstain_ratio"), 3), store.value("monitor_confidence_ratio").count
(0.333, 3.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import Refresh, config_params, load_windows_state, output_features, time_span, uncertainty_features, windows_state, RefreshingDetector
from monitor.detectors._pending import PendingHistogram
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["ConfidenceDetector"]

# window layout
_N, _CONF, _ABSTAIN, _DIM = 0, 1, 2, 3
_MAX_PENDING = 4096


class ConfidenceDetector(RefreshingDetector):
    """Histograms of per-row uncertainty scores and windowed mean confidence / abstain rate.

    Parameters
    ----------
    abstain_threshold
        A row whose max probability is below this counts as "abstain" (the model would better
        defer to a human); its windowed share is exported.
    window_s
        Sliding event-time window for the windowed figures (defaults to the monitor's window).
    n_slots
        Resolution of the window (it slides by ``window_s / n_slots``).
    min_rows
        Below this many rows in the window the windowed figures are absent, not noisy.
    flush_s
        The histograms are written to the store at most once per ``flush_s`` seconds of event
        time (or as soon as 4096 rows are waiting): exports happen after every worker batch and
        writing histograms each time would cost more than computing them. 0 writes every export.
    refresh
        Relative change of the window's row count that triggers recomputing the windowed figures
        at export (they are also recomputed when the window slides); 0 recomputes every export.
    """

    kind: ClassVar[str] = "confidence"
    #: Sliding-window sums, buffered histograms and a clock taken as a maximum: rows may come late.
    deferrable: ClassVar[bool] = True

    def __init__(self, abstain_threshold: float = 0.5, window_s: float = 3600.0, n_slots: int = 12, min_rows: int = 30,
                 flush_s: float = 1.0, refresh: float = 0.05) -> None:
        if not 0.0 <= abstain_threshold <= 1.0:
            raise ValueError(f"confidence: abstain_threshold must be in [0, 1], got {abstain_threshold}")
        self.abstain_threshold = float(abstain_threshold)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_rows = int(min_rows)
        self.flush_s = float(flush_s)
        self.refresh = float(refresh)
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "ConfidenceDetector":
        return cls(**config_params(cls, context, params, window_s="window_s"))

    def _reset(self) -> None:
        self._window = SlidingWindow(self.window_s, (_DIM,), self.n_slots)
        self._clock: float | None = None
        self._flushed_at: float | None = None
        self._refresh = Refresh(self.refresh)
        self._hist = {
            names.CONFIDENCE: PendingHistogram(names.CONFIDENCE_BUCKETS),
            names.MARGIN: PendingHistogram(names.CONFIDENCE_BUCKETS),
            names.ENTROPY: PendingHistogram(names.ENTROPY_BUCKETS),
            names.ENERGY: PendingHistogram(names.ENERGY_BUCKETS),
            names.MUTUAL_INFORMATION: PendingHistogram(names.MI_BUCKETS),
            names.TOP_CLASS_VARIANCE: PendingHistogram(names.VARIANCE_BUCKETS),
        }

    def update(self, batch: "Batch") -> None:
        feats = output_features(batch)
        if feats is None:
            return
        self._hist[names.CONFIDENCE].add(feats.conf)
        self._hist[names.MARGIN].add(feats.margin)
        self._hist[names.ENTROPY].add(feats.entropy)
        unc = uncertainty_features(batch)
        if unc is not None:
            for name, values in ((names.ENERGY, unc.energy), (names.MUTUAL_INFORMATION, unc.mutual_information),
                                 (names.TOP_CLASS_VARIANCE, unc.top_class_variance)):
                if values is not None:
                    self._hist[name].add(values)
        abstain = (feats.conf < self.abstain_threshold).astype(np.float64)
        span = time_span(batch)
        accumulate(self._window, batch.ts, [(_N, 1.0), (_CONF, feats.conf), (_ABSTAIN, abstain)], span)
        self._refresh.add(len(batch))
        newest = span[1]
        if self._clock is None or newest > self._clock:
            self._clock = newest

    def advance(self, now: float) -> None:
        self._window.advance(now)
        if self._clock is None or now > self._clock:
            self._clock = now

    # -- results ------------------------------------------------------------------------------
    @property
    def rows_in_window(self) -> int:
        return int(round(self._window.total()[_N]))

    @property
    def mean_confidence(self) -> float | None:
        """Mean max probability over the window, None below ``min_rows``."""
        t = self._window.total()
        return float(t[_CONF] / t[_N]) if t[_N] >= max(self.min_rows, 1) else None

    @property
    def abstain_rate(self) -> float | None:
        """Share of rows below ``abstain_threshold`` over the window, None below ``min_rows``."""
        t = self._window.total()
        return float(t[_ABSTAIN] / t[_N]) if t[_N] >= max(self.min_rows, 1) else None

    def on_tick(self, now: float) -> None:
        """Also flush the buffered histograms at the next export."""
        super().on_tick(now)
        self._flushed_at = None

    def export(self, out: "MetricWriter") -> None:
        # histograms: flushed at most once per ``flush_s`` of event time (or when 4096 rows wait),
        # because the worker exports after every drained batch and a flush costs a store write
        pending = self._hist[names.CONFIDENCE].pending
        now = self._window.newest_slot_end if self._clock is None else self._clock
        if pending and (pending >= _MAX_PENDING or self._flushed_at is None or now - self._flushed_at >= self.flush_s):
            for name, hist in self._hist.items():
                hist.flush(out, name)
            self._flushed_at = now
        slot_end = self._window.newest_slot_end
        if not self._refresh.due(slot_end):
            return
        t = self._window.total()
        self._refresh.done(slot_end, float(t[_N]))
        enough = t[_N] >= max(self.min_rows, 1)
        mean = float(t[_CONF] / t[_N]) if enough else None
        abstain = float(t[_ABSTAIN] / t[_N]) if enough else None
        out.set(names.CONFIDENCE_ROWS, float(t[_N]))
        if mean is None or abstain is None:
            out.remove(names.CONFIDENCE_MEAN)
            out.remove(names.ABSTAIN)
        else:
            out.set(names.CONFIDENCE_MEAN, mean)
            out.set(names.ABSTAIN, abstain)

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "windows": windows_state({"main": self._window}),
            "pending": {name: h.state_dict() for name, h in self._hist.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"main": self._window}, state["windows"])
        for name, h in self._hist.items():
            if name in state.get("pending", {}):
                h.load_state_dict(state["pending"][name])
