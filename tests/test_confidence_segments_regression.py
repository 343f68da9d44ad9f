"""Segments (cap, overflow, largest gaps) and regression outputs (drift, errors, coverage)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch, LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors.registry import create
from monitor.detectors.segments import SegmentDetector
from monitor.reference import Reference
from monitor.store import MetricStore


def binary_batch(rng: np.random.Generator, segments: list[str], p_positive: dict[str, float], n: int, t0: float = 0.0) -> Batch:
    seg = np.array([segments[i] for i in rng.integers(0, len(segments), n)], dtype=object)
    rate = np.array([p_positive[s] for s in seg])
    p1 = np.where(rng.random(n) < rate, rng.uniform(0.6, 0.99, n), rng.uniform(0.01, 0.4, n))
    probs = np.stack([1 - p1, p1], axis=1)
    return Batch.from_arrays(np.zeros((n, 1)), probs, ts=t0 + np.arange(n) * 0.01, segment=seg)


def test_segment_figures_and_largest_gap() -> None:
    rng = np.random.default_rng(0)
    det = SegmentDetector(window_s=1e6, min_rows=100)
    b = binary_batch(rng, ["eu", "us", "apac"], {"eu": 0.3, "us": 0.3, "apac": 0.6}, 6000)
    det.update(b)
    store = MetricStore("m")
    det.export(store)
    pos = b.predicted == 1
    for s in ("eu", "us", "apac"):
        m = b.segment == s
        assert store.value(names.SEGMENT_ROWS, (s,)) == m.sum()
        assert store.value(names.SEGMENT_POSITIVE_RATE, (s,)) == pytest.approx(pos[m].mean())
        assert store.value(names.SEGMENT_CONFIDENCE, (s,)) == pytest.approx(b.scores.max(axis=1)[m].mean())
    gaps = det.gaps()
    high, low, gap, z = gaps["positive_rate"]
    assert high == "apac" and low in ("eu", "us")
    assert gap == pytest.approx(0.3, abs=0.05) and z > 10
    assert store.value(names.SEGMENT_MAX_GAP, ("positive_rate", high, low)) == pytest.approx(gap)
    assert gaps["accuracy"] is None  # no labels yet


def test_no_gap_alarm_between_equal_segments() -> None:
    """Equal segments: the default rule's z > 4 is exceeded in none of 100 seeded windows."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(100):
        det = SegmentDetector(window_s=1e6)
        det.update(binary_batch(rng, [f"s{i}" for i in range(8)], {f"s{i}": 0.4 for i in range(8)}, 4000))
        g = det.gaps()["positive_rate"]
        hits += g is not None and g[2] > 0.1 and g[3] > 4
    assert hits == 0


def test_accuracy_gap_with_labels_and_cap_overflow() -> None:
    rng = np.random.default_rng(2)
    det = create("segments", params={"segment_cap": 3, "window_s": 1e6, "min_labels": 50})
    segs = ["a", "b", "c", "d", "e"]
    b = binary_batch(rng, segs, {s: 0.5 for s in segs}, 5000)
    det.update(b)
    # labels: segment "a" is right 90% of the time, the others 70%
    right = rng.random(5000) < np.where(b.segment == "a", 0.9, 0.7)
    label = np.where(right, b.predicted, 1 - b.predicted)
    det.update_labels(LabeledBatch(ts=b.ts, label_ts=b.ts + 1, label=label, segment=b.segment, scores=b.scores, predicted=b.predicted))
    store = MetricStore("m")
    det.export(store)
    tracked = set(det.segment_names)
    assert len(tracked) == 4 and "other" in tracked  # 3 tracked values + other
    overflow_rows = sum((b.segment == s).sum() for s in segs if s not in tracked)
    assert store.value(names.SEGMENT_OVERFLOW) == 2 * overflow_rows  # counted at update and label time
    assert store.value(names.SEGMENT_ROWS, ("other",)) == overflow_rows
    assert store.value(names.SEGMENTS_TRACKED) == 4
    high, low, gap, z = det.gaps()["accuracy"]
    assert high == "a" and gap == pytest.approx(0.2, abs=0.05) and z > 4
    assert store.value(names.SEGMENT_ACCURACY, ("a",)) == pytest.approx(right[b.segment == "a"].mean())
    clone = create("segments", params={"segment_cap": 3, "window_s": 1e6, "min_labels": 50})
    clone.load_state_dict(det.state_dict())
    assert clone.gaps() == det.gaps() and clone.segment_names == det.segment_names


def test_rows_without_segment_are_one_segment() -> None:
    rng = np.random.default_rng(3)
    det = SegmentDetector(window_s=1e6, min_rows=1)
    b = binary_batch(rng, ["x"], {"x": 0.5}, 10)
    b.segment[:4] = None
    det.update(b)
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.SEGMENT_ROWS, ("unset",)) == 4
    assert store.value(names.SEGMENT_ROWS, ("x",)) == 6


def regression_reference(rng: np.random.Generator, n: int = 2000) -> Reference:
    return Reference.from_arrays(np.zeros((n, 1)), scores=rng.normal(10.0, 2.0, n))


def test_regression_drift_and_errors() -> None:
    rng = np.random.default_rng(4)
    ref = regression_reference(rng)
    det = create("regression", reference=ref, params={"window_s": 1e6})
    n = 1000
    pred = rng.normal(10.0, 2.0, n)
    y = pred + rng.normal(0.5, 1.0, n)
    lo, hi = pred - 1.645, pred + 1.645
    det.update(Batch.from_arrays(np.zeros((n, 1)), pred, ts=np.arange(n) * 0.1))
    det.update_labels(LabeledBatch(ts=np.arange(n) * 0.1, label_ts=np.arange(n) * 0.1 + 1, label=y,
                                   segment=np.full(n, None, dtype=object), scores=pred, intervals=np.stack([lo, hi], axis=1)))
    store = MetricStore("m")
    det.export(store)
    err = pred - y
    assert store.value(names.REGRESSION_MAE) == pytest.approx(np.abs(err).mean())
    assert store.value(names.REGRESSION_RMSE) == pytest.approx(np.sqrt((err**2).mean()))
    assert store.value(names.REGRESSION_BIAS) == pytest.approx(err.mean())
    assert store.value(names.INTERVAL_COVERAGE) == pytest.approx(((y >= lo) & (y <= hi)).mean())
    assert store.value(names.INTERVAL_WIDTH) == pytest.approx(2 * 1.645)
    assert store.value(names.REGRESSION_DRIFT_PVALUE) > 1e-3  # same distribution as the reference
    # shifted predictions: drift is significant and large
    det2 = create("regression", reference=ref, params={"window_s": 1e6})
    det2.update(Batch.from_arrays(np.zeros((n, 1)), rng.normal(12.0, 2.0, n)))
    store2 = MetricStore("m")
    det2.export(store2)
    assert store2.value(names.REGRESSION_DRIFT_PVALUE) < 1e-6 and store2.value(names.REGRESSION_DRIFT_PSI) > 0.25
    assert store2.value(names.REGRESSION_MAE) is None  # no labels: absent, not zero


def test_regression_false_alarms_and_classifier_batches_ignored() -> None:
    """Unshifted windows of 1000 predictions: the default rule (PSI > 0.25, p < 0.001) fires in none of 100."""
    rng = np.random.default_rng(5)
    ref = regression_reference(rng)
    hits = 0
    for _ in range(100):
        det = create("regression", reference=ref, params={"window_s": 1e6})
        det.update(Batch.from_arrays(np.zeros((1000, 1)), rng.normal(10.0, 2.0, 1000)))
        store = MetricStore("m")
        det.export(store)
        hits += store.value(names.REGRESSION_DRIFT_PSI) > 0.25 and store.value(names.REGRESSION_DRIFT_PVALUE) < 1e-3
    assert hits == 0
    det = create("regression", reference=ref)
    det.update(Batch.from_arrays(np.zeros((2, 1)), np.array([[0.2, 0.8], [0.6, 0.4]])))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.REGRESSION_ROWS) == 0


def test_regression_state_round_trip() -> None:
    rng = np.random.default_rng(6)
    ref = regression_reference(rng)
    det = create("regression", reference=ref, params={"window_s": 1e6, "min_rows": 10, "min_labels": 10})
    pred = rng.normal(10.0, 2.0, 100)
    det.update(Batch.from_arrays(np.zeros((100, 1)), pred))
    det.update_labels(LabeledBatch(ts=np.arange(100.0), label_ts=np.arange(100.0), label=pred + 1.0,
                                   segment=np.full(100, None, dtype=object), scores=pred))
    clone = create("regression", reference=ref, params={"window_s": 1e6, "min_rows": 10, "min_labels": 10})
    clone.load_state_dict(det.state_dict())
    a, b = MetricStore("m"), MetricStore("m")
    det.export(a)
    clone.export(b)
    assert a.samples() == b.samples()
    assert a.value(names.REGRESSION_BIAS) == pytest.approx(-1.0)
