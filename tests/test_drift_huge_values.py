"""Finite values near the largest float (1e308: a unit bug, an uninitialised buffer) in a
feature: their squares overflowed in the drift detector's running moments, numpy's overflow and
"invalid value" RuntimeWarnings went to the user's stderr from the worker, and the sequential
test's running window sums, which add each block and subtract it when it leaves, became
inf - inf = NaN for good once those rows left. Such values are now left out of the moments (they
still count in their bin, so the drift is seen); the state stays finite after they leave."""

from __future__ import annotations

import warnings

import numpy as np

from monitor.batch import Batch
from monitor.detectors.drift import FeatureDriftDetector
from monitor.reference import Reference


def test_values_near_the_float_limit_leave_the_moments_finite_and_say_nothing() -> None:
    rng = np.random.default_rng(3)
    reference = Reference.from_arrays(rng.normal(size=(3000, 3)), numeric_names=("a", "b", "c"))
    det = FeatureDriftDetector(reference, scales=(100, 300), window_s=600.0)
    t = 1e9
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # any overflow or NaN warning fails the test
        for k in range(40):  # 2,000 rows of which 200 at +-1e308 in feature a
            x = rng.normal(size=(50, 3))
            if 10 <= k < 14:
                x[:, 0] = 1e308 * np.where(rng.random(50) < 0.5, 1.0, -1.0)
            det.update(Batch.from_arrays(x, ts=t + np.arange(50) * 0.5, numeric_names=("a", "b", "c")))
            t += 25.0
    state = det._core.test.state_dict()
    assert det._core.test.n_alarm_tests > 0  # the huge values are drift: seen through their bins
    assert np.isfinite(state["mwin"]).all() and np.isfinite(state["mring"]).all(), state["mwin"]
    assert np.isfinite(det._core.window.total()).all()  # 600 s later: the window no longer holds them
