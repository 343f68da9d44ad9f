"""Output drift of a binary classifier whose reference scores are one column, P(positive).

Such a reference is profiled as one "value" channel, while live rows of one column are decoded
as ``[1 - p, p]``: the detector read the first column, 1 - p, and found drift (a 2.6-sd shift,
KS p-value 0) on rows drawn like the reference's own. Seeded; bounds stated below."""

from __future__ import annotations

import numpy as np

from monitor import Monitor, Reference


def _run(live_a: float, live_b: float, seed: int) -> Monitor:
    rng = np.random.default_rng(seed)
    n = 2000
    p = rng.beta(2.0, 5.0, n)
    ref = Reference.from_arrays(rng.normal(size=(n, 2)), scores=p, labels=(rng.random(n) < p).astype(int))
    mon = Monitor(config={"model": "m", "detectors": ["output_drift"]}, reference=ref, start_worker=False,
                  clock=lambda: 1600.0)
    for i in range(60):
        mon.observe(rng.normal(size=(50, 2)), rng.beta(live_a, live_b, 50), timestamp=1000.0 + 10.0 * i)
    mon.flush()
    return mon


def test_unshifted_binary_one_column_outputs_do_not_drift() -> None:
    for seed in range(3):
        mon = _run(2.0, 5.0, seed)
        # 3,000 rows drawn as the reference's: no alarm, and the mean moved by far less than 0.2 sd
        assert mon.store.value("monitor_drift_detected", {"detector": "output_drift"}) == 0.0
        shift = mon.store.value("monitor_drift_feature_effect", {"detector": "output_drift", "feature": "value",
                                                                 "measure": "mean_shift_sd"})
        assert shift is not None and abs(shift) < 0.2
        mon.close()


def test_shifted_binary_one_column_outputs_drift_upwards() -> None:
    mon = _run(5.0, 2.0, 0)  # P(positive) now mostly high: the mean rises by well over 1 sd
    assert mon.store.value("monitor_drift_detected", {"detector": "output_drift"}) == 1.0
    shift = mon.store.value("monitor_drift_feature_effect", {"detector": "output_drift", "feature": "value",
                                                             "measure": "mean_shift_sd"})
    assert shift is not None and shift > 1.0
    mon.close()
