"""Defects found by a walkthrough of issue 3 (confidence, calibration, segments, feedback) in
session 9: a user decorating scikit-learn models as the README says, sending delayed labels and
reading ``/metrics``. Each test fails without its fix."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

T0 = 1_700_000_000.0


def _monitor(config: dict, **kwargs: object) -> Monitor:
    return Monitor(model="wt9", config=config, registry=CollectorRegistry(), live=False, start_worker=False, **kwargs)


@pytest.mark.parametrize("kind", ["probabilities", "labels"])
def test_segment_overflow_counts_each_row_once_whatever_its_labels(kind: str) -> None:
    """``monitor_segment_overflow_rows_total`` counts the rows folded into ``other``; their labels
    arriving later are not new rows (they were counted a second time, so the counter was twice
    ``monitor_segment_rows_in_window{segment="other"}`` once every row was labelled)."""
    rng = np.random.default_rng(0)
    n = 600
    segs = np.array(["a", "b", "c", "d", "e"])[rng.integers(0, 5, n)]
    p1 = rng.uniform(0.05, 0.95, n)
    outputs = np.column_stack([1 - p1, p1]) if kind == "probabilities" else np.where(p1 > 0.5, "yes", "no")
    mon = _monitor({"segments": {"cap": 3}, "output": {"kind": kind, "classes": ["no", "yes"]}})
    ids = [f"r{i}" for i in range(n)]
    mon.observe(rng.normal(size=(n, 2)), outputs, request_id=ids, segment=segs.tolist(), timestamp=T0)
    mon.flush()
    other = sample(mon.metrics_text(), "monitor_segment_rows_in_window", segment="other")
    assert other is not None and other > 0
    assert sample(mon.metrics_text(), "monitor_segment_overflow_rows_total") == other
    mon.feedback(ids, np.where(rng.random(n) < 0.5, "yes", "no").tolist(), timestamp=T0 + 5)
    mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_feedback_labels_total", outcome="joined") == n
    assert sample(text, "monitor_segment_overflow_rows_total") == other
    mon.close()


def _reference(scores: np.ndarray, labels: np.ndarray) -> "object":
    from monitor import Reference

    x = np.random.default_rng(1).normal(size=(len(labels), 3))
    return Reference.from_arrays(x, numeric_names=["a", "b", "c"], scores=scores, labels=labels)


def test_reference_scores_with_nan_are_refused_with_the_row_and_the_fix() -> None:
    """One NaN row in the reference's probabilities made the ATC threshold NaN: an estimated
    accuracy of exactly 0 on every window (ModelEstimatedAccuracyDrop firing on a healthy
    model), with no word anywhere. It is refused at start, naming the row and the fix."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet([2, 2, 2], 300)
    y = np.array([rng.choice(3, p=row) for row in p])
    p[61, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite scores \(first: row 61\)\. Fix: drop those rows"):
        _monitor({}, reference=_reference(p, y))


def test_raw_scores_as_a_probabilities_reference_are_refused() -> None:
    """Logits given as the reference of a model configured with probabilities (the default
    kind) were read as probabilities: ATC at 0 and a reference accuracy of nonsense."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3)) * 3
    y = z.argmax(axis=1)
    with pytest.raises(ValueError, match=r"not class probabilities.*set output\.kind: logits"):
        _monitor({}, reference=_reference(z, y))
    mon = _monitor({"output": {"kind": "logits"}}, reference=_reference(z, y))  # as configured: decoded, accepted
    mon.observe(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) * 3, timestamp=T0)
    mon.flush()
    assert sample(mon.metrics_text(), "monitor_estimated_accuracy_ratio", estimator="atc") > 0.3
    mon.close()


def test_reference_labels_beyond_the_score_columns_say_why() -> None:
    """Multi-class labels with one column of scores (read as P(positive) of a binary model): the
    error said only "class indices in 0..1"; it now says how the scores were read and the fix."""
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"one column of scores is read as P\(positive\).*got 300 labels from 0 to 2\. Fix"):
        _monitor({}, reference=_reference(rng.uniform(size=300), rng.integers(0, 3, 300)))


@pytest.mark.parametrize(("outputs", "reason", "fix"), [
    (np.array([[np.nan, 0.5, 0.5]] * 2), "nan_output", "NaN or infinite values"),
    (np.array([[0.2, 0.3, 0.5]] * 3), "rows_mismatch", "outputs=lambda result"),
])
def test_refused_outputs_are_logged_with_their_fix(caplog: pytest.LogCaptureFixture, outputs: np.ndarray, reason: str,
                                                   fix: str) -> None:
    """nan_output and rows_mismatch were logged with no fix at all (only the reason's name)."""
    mon = _monitor({"output": {"classes": ["a", "b", "c"]}})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.observe(np.ones((2, 4)), outputs, timestamp=T0)
        mon.flush()
    assert sample(mon.metrics_text(), "monitor_rows_rejected_total", reason=reason) == 2
    assert [r for r in caplog.records if f"({reason})" in r.getMessage() and f"Fix: " in r.getMessage()
            and fix in r.getMessage()]
    mon.close()


def test_unreadable_inputs_are_logged_with_their_fix(caplog: pytest.LogCaptureFixture) -> None:
    """A row of no number is refused, and a text among numbers costs that value alone (since
    session 36: the row is monitored with it missing); both are said with the fix."""
    mon = _monitor({"features": [{"name": f"x{i}", "kind": "numeric"} for i in range(3)]})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.observe([["low", "high", "mid"]], np.array([[0.4, 0.6]]), timestamp=T0)
        mon.observe([[1.0, "high", 3.0]], np.array([[0.4, 0.6]]), timestamp=T0)
        mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_rows_rejected_total", reason="wrong_type") == 1
    assert sample(text, "monitor_data_invalid_rows_total", feature="x1", reason="wrong_type") == 1
    assert [r for r in caplog.records if "(wrong_type)" in r.getMessage() and "Fix: " in r.getMessage()
            and "kind: categorical" in r.getMessage()]
    assert [r for r in caplog.records if "feature 'x1' holds values that are not numbers" in r.getMessage()
            and "Fix: " in r.getMessage() and "kind: categorical" in r.getMessage()]
    mon.close()


@pytest.mark.parametrize(("kind", "label", "what"), [
    ("probabilities", [0, 1], "one class per request id"),
    ("regression", "twelve", "one finite number"),
])
def test_invalid_labels_are_logged_once_with_an_example(caplog: pytest.LogCaptureFixture, kind: str, label: object,
                                                        what: str) -> None:
    """Labels refused as invalid (a one-hot row, a list, text for a regression model) were only
    counted: nothing said what was wrong with them or what a label should be."""
    outputs = np.array([[0.4, 0.6]] * 3) if kind == "probabilities" else np.array([1.0, 2.0, 3.0])
    mon = _monitor({"output": {"kind": kind}})
    mon.observe(np.ones((3, 2)), outputs, request_id=["a", "b", "c"], timestamp=T0)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.feedback(["a", "b"], [label, label], timestamp=T0 + 1)
        mon.feedback(["c"], [label], timestamp=T0 + 2)
        mon.flush()
    assert sample(mon.metrics_text(), "monitor_feedback_labels_total", outcome="invalid") == 3
    said = [r.getMessage() for r in caplog.records if "refused as invalid" in r.getMessage()]
    assert len(said) == 1 and repr(label) in said[0] and what in said[0] and 'outcome="invalid"' in said[0]
    mon.close()


def test_probabilities_from_a_logits_model_are_named(caplog: pytest.LogCaptureFixture) -> None:
    """output.kind: logits with predict_proba's outputs: softmaxed again, every confidence near
    1/k, and not a word. The first batch is checked and the mistake is logged with the fix; raw
    scores are not flagged."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet([0.3] * 3, 50)
    mon = _monitor({"output": {"kind": "logits"}})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.observe(rng.normal(size=(50, 2)), p, timestamp=T0)
        mon.flush()
    said = [r.getMessage() for r in caplog.records if "look like probabilities" in r.getMessage()]
    assert len(said) == 1 and "Fix: set output.kind: probabilities" in said[0]
    mon.close()
    caplog.clear()
    mon = _monitor({"output": {"kind": "logits"}})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.observe(rng.normal(size=(50, 2)), rng.normal(size=(50, 3)), timestamp=T0)
        mon.flush()
    assert not [r for r in caplog.records if "look like probabilities" in r.getMessage()]
    mon.close()


@pytest.mark.parametrize("rid", [np.int64(7), np.array("r7", dtype=object), np.array(7)])
def test_feedback_takes_one_id_as_numpy_scalar(rid: object) -> None:
    """``feedback(request_id, label)`` with an id taken from a numpy array raised TypeError
    ("'numpy.int64' object is not iterable") in the caller's code."""
    mon = _monitor({})
    mon.observe(np.ones((1, 2)), np.array([[0.3, 0.7]]), request_id=str(rid.item()) if hasattr(rid, "item") else rid,
                timestamp=T0)
    assert mon.feedback(rid, 1, timestamp=T0 + 1)
    assert mon.feedback(None, 1, timestamp=T0 + 1)  # no id at all: counted as unknown, not a TypeError
    mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_feedback_labels_total", outcome="joined") == 1
    assert sample(text, "monitor_feedback_labels_total", outcome="unknown_id") == 1
    mon.close()


def test_segment_gap_between_equal_segments_names_two_segments() -> None:
    """Two segments with the same positive rate: the largest gap (0) was exported with
    high="x", low="x", one segment named as both ends of the gap."""
    rng = np.random.default_rng(0)
    p1 = np.tile([0.8, 0.2, 0.7, 0.3], 50)  # each segment gets the same outputs: rates equal
    mon = _monitor({"detectors": [{"kind": "segments"}]})
    mon.observe(rng.normal(size=(200, 2)), np.column_stack([1 - p1, p1]), segment=["x", "x", "y", "y"] * 50,
                timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_segment_positive_rate_ratio", segment="x") == sample(
        text, "monitor_segment_positive_rate_ratio", segment="y")
    assert sample(text, "monitor_segment_max_gap_ratio", figure="positive_rate", high="x", low="y") == 0.0
    assert sample(text, "monitor_segment_max_gap_ratio", figure="positive_rate", high="x", low="x") is None
    mon.close()


def test_get_monitor_refuses_arguments_it_would_ignore() -> None:
    """``monitor.get_monitor("m", reference=ref)`` after ``@monitor.watch(model="m")`` returned
    the decorator's monitor without the reference, silently: no drift, no estimated accuracy.
    Given first, the arguments build the monitor the decorator then uses."""
    import monitor

    rng = np.random.default_rng(0)
    ref = _reference(rng.dirichlet([1, 1], 300), rng.integers(0, 2, 300))
    name = "wt9-get-monitor"
    first = monitor.get_monitor(name, registry=CollectorRegistry(), start_worker=False)
    try:
        with pytest.raises(ValueError, match=r"already exists.*Fix: call monitor.get_monitor\('wt9-get-monitor', \.\.\.\) "
                                             r"with them before the decorator runs"):
            monitor.get_monitor(name, reference=ref)
        assert monitor.get_monitor(name) is first  # without arguments: the existing one, as the decorator asks

        @monitor.watch(model=name)
        def predict(x: np.ndarray) -> np.ndarray:
            return np.tile([0.3, 0.7], (len(x), 1))

        assert predict.monitor is first
    finally:
        first.close()
    second = monitor.get_monitor(name, reference=ref, registry=CollectorRegistry(), start_worker=False)
    try:
        assert second is not first and second.reference is ref  # a closed one is replaced, with the arguments
    finally:
        second.close()


def test_per_class_series_name_classes_as_the_config_does() -> None:
    """``output.classes: [a, b, c]`` with a reference labelled by index (``labels=y`` of 0..2):
    ``monitor_predicted_class_total`` said ``class="b"`` while ``monitor_label_shift_weight`` and
    ``monitor_output_top_class_share_ratio`` said ``class="1"`` for the same column, so
    ModelOutputCollapse named a class no other panel shows."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], 400)
    y = np.array([rng.choice(3, p=row) for row in p])
    mon = _monitor({"output": {"classes": ["a", "b", "c"]}}, reference=_reference(p, y))
    live = rng.dirichlet([1, 1, 1], 400)
    mon.observe(rng.normal(size=(400, 3)), live, timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    top = "abc"[int(np.bincount(live.argmax(axis=1), minlength=3).argmax())]
    assert sample(text, "monitor_predicted_class_total", **{"class": top}) is not None
    assert sample(text, "monitor_output_top_class_share_ratio", **{"class": top}) is not None
    for name in "abc":
        assert sample(text, "monitor_label_shift_weight", **{"class": name}) is not None
    assert sample(text, "monitor_label_shift_weight", **{"class": "1"}) is None
    assert sample(text, "monitor_reference_accuracy_ratio") == pytest.approx((p.argmax(axis=1) == y).mean())
    mon.close()


@pytest.mark.parametrize("layout", ["quantiles", "interval"])
def test_output_drift_of_a_regression_model_with_intervals_sees_its_predictions(layout: str) -> None:
    """A regression model returning quantiles ``(n, q)`` or ``(value, lower, upper)`` with a
    reference of the same outputs: the reference was profiled as class probabilities, and the
    output drift detector looked for predicted classes in its rows: window empty, predictions
    doubled in scale never flagged. The reference's predictions are profiled as live ones are."""
    from monitor import Reference

    rng = np.random.default_rng(0)

    def outputs(v: np.ndarray) -> np.ndarray:
        return np.column_stack([v - 1, v, v + 1]) if layout == "quantiles" else np.column_stack([v, v - 1, v + 1])

    x = rng.normal(size=(2000, 3))
    ref = Reference.from_arrays(x, numeric_names=["a", "b", "c"], scores=outputs(x.sum(axis=1)))
    output = {"kind": "regression", **({"quantiles": [0.1, 0.5, 0.9]} if layout == "quantiles" else {})}
    mon = _monitor({"output": output, "detectors": ["output_drift"]}, reference=ref)
    live = rng.normal(size=(3000, 3))
    mon.observe(live, outputs(2 * live.sum(axis=1)), timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_drift_window_rows", detector="output_drift") == 3000
    assert sample(text, "monitor_drift_detected", detector="output_drift") == 1
    mon.close()


def test_reference_build_of_regression_quantiles_warns_of_nothing(tmp_path: "object") -> None:
    """``monitor reference build`` of a regression reference with quantile columns and a target
    checked its labels as class indices of "class probabilities" and printed a warning that
    names no real problem (the labels are targets, the columns quantiles)."""
    from pathlib import Path

    from click.testing import CliRunner

    from monitor.cli import main

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    v = np.round(100 + 10 * x.sum(axis=1))
    data = Path(str(tmp_path)) / "reg.csv"
    rows = ["a,b,q05,q50,q95,target"] + [f"{a},{b},{m - 15},{m},{m + 15},{m + rng.integers(-9, 9)}" for (a, b), m in zip(x, v)]
    data.write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(main, ["reference", "build", str(data), "-o", str(Path(str(tmp_path)) / "ref.npz"), "--quiet",
                                    "--output-columns", "q05,q50,q95", "--label-column", "target"])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output, res.output


@pytest.mark.parametrize(("params", "key", "fix"), [
    ({"kind": "calibration", "min_labels": "many"}, "detectors[0].min_labels", "write a number, e.g. 100"),
    ({"kind": "confidence", "abstain_threshold": [0.7]}, "detectors[0].abstain_threshold", "write a number, e.g. 0.5"),
    ({"kind": "data_quality", "stuck_categorical": "yes"}, "detectors[0].stuck_categorical", "write true or false"),
    ({"kind": "calibration", "window_s": "an hour"}, "detectors[0].window_s", "write e.g. 30s, 5m or 1h"),
])
def test_detector_parameters_of_the_wrong_type_name_the_key_and_the_fix(params: dict, key: str, fix: str) -> None:
    """``min_labels: many`` failed in the detector's constructor with Python's own message
    ("'<' not supported between instances of 'str' and 'int'"), naming neither the key nor the fix."""
    from monitor.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"model": "m", "detectors": [params]})
    assert key in str(err.value) and fix in str(err.value), str(err.value)


def test_detector_durations_and_numbers_written_as_text_are_read() -> None:
    """``window_s: 2h`` (as the top-level ``window: 2h``), YAML's ``1e6`` (text to YAML 1.1) and a
    quoted ``"50"`` are the values they say, not constructor errors."""
    mon = _monitor({"detectors": [{"kind": "calibration", "window_s": "2h", "min_labels": "50"},
                                  {"kind": "confidence", "abstain_threshold": "0.7", "window_s": 600}]})
    cal, conf = mon.detectors
    assert (cal.window_s, cal.min_labels, conf.abstain_threshold, conf.window_s) == (7200.0, 50, 0.7, 600.0)
    mon.close()


@pytest.mark.parametrize("which", ["outputs", "request_id", "segment"])
def test_a_failing_extractor_is_named_and_counted_apart(caplog: pytest.LogCaptureFixture, which: str) -> None:
    """``watch(outputs=lambda r: r["probs"])`` on a function returning ``{"probabilities": ...}``:
    every event was dropped as ``internal_error`` (MonitorShedsEvents then said to raise
    queue.capacity) and nothing said which extractor failed or why. The call's answer was and is
    unchanged."""
    mon = _monitor({})
    broken = {"outputs": lambda r: r["probs"], "request_id": lambda x: x.ids, "segment": lambda x: x["site"]}
    good = {"outputs": lambda r: r["probabilities"], "request_id": lambda x: None, "segment": lambda x: None}

    def predict(x: np.ndarray) -> dict:
        return {"probabilities": np.tile([0.3, 0.7], (len(x), 1))}

    wrapped = mon.watch(predict, **{**good, which: broken[which]})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        answers = [wrapped(np.ones((2, 2))) for _ in range(3)]
    assert all(set(a) == {"probabilities"} for a in answers)
    mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_events_dropped_total", reason="extractor_error") == 3
    assert sample(text, "monitor_events_dropped_total", reason="internal_error") == 0  # exported at 0 from the start
    said = [r.getMessage() for r in caplog.records if "extractor given to watch()" in r.getMessage()]
    assert len(said) == 1 and f"the {which}= extractor" in said[0] and "Fix: make" in said[0]
    mon.close()


@pytest.mark.parametrize("given_to", ["confidence", "segments"])
def test_one_abstain_threshold_for_the_window_and_the_segments(given_to: str) -> None:
    """``abstain_threshold: 0.7`` on one of the two detectors left the other at its own default
    0.5: ``monitor_abstain_ratio`` and ``monitor_segment_abstain_ratio`` counted different rows
    for one segment holding every row."""
    dets = ["confidence", "segments"]
    mon = _monitor({"detectors": [{"kind": d, **({"abstain_threshold": 0.7} if d == given_to else {})} for d in dets]})
    conf = np.linspace(0.5, 1.0, 101)
    mon.observe(np.ones((101, 2)), np.column_stack([conf, 1 - conf]), segment="all", timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    expected = float((conf < 0.7).mean())
    assert sample(text, "monitor_abstain_ratio") == pytest.approx(expected)
    assert sample(text, "monitor_segment_abstain_ratio", segment="all") == pytest.approx(expected)
    mon.close()


def test_a_label_for_a_batch_calls_id_says_the_rows_ids(caplog: pytest.LogCaptureFixture) -> None:
    """``predict(X_batch, request_id="r-17")`` then ``feedback("r-17", 1)``: the rows are held as
    r-17/0, r-17/1..., so the label was counted unknown_id and nothing said why."""
    mon = _monitor({})
    predict = mon.watch(lambda x, request_id=None: np.tile([0.3, 0.7], (len(x), 1)), request_id="request_id")
    predict(np.ones((3, 2)), request_id="r-17")
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.feedback("r-17", 1)
        mon.feedback("r-99", 1)  # an id never seen: normal, not logged
        mon.flush()
    assert sample(mon.metrics_text(), "monitor_feedback_labels_total", outcome="unknown_id") == 1  # r-17: at once
    assert sample(mon.metrics_text(), "monitor_labels_early") == 1  # r-99 waits for its prediction (labels.early)
    said = [r.getMessage() for r in caplog.records if "found no prediction under that id" in r.getMessage()]
    assert len(said) == 1 and "'r-17/0', 'r-17/1'" in said[0] and "Fix: send one label per row" in said[0]
    mon.feedback(["r-17/0", "r-17/1", "r-17/2"], [1, 0, 1])
    mon.flush()
    assert sample(mon.metrics_text(), "monitor_feedback_labels_total", outcome="joined") == 3
    mon.close()


@pytest.mark.parametrize("kind", ["logits", "quantiles"])
def test_output_drift_on_a_profile_of_raw_outputs_reads_them_as_live_outputs(kind: str) -> None:
    """A profile file of the model's outputs as returned (``monitor reference build
    --output-columns``: logits, or quantile columns) described them raw: the output drift
    detector compared live probabilities with the logits' largest value (drift flagged on the
    reference's own rows), or looked for classes in a regression model's rows (none ever seen)."""
    from monitor import Reference
    from monitor.profile import Profile

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    if kind == "logits":
        raw = np.column_stack([x[:, 0] * 3, x[:, 1] * 3, x[:, 2]])
        output = {"kind": "logits"}
    else:
        v = x.sum(axis=1)
        raw = np.column_stack([v - 1, v, v + 1])
        output = {"kind": "regression", "quantiles": [0.1, 0.5, 0.9]}
    profiled = Profile.from_reference(Reference.from_arrays(x, numeric_names=["a", "b", "c"], scores=raw)).to_reference()
    mon = _monitor({"output": output, "detectors": ["output_drift"]}, reference=profiled)
    for i in range(10):  # the reference's own rows, again and again: no drift
        mon.observe(x, raw, timestamp=T0 + 60 * i)
    mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_drift_window_rows", detector="output_drift") == 6000
    assert sample(text, "monitor_drift_detected", detector="output_drift") == 0
    assert sample(text, "monitor_drift_alarms_total", detector="output_drift") == 0
    mon.close()


def test_two_different_abstain_thresholds_are_refused() -> None:
    """Given to both with different values, each detector kept its own: the two ratios counted
    different rows, with nothing said."""
    from monitor.config import ConfigError, parse_config

    same = parse_config({"detectors": [{"kind": "confidence", "abstain_threshold": 0.7},
                                       {"kind": "segments", "abstain_threshold": 0.7}]}).model()
    assert [d.params["abstain_threshold"] for d in same.detectors] == [0.7, 0.7]
    with pytest.raises(ConfigError, match=r"detectors\[1\]\.abstain_threshold.*detectors\[0\]\.abstain_threshold \(0\.7\)"):
        parse_config({"detectors": [{"kind": "confidence", "abstain_threshold": 0.7},
                                    {"kind": "segments", "abstain_threshold": 0.6}]})
