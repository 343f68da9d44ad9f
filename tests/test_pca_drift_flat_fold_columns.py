"""pca_drift's fold PCAs standardise a column flat in their fit rows by every reference row's
moments, not by the moments of the rows they calibrate.

A column without spread in the nine folds a fold PCA is fitted on (a field filled in a few rows
only, constant where present: a year, a coupon's value; an indicator set in this fold's rows
alone) had no scale there, and the fold took its *own* rows' mean and sd for it: its calibration
rows were standardised on themselves, and where none of them held the field (a fold of 4 rows
of a 40-row reference, a field present in 30% of rows: about a quarter of the folds) the fold's
mean was 0 and its scale 1, so every live row meeting that fold with the field present was
scored on the raw value (2024), an error no calibration row ever had. Healthy traffic's mean
error then sat hundreds of times over the reference's, and the dashboard's threshold was crossed
for 19 of 20 such references (1% present, a 1,000-row reference: 15 of 20). Now such a column
takes the moments of every row the PCA reads, as the fold PCAs whose fit rows held the field
scale it.

Stated: over ten seeded 40-row references, an hour of healthy traffic crosses the exported
threshold for at most two (measured: 1 of the first 20 seeds, 18 of 20 before; a plain 40-row
Gaussian reference crosses for about 1 in 20); every fold takes the field's mean and scale of the
whole reference, so a row with the field present scores under each fold PCA as if it were
missing (the field never varied in the reference).
"""

from __future__ import annotations

import numpy as np
from monitor.batch import Batch
from monitor.detectors.multivariate import PCADriftDetector
from monitor.reference import Reference
from monitor.store import MetricStore

NAMES = ("a", "b", "c", "d", "e", "year")
MIX = np.random.default_rng(123).normal(size=(5, 5))


def rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Five correlated features and ``year``: 2024 in 30% of rows, missing in the others."""
    return np.column_stack([rng.normal(size=(n, 5)) @ MIX, np.where(rng.random(n) < 0.3, 2024.0, np.nan)])


def _crossed(seed: int) -> bool:
    """Whether an hour of healthy traffic put the statistic above the exported threshold, with a
    40-row reference."""
    rng = np.random.default_rng(seed)
    det = PCADriftDetector(Reference.from_arrays(rows(rng, 40), numeric_names=list(NAMES)))
    for start in range(0, 3600, 600):
        det.update(Batch.from_arrays(rows(rng, 600), numeric_names=NAMES, ts=start + np.arange(600.0)))
    store = MetricStore("m")
    det.export(store)
    stat = store.value("monitor_drift_statistic", ("pca_drift",))
    threshold = store.value("monitor_drift_statistic_threshold", ("pca_drift",))
    return bool(stat > threshold)


SEEDS = range(10)


def test_healthy_traffic_stays_under_the_threshold_when_folds_lack_a_sparse_column() -> None:
    crossed = [s for s in SEEDS if _crossed(s)]
    assert len(crossed) <= 2, crossed


def test_a_column_flat_in_a_folds_fit_rows_takes_every_rows_moments() -> None:
    x = rows(np.random.default_rng(0), 40)
    pca = PCADriftDetector(Reference.from_arrays(x, numeric_names=list(NAMES))).profile.pca
    for fold in pca.folds:
        assert fold.mean[-1] == 2024.0 and fold.scale[-1] == pca.scale[-1]
    present = x[np.isfinite(x[:, -1])][:1]
    errors = [fold.error(present)[0] for fold in pca.folds]
    without_year = [fold.error(np.column_stack([present[:, :-1], [[np.nan]]]))[0] for fold in pca.folds]
    np.testing.assert_allclose(errors, without_year)
