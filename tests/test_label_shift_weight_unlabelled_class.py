"""Label-shift weights of a class that no labelled reference row holds.

Black-box shift estimation gives such a class weight 0 (its confusion column is empty: the window
says nothing of it), and ``monitor_label_shift_weight`` exported that 0: "the class is gone", which
ModelPredictionDrift's text lists as ``x0.00`` among the classes whose share changed, on a stream
where nothing changed. Its weight q(y)/p(y) has no value (p(y) = 0): the series is absent."""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.store import MetricStore


def _rows(rng: np.random.Generator, n: int, truth: np.ndarray) -> np.ndarray:
    pred = np.where(rng.random(n) < 0.8, truth, rng.choice(3, n))  # class c is predicted now and then
    probs = np.full((n, 3), 0.1)
    probs[np.arange(n), pred] = 0.8
    return probs


def test_a_class_without_labelled_reference_rows_has_no_weight() -> None:
    rng = np.random.default_rng(5)
    y = rng.choice(2, 600)  # the labelled reference holds classes a and b only
    ref = Reference.from_arrays(np.zeros((600, 1)), scores=_rows(rng, 600, y), labels=y, classes=["a", "b", "c"])
    det = create("prediction_drift", reference=ref, params={"window_s": 1e6})
    live = _rows(rng, 400, rng.choice(2, 400))  # drawn as the reference's rows: no shift
    det.update(Batch.from_arrays(np.zeros((400, 1)), live, ts=np.arange(400.0)))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.LABEL_SHIFT_WEIGHT, ("c",)) is None
    for cls in ("a", "b"):  # unshifted: within 0.3 of 1 (400 rows; the seeded values are 1.07 and 0.94)
        assert abs(store.value(names.LABEL_SHIFT_WEIGHT, (cls,)) - 1.0) < 0.3
