"""output_drift (predicted classes, max score, regression values) and pca_drift on seeded streams."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.multivariate import PCADriftDetector
from monitor.detectors.output_drift import OutputDriftDetector
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.store import MetricStore

COV = np.array([[1.0, 0.9, 0.8, 0.7], [0.9, 1.0, 0.85, 0.75], [0.8, 0.85, 1.0, 0.8], [0.7, 0.75, 0.8, 1.0]])


def probs(rng: np.random.Generator, n: int, skew: float = 0.0) -> np.ndarray:
    logits = rng.normal(size=(n, 3)) * 1.5
    logits[:, 0] += skew
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(0)
    return Reference.from_arrays(rng.multivariate_normal(np.zeros(4), COV, size=4000), scores=probs(rng, 4000),
                                 classes=["cat", "dog", "fox"])


def feed(det, rng, n: int, *, skew: float = 0.0, broken: bool = False, t0: float = 0.0) -> None:
    for s in range(0, n, 100):
        x = rng.multivariate_normal(np.zeros(4), COV, size=100)
        if broken:  # correlations broken, marginals unchanged
            x = rng.normal(size=(100, 4))
        det.update(Batch.from_arrays(x, probs(rng, 100, skew), ts=t0 + s + np.arange(100.0), classes=("cat", "dog", "fox")))


def test_output_drift_silent_then_names_the_predicted_class(reference: Reference) -> None:
    det = create("output_drift", reference=reference)
    assert det.channel_names == ("predicted_class", "max_score")
    rng = np.random.default_rng(1)
    feed(det, rng, 60_000)
    assert det.thresholds.n_alarm_tests == 0
    feed(det, rng, 500, skew=2.0, t0=60_000)
    assert det.drift_detected
    names = [f for f, _, _ in det.top_features]
    assert "predicted_class" in names
    change = dict((f, c) for f, c, _ in det.top_features)["predicted_class"]
    assert change.startswith("'cat'")
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_drift_detected", ("output_drift",)) == 1.0


def test_output_drift_on_regression_values() -> None:
    rng = np.random.default_rng(2)
    ref = Reference.from_arrays(rng.normal(size=(3000, 2)), scores=rng.gamma(2.0, 3.0, 3000))
    det = OutputDriftDetector(ref)
    assert det.channel_names == ("value",)
    for i in range(30):
        det.update(Batch.from_arrays(rng.normal(size=(500, 2)), rng.gamma(2.0, 3.0, 500), ts=i * 500 + np.arange(500.0)))
    assert not det.drift_detected
    det.update(Batch.from_arrays(rng.normal(size=(400, 2)), rng.gamma(2.0, 3.0, 400) * 1.5, ts=20_000 + np.arange(400.0)))
    assert det.drift_detected and det.top_features[0][0] == "value"


def test_output_drift_needs_reference_outputs() -> None:
    ref = Reference.from_arrays(np.random.default_rng(3).normal(size=(100, 2)))
    with pytest.raises(ValueError, match="outputs on the reference"):
        OutputDriftDetector(ref)


def test_pca_drift_sees_broken_correlations_that_marginals_miss(reference: Reference) -> None:
    pca = PCADriftDetector(reference)
    inp = create("input_drift", reference=reference)
    rng = np.random.default_rng(4)
    for det in (pca, inp):
        feed(det, np.random.default_rng(5), 30_000)
        assert not det.drift_detected
    delays = {}
    for name, det in (("pca", pca), ("input", inp)):
        r = np.random.default_rng(6)
        seen = 0
        while seen < 3000 and not det.drift_detected:
            feed(det, r, 100, broken=True, t0=40_000 + seen)
            seen += 100
        delays[name] = seen if det.drift_detected else None
    assert delays["pca"] is not None and delays["pca"] <= 500
    assert delays["input"] is None or delays["input"] > delays["pca"]
    store = MetricStore("m")
    pca.export(store)
    assert store.value("monitor_drift_statistic", ("pca_drift",)) > store.value("monitor_drift_statistic_threshold", ("pca_drift",))
    del rng


def test_pca_drift_is_one_sided(reference: Reference) -> None:
    """Rows that reconstruct *better* than the reference (perfectly correlated) are not drift."""
    det = PCADriftDetector(reference)
    rng = np.random.default_rng(7)
    for s in range(0, 5000, 100):
        z = rng.normal(size=(100, 1))
        x = np.repeat(z, 4, axis=1)  # rank one: reconstruction error near zero
        det.update(Batch.from_arrays(x, ts=s + np.arange(100.0)))
    assert not det.drift_detected
