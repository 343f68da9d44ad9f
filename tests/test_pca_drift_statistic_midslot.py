"""``monitor_drift_statistic{detector="pca_drift"}`` is the window's mean reconstruction error.
It divided the window's running total (which includes rows added since) by the row count of the
figures cached at the slot's first export: a scrape a minute later, within the same 5-minute
slot, read the mean of 200 rows' errors summed over 100 rows -- twice the true mean, above the
dashboard's threshold on healthy traffic."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.multivariate import PCADriftDetector
from monitor.reference import Reference
from monitor.store import MetricStore

COV = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.7], [0.6, 0.7, 1.0]])


def test_the_exported_statistic_is_the_mean_of_every_row_in_the_window() -> None:
    rng = np.random.default_rng(3)
    det = PCADriftDetector(Reference.from_arrays(rng.multivariate_normal(np.zeros(3), COV, size=2000)))
    store = MetricStore("m")
    seen = []
    fold_draws = np.random.default_rng(det._core.binner.seed)  # the binner's: each row's fold PCA
    for t0 in (0.0, 60.0, 120.0):  # three scrapes within one 300 s slot of the hour's window
        x = rng.multivariate_normal(np.zeros(3), COV, size=150)
        seen.append(det._core.binner.pca.calibrated_error(x, fold_draws))
        det.update(Batch.from_arrays(x, None, ts=t0 + np.arange(150) * 0.1))
        det.export(store)
        want = float(np.concatenate(seen).mean())
        assert store.value("monitor_drift_statistic", ("pca_drift",)) == pytest.approx(want)
