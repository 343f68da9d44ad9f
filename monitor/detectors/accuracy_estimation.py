"""Accuracy estimated without labels, by three estimators exported side by side.

Labels are late or never come; these estimates say how the model is doing now. Each is fitted on
the labelled reference at construction and read from a sliding event-time window:

* ``cbpe`` (confidence-based, as NannyML's CBPE): the reference maps each confidence bin to the
  probability of being right (isotonic, so it grows with confidence); the estimate is the mean
  of that calibrated confidence over the window. Right when the model's calibration does not
  change, which covariate shift often breaks (confidence falls less than accuracy).
* ``atc`` (Average Thresholded Confidence, Garg et al. 2022): a threshold on the score (negative
  entropy by default, ATC-NE) is set on the reference so that the share of rows above it equals
  the reference accuracy; the estimate is the share above it in the window. Empirically more
  robust under covariate shift than the mean of the confidences.
* ``bbse`` (label shift): with the class weights of black-box shift estimation, the expected
  accuracy ``sum_j w_j C[j, j]``. Right under pure label shift, where the other two are biased.
  Up to ``bbse_max_classes`` (200) classes: its non-negative least squares costs ``k^3``
  (8 ms at 200 classes, 0.7 s at 1,000 and 14 s at 3,000, at every refresh, the worker held
  meanwhile), and a confusion matrix of ``k^2`` cells estimated from a reference of a few
  thousand rows says little of a label shift among more classes than that.

They disagree by design when the shift is of a kind one of them cannot see; showing them
together is the point. The reference accuracy is exported as their baseline, and the window's
rows as their sample size: at a few hundred rows an hour an estimate wanders several points from
the reference accuracy by chance alone (ATC's is a share of the window's rows, of binomial
variance), which the shipped rule must tell from a drop.
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
    put_figure,
    reference_probabilities,
    time_span,
    windows_state,
)
from monitor.detectors.prediction_drift import reference_confusion
from monitor.stats import calibration as cal
from monitor.detectors._label_free import LabelFreeEstimators, estimator_settings
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["AccuracyEstimationDetector", "ESTIMATORS"]

ESTIMATORS = ("cbpe", "atc", "bbse")
_N, _CBPE, _ATC, _PRED = 0, 1, 2, 3


class AccuracyEstimationDetector(RefreshingDetector):
    """CBPE-style, ATC and BBSE accuracy estimates over a sliding window.

    Parameters
    ----------
    reference
        Held-out data with the model's probabilities and the true labels.
    window_s, n_slots
        Sliding event-time window and its resolution.
    min_rows
        Below this many rows in the window the estimates are absent.
    atc_score
        ``"entropy"`` (ATC-NE, the default) or ``"confidence"`` (ATC-MC).
    prior_weight
        Pseudo-rows per fine confidence bin at the reference's Platt-scaled confidence in the
        CBPE calibrator, so that confidences the reference rarely shows are not extrapolated from
        a few rows (see :func:`monitor.stats.calibration.platt_prior`).
    refresh
        Relative change of the window's row count that triggers recomputing the figures at
        export (they are also recomputed when the window slides); 0 recomputes every export.
    bbse_max_classes
        Most classes for which the ``bbse`` estimate is made (beyond, it is absent; see above).
    """

    kind: ClassVar[str] = "accuracy_estimation"
    #: Sliding-window sums: rows may come late (see :attr:`Detector.deferrable`).
    deferrable: ClassVar[bool] = True

    def __init__(self, reference: "Reference", window_s: float = 3600.0, n_slots: int = 12, min_rows: int = 100, atc_score: str = "entropy",
                 prior_weight: float = 2.0, refresh: float = 0.05, bbse_max_classes: int = 200) -> None:
        atc_score, prior_weight = estimator_settings(self.kind, atc_score, prior_weight)
        probs, labels = reference_probabilities(reference, self.kind, need_labels=True)
        assert labels is not None
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_rows = int(min_rows)
        self.atc_score = atc_score
        self.prior_weight = prior_weight
        self.refresh = float(refresh)
        self.bbse_max_classes = int(bbse_max_classes)
        self._k = probs.shape[1]
        self._estimators = LabelFreeEstimators.fit(probs, labels, atc_score, self.prior_weight)
        self.reference_accuracy = self._estimators.reference_accuracy
        self.reference_rows = int(labels.shape[0])
        self._confusion = reference_confusion(probs.argmax(axis=1), labels, self._k)
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "AccuracyEstimationDetector":
        return cls(reference, **config_params(cls, context, params, window_s="window_s"))  # type: ignore[arg-type]

    def _reset(self) -> None:
        self._window = SlidingWindow(self.window_s, (_PRED + self._k,), self.n_slots)
        self._refresh = Refresh(self.refresh)

    def update(self, batch: "Batch") -> None:
        feats = output_features(batch)
        if feats is None or batch.scores is None:
            return
        check_reference_width(self.kind, batch.scores.shape[1], self._k)
        est = self._estimators
        calibrated, above = est.batch_rows(batch, feats)  # shared with the segments detector's
        self._refresh.add(len(batch))
        accumulate(self._window, batch.ts, [(_N, 1.0), (_CBPE, calibrated), (_ATC, above), (feats.predicted + _PRED, 1.0)],
                   time_span(batch))

    def advance(self, now: float) -> None:
        self._window.advance(now)

    def estimates(self) -> dict[str, float | None]:
        """Estimated accuracy per estimator over the window (None below ``min_rows``)."""
        t = self._window.total()
        n = t[_N]
        if n < max(self.min_rows, 1):
            return {e: None for e in ESTIMATORS}
        bbse = None
        if self._k <= self.bbse_max_classes:
            w = cal.bbse_weights(self._confusion, t[_PRED:] / n)
            bbse = float(np.clip(cal.label_shift_accuracy(self._confusion, w), 0.0, 1.0))
        return {"cbpe": float(t[_CBPE] / n), "atc": float(t[_ATC] / n), "bbse": bbse}

    def export(self, out: "MetricWriter") -> None:
        slot_end = self._window.newest_slot_end
        if not self._refresh.due(slot_end):
            return
        rows = float(self._window.total()[_N])
        self._refresh.done(slot_end, rows)
        out.set(names.REFERENCE_ACCURACY, self.reference_accuracy)
        out.set(names.REFERENCE_ACCURACY_ROWS, float(self.reference_rows))
        # the rows behind the estimates, written with them (both throttled alike): an estimate is a
        # share or a mean over them, so a drop's significance needs them (ModelEstimatedAccuracyDrop)
        out.set(names.ESTIMATED_ACCURACY_ROWS, rows)
        for est, value in self.estimates().items():
            put_figure(out, names.ESTIMATED_ACCURACY, value, (est,))

    def state_dict(self) -> dict[str, Any]:
        return {"windows": windows_state({"main": self._window})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"main": self._window}, state["windows"])
