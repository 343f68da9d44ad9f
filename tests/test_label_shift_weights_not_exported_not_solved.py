"""Label-shift weights beyond ``max_classes`` are not exported, and were solved anyway.

The prediction-drift detector solved black-box shift estimation's NNLS over every class at each
refresh and threw the weights away when the model has more classes than ``max_classes`` (50):
O(k^3) for nothing, on the worker (measured 0.5 s a refresh at 1,000 classes, 12 s at 3,000).
Counted here, not timed: the solver is not called when its weights are not exported."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors import prediction_drift
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.store import MetricStore


def _detector(rng: np.random.Generator, k: int, max_classes: int):  # type: ignore[no-untyped-def]
    y = rng.integers(0, k, 600)
    probs = np.eye(k)[np.where(rng.random(600) < 0.8, y, rng.integers(0, k, 600))]
    ref = Reference.from_arrays(np.zeros((600, 1)), scores=probs, labels=y)
    det = create("prediction_drift", reference=ref, params={"window_s": 1e6, "max_classes": max_classes})
    live = np.eye(k)[rng.integers(0, k, 400)]
    det.update(Batch.from_arrays(np.zeros((400, 1)), live, ts=np.arange(400.0)))
    return det


@pytest.mark.parametrize("max_classes, solved", [(2, 0), (3, 1)])
def test_weights_are_solved_only_when_exported(monkeypatch: pytest.MonkeyPatch, max_classes: int, solved: int) -> None:
    calls = []
    solve = prediction_drift.bbse_weights
    monkeypatch.setattr(prediction_drift, "bbse_weights", lambda *a: calls.append(1) or solve(*a))
    det = _detector(np.random.default_rng(2), 3, max_classes)
    store = MetricStore("m")
    det.export(store)
    assert len(calls) == solved
    assert (store.value(names.LABEL_SHIFT_WEIGHT, ("0",)) is None) == (solved == 0)
    assert store.value(names.PREDICTION_DRIFT_PVALUE) is not None  # the rest of the figures as before
