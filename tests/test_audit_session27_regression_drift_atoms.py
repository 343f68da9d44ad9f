"""Regression prediction drift of a model whose predictions repeat (session 27 audit).

A decision tree predicts one value per leaf, and the reference's quantile edges sit on those
values. The same leaf value reaches the monitor a few units of the 8th digit away when the served
model runs in float32 (ONNX, a KServe FP32 tensor) and the reference was scored in float64, or
the reverse: such a prediction fell just below its edge, in the bin of the leaf below, and an
unchanged depth-3 tree read PSI 2.6 and p 3e-261 (RegressionPredictionDrift on every window).
Edges now take a value within a millionth of them as on them, as the classifier's confidence
bins do.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.regression import RegressionDetector
from monitor.reference import Reference
from monitor.store import MetricStore


def _tree() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (6000, 3))
    y = 3.3 * x[:, 0] + np.sin(x[:, 1]) + rng.normal(0.0, 1.0, 6000)
    tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(x[:2000], y[:2000])
    return x[2000:4000], tree.predict(x[2000:4000]), tree.predict(x[4000:])


def _float32(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("which", ["live float32", "reference float32", "same precision"])
def test_an_unchanged_tree_in_another_precision_shows_no_drift(which: str) -> None:
    x_ref, ref, live = _tree()
    if which == "live float32":
        live = _float32(live)
    elif which == "reference float32":
        ref = _float32(ref)
    det = RegressionDetector(Reference.from_arrays(x_ref, scores=ref), window_s=1e7)
    det.update(Batch.from_arrays(np.zeros((len(live), 1)), live, ts=np.arange(float(len(live)))))
    store = MetricStore("m")
    det.export(store)
    # unshifted: nowhere near the rule's PSI > 0.25 and p < 0.001, and the same figures in every precision
    assert store.value(names.REGRESSION_DRIFT_PSI) < 0.05
    assert store.value(names.REGRESSION_DRIFT_PVALUE) > 1e-3


def test_a_shifted_tree_still_drifts() -> None:
    x_ref, ref, live = _tree()
    det = RegressionDetector(Reference.from_arrays(x_ref, scores=ref), window_s=1e7)
    shifted = np.sort(_float32(live))[len(live) // 3:]  # the lowest third of the predictions gone
    det.update(Batch.from_arrays(np.zeros((len(shifted), 1)), shifted, ts=np.arange(float(len(shifted)))))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.REGRESSION_DRIFT_PSI) > 0.25 and store.value(names.REGRESSION_DRIFT_PVALUE) < 1e-6


def test_the_output_drift_channel_of_a_tree_in_float32_shows_no_drift() -> None:
    """The same through the drift pack's ``output_drift`` detector (a default for regression
    models): its ``value`` channel's edges sit on the leaf values too, and the float32 tree read KS
    p 2e-68 there (ModelOutputDrift and ModelFeaturesDriftedOverWindow on unchanged traffic)."""
    from monitor.detectors.registry import create

    x_ref, ref, live = _tree()
    det = create("output_drift", reference=Reference.from_arrays(x_ref, scores=ref), params={"window_s": 1e7})
    live = _float32(live)
    det.update(Batch.from_arrays(np.zeros((len(live), 1)), live, ts=np.arange(float(len(live)))))
    det.advance(float(len(live)))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_drift_feature_pvalue", ("output_drift", "value", "ks")) > 1e-3
    assert not store.value("monitor_drift_features_drifted", ("output_drift",))


def test_an_input_feature_of_tenths_sent_in_float32_shows_no_drift() -> None:
    """An input feature taking the values 0.1 ... 0.9, the reference in float64 and the live rows
    in float32 (0.7 is 0.69999999): its edges sit on those values, and the feature read KS p 3e-20
    against an unchanged distribution."""
    from monitor.detectors.registry import create

    rng = np.random.default_rng(0)
    tenths = np.arange(1, 10) / 10
    x_ref = np.stack([rng.choice(tenths, 3000), rng.normal(0.0, 1.0, 3000)], axis=1)
    live = _float32(np.stack([rng.choice(tenths, 3000), rng.normal(0.0, 1.0, 3000)], axis=1))
    det = create("input_drift", reference=Reference.from_arrays(x_ref), params={"window_s": 1e7})
    det.update(Batch.from_arrays(live, None, ts=np.arange(3000.0)))
    det.advance(3000.0)
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_drift_feature_pvalue", ("input_drift", "f0", "ks")) > 1e-3
