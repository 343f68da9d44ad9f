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
