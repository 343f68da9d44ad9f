"""Delayed labels of a multi-label model (``output.kind: multilabel``) through the sidecar: the
documented JSON feedback (``POST /v1/feedback``), Seldon's CloudEvents feedback and ``monitor
replay``. Before, each refused a row's ground truth: the JSON intake answered 400 ``bad_label``
to any list label ("must be one class"), and Seldon's one-hot truth row became a class index,
counted ``invalid`` by the join. Now both forms (a 0/1 vector in label order, the names of the
labels present) are taken for such a model; what cannot be joined (a vector of another length, a
name no label has, one class) is refused at once with the field and the fix, and counted; a list
label stays refused for a single-label model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.replay import replay
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar
from tests.test_cloudevents import post, recent_ce_time, seldon_headers

LABELS = ["cat", "dog", "outdoor"]
TAGS = {"model": "tags", "features": ["x"], "output": {"kind": "multilabel", "classes": LABELS},
        "detectors": [{"kind": "multilabel", "min_labels": 2, "min_rows": 1}]}


@pytest.fixture
def sc(tmp_path: Path):
    s = start_sidecar(TAGS, tmp_path, factory=quiet_factory(start_worker=False))
    yield s
    s.close()


def _predict(sc, n: int) -> None:
    events = [{"inputs": [[0.0]], "outputs": [[0.9, 0.2, 0.7]], "request_id": f"r{i}"} for i in range(n)]
    r = http("POST", sc.url + "/v1/events", events)
    assert r.status == 202, r.body


def test_json_feedback_takes_vectors_and_label_names(sc) -> None:
    _predict(sc, 3)
    r = http("POST", sc.url + "/v1/feedback", [{"request_ids": ["r0", "r1"], "labels": [[1, 0, 1], ["cat", "outdoor"]]},
                                                {"request_id": "r2", "label": []}])
    assert r.status == 202, r.body
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="joined") == 3
    assert sample(text, "monitor_multilabel_labels_in_window", model="tags") == 3
    # decisions cat, outdoor on every row; r2 holds no label: 2 of its 3 decisions wrong
    assert sample(text, "monitor_multilabel_hamming_loss_ratio", model="tags") == pytest.approx(2 / 9)
    assert sample(text, "monitor_multilabel_subset_accuracy_ratio", model="tags") == pytest.approx(2 / 3)


@pytest.mark.parametrize(("label", "said"), [
    ([1, 0], "is a vector of 2 entries, and the model has 3 labels (cat, dog, outdoor)"),
    (["cat", "bird"], "names 'bird', which no column of the model is"),
    ("cat", "is one value ('cat')"),
    ([[1, 0, 1]], "got an array holding a list"),
], ids=["short-vector", "unknown-name", "one-class", "nested"])
def test_json_feedback_it_cannot_join_is_refused_naming_the_field_and_counted(sc, label, said: str) -> None:
    _predict(sc, 2)
    r = http("POST", sc.url + "/v1/feedback", {"request_ids": ["r0", "r1"], "labels": [[0, 0, 1], label]})
    assert r.status == 400, r.body
    body = r.json()
    assert body["field"] == "labels[1]" and said in body["error"] and ("Fix:" in body["error"] or "multi-label" in body["error"])
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_intake_events_refused_total", model="tags", endpoint="feedback", reason="bad_label") == 1
    assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="joined") in (None, 0.0)


def test_a_list_label_is_still_refused_for_a_single_label_model(tmp_path: Path) -> None:
    s = start_sidecar({"model": "iris", "features": ["x"], "output": {"kind": "probabilities", "classes": ["a", "b"]}},
                      tmp_path, factory=quiet_factory(start_worker=False))
    try:
        r = http("POST", s.url + "/v1/feedback", {"request_id": "r0", "label": [0, 1]})
        assert r.status == 400 and r.json()["field"] == "label" and "multi-label" in r.json()["error"], r.body
    finally:
        s.close()


def test_seldon_feedback_truth_rows_are_a_multilabel_models_vectors(tmp_path: Path) -> None:
    """A one-hot truth row ([0, 0, 1]: only "outdoor") was read as class 2 and refused by the join."""
    s = start_sidecar({**TAGS, "model": "sklearn-iris"}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        for puid, outputs in (("p-1", [[0.1, 0.2, 0.9]]), ("p-2", [[0.8, 0.7, 0.1]])):
            post(s, seldon_headers(puid, "io.seldon.serving.inference.request"), {"data": {"ndarray": [[1.0]]}})
            post(s, seldon_headers(puid, "io.seldon.serving.inference.response"), {"data": {"ndarray": outputs}, "meta": {"puid": puid}})
        s.flush()
        for puid, truth in (("p-1", [[0, 0, 1]]), ("p-2", [[1, 1, 0]])):
            fb = {"response": {"meta": {"puid": puid}, "data": {"ndarray": [[0.0]]}}, "truth": {"data": {"ndarray": truth}}}
            assert post(s, seldon_headers("fb-" + puid, "io.seldon.serving.feedback"), fb)["status"] == "accepted"
        bad = {"response": {"meta": {"puid": "p-1"}, "data": {"ndarray": [[0.0]]}}, "truth": {"data": {"ndarray": [[1, 0]]}}}
        headers = {**seldon_headers("fb-bad", "io.seldon.serving.feedback"), "Ce-Time": recent_ce_time()}
        r = http("POST", s.url + "/v1/cloudevents", json.dumps(bad), headers)
        assert r.status == 400 and "truth.data row 0" in r.json()["field"] and "2 entries" in r.json()["error"], r.body
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_feedback_labels_total", model="sklearn-iris", outcome="joined") == 2
        assert sample(text, "monitor_feedback_labels_total", model="sklearn-iris", outcome="invalid") is None
        assert sample(text, "monitor_multilabel_subset_accuracy_ratio", model="sklearn-iris") == 1.0
        assert sample(text, "monitor_intake_events_refused_total", model="sklearn-iris", endpoint="cloudevents",
                      reason="bad_label") == 1
    finally:
        s.close()


def test_replay_reads_a_multilabel_models_labels_and_refuses_lists_for_others() -> None:
    t0 = 1_700_000_000.0
    lines = [json.dumps({"timestamp": t0, "inputs": [0.0], "outputs": [0.9, 0.2, 0.7], "request_id": "r0"}),
             json.dumps({"type": "feedback", "timestamp": t0 + 1, "request_id": "r0", "label": ["cat"]})]
    summary = replay(parse_config({**TAGS, "rules": {"files": []}}).model(), lines)
    assert summary.events == 2 and not summary.refused, summary.lines()
    single = {"model": "tags", "features": ["x"], "output": {"kind": "probabilities", "classes": LABELS}, "rules": {"files": []}}
    lines[0] = json.dumps({"timestamp": t0, "inputs": [0.0], "outputs": [0.2, 0.2, 0.6], "request_id": "r0"})
    summary = replay(parse_config(single).model(), lines)
    assert summary.events == 1 and summary.refused == {"bad_label": 1}, summary.lines()
