"""``upward`` (one-sided drift) is one option of the shared drift core, for the sequential alarm and
the windowed count alike: the PCA detector sets it (a reconstruction error that fell is no drift);
here it is checked on several numeric channels at once, where a feature whose mean fell must
neither alarm nor count as drifted over the window, while a feature whose mean rose does both."""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.detectors.drift import FeatureDriftDetector
from monitor.detectors.multivariate import PCADriftDetector
from monitor.reference import Reference
from monitor.store import MetricStore


class UpwardFeatureDrift(FeatureDriftDetector):
    upward = True


def _reference() -> Reference:
    return Reference.from_arrays(np.random.default_rng(0).normal(size=(4000, 3)), numeric_names=["a", "b", "c"])


def _run(det: FeatureDriftDetector, col: int, shift: float, seed: int = 1) -> MetricStore:
    rng = np.random.default_rng(seed)
    for s in range(0, 5000, 100):
        x = rng.normal(size=(100, 3))
        x[:, col] += shift
        det.update(Batch.from_arrays(x, ts=s + np.arange(100.0), numeric_names=("a", "b", "c")))
    store = MetricStore("m")
    det.export(store)
    return store


def test_a_mean_that_fell_is_no_drift_for_an_upward_core_but_is_for_the_two_sided_one() -> None:
    ref = _reference()
    both = FeatureDriftDetector(ref)
    store = _run(both, 0, -1.5)
    assert both.drift_detected and store.value("monitor_drift_features_drifted", ("input_drift",)) == 1
    up = UpwardFeatureDrift(ref)
    assert up._core.upward and not both._core.upward
    store = _run(up, 0, -1.5)
    assert not up.drift_detected
    assert store.value("monitor_drift_features_drifted", ("input_drift",)) == 0
    assert store.value("monitor_drift_feature_pvalue", ("input_drift", "a", "ks")) < 1e-6  # seen, not counted


def test_a_mean_that_rose_alarms_and_counts_on_an_upward_core_naming_its_feature() -> None:
    up = UpwardFeatureDrift(_reference())
    store = _run(up, 1, 1.5)
    assert up.drift_detected
    assert store.value("monitor_drift_features_drifted", ("input_drift",)) == 1
    assert [f for f, _, _ in up._core.top] == ["b"]


def test_the_pca_detector_is_upward() -> None:
    assert PCADriftDetector.upward and not FeatureDriftDetector.upward
