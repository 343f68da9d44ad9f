"""Review s42b: defects in confidence, calibration, segments and label shift, re-found and fixed
(each test failed before its fix)."""

from __future__ import annotations

import numpy as np

from monitor.batch import LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors.calibration import CalibrationDetector
from monitor.stats import calibration as cal
from monitor.stats import uncertainty as unc
from monitor.store import MetricStore


def _one_hot_labelled(rng: np.random.Generator, n: int, k: int, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    """A one-hot model (a fully grown tree, a 1-nearest-neighbour vote): every top probability is
    exactly 1, right on ``accuracy`` of the rows."""
    label = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < accuracy, label, (label + rng.integers(1, k, n)) % k)
    return np.eye(k)[pred], label


def test_a_one_hot_model_has_no_recalibrating_temperature() -> None:
    """Softmax(z / T) of a one-hot row is that row at every T: no temperature recalibrates such a
    model, wrong on a fifth of its rows at confidence 1. The fit ran to its upper bound, 20, and
    exported it; the temperature is now absent (NaN from the fit, no series)."""
    rng = np.random.default_rng(42)
    probs, label = _one_hot_labelled(rng, 600, 4, 0.8)
    assert np.isnan(cal.fit_temperature(unc.log_probabilities(probs), label))
    assert np.isnan(cal.fit_temperature(np.zeros((50, 3)), rng.integers(0, 3, 50)))  # uniform: flat too
    # flat on the rows kept: those whose true class has probability 0 say nothing of T and are left
    # out (here soft ones), leaving one-hot right answers
    rows = np.array([[1.0, 0.0, 0.0]] * 40 + [[0.6, 0.4, 0.0]] * 10)
    assert np.isnan(cal.fit_temperature(unc.log_probabilities(rows), np.array([0] * 40 + [2] * 10)))
    # a model that is not one-hot on every row still gets its temperature
    mixed = probs.copy()
    mixed[:300] = 0.7 * mixed[:300] + 0.3 / 4
    t = cal.fit_temperature(unc.log_probabilities(mixed), label)
    assert np.isfinite(t) and 0.05 < t < 20.0

    ts = np.sort(rng.uniform(0.0, 100.0, len(label)))
    det = CalibrationDetector(window_s=1000.0, refresh=0.0)
    det.update_labels(LabeledBatch(ts=ts, label_ts=ts + 5.0, label=label, segment=np.full(len(label), None, dtype=object),
                                   scores=probs, predicted=probs.argmax(axis=1),
                                   log_scores=unc.log_probabilities(probs)))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.ACCURACY) is not None  # the window's figures are there
    assert store.value(names.GAP) is not None
    assert store.value(names.TEMPERATURE) is None
