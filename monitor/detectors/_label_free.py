"""The label-free accuracy estimators fitted on the labelled reference, shared by the
accuracy-estimation detector (the whole window) and the segments detector (per segment), so
that a segment's estimate is the whole window's estimator applied to that segment's rows.

* CBPE-style: each fine confidence bin mapped to the reference's probability of being right
  (isotonic, with a prior where the reference has few rows: its Platt-scaled confidence, see
  :func:`monitor.stats.calibration.platt_prior`); a row contributes its calibrated confidence.
* ATC (Garg et al. 2022): a threshold on the score (negative normalised entropy by default,
  ATC-NE) set on the reference so that the share above it equals the reference accuracy; a row
  contributes 1 when its score is above it, and a row whose score ties with it the share that
  makes the reference's own estimate exact (:func:`monitor.stats.calibration.atc_tie_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.stats import calibration as cal
from monitor.stats.uncertainty import normalized_entropy, top_two

if TYPE_CHECKING:
    from monitor.detectors._common import OutputFeatures

__all__ = ["LabelFreeEstimators", "ATC_SCORES", "estimator_settings"]

ATC_SCORES = ("entropy", "confidence")


def estimator_settings(kind: str, atc_score: str, prior_weight: float) -> tuple[str, float]:
    """``atc_score`` and ``prior_weight`` checked for the detector ``kind`` (the accuracy-estimation
    and the segments detectors take the same ones, and refuse them alike), the weight as a float."""
    if atc_score not in ATC_SCORES:
        raise ValueError(f"{kind}: atc_score must be 'entropy' or 'confidence', not {atc_score!r}")
    if not prior_weight >= 0:  # a negative weight was read as none: say so rather than run another estimator
        raise ValueError(f"{kind}: prior_weight must be >= 0 (pseudo-rows per calibration bin; 0 for none), "
                         f"not {prior_weight!r}")
    return atc_score, float(prior_weight)
_EDGES = cal.fine_confidence_edges()
#: The bins CBPE reads confidences in: the fine grid's, each edge lowered by the tie tolerance.
#: Scores of a model with few distinct values (a forest's tenths) sit on grid edges (0.7), and the
#: same score arrives live a few units of the 8th digit away (float32's 0.7 is 0.69999999, a
#: reference read from a CSV holds 0.7): it fell in the bin below, calibrated as another
#: confidence. Within the tolerance below an edge a confidence counts as on it, on both sides.
_BINS = _EDGES - cal.ATC_TIE_TOLERANCE
_BIN_INDEX = cal.bins_of(_BINS)
#: Where a batch keeps its rows' estimates, per fit (see :meth:`LabelFreeEstimators.batch_rows`).
_ROWS_KEY = "_monitor_label_free_rows"


@dataclass(frozen=True)
class LabelFreeEstimators:
    """Fitted CBPE calibration and ATC threshold (see the module notes)."""

    calibrated: np.ndarray
    atc_threshold: float
    atc_score: str
    reference_accuracy: float
    n_classes: int
    atc_tie_weight: float = 0.0

    @classmethod
    def fit(cls, probs: np.ndarray, labels: np.ndarray, atc_score: str = "entropy", prior_weight: float = 2.0) -> "LabelFreeEstimators":
        """Fit on the reference's probabilities ``(n, k)`` and class-index labels."""
        if atc_score not in ATC_SCORES:
            raise ValueError(f"atc_score must be 'entropy' or 'confidence', not {atc_score!r}")
        conf, _ = top_two(probs)
        correct = (probs.argmax(axis=1) == labels).astype(np.float64)
        count, sconf, scorr = cal.reliability_sums(conf, correct, _BINS)
        mid = 0.5 * (_EDGES[:-1] + _EDGES[1:])
        own = np.where(count > 0, sconf / np.maximum(count, 1.0), mid)
        calibrated = cal.isotonic_bins(count, scorr, prior=cal.platt_prior(conf, correct, own), prior_weight=float(prior_weight))
        score = conf if atc_score == "confidence" else -normalized_entropy(probs)
        threshold = cal.atc_threshold(score, correct)
        return cls(calibrated, threshold, atc_score, float(correct.mean()), int(probs.shape[1]),
                   cal.atc_tie_weight(score, correct, threshold))

    @cached_property
    def key(self) -> tuple[Any, ...]:
        """What two fits must share to give every row the same estimates: equal on the same
        reference with the same settings (a fit is deterministic)."""
        return (self.atc_score, self.atc_threshold, self.atc_tie_weight, np.ascontiguousarray(self.calibrated).tobytes())

    def batch_rows(self, batch: Any, features: "OutputFeatures") -> tuple[np.ndarray, np.ndarray]:
        """:meth:`cbpe_rows` and :meth:`atc_rows` of a batch's rows (``features``: its
        :func:`~monitor.detectors._common.output_features`), computed once per batch object for
        every detector whose estimators equal these (the accuracy-estimation and the segments
        detectors fit the same ones on one reference), as the output features are; read-only."""
        kept = batch.__dict__.setdefault(_ROWS_KEY, {})
        rows = kept.get(self.key)
        if rows is None:
            rows = kept[self.key] = (self.cbpe_rows(features.conf), self.atc_rows(features))
        return rows

    def cbpe_rows(self, conf: np.ndarray) -> np.ndarray:
        """Each row's calibrated confidence: its probability of being right by the reference."""
        return self.calibrated[_BIN_INDEX.index(conf)]

    def atc_rows(self, features: "OutputFeatures") -> np.ndarray:
        """1.0 for each row whose score is above the ATC threshold, the tie weight for each row
        whose score ties with it (the entropy is read only for ATC-NE: it is computed on first use)."""
        score = features.conf if self.atc_score == "confidence" else -features.entropy
        high = self.atc_threshold + cal.ATC_TIE_TOLERANCE
        rows = (score > high).astype(np.float64)
        if self.atc_tie_weight > 0.0:
            rows[(score <= high) & (score >= self.atc_threshold - cal.ATC_TIE_TOLERANCE)] = self.atc_tie_weight
        return rows
