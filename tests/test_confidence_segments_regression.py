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
    # rows counted once, when predicted: their labels are not new rows (they were counted twice)
    assert store.value(names.SEGMENT_OVERFLOW) == overflow_rows
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


def calibrated_outputs(rng: np.random.Generator, n: int, gap: float = 0.0, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A calibrated k-class model (right with probability = its confidence), or over-confident by ``gap``."""
    y = rng.integers(0, k, n)
    conf = 0.1 + 0.9 * rng.beta(20.0, 1.5, n)
    right = rng.random(n) < np.clip(conf - gap, 0.0, 1.0)
    pred = np.where(right, y, (y + rng.integers(1, k, n)) % k)
    probs = np.repeat(((1.0 - conf) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(n), pred] = conf
    return probs, y, pred


def two_segment_labels(rng: np.random.Generator, n: int, gap_b: float) -> LabeledBatch:
    pa, ya, pra = calibrated_outputs(rng, n)
    pb, yb, prb = calibrated_outputs(rng, n, gap=gap_b)
    ts = np.arange(2 * n) * 0.01
    return LabeledBatch(ts=ts, label_ts=ts + 1.0, label=np.concatenate([ya, yb]), segment=np.array(["a"] * n + ["b"] * n, dtype=object),
                        scores=np.vstack([pa, pb]), predicted=np.concatenate([pra, prb]))


def test_segment_proper_scores_and_calibration_error_match_the_rows() -> None:
    from monitor.stats import calibration as cal

    rng = np.random.default_rng(10)
    lab = two_segment_labels(rng, 600, gap_b=0.1)
    det = SegmentDetector(window_s=1e6, min_labels=50, min_labels_calibration=200)
    det.update_labels(lab)
    store = MetricStore("m")
    det.export(store)
    conf = lab.scores.max(axis=1)
    correct = (lab.predicted == lab.label).astype(float)
    edges = np.linspace(0.0, 1.0, cal.ECE_BINS + 1)
    for s in ("a", "b"):
        m = lab.segment == s
        assert store.value(names.SEGMENT_BRIER, (s,)) == pytest.approx(cal.brier_terms(lab.scores[m], lab.label[m]).mean())
        assert store.value(names.SEGMENT_LOG_LOSS, (s,)) == pytest.approx(cal.log_loss_terms(lab.scores[m], lab.label[m]).mean())
        assert store.value(names.SEGMENT_CALIBRATION_ERROR, (s, "ece_equal_width")) == pytest.approx(cal.ece_equal_width(conf[m], correct[m]))
        sums = cal.reliability_sums(conf[m], correct[m], edges)
        assert store.value(names.SEGMENT_CALIBRATION_ERROR, (s, "debiased_l2_equal_width")) == pytest.approx(cal.debiased_l2_from_sums(*sums))
    # the over-confident segment scores worse on every figure
    assert store.value(names.SEGMENT_BRIER, ("b",)) > store.value(names.SEGMENT_BRIER, ("a",))
    assert store.value(names.SEGMENT_LOG_LOSS, ("b",)) > store.value(names.SEGMENT_LOG_LOSS, ("a",))


def test_segment_calibration_figures_absent_below_their_minimum_and_bounded_by_the_cap() -> None:
    rng = np.random.default_rng(11)
    lab = two_segment_labels(rng, 100, gap_b=0.0)  # 100 labels per segment
    det = SegmentDetector(segment_cap=1, window_s=1e6, min_labels=150, min_labels_calibration=150)
    det.update_labels(lab)
    store = MetricStore("m")
    det.export(store)
    # "a" is tracked, "b" folded into "other"; 100 labels each, below both minimums: absent, not zero
    for s in ("a", "other"):
        assert store.value(names.SEGMENT_LABELS, (s,)) == 100
        assert store.value(names.SEGMENT_BRIER, (s,)) is None and store.value(names.SEGMENT_LOG_LOSS, (s,)) is None
        assert store.value(names.SEGMENT_CALIBRATION_ERROR, (s, "ece_equal_width")) is None
    assert store.value(names.SEGMENT_BRIER, ("b",)) is None  # never a series beyond the cap
    det2 = SegmentDetector(segment_cap=1, window_s=1e6, min_labels=50, min_labels_calibration=150)
    det2.update_labels(lab)
    store2 = MetricStore("m")
    det2.export(store2)
    assert store2.value(names.SEGMENT_BRIER, ("other",)) is not None  # Brier at 50 labels
    assert store2.value(names.SEGMENT_CALIBRATION_ERROR, ("other", "ece_equal_width")) is None  # calibration at 150
    segs = {labels["segment"] for name, labels, _ in store2.samples() if name == names.SEGMENT_BRIER}
    assert segs == {"a", "other"}
    clone = SegmentDetector(segment_cap=1, window_s=1e6, min_labels=50, min_labels_calibration=150)
    clone.load_state_dict(det2.state_dict())
    store3 = MetricStore("m")
    clone.export(store3)
    counted = names.SEGMENT_OVERFLOW + "_total"  # a counter already exported by det2, so not in the saved state
    assert [x for x in store3.samples() if x[0] != counted] == [x for x in store2.samples() if x[0] != counted]


def test_segment_calibration_error_separates_a_miscalibrated_segment() -> None:
    """500 labels per segment, 200 seeded windows: the debiased per-segment calibration error
    exceeds 0.06 for a calibrated segment in at most 2% of windows, and for a segment
    over-confident by 10 points in at least 97%; the 15-bin ECE exceeds 0.05 in at most 2% and
    at least 97% respectively."""
    rng = np.random.default_rng(12)
    hits = {"a": [0, 0], "b": [0, 0]}
    for _ in range(200):
        det = SegmentDetector(window_s=1e6)
        det.update_labels(two_segment_labels(rng, 500, gap_b=0.1))
        store = MetricStore("m")
        det.export(store)
        for s in ("a", "b"):
            hits[s][0] += store.value(names.SEGMENT_CALIBRATION_ERROR, (s, "debiased_l2_equal_width")) > 0.06
            hits[s][1] += store.value(names.SEGMENT_CALIBRATION_ERROR, (s, "ece_equal_width")) > 0.05
    assert hits["a"][0] <= 4 and hits["a"][1] <= 4
    assert hits["b"][0] >= 194 and hits["b"][1] >= 194


@pytest.mark.parametrize("kind", ["segments", "regression"])
def test_overflow_counter_is_at_zero_before_the_first_overflow(kind: str) -> None:
    """monitor_segment_overflow_rows_total appeared only at the first overflow, so
    ``increase()`` over a window holding that scrape missed the first folded rows (a counter
    born at 3 reads as no increase; session 34's audit). Once a row carries a segment it is
    exported at 0, and the first overflow is an increase from 0."""
    rng = np.random.default_rng(5)
    params = {"segment_cap": 2, "window_s": 1e6}
    if kind == "regression":
        det = create("regression", reference=regression_reference(rng), params={**params, "by_segment": True})
        make = lambda segs, n: Batch.from_arrays(np.zeros((n, 1)), rng.normal(10.0, 2.0, n), ts=np.arange(n) * 0.01,  # noqa: E731
                                                 segment=np.array([segs[i % len(segs)] for i in range(n)], dtype=object))
    else:
        det = create("segments", params=params)
        make = lambda segs, n: binary_batch(rng, segs, {s: 0.5 for s in segs}, n)  # noqa: E731
    store = MetricStore("m")
    det.update(make(["a", "b"], 200))
    det.export(store)
    assert store.value(names.SEGMENT_OVERFLOW) == 0.0
    det.update(make(["c", "d"], 100))
    det.export(store)
    assert store.value(names.SEGMENT_OVERFLOW) == 100.0
