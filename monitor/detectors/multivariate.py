"""Multivariate drift: PCA reconstruction error against the reference (as NannyML's data
reconstruction drift).

A change in how features relate to each other -- correlations broken by a bad join, noise added
to every feature of some rows -- can leave each feature's marginal distribution almost intact. A
PCA fitted on the standardised reference features keeps the directions that explain
``PCA_VARIANCE`` of the variance; rows that do not follow the reference's correlation structure
reconstruct badly. The per-row reconstruction error is then one more channel for the same
ERT-calibrated sequential test as the features (its reference distribution is made of errors of
rows the scoring PCA was *not* fitted on, so it is not biased low: 5-fold cross-fitted errors, or,
when the directions come from other rows such as the training set (``pca_fit``), every reference
row's error under them), and the window's mean error is
exported as ``monitor_drift_statistic{detector="pca_drift"}`` with the threshold
``reference mean + 3 sd * sqrt(1 / window rows + 1 / reference rows)``: the reference's mean is
itself an estimate, and with a reference of a few dozen rows its error dwarfs the window's, so a
threshold of ``3 sd / sqrt(window rows)`` alone was crossed by healthy traffic drawn from the
reference's population (a 45-row reference: about a third of the time) while the detector stayed
silent, and the dashboard's panel said drift where there was none. The test is one-sided, its alarm and its windowed
count of drifted channels alike: rows that reconstruct *better* than the reference (rows the PCA
was fitted on, or more tightly correlated than ever) are not drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.detectors.drift import BinnedDriftDetector, Channel
from monitor.profile import PCAProfile, Profile

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.store import MetricWriter

__all__ = ["PCADriftDetector", "PCABinner"]


class PCABinner:
    """Reconstruction error of each row, binned on the reference's held-out error quantiles."""

    def __init__(self, pca: PCAProfile, channel: Channel) -> None:
        self.pca = pca
        self.channels = [channel]
        self.n_bins_max = channel.n_bins
        self._cols: dict[tuple[str, ...], np.ndarray | None] = {}

    def ref_matrix(self) -> np.ndarray:
        return self.channels[0].ref[None, :].astype(np.float64)

    def _columns(self, names: tuple[str, ...]) -> np.ndarray | None:
        if names not in self._cols:
            pos = {n: i for i, n in enumerate(names)}
            missing = [n for n in self.pca.names if n not in pos]
            self._cols[names] = None if missing else np.array([pos[n] for n in self.pca.names], dtype=np.int64)
        return self._cols[names]

    def bin(self, batch: "Batch") -> tuple[np.ndarray, np.ndarray] | None:
        cols = self._columns(tuple(batch.numeric_names))
        if cols is None:
            return None
        err = self.pca.transform_error(batch.numeric[:, cols])
        return self.channels[0].bin_numeric(err)[:, None], err[:, None]


class PCADriftDetector(BinnedDriftDetector):
    """Multivariate drift by PCA reconstruction error (kind ``pca_drift``); sequential parameters as
    :class:`~monitor.detectors.drift.FeatureDriftDetector`. Needs at least two numeric features."""

    kind = "pca_drift"
    #: One-sided: only rows reconstructing *worse* than the reference are drift (errors that fall,
    #: e.g. on rows the PCA was fitted on, are not), for the alarm and the windowed count alike.
    upward = True

    def _channels(self, profile: Profile) -> tuple[list[Channel], Any]:
        pca = profile.pca
        if pca is None:
            raise ValueError("detector 'pca_drift' needs at least two numeric features and 20 reference rows")
        chan = Channel.numeric(pca.error, self.n_bins)
        chan.name = "reconstruction_error"
        return [chan], PCABinner(pca, chan)

    def export(self, out: "MetricWriter") -> None:
        super().export(out)
        fig = self._core.compute_figures()
        st = fig["stats"][0] if fig["stats"] else None
        ch = self._core.channels[0]
        rows = fig["rows"]
        if st is None or rows <= 0:
            out.remove("monitor_drift_statistic", (self.name,))
            out.remove("monitor_drift_statistic_threshold", (self.name,))
            return
        d, b = self._core._d, self._core._b
        mean = float(self._core.window_total()[2 * d * b] / rows)
        out.set("monitor_drift_statistic", mean, (self.name,))
        n_ref = float(ch.ref[:-1].sum())  # finite reference errors (the last bin: missing and inf)
        spread = np.sqrt(1.0 / rows + (1.0 / n_ref if n_ref > 0 else 0.0))
        out.set("monitor_drift_statistic_threshold", ch.mean + 3.0 * ch.sd * spread, (self.name,))
