"""The onset of a drift alarm (``monitor_drift_onset_timestamp_seconds`` and the ``since`` label)
is where the first flagged window starts, whatever the size of the batches the rows came in: a
batch of thousands of rows (a busy drain, a replayed chunk, a DataFrame scored at once) dated it
from the batch's *last* flagged window, 4,900 rows late in batches of 5,000."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.drift import FeatureDriftDetector
from monitor.detectors.multivariate import PCADriftDetector
from monitor.reference import Reference

from tests import drift_streams as S

ONSET, ROWS = 10_000, 20_000


def _onset(cls: type, reference: Reference, batch: int) -> tuple[float, int]:
    rng = np.random.default_rng(7)
    x = S.sample(rng, ROWS)
    x[ONSET:, 0] *= 10
    ts = 1000.0 + np.arange(ROWS, dtype=np.float64)  # one row per second: onset at t = 11,000
    det = cls(reference)
    for s in range(0, ROWS, batch):
        det.update(Batch.from_arrays(x[s:s + batch], ts=ts[s:s + batch], numeric_names=S.NAMES))
        if det.drift_detected:
            break
    assert det.drift_detected
    return det.onset_ts, det._core.alarm_event


@pytest.mark.parametrize("cls", [FeatureDriftDetector, PCADriftDetector], ids=["input_drift", "pca_drift"])
def test_onset_does_not_depend_on_the_batch_size(cls: type) -> None:
    reference = Reference.from_arrays(S.sample(np.random.default_rng(0), 3000), numeric_names=S.NAMES)
    small = _onset(cls, reference, 50)
    assert abs(small[0] - (1000.0 + ONSET)) <= 1000  # within the longest window of the true onset
    for batch in (500, 2000, 5000):
        assert _onset(cls, reference, batch) == small, batch
