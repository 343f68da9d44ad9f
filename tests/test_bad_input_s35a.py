"""Bad input at the entry points (session 35, helper s35a): each test failed before its fix.
The standard: a clear error naming the field and the fix, counted when refused, never a crash
of the agent or a change to the user's predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monitor import Reference
from tests.sidecar_support import http, sample, start_sidecar
from tests.test_proxy import IRIS

__all__: list[str] = []

_ROW = [5.1, 3.5, 1.4, 0.2]


def test_null_outputs_are_refused_at_intake_naming_the_field(tmp_path: Path) -> None:
    """``"outputs": null`` was accepted (202) and only counted later in the worker, so the
    sender never learnt it; it is now a 400 naming ``outputs`` and the fix, counted in
    ``monitor_intake_events_refused_total{reason="missing_outputs"}`` like an event without
    outputs, on the one-event path and on the batch path of events with the same keys; nothing
    of a refused batch is enqueued. A model whose outputs are not read still takes null."""
    none_model = {"model": "unread", "features": ["a", "b", "c", "d"], "output": {"kind": "none"}}
    s = start_sidecar({"models": [IRIS, none_model]}, tmp_path)
    try:
        r = http("POST", s.url + "/v1/events", {"model": "iris", "inputs": [_ROW] * 20, "outputs": None})
        assert r.status == 400, r.body
        assert (r.json()["field"], r.json()["reason"]) == ("outputs", "missing_outputs"), r.body
        assert "is null" in r.json()["error"] and "one per input row" in r.json()["error"], r.body
        batch = [{"model": "iris", "inputs": [_ROW], "outputs": out} for out in ([[0.8, 0.1, 0.1]], None, [[0.8, 0.1, 0.1]])]
        r = http("POST", s.url + "/v1/events", "\n".join(map(json.dumps, batch)), {"Content-Type": "application/x-ndjson"})
        assert r.status == 400 and [d["index"] for d in r.json()["errors"]] == [1], r.body
        r = http("POST", s.url + "/v1/events", {"model": "unread", "inputs": [_ROW], "outputs": None})
        assert r.status == 202, r.body
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="missing_outputs") == 2
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="batch_refused") == 2
        assert not sample(text, "monitor_intake_events_accepted_total", model="iris", endpoint="events")
        assert sample(text, "monitor_intake_events_accepted_total", model="unread", endpoint="events") == 1
    finally:
        s.close()


@pytest.mark.parametrize("given", [np.array("abc"), np.array(3.0), "abc", 5])
@pytest.mark.parametrize("argument", ["text", "categorical"])
def test_a_reference_of_one_value_says_it_needs_rows(argument: str, given: object) -> None:
    """``Reference.from_arrays(text=np.array("abc"), ...)`` (a 0-d array, no numeric) raised a
    bare ``TypeError: len() of unsized object``; it is now the ValueError the other shape errors
    give, naming the argument and the fix."""
    with pytest.raises(ValueError, match=rf"reference {argument} must be \(rows, .*Fix: pass a list or array"):
        Reference.from_arrays(**{argument: given, f"{argument}_names": ["p"]})
