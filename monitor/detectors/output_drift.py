"""Output drift: the input-drift machinery over what the model returns.

Channels (whichever the reference has): ``predicted_class`` (the predicted-class frequencies:
label shift as the model sees it), ``max_score`` (the top probability: the confidence
distribution) for classifiers, ``value`` for regression outputs. Each is binned against the
model's outputs on the reference rows and tested with the same ERT-calibrated sequential test and
windowed tests as the inputs (:class:`monitor.detectors.drift.DriftCore`), under the same metric
names with ``detector="output_drift"``. The confidence detectors (issue 3) reuse the same
two-sample functions from :mod:`monitor.stats.univariate` for their windowed confidence and
prediction drift figures; this detector adds the calibrated alarm and the explanation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.detectors.drift import BinnedDriftDetector, Channel
from monitor.profile import Profile

if TYPE_CHECKING:
    from monitor.batch import Batch

__all__ = ["OutputDriftDetector", "OutputBinner"]


class OutputBinner:
    """Bins a batch's outputs into the channels of :class:`OutputDriftDetector`."""

    def __init__(self, channels: list[Channel]) -> None:
        self.channels = channels
        self.n_bins_max = max(c.n_bins for c in channels)

    def ref_matrix(self) -> np.ndarray:
        m = np.full((len(self.channels), self.n_bins_max), -1.0)
        for i, c in enumerate(self.channels):
            m[i, : c.n_bins] = c.ref
        return m

    def bin(self, batch: "Batch") -> tuple[np.ndarray, np.ndarray] | None:
        n = len(batch)
        idx = np.full((n, len(self.channels)), -1, dtype=np.int64)
        vals = np.full((n, len(self.channels)), np.nan)
        scores = batch.scores
        seen = False
        for j, c in enumerate(self.channels):
            if c.name == "predicted_class" and batch.predicted is not None:
                p = np.asarray(batch.predicted, dtype=np.int64)
                k = len(c.categories)
                idx[:, j] = np.where((p >= 0) & (p < k), p, c.unseen_bin)
                seen = True
            elif c.name == "max_score" and scores is not None and scores.ndim == 2 and scores.shape[1] >= 2:
                v = scores.max(axis=1)
                idx[:, j] = c.bin_numeric(v)
                vals[:, j] = v
                seen = True
            elif c.name == "value" and scores is not None:
                # a classifier's reference of one column (P(positive) of a binary model) is profiled
                # as values, and its live rows come decoded as [1 - p, p]: the value is the last
                # column (the first compared 1 - p with p: drift on the reference's own rows)
                v = scores.reshape(n, -1)[:, -1] if scores.ndim > 1 else scores
                idx[:, j] = c.bin_numeric(np.asarray(v, dtype=np.float64))
                vals[:, j] = v
                seen = True
        return (idx, vals) if seen else None


class OutputDriftDetector(BinnedDriftDetector):
    """Drift of the model's outputs (kind ``output_drift``); parameters as
    :class:`~monitor.detectors.drift.FeatureDriftDetector` (``features`` is ignored).

    Needs a reference with the model's outputs on it (``Reference.from_arrays(..., scores=...)`` or
    a profile built with ``--output-columns``).
    """

    kind = "output_drift"

    def _channels(self, profile: Profile) -> tuple[list[Channel], Any]:
        out = profile.outputs
        if out is None:
            raise ValueError(
                "detector 'output_drift' needs the model's outputs on the reference rows: pass "
                "Reference.from_arrays(..., scores=model_outputs) or build the profile with --output-columns"
            )
        chans: list[Channel] = []
        if out.predicted_counts is not None:
            k = int(out.predicted_counts.size)
            classes = tuple(out.classes) if len(out.classes) == k else tuple(str(i) for i in range(k))
            ref = np.concatenate([out.predicted_counts, [0.0, 0.0, 0.0]])  # other, missing, unseen
            chans.append(Channel("predicted_class", "categorical", ref, categories=classes,
                                 lookup={c: i for i, c in enumerate(classes)}))
        if out.max_score is not None:
            chans.append(Channel.numeric(out.max_score, self.n_bins))
        if out.value is not None:
            chans.append(Channel.numeric(out.value, self.n_bins))
        return chans, OutputBinner(chans)
