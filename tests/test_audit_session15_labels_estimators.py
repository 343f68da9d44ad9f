"""What session 15's two reviews of the confidence issue found, each with a test that fails
without its fix: ATC on tied scores, CBPE's prior on a model that is not calibrated, outputs of
more than 1,000 columns, labels a labels-only model never answered, boolean and NaN labels, the
temperature of an over-confident logits model, regression values rounded to float32, ensemble
members that are not probabilities, and the table of predictions waiting for their labels."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.config import ConfigError, parse_config
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex
from monitor.stats import calibration as cal


def _monitor(config: dict | None = None, reference: Reference | None = None) -> Monitor:
    return Monitor("m", config=config, reference=reference, registry=CollectorRegistry(), live=False, start_worker=False)


def _split(loader, seed: int = 0):
    from sklearn.model_selection import train_test_split

    x, y = loader(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.5, random_state=seed)
    x_ref, x_live, y_ref, y_live = train_test_split(x_rest, y_rest, test_size=0.5, random_state=seed)
    return x_train, y_train, x_ref, y_ref, x_live, y_live


# -- ATC with tied scores ---------------------------------------------------------------------
def test_atc_tie_weight_makes_the_reference_estimate_exact() -> None:
    rng = np.random.default_rng(0)
    correct = (rng.random(500) < 0.93).astype(float)
    tied = np.zeros(500)  # every score equal (a 1-nearest-neighbour model: every confidence 1)
    t = cal.atc_threshold(tied, correct)
    w = cal.atc_tie_weight(tied, correct, t)
    assert w == pytest.approx(correct.mean())
    continuous = rng.random(500)
    t = cal.atc_threshold(continuous, correct)
    assert cal.atc_tie_weight(continuous, correct, t) == pytest.approx(0.0, abs=0.01)  # at most the row at t itself


def test_atc_of_a_decision_tree_on_its_own_reference_is_its_accuracy() -> None:
    """Every confidence of a fully grown tree is 1: counting only rows strictly above the
    threshold estimated an accuracy of 0 (and ModelEstimatedAccuracyDrop fired on normal traffic)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    x_train, y_train, x_ref, y_ref, x_live, y_live = _split(load_breast_cancer)
    tree = DecisionTreeClassifier(random_state=0).fit(x_train, y_train)
    ref_scores = tree.predict_proba(x_ref)
    assert (ref_scores.max(axis=1) == 1.0).all()
    mon = _monitor({"detectors": ["accuracy_estimation"]}, Reference.from_arrays(x_ref, scores=ref_scores, labels=y_ref))
    mon.observe(x_ref, ref_scores, timestamp=1000.0)
    mon.flush()
    ref_accuracy = float(np.mean(ref_scores.argmax(axis=1) == y_ref))
    assert mon.store.value(names.ESTIMATED_ACCURACY, ("atc",)) == pytest.approx(ref_accuracy, abs=1e-9)
    assert mon.store.value(names.ESTIMATED_ACCURACY, ("cbpe",)) == pytest.approx(ref_accuracy, abs=0.01)


# -- CBPE's prior -----------------------------------------------------------------------------
def test_platt_prior_is_the_identity_on_a_calibrated_reference_and_finite_on_a_one_sided_one() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.3, 1.0, 20_000)
    correct = (rng.random(20_000) < conf).astype(float)
    at = np.array([0.4, 0.6, 0.8, 0.95])
    assert cal.platt_prior(conf, correct, at) == pytest.approx(at, abs=0.02)
    ones = np.ones(142)  # every confidence 1: only the accuracy there is known
    got = cal.platt_prior(ones, np.r_[np.ones(132), np.zeros(10)], np.array([1.0]))
    assert np.isfinite(got).all() and got[0] == pytest.approx(132 / 142, abs=0.01)


def test_cbpe_follows_an_under_confident_model_not_its_confidence() -> None:
    """A random forest right 97% of the time with a mean confidence of 0.75: two pseudo-rows
    "at calibrated" in each of 132 fine bins estimated 0.90 on unshifted traffic."""
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    x_train, y_train, x_ref, y_ref, x_live, y_live = _split(load_digits)
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(x_train, y_train)
    live = forest.predict_proba(x_live)
    assert live.max(axis=1).mean() < 0.8
    mon = _monitor({"detectors": ["accuracy_estimation"]},
                   Reference.from_arrays(x_ref, scores=forest.predict_proba(x_ref), labels=y_ref))
    mon.observe(x_live, live, timestamp=1000.0)
    mon.flush()
    true = float(np.mean(live.argmax(axis=1) == y_live))
    assert mon.store.value(names.ESTIMATED_ACCURACY, ("cbpe",)) == pytest.approx(true, abs=0.02)


# -- outputs of more classes than the cap -----------------------------------------------------
@pytest.mark.timeout(60)
def test_outputs_wider_than_the_class_cap_are_refused_and_monitoring_goes_on() -> None:
    """Naming the 1,001st column looped for ever: the worker hung on the first such event."""
    mon = _monitor()
    mon.observe(np.zeros((2, 3)), np.full((2, 1001), 1.0 / 1001), timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_rows_rejected", ("too_many_classes",)) == 2
    mon.observe(np.zeros((3, 3)), np.array([[0.2, 0.8]] * 3), timestamp=1001.0)
    mon.flush()
    assert mon.store.value("monitor_predictions") == 3
    classes = tuple(f"c{i}" for i in range(1500))  # listed classes are never over the cap
    mon = _monitor({"output": {"classes": list(classes)}})
    mon.observe(np.zeros((2, 3)), np.full((2, 1500), 1.0 / 1500), timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_predictions") == 2


def test_class_index_ensure_stops_at_the_cap() -> None:
    index = ClassIndex(cap=5)
    assert not index.ensure(6) and index.names == []
    assert index.ensure(5) and index.names == ["0", "1", "2", "3", "4"]


# -- labels -----------------------------------------------------------------------------------
def test_a_labels_only_model_collapsed_onto_one_class_is_not_perfect() -> None:
    """Labels of a class the model never answered were skipped as unknown: accuracy 1.0."""
    mon = _monitor({"output": {"kind": "labels"}})
    ids = [f"r{i}" for i in range(1000)]
    mon.observe(np.zeros((1000, 3)), [0] * 1000, request_id=ids, timestamp=1000.0)
    mon.flush()
    mon.feedback(ids, [1 if i % 10 == 0 else 0 for i in range(1000)], timestamp=1100.0)
    mon.flush()
    assert mon.store.value(names.ACCURACY) == pytest.approx(0.9)
    assert mon.store.value("monitor_calibration_labels_skipped", ("unknown_class",)) is None


def test_boolean_labels_are_classes_one_and_zero_and_nan_is_invalid() -> None:
    mon = _monitor()
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, 300)
    ids = [f"r{i}" for i in range(300)]
    mon.observe(np.zeros((300, 2)), np.column_stack([1 - p, p]), request_id=ids, timestamp=1000.0)
    mon.flush()
    truth = rng.random(300) < p
    mon.feedback(ids[:299], truth[:299], timestamp=1100.0)  # a numpy bool array
    mon.feedback(ids[299:], [float("nan")], timestamp=1100.0)
    mon.flush()
    assert mon.store.value(names.LABELS_IN_WINDOW) == 299
    assert mon.store.value(names.ACCURACY) == pytest.approx(float(np.mean((p[:299] > 0.5) == truth[:299])))
    assert mon.store.value("monitor_feedback_labels", ("invalid",)) == 1
    index = ClassIndex(("False", "True"))  # classes named so keep their names
    assert index.lookup(np.array([True, False], dtype=object), learn=False).tolist() == [1, 0]


def test_the_temperature_of_an_over_confident_logits_model_is_the_nll_optimum() -> None:
    """Refitted on probabilities kept as float32 and clipped at 1e-12, logits scaled by 10 gave
    7.9 instead of 10: the logit gaps beyond 27.6 were cut."""
    from scipy.special import softmax

    rng = np.random.default_rng(10)
    z = rng.normal(size=(2000, 10)) * 2
    y = np.array([rng.choice(10, p=row) for row in softmax(z, axis=1)])
    scaled = z * 10
    mon = _monitor({"output": {"kind": "logits"}, "detectors": ["calibration"]})
    ids = [f"r{i}" for i in range(2000)]
    mon.observe(np.zeros((2000, 2)), scaled, request_id=ids, timestamp=1000.0)
    mon.flush()
    mon.feedback(ids, y.tolist(), timestamp=1100.0)
    mon.flush()
    optimum = cal.fit_temperature(scaled, y)
    assert optimum == pytest.approx(10.0, rel=0.05)
    assert mon.store.value(names.TEMPERATURE) == pytest.approx(optimum, rel=1e-3)


def test_regression_errors_are_not_float32_rounding() -> None:
    mon = _monitor({"output": {"kind": "regression"}, "detectors": ["regression"]})
    rng = np.random.default_rng(3)
    pred = 1e8 + rng.normal(0, 1000, 500)
    ids = [f"r{i}" for i in range(500)]
    mon.observe(np.zeros((500, 2)), pred, request_id=ids, timestamp=1000.0)
    mon.flush()
    mon.feedback(ids, (pred + 0.1).tolist(), timestamp=1100.0)
    mon.flush()
    assert mon.store.value(names.REGRESSION_MAE) == pytest.approx(0.1, abs=1e-6)


def test_ensemble_members_must_each_be_probabilities() -> None:
    mon = _monitor({"output": {"samples_axis": True}})
    good = np.array([[[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]]])
    bad = np.array([[[1.5, -0.5, 0.0], [-0.5, 1.5, 0.0]]])  # their mean is a fine row
    unnormalised = np.array([[[0.5, 0.4, 0.4], [0.5, 0.2, 0.0]]])
    mon.observe(np.zeros((3, 2)), np.concatenate([good, bad, unnormalised]), timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_predictions") == 1
    assert mon.store.value("monitor_rows_rejected", ("probability_out_of_range",)) == 1
    assert mon.store.value("monitor_rows_rejected", ("probabilities_not_normalised",)) == 1


# -- predictions waiting for labels -----------------------------------------------------------
def test_predictions_forgotten_before_their_label_are_counted_and_the_table_is_configurable() -> None:
    mon = _monitor({"labels": {"pending": 100}})
    p = np.tile([[0.3, 0.7]], (150, 1))
    mon.observe(np.zeros((150, 2)), p, request_id=[f"r{i}" for i in range(150)], timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_labels_evicted") == 50
    assert mon.store.value("monitor_labels_pending") == 100
    mon.feedback(["r0", "r149"], [1, 1], timestamp=1100.0)
    mon.flush()
    assert mon.store.value("monitor_feedback_labels", ("unknown_id",)) == 1  # r0 was forgotten
    assert mon.store.value("monitor_labels_pending") == 99
    with pytest.raises(ConfigError, match="labels.pending"):
        parse_config({"model": "m", "labels": {"pending": 0}})


def test_a_checkpoint_of_probabilities_from_an_earlier_release_loads_as_log_probabilities() -> None:
    joiner = LabelJoiner(capacity=10)
    scores = np.array([[0.25, 0.75], [0.9, 0.1]])
    joiner.remember(Batch.from_arrays(np.zeros((2, 1)), scores, ts=np.array([1.0, 2.0]), request_id=["a", "b"]))
    state = joiner.state_dict()
    old = dict(state, scores=scores.astype(np.float32))
    del old["log_scores"]
    for saved in (state, old):
        restored = LabelJoiner(capacity=10)
        restored.load_state_dict(saved)
        labeled, _ = restored.join(3.0, ["a", "b"], [1, 0], ClassIndex(("x", "y")), regression=False)
        assert labeled is not None
        assert labeled.scores == pytest.approx(scores, abs=1e-6)
        assert labeled.log_scores == pytest.approx(np.log(scores), abs=1e-6)


def test_labels_joined_after_their_prediction_left_the_window_are_counted() -> None:
    """A labelling delay just under the window (3,590 s of 3,600) joined the labels, counted
    them ``joined``, and the window, which slides by 5-minute slots, had let their predictions
    go: no figure counted them, and no metric said so."""
    mon = _monitor({"detectors": ["calibration"]})
    ids = [f"r{i}" for i in range(150)]
    mon.observe(np.zeros((150, 2)), np.tile([[0.3, 0.7]], (150, 1)), request_id=ids, timestamp=1000.0)
    mon.flush()
    mon.feedback(ids, [1] * 150, timestamp=4590.0)
    mon.flush()
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 150
    assert mon.store.value(names.LABELS_IN_WINDOW) == 0
    assert mon.store.value("monitor_calibration_labels_skipped", ("outside_window",)) == 150


def test_regression_labels_joined_after_their_prediction_left_the_window_are_counted() -> None:
    """The same for a regression model: the regression detector's window had let the
    predictions go, MAE counted none of them, and only the calibration detector (not run for
    regression) counted such labels."""
    mon = _monitor({"detectors": ["regression"], "output": {"kind": "regression"}})
    ids = [f"r{i}" for i in range(150)]
    mon.observe(np.zeros((150, 2)), np.linspace(0.0, 1.0, 150), request_id=ids, timestamp=1000.0)
    mon.feedback(ids[:40], [0.5] * 40, timestamp=1100.0)  # in time
    mon.flush()
    mon.feedback(ids[40:], [0.5] * 110, timestamp=4590.0)
    mon.flush()
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 150
    assert mon.store.value("monitor_calibration_labels_skipped", ("outside_window",)) == 110


def test_a_restored_checkpoint_holds_only_the_ids_still_waiting() -> None:
    """A retry under the same id, then its label: the older slot still held the id, the
    checkpoint saved it, and the restored agent joined a second label to the old prediction."""
    joiner = LabelJoiner(capacity=10)
    for ts, p in ((1.0, [0.9, 0.1]), (2.0, [0.1, 0.9])):
        joiner.remember(Batch.from_arrays(np.zeros((1, 1)), np.array([p]), ts=np.array([ts]), request_id=["x"]))
    classes = ClassIndex(("a", "b"))
    labeled, outcome = joiner.join(3.0, ["x"], ["b"], classes, regression=False)
    assert outcome["joined"] == 1 and labeled is not None and labeled.ts.tolist() == [2.0]
    restored = LabelJoiner(capacity=10)
    restored.load_state_dict(joiner.state_dict())
    assert len(restored) == 0
    _, outcome = restored.join(4.0, ["x"], ["b"], classes, regression=False)
    assert outcome["unknown_id"] == 1


def test_feedback_of_many_labels_reserves_queue_bytes() -> None:
    """Queued feedback was bounded by its event count only: 20 calls of 250,000 labels held
    460 MB under a 1 MiB byte budget."""
    mon = _monitor({"queue": {"max_bytes": 1024 * 1024}})
    ids = [f"r{i}" for i in range(5000)]  # 5,000 x 128 bytes reserved: one fits, two do not
    assert mon.feedback(ids, [0] * 5000) is True
    assert mon.feedback(ids, [0] * 5000) is False
    assert mon.queue.reserved == 5000 * 128
    assert mon.feedback(ids[:10], [0] * 10) is True  # small ones take the lock-free path
    mon.flush()
    assert mon.queue.reserved == 0
    assert mon.store.value("monitor_events_dropped", ("queue_bytes_full",)) == 1


def test_a_final_checkpoint_holds_what_was_still_queued(tmp_path) -> None:
    """save_checkpoint(final=True) saved the state without draining the queue: predictions and
    labels queued a moment before were lost with the process, counted nowhere."""
    mon = _monitor({"output": {"classes": ["a", "b"]}})
    ids = [f"r{i}" for i in range(150)]
    mon.observe(np.zeros((150, 3)), np.tile([[0.3, 0.7]], (150, 1)), request_id=ids, timestamp=1000.0)
    mon.feedback(ids[:100], ["b"] * 100, timestamp=1010.0)
    assert len(mon.queue) == 2  # nothing processed yet
    mon.save_checkpoint(tmp_path / "m.ckpt", final=True)
    restored = _monitor({"output": {"classes": ["a", "b"]}})
    assert restored.restore_checkpoint(tmp_path / "m.ckpt")
    restored.flush()
    assert restored.store.value("monitor_predictions") == 150
    assert restored.store.value(names.LABELS_IN_WINDOW) == 100
    assert len(restored.pipeline.joiner) == 50


def test_an_invalid_label_leaves_its_prediction_for_the_corrected_one() -> None:
    joiner = LabelJoiner(capacity=10)
    joiner.remember(Batch.from_arrays(np.zeros((2, 1)), np.array([[0.2, 0.8], [0.6, 0.4]]), ts=np.array([1.0, 2.0]),
                                      request_id=["a", "b"]))
    classes = ClassIndex(("x", "y"))
    _, outcome = joiner.join(3.0, ["a", "b"], [[0, 1], None], classes, regression=False)
    assert outcome["invalid"] == 2 and len(joiner) == 2
    labeled, outcome = joiner.join(4.0, ["a", "b"], ["y", "x"], classes, regression=False)
    assert outcome["joined"] == 2 and labeled is not None and labeled.label.tolist() == [1, 0]


def test_feedback_and_observe_say_what_is_wrong_with_the_call() -> None:
    mon = _monitor()
    with pytest.raises(ValueError, match="feedback: timestamp must be Unix seconds"):
        mon.feedback(["a"], [1], timestamp="abc")
    with pytest.raises(ValueError, match="2 request_ids but one label"):
        mon.feedback(["a", "b"], 1)
    assert mon.feedback(["r-17"], "fraud") is True  # one id, one label: not five characters
    from datetime import datetime, timezone

    assert mon.feedback(["a"], [1], timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc)) is True
    assert mon.observe(np.zeros((1, 2)), np.array([[0.5, 0.5]]), timestamp="abc") is False  # observe never raises
    mon.flush()
    assert mon.store.value("monitor_events_dropped", ("invalid_timestamp",)) == 1


def test_class_names_given_on_the_reference_name_the_live_classes() -> None:
    """A reference built with class names, and no output.classes: feedback under those names
    was skipped as unknown_class, and metrics by class named one column "1" here and "pos" there."""
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, 400)
    scores = np.column_stack([1 - p, p])
    truth = np.where(rng.random(400) < p, "pos", "neg")
    ref = Reference.from_arrays(rng.normal(size=(400, 2)), scores=scores, labels=truth, classes=["neg", "pos"])
    mon = _monitor({"detectors": ["calibration", "prediction_drift"]}, ref)
    ids = [f"r{i}" for i in range(400)]
    mon.observe(rng.normal(size=(400, 2)), scores, request_id=ids, timestamp=1000.0)
    mon.flush()
    mon.feedback(ids, truth.tolist(), timestamp=1100.0)
    mon.flush()
    assert mon.store.value(names.LABELS_IN_WINDOW) == 400
    assert mon.store.value(names.ACCURACY) == pytest.approx(float(np.mean(np.where(p > 0.5, "pos", "neg") == truth)))
    assert mon.store.value("monitor_predicted_class", ("pos",)) == float(np.sum(p > 0.5))
    assert mon.store.value("monitor_predicted_class", ("1",)) is None


def test_seldon_truth_rows_that_are_not_one_hot_are_not_read_as_their_argmax() -> None:
    from monitor.server.payloads import decode_seldon_feedback

    body = {"response": {"meta": {"puid": "p1"}},
            "truth": {"data": {"ndarray": [[0, 0, 1], [0.0, 1.0, 0.0], [0, 0, 0], [0.3, 0.7, 0], [1, 1, 0], [2]]}}}
    puid, labels = decode_seldon_feedback(body)
    assert puid == "p1"
    assert labels == [2, 1, [0, 0, 0], [0.3, 0.7, 0], [1, 1, 0], 2]  # the lists are counted invalid by the join
    _, outcome = LabelJoiner().join(1.0, ["x"] * 3, labels[2:5], ClassIndex(("a", "b", "c")), regression=False)
    assert outcome["invalid"] == 3


# -- what arrives over HTTP (session 15's review of the sidecar's label paths) --------------------
def test_seldon_truth_with_class_names_is_read_by_column() -> None:
    """``truth.data.names`` (the classes of its one-hot columns) made each row a mapping of
    name to value, of which the first value was kept: [0, 1, 0] was read as class 0."""
    from monitor.server.payloads import decode_seldon_feedback

    names_ = ["setosa", "versicolor", "virginica"]
    _, labels = decode_seldon_feedback({"response": {"meta": {"puid": "p"}},
                                        "truth": {"data": {"names": names_, "ndarray": [[0, 1, 0], [0, 0, 1]]}}})
    assert labels == [1, 2]
    _, labels = decode_seldon_feedback({"response": {"meta": {"puid": "p"}}, "truth": {"data": {
        "names": ["t:0", "t:1", "t:2"], "tensor": {"shape": [1, 3], "values": [0, 0, 1]}}}})
    assert labels == [2]


def test_json_events_check_request_ids_labels_and_per_row_segments() -> None:
    from monitor.events import EventFormatError, parse_event

    row = {"inputs": [[1, 2]], "outputs": [[0.2, 0.8]]}
    assert parse_event({**row, "request_id": 17.0}, 0.0).event[6] == 17  # joins the label sent as 17
    assert parse_event({**row, "inputs": [[1, 2], [3, 4]], "outputs": [[0.2, 0.8]] * 2, "segment": ["eu", None]},
                       0.0).event[7] == ["eu", None]
    for body, field in (({**row, "request_id": {"id": 5}}, "request_id"), ({**row, "request_id": True}, "request_id"),
                        ({**row, "request_id": ["a", {"x": 1}]}, "request_id[1]"), ({**row, "segment": [{"a": 1}]}, "segment[0]")):
        with pytest.raises(EventFormatError) as err:
            parse_event(body, 0.0)
        assert err.value.field == field
    feedback = {"type": "feedback"}
    for body, field in (({"request_id": "m5", "labels": ["setosa"]}, "labels"),
                        ({"request_ids": {"m4": 1}, "labels": ["setosa"]}, "request_ids"),
                        ({"request_ids": [["m3"]], "labels": ["setosa"]}, "request_ids[0]"),
                        ({"request_ids": [None], "labels": ["setosa"]}, "request_ids[0]"),
                        ({"request_id": "m0", "label": {"a": 1}}, "label"),
                        ({"request_ids": ["m1"], "labels": [None]}, "labels[0]"),
                        ({"request_id": "m1", "request_ids": ["m1"], "labels": [1]}, "request_ids")):
        with pytest.raises(EventFormatError) as err:
            parse_event({**feedback, **body}, 0.0)
        assert err.value.field == field, body
    ok = parse_event({**feedback, "request_ids": ["a", 7, 8.0], "labels": ["x", True, 2.5]}, 0.0)
    assert ok.event[2:] == (["a", 7, 8], ["x", True, 2.5])


def test_forwarded_per_row_segments_stay_per_row() -> None:
    import json

    from monitor.events import PREDICTION
    from monitor.forwarding import encode_event

    for segment in (["eu", "us"], np.array(["eu", "us"])):
        obj = json.loads(encode_event((PREDICTION, 1.0, [[1], [2]], [[0.5, 0.5]] * 2, None, None, [17, 18], segment, None)))
        assert obj["segment"] == ["eu", "us"]
    obj = json.loads(encode_event((PREDICTION, 1.0, [[1]], [[0.5, 0.5]], None, None, None, "eu", None)))
    assert obj["segment"] == "eu"


def test_rfc3339_timestamps_need_an_offset_and_may_be_lower_case() -> None:
    from monitor.events import EventFormatError, parse_timestamp

    assert parse_timestamp("2024-01-01t00:00:00z", 0.0) == parse_timestamp("2024-01-01T00:00:00Z", 0.0) == 1704067200.0
    assert parse_timestamp("2024-01-01T02:00:00+02:00", 0.0) == 1704067200.0
    with pytest.raises(EventFormatError, match="no UTC offset"):
        parse_timestamp("2024-01-01T00:00:00", 0.0)  # the host's time zone would decide
