"""Bad input at the entry points, follow-ups of session 35's review (session 36, helper s36a):
each test failed before its fix. The standard: a clear error naming the field and the fix, counted
when refused, never a crash of the agent, a change to the user's predict or data silently lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import http, sample, start_sidecar
from tests.test_proxy import IRIS

__all__: list[str] = []

_ROW = [5.1, 3.5, 1.4, 0.2]
_REGRESSION = {"model": "reg", "features": ["a", "b", "c", "d"], "output": {"kind": "regression"}}

#: (model, label as JSON text, refused at intake): what the label join counts invalid is refused
_LABELS = [
    ("iris", "NaN", True), ("iris", "Infinity", True), ("iris", "-Infinity", True), ("iris", "1e400", True),
    ("iris", str(10 ** 100), True), ("iris", '"setosa"', False), ("iris", "2", False), ("iris", "true", False),
    ("iris", "1.0", False),
    ("reg", "NaN", True), ("reg", "-Infinity", True), ("reg", "1e200", True), ("reg", '"setosa"', True),
    ("reg", "1.5", False), ("reg", '"2.5"', False), ("reg", "false", False), ("reg", "-1e150", False),
]


def test_labels_the_join_counts_invalid_are_refused_at_intake(tmp_path: Path) -> None:
    """A feedback label that is NaN or infinite (or, for a classifier, an integer of a hundred
    digits; for a regression model text or a value whose squared error overflows) was accepted
    (202) and only counted ``invalid`` by the worker's label join, so the sender never learnt it
    (1e200 was even joined, and made the window's RMSE absent). It is now a 400 naming the label
    and the fix, counted ``bad_label``; in code, ``feedback()`` counts exactly those labels
    ``invalid`` and raises nothing."""
    s = start_sidecar({"models": [IRIS, _REGRESSION]}, tmp_path)
    try:
        for i, (model, label, refused) in enumerate(_LABELS):
            body = '{"model": "%s", "request_id": "r%d", "label": %s}' % (model, i, label)
            r = http("POST", s.url + "/v1/feedback", body, {"Content-Type": "application/json"})
            assert r.status == (400 if refused else 202), (model, label, r.body)
            if refused:
                assert (r.json()["field"], r.json()["reason"]) == ("label", "bad_label"), r.body
                assert "Fix: send the true class" in r.json()["error"], r.body
        body = {"model": "reg", "request_ids": ["a", "b"], "labels": [1.0, "soon"]}
        r = http("POST", s.url + "/v1/events", {**body, "type": "feedback"})
        assert r.status == 400 and r.json()["errors"][0]["field"] == "labels[1]", r.body
        assert "'soon'" in r.json()["error"] and "which is no number" in r.json()["error"], r.body
        text = s.metrics()
        for model in ("iris", "reg"):
            refused = sum(1 for m, _, bad in _LABELS if m == model and bad) + (model == "reg")
            assert sum(sample(text, "monitor_intake_events_refused_total", model=model, endpoint=endpoint,
                              reason="bad_label") or 0 for endpoint in ("feedback", "events")) == refused
    finally:
        s.close()
    for config in (IRIS, _REGRESSION):  # in code: the same labels counted invalid, nothing raised
        mon = Monitor(model=config["model"], config=config, registry=CollectorRegistry(), start_worker=False, live=False)
        try:
            cases = [(json.loads(label), refused) for m, label, refused in _LABELS if m == config["model"]]
            out = [[0.8, 0.1, 0.1]] if config is IRIS else [1.0]
            for i in range(len(cases)):
                mon.observe([_ROW], out, request_id=f"r{i}")
            mon.flush()
            for i, (label, _) in enumerate(cases):
                assert mon.feedback([f"r{i}"], [label]) is True
            mon.flush()
            invalid = mon.store.value("monitor_feedback_labels", {"outcome": "invalid"}) or 0
            assert invalid == sum(refused for _, refused in cases), (config["model"], invalid)
        finally:
            mon.close()


def test_a_request_id_longer_than_1024_characters_is_refused_or_left_out(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A request id had no length limit: one of a megabyte on a call of 2,000 rows became 2,000
    ids ``<id>/<row>`` of a megabyte each in the worker (2 GB), and an integer id of 5,000 digits
    failed the worker's whole drain (``str()`` refuses it: internal_error). Over HTTP an id over
    1,024 characters is now a 400 naming it (one event, a batch, a per-row list, feedback); in
    code its rows are kept without it and counted, the other calls' ids kept."""
    import logging

    long_id, at_limit = "x" * 1025, "y" * 1024
    s = start_sidecar(IRIS, tmp_path)
    try:
        event = {"inputs": [_ROW], "outputs": [[0.8, 0.1, 0.1]]}
        for body, field in (({**event, "request_id": long_id}, "request_id"),
                            ([{**event, "request_id": "a"}, {**event, "request_id": long_id}], "request_id"),
                            ({**event, "inputs": [_ROW] * 2, "outputs": [[0.8, 0.1, 0.1]] * 2, "request_id": ["a", long_id]},
                             "request_id[1]"),
                            ({"type": "feedback", "request_ids": [long_id], "labels": ["setosa"]}, "request_ids[0]")):
            r = http("POST", s.url + "/v1/events", body)
            assert r.status == 400, r.body
            error = r.json()["errors"][-1] if "errors" in r.json() else r.json()
            assert (error["field"], error["reason"]) == (field, "bad_request_id"), r.body
            assert "1,025 characters long" in error["error"] and "Fix: send the id" in error["error"], r.body
        r = http("POST", s.url + "/v1/events", {**event, "request_id": at_limit})
        assert r.status == 202, r.body
        assert sample(s.metrics(), "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="bad_request_id") == 4
    finally:
        s.close()
    mon = Monitor(model="ids", config=IRIS, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe(np.ones((2000, 4)), np.full((2000, 3), 1 / 3), request_id="z" * 200_000)
            mon.observe([_ROW] * 2, [[0.8, 0.1, 0.1]] * 2, request_id=["kept", long_id])
            mon.observe([_ROW], [[0.8, 0.1, 0.1]], request_id=10 ** 5000)
            mon.observe([_ROW], [[0.8, 0.1, 0.1]], request_id=at_limit)
            mon.flush()
        value = mon.store.value
        assert value("monitor_predictions") == 2004 and not value("monitor_rows_rejected", {"reason": "internal_error"})
        assert value("monitor_row_arguments_dropped", {"argument": "request_id"}) == 2002
        assert value("monitor_labels_pending") == 2  # "kept" and the id of 1,024 characters
        mon.feedback(["kept", at_limit], ["setosa", "setosa"])
        mon.flush()
        assert value("monitor_feedback_labels", {"outcome": "joined"}) == 2
        said = " ".join(r.getMessage() for r in caplog.records)
        assert "a request id of 200,000 characters" in said and "each of at most 1,024 characters" in said, said
    finally:
        mon.close()
