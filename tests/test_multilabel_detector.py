"""The multilabel detector (``output.kind: multilabel``): per-label positive rate and mean
probability, label cardinality, a histogram of max(p, 1 - p) over every label decision, and the
drift of each label's positive rate against the reference. Before it a multi-label model was not
monitored at all (every row refused), and once readable the single-label defaults would have
read its independent labels as one softmax answer.

Seeded figures README's "Multi-label models" paragraph gives: silent on 40 disjoint windows of
2,000 unchanged rows of 5 labels (no Bonferroni-adjusted p-value under 0.001: by the union bound
the chance of any false alarm is at most 40 x 0.001 = 0.04); one label's rate moved from 0.2 to
0.3 is under 0.001 within 1,000 rows, for each of 10 seeds."""

from __future__ import annotations

import json

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch, LabeledBatch
from monitor.config import ConfigError
from monitor.detectors.defaults import default_detectors
from monitor.detectors.multilabel import MultilabelDetector
from monitor.reference import Reference
from monitor.schema import OutputSpec
from monitor.store import MetricStore
from tests.sidecar_support import sample

__all__: list[str] = []

RATES = np.array([0.05, 0.1, 0.2, 0.3, 0.5])
LABELS = ["spam", "toxic", "adult", "ad", "other"]
HOUR = 3600.0


def scores(rng: np.random.Generator, n: int, rates: np.ndarray = RATES) -> np.ndarray:
    """Independent labels present at ``rates``: a present label's probability in [0.5, 1), an absent one's in [0, 0.5)."""
    present = rng.random((n, len(rates))) < rates
    return np.where(present, rng.uniform(0.5, 1.0, (n, len(rates))), rng.uniform(0.0, 0.5, (n, len(rates))))


def reference(seed: int = 0, n: int = 5000) -> Reference:
    return Reference.from_arrays(np.zeros((n, 1)), scores=scores(np.random.default_rng(seed), n), classes=LABELS)


def feed(det: MultilabelDetector, x: np.ndarray, ts: np.ndarray) -> None:
    det.update(Batch.from_arrays(np.zeros((len(x), 1)), x, ts=ts, classes=tuple(LABELS)))


def test_figures_of_a_window() -> None:
    x = np.array([[0.9, 0.2, 0.6, 0.0, 0.5], [0.1, 0.3, 0.7, 0.0, 0.4]] * 50)
    det = MultilabelDetector(reference(), min_rows=100)
    feed(det, x, np.zeros(100))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_multilabel_rows_in_window") == 100
    assert store.value("monitor_multilabel_positive_rate_ratio", ("spam",)) == 0.5
    assert store.value("monitor_multilabel_positive_rate_ratio", ("adult",)) == 1.0
    assert store.value("monitor_multilabel_positive_rate_ratio", ("other",)) == 0.5  # 0.5 is at the threshold: present
    assert store.value("monitor_multilabel_probability_mean_ratio", ("adult",)) == pytest.approx(0.65)
    assert store.value("monitor_multilabel_cardinality_mean") == pytest.approx(2.0)  # 3 labels, then 1
    hist = store.value("monitor_multilabel_confidence_ratio")
    assert hist.count == 500 and hist.sum == pytest.approx(np.maximum(x, 1 - x).sum())
    assert store.value("monitor_multilabel_reference_positive_rate_ratio", ("adult",)) == pytest.approx(0.2, abs=0.02)
    assert store.value("monitor_multilabel_reference_cardinality_mean") == pytest.approx(RATES.sum(), abs=0.05)
    # every label but "other" moved far from the reference: drifted; "other" kept its rate of 0.5
    assert store.value("monitor_multilabel_drift_pvalue", ("adult",)) < 1e-6
    assert store.value("monitor_multilabel_drift_pvalue", ("other",)) > 0.01


def test_figures_are_absent_below_min_rows_and_without_reference_no_drift() -> None:
    det = MultilabelDetector(None, min_rows=100)
    feed(det, scores(np.random.default_rng(1), 99), np.zeros(99))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_multilabel_positive_rate_ratio", ("spam",)) is None
    assert store.value("monitor_multilabel_cardinality_mean") is None
    feed(det, scores(np.random.default_rng(2), 1), np.zeros(1))
    det.on_tick(1.0)
    det.export(store)
    assert store.value("monitor_multilabel_positive_rate_ratio", ("spam",)) is not None
    assert store.value("monitor_multilabel_drift_pvalue", ("spam",)) is None


def test_silent_on_unchanged_outputs_over_40_windows() -> None:
    rng = np.random.default_rng(7)
    det = MultilabelDetector(reference(), window_s=HOUR)
    smallest = []
    for w in range(40):
        feed(det, scores(rng, 2000), w * HOUR + np.linspace(0.0, HOUR - 1.0, 2000))
        figures = det.figures()
        assert figures is not None and figures["rows"] == 2000  # disjoint windows
        smallest.append(float(figures["pvalue"].min()))
    assert min(smallest) > 0.001, min(smallest)


@pytest.mark.parametrize("seed", range(10))
def test_one_label_rate_shift_detected_within_1000_rows(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    det = MultilabelDetector(reference())
    shifted = RATES.copy()
    shifted[2] = 0.3
    for n in range(50, 1001, 50):
        feed(det, scores(rng, 50, shifted), np.full(50, n / 10.0))
        figures = det.figures()
        if figures is not None and figures["pvalue"][2] < 0.001:
            break
    else:
        pytest.fail("no alarm within 1,000 rows")
    assert figures["pvalue"][[0, 1, 3, 4]].min() > 0.001  # the unshifted labels are not blamed


def test_state_round_trips() -> None:
    rng = np.random.default_rng(3)
    det = MultilabelDetector(reference())
    feed(det, scores(rng, 300), np.linspace(0.0, 100.0, 300))
    again = MultilabelDetector(reference())
    again.load_state_dict(det.state_dict())
    a, b = det.figures(), again.figures()
    assert a["rows"] == b["rows"] == 300 and np.array_equal(a["rate"], b["rate"]) and np.array_equal(a["pvalue"], b["pvalue"])


def test_reference_scores_that_are_no_probabilities_are_refused_with_the_fix() -> None:
    ref = Reference.from_arrays(np.zeros((10, 1)), scores=np.random.default_rng(0).normal(size=(10, 3)) * 5)
    with pytest.raises(ValueError, match="not its raw scores"):
        MultilabelDetector(ref)


def test_defaults_of_a_multilabel_model_are_no_single_label_detectors() -> None:
    kinds = {d.kind for d in default_detectors(OutputSpec("multilabel"), reference())}
    assert "multilabel" in kinds and "data_quality" in kinds
    assert not kinds & {"confidence", "calibration", "segments", "confidence_drift", "prediction_drift", "regression"}
    assert "multilabel" not in {d.kind for d in default_detectors(OutputSpec("probabilities"), reference())}


def _monitor(config: dict[str, Any], ref: Reference | None = None) -> Monitor:
    return Monitor(model="tags", config=config, reference=ref, registry=CollectorRegistry(auto_describe=False))


def test_a_listed_single_label_detector_is_refused_for_a_multilabel_model() -> None:
    with pytest.raises(ConfigError) as err:
        _monitor({"output": {"kind": "multilabel"}, "detectors": [{"kind": "confidence"}]})
    assert "detectors[0]" in str(err.value) and "multilabel" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _monitor({"detectors": [{"kind": "multilabel"}]})
    assert "output.kind: multilabel" in str(err.value)


def test_a_decorated_multilabel_model_is_monitored_end_to_end() -> None:
    rng = np.random.default_rng(5)
    mon = _monitor({"output": {"kind": "multilabel", "classes": LABELS}}, reference())
    try:
        @mon.watch
        def predict(x: np.ndarray) -> np.ndarray:
            return scores(rng, len(x))

        for _ in range(5):
            predict(rng.normal(size=(100, 1)))
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_predictions_total", model="tags") == 500
        assert sample(text, "monitor_multilabel_rows_in_window", model="tags") == 500
        assert sample(text, "monitor_multilabel_positive_rate_ratio", model="tags", label="other") == pytest.approx(0.5, abs=0.1)
        assert sample(text, "monitor_multilabel_drift_pvalue", model="tags", label="other") > 0.001
        assert sample(text, "monitor_multilabel_confidence_ratio_count", model="tags") == 2500
        assert "monitor_confidence_ratio_count" not in text  # no softmax confidence of independent labels
    finally:
        mon.close()


# -- delayed labels ------------------------------------------------------------------------------
def truths(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Each label present with its probability: a calibrated model's ground truth."""
    return (rng.random(p.shape) < p).astype(np.float64)


def labelled(det: MultilabelDetector, p: np.ndarray, y: np.ndarray, ts: np.ndarray) -> None:
    det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=y, segment=np.full(len(ts), None, dtype=object),
                                   scores=p, classes=tuple(LABELS)))


def test_labelled_figures_of_a_window() -> None:
    """Per-label Brier score, precision and recall, hamming loss and subset accuracy, by hand."""
    p = np.array([[0.9, 0.2, 0.5, 0.0, 0.6], [0.1, 0.8, 0.4, 0.0, 0.6]] * 50)
    y = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 0, 1]] * 50, dtype=np.float64)
    det = MultilabelDetector(min_rows=1, min_labels=100, min_positives=10)
    feed(det, p, np.zeros(100))
    labelled(det, np.exp(np.log(np.maximum(p, 1e-300)).astype(np.float32)), y, np.zeros(100))  # as the join gives them back: 0.5 is 0.4999999990
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_multilabel_labels_in_window") == 100
    assert store.value("monitor_multilabel_brier_score", ("spam",)) == pytest.approx((0.1 ** 2 + 0.9 ** 2) / 2)
    assert store.value("monitor_multilabel_precision_ratio", ("spam",)) == 1.0  # decided positive 50 times, right each time
    assert store.value("monitor_multilabel_recall_ratio", ("spam",)) == 0.5  # present 100 times, found 50
    assert store.value("monitor_multilabel_precision_ratio", ("adult",)) == 1.0  # 0.5 is at the threshold: positive
    assert store.value("monitor_multilabel_precision_ratio", ("other",)) == 0.5
    assert store.value("monitor_multilabel_recall_ratio", ("other",)) == 1.0
    # "ad" is never decided positive nor present: its precision and recall are absent, its Brier score 0
    assert store.value("monitor_multilabel_precision_ratio", ("ad",)) is None
    assert store.value("monitor_multilabel_recall_ratio", ("ad",)) is None
    assert store.value("monitor_multilabel_brier_score", ("ad",)) == 0.0
    # wrong decisions: in the first row "other" (decided, absent), in the second "spam" (missed): 2 of 10
    assert store.value("monitor_multilabel_hamming_loss_ratio") == pytest.approx(0.2)
    assert store.value("monitor_multilabel_subset_accuracy_ratio") == 0.0


def test_labelled_figures_are_absent_below_their_minimum_counts() -> None:
    rng = np.random.default_rng(4)
    det = MultilabelDetector(min_rows=1, min_labels=100, min_positives=10)
    p = scores(rng, 99)
    y = truths(rng, p)
    y[:, 0], y[:5, 0], y[:, 4], y[:50, 4] = 0.0, 1.0, 0.0, 1.0  # "spam" held by 5 rows, "other" by 50
    feed(det, p, np.zeros(99))
    labelled(det, p, y, np.zeros(99))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_multilabel_labels_in_window") == 99
    for name in ("monitor_multilabel_hamming_loss_ratio", "monitor_multilabel_subset_accuracy_ratio"):
        assert store.value(name) is None, name
    assert store.value("monitor_multilabel_brier_score", ("spam",)) is None
    p1 = scores(rng, 1)
    y = np.vstack([y, np.zeros((1, 5))])
    feed(det, p1, np.zeros(1))
    labelled(det, p1, y[-1:], np.zeros(1))
    det.on_tick(1.0)
    det.export(store)
    assert store.value("monitor_multilabel_hamming_loss_ratio") is not None
    assert store.value("monitor_multilabel_brier_score", ("spam",)) is not None
    # a label's recall needs 10 rows holding it: "spam" has 5 of these 100 rows, "other" 50
    assert store.value("monitor_multilabel_recall_ratio", ("spam",)) is None
    assert store.value("monitor_multilabel_recall_ratio", ("other",)) is not None


def test_labels_are_filed_under_their_predictions_time_and_slide_out() -> None:
    rng = np.random.default_rng(6)
    det = MultilabelDetector(window_s=HOUR, min_rows=1, min_labels=10)
    p = scores(rng, 50)
    feed(det, p, np.full(50, 10.0))
    det.update_labels(LabeledBatch(ts=np.full(50, 10.0), label_ts=np.full(50, 600.0), label=truths(rng, p),
                                   segment=np.full(50, None, dtype=object), scores=p))
    assert det.labelled_figures()["labels"] == 50
    det.advance(2 * HOUR)
    assert det.labelled_figures() is None
    late = scores(rng, 5)  # labels for predictions that left the window: counted, not filed
    det.update_labels(LabeledBatch(ts=np.full(5, 10.0), label_ts=np.full(5, 2 * HOUR), label=truths(rng, late),
                                   segment=np.full(5, None, dtype=object), scores=late))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_calibration_labels_skipped", ("outside_window",)) == 5


def test_labelled_state_round_trips_and_older_states_load() -> None:
    rng = np.random.default_rng(9)
    det = MultilabelDetector(reference(), min_labels=10)
    p = scores(rng, 300)
    feed(det, p, np.linspace(0.0, 100.0, 300))
    labelled(det, p, truths(rng, p), np.linspace(0.0, 100.0, 300))
    again = MultilabelDetector(reference(), min_labels=10)
    again.load_state_dict(det.state_dict())
    a, b = det.labelled_figures(), again.labelled_figures()
    assert a["labels"] == b["labels"] == 300 and np.array_equal(a["brier"], b["brier"]) and a["hamming_loss"] == b["hamming_loss"]
    old = det.state_dict()
    del old["windows"]["labels"]  # saved before labels were read
    again.load_state_dict(old)
    assert again.labelled_figures() is None and again.figures()["rows"] == 300


def test_memory_of_the_labelled_window_is_fixed() -> None:
    """Per-slot sums: the state's size does not grow with the labels read."""
    rng = np.random.default_rng(10)
    det = MultilabelDetector(min_labels=10)
    sizes = []
    for hour in range(3):
        p = scores(rng, 2000)
        ts = hour * 600.0 + np.linspace(0.0, 599.0, 2000)
        feed(det, p, ts)
        labelled(det, p, truths(rng, p), ts)
        sizes.append(np.asarray(det.state_dict()["windows"]["labels"]["data"]).nbytes)
    assert sizes[0] == sizes[-1]


def _labelled_monitor() -> tuple[Monitor, np.ndarray, list[str]]:
    rng = np.random.default_rng(12)
    mon = _monitor({"output": {"kind": "multilabel", "classes": LABELS}, "detectors": [{"kind": "multilabel", "min_labels": 10}]})
    p = scores(rng, 40)
    ids = [f"r{i}" for i in range(40)]
    mon.observe(np.zeros((40, 1)), p, request_id=ids)
    return mon, p, ids


def test_feedback_takes_a_vector_or_label_names_for_a_multilabel_model(caplog: pytest.LogCaptureFixture) -> None:
    """Both forms of a multi-label ground truth are joined (before: each refused as invalid), and
    give the same figures; [] says no label is present."""
    mon, p, ids = _labelled_monitor()
    try:
        y = np.zeros((40, 5))
        y[:, 4] = 1.0  # "other" present everywhere
        y[::2, 0] = 1.0  # "spam" every other row
        assert mon.feedback(ids[:10], y[:10])  # an array of 0/1 rows
        assert mon.feedback(ids[10:20], y[10:20].astype(bool).tolist())  # lists of booleans
        names = [[LABELS[j] for j in np.flatnonzero(row)] for row in y[20:40]]
        names[1] = ["other", "other"]  # a repeated name is one label
        assert mon.feedback(ids[20:40], names)
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="joined") == 40
        assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="invalid") is None
        assert sample(text, "monitor_multilabel_labels_in_window", model="tags") == 40
        want = float(((p[:, 0] - y[:, 0]) ** 2).mean())
        assert sample(text, "monitor_multilabel_brier_score", model="tags", label="spam") == pytest.approx(want, abs=1e-6)
        decided = p >= 0.5
        assert sample(text, "monitor_multilabel_hamming_loss_ratio", model="tags") == pytest.approx(float((decided != (y == 1)).mean()))
    finally:
        mon.close()


@pytest.mark.parametrize(("label", "said"), [
    ([1, 0, 1], "is a vector of 3 entries, and the model has 5 labels (spam, toxic, adult, ad, other)"),
    (["spam", "cat"], "names 'cat', which no column of the model is"),
    ("spam", "is one value ('spam')"),
    ([0.2, 0.1, 0.9, 0.0, 1.0], "is a vector holding 0.2, 0.1, 0.9"),
    (["spam", 1], "neither only label names nor only 0/1 entries"),
], ids=["short-vector", "unknown-name", "one-class", "probabilities", "mixed"])
def test_a_multilabel_truth_it_cannot_join_is_refused_counted_and_said(caplog: pytest.LogCaptureFixture, label: Any,
                                                                       said: str) -> None:
    mon, _, ids = _labelled_monitor()
    try:
        with caplog.at_level("WARNING", logger="monitor"):
            mon.feedback(["r0", "r1"], [[1, 0, 0, 0, 0], label])
            mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="invalid") == 1
        assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="joined") == 1
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert "labels[1]" in logged and "request id 'r1'" in logged and said in logged and "Fix:" in logged
        # the refused label left its prediction waiting: the corrected one still joins
        mon.feedback(["r1"], [["spam"]])
        mon.flush()
        assert sample(mon.metrics_text(), "monitor_feedback_labels_total", model="tags", outcome="joined") == 2
    finally:
        mon.close()


def test_a_list_label_stays_invalid_for_a_single_label_model() -> None:
    mon = _monitor({"output": {"kind": "probabilities", "classes": ["a", "b"]}})
    try:
        mon.observe(np.zeros((1, 1)), np.array([[0.3, 0.7]]), request_id=["r0"])
        mon.feedback(["r0"], [[0, 1]])
        mon.flush()
        assert sample(mon.metrics_text(), "monitor_feedback_labels_total", model="tags", outcome="invalid") == 1
    finally:
        mon.close()


def test_a_multilabel_truth_that_comes_before_its_prediction_is_held_across_a_checkpoint() -> None:
    """A truth row held for its prediction (labels.early) is a numpy row: the checkpoint, which is
    JSON, kept it as its text, and the restored label was refused as invalid."""
    from monitor.labels import LabelJoiner

    rng = np.random.default_rng(3)
    mon, _, _ = _labelled_monitor()
    try:
        joiner = mon.pipeline.joiner
        y = np.array([[1, 0, 0, 0, 1], [0, 0, 0, 0, 0]], dtype=float)
        assert mon.feedback(["later0", "later1"], y)
        mon.flush()
        assert joiner.early_held == 2
        restored = LabelJoiner(capacity=joiner.capacity)
        restored.load_state_dict(json.loads(json.dumps(joiner.state_dict(), default=lambda a: a.tolist())))
        mon.pipeline.joiner = restored
        mon.observe(np.zeros((2, 1)), scores(rng, 2), request_id=["later0", "later1"])
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="joined") == 2
        assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="invalid") is None
        assert sample(text, "monitor_multilabel_labels_in_window", model="tags") == 2
    finally:
        mon.close()
