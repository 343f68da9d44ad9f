"""What RegressionPredictionDrift's two conditions (PSI > 0.25 and p < 0.001) see, as README states
it: a shift of the predictions' mean by 0.6 reference sds meets both; by 0.3 sds the p-value is
far under 0.001 on a window of 4,000 rows but the PSI stays under 0.25, so the rule stays silent
(a large window makes any shift significant; the PSI is the size the rule asks for)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.regression import RegressionDetector
from monitor.reference import Reference
from monitor.store import MetricStore


def _figures(shift_sd: float, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    ref = rng.normal(10.0, 2.0, size=2_000)
    det = RegressionDetector(Reference.from_arrays(np.zeros((2_000, 1)), scores=ref), window_s=1e7)
    live = rng.normal(10.0 + 2.0 * shift_sd, 2.0, size=4_000)
    det.update(Batch.from_arrays(np.zeros((4_000, 1)), live, ts=np.arange(4_000.0)))
    store = MetricStore("m")
    det.export(store)
    return store.value(names.REGRESSION_DRIFT_PSI), store.value(names.REGRESSION_DRIFT_PVALUE)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_six_tenths_sd_shift_meets_both_conditions(seed: int) -> None:
    psi, p = _figures(0.6, seed)
    assert psi > 0.25 and p < 0.001, (psi, p)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_three_tenths_sd_shift_is_significant_but_below_the_psi_bound(seed: int) -> None:
    psi, p = _figures(0.3, seed)
    assert p < 0.001 and psi < 0.25, (psi, p)
