"""The accuracy-estimation detector's label-shift (BBSE) estimate is made for up to
``bbse_max_classes`` classes: beyond, its k^3 solve (0.7 s at 1,000 classes, 14 s at 3,000, at every
refresh, holding the worker) is not made and the figure is absent, CBPE and ATC exported as before."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.accuracy_estimation import AccuracyEstimationDetector
from monitor.reference import Reference
from monitor.stats import calibration as cal
from monitor.store import MetricStore


def _probs(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, k)) * 3.0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.where(rng.random(n) < 0.7, p.argmax(axis=1), rng.integers(0, k, n))
    return p, labels


def _estimates(k: int, monkeypatch: pytest.MonkeyPatch, **params: int) -> tuple[MetricStore, int]:
    rng = np.random.default_rng(k)
    probs, labels = _probs(rng, 3000, k)
    det = AccuracyEstimationDetector(Reference.from_arrays(np.zeros((3000, 1)), scores=probs, labels=labels), window_s=1e6, **params)
    calls = []
    real = cal.bbse_weights
    monkeypatch.setattr(cal, "bbse_weights", lambda *a: calls.append(1) or real(*a))
    live, _ = _probs(rng, 500, k)
    det.update(Batch.from_arrays(np.zeros((500, 1)), live, ts=np.arange(500.0), predicted=live.argmax(axis=1)))
    store = MetricStore("m")
    det.export(store)
    return store, len(calls)


def test_beyond_the_class_limit_bbse_is_absent_and_not_solved(monkeypatch: pytest.MonkeyPatch) -> None:
    store, solved = _estimates(250, monkeypatch)
    assert solved == 0
    assert store.value(names.ESTIMATED_ACCURACY, ("bbse",)) is None
    for estimator in ("cbpe", "atc"):
        assert 0.0 <= store.value(names.ESTIMATED_ACCURACY, (estimator,)) <= 1.0


def test_within_the_limit_or_raised_bbse_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, params in ((20, {}), (250, {"bbse_max_classes": 250})):
        store, solved = _estimates(k, monkeypatch, **params)
        assert solved == 1
        assert 0.0 <= store.value(names.ESTIMATED_ACCURACY, ("bbse",)) <= 1.0
