"""A JSON array or a pretty-printed JSON event under an NDJSON or text content type, over real
HTTP on 127.0.0.1. ``fetch(url, {method: "POST", body: JSON.stringify(events)})`` sends
``Content-Type: text/plain;charset=UTF-8`` (the browser's and Node's default for a string
body), and loggers label their batches ``application/x-ndjson`` whatever their framing: the
array was refused whole as ``event 0: must be a JSON object, got list`` and an indented event as
``line 1 is not valid JSON``, naming no fix. The JSON path already reads NDJSON sent without its
content type; the NDJSON path now reads one JSON document (an array of events, or one event over
several lines) and lines that are arrays of events."""

from __future__ import annotations

import json

import pytest

from tests.sidecar_support import http, start_sidecar
from tests.test_proxy import IRIS

__all__: list[str] = []

EVENT = {"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}


@pytest.mark.parametrize("ctype", ["text/plain;charset=UTF-8", "application/x-ndjson"])
def test_an_array_or_an_indented_event_under_a_line_type_is_read(tmp_path, ctype):
    s = start_sidecar(IRIS, tmp_path)
    try:
        for body, n in ((json.dumps([EVENT, EVENT, EVENT]), 3), (json.dumps([EVENT, EVENT], indent=2), 2),
                        (json.dumps(EVENT, indent=2), 1), (json.dumps([EVENT, EVENT]) + "\n" + json.dumps(EVENT) + "\n", 3)):
            r = http("POST", s.url + "/v1/events", body, {"Content-Type": ctype})
            assert r.status == 202 and r.json()["accepted"] == n, (body[:60], r.body)
        feedback = json.dumps([{"request_id": "a", "label": "setosa"}, {"request_id": "b", "label": "setosa"}])
        r = http("POST", s.url + "/v1/feedback", feedback, {"Content-Type": ctype})
        assert r.status == 202 and r.json()["accepted"] == 2, r.body
        # a line that is no JSON is still named by its number
        r = http("POST", s.url + "/v1/events", json.dumps(EVENT) + "\n{oops\n", {"Content-Type": ctype})
        assert r.status == 400 and r.json()["field"] == "line 2" and r.json()["reason"] == "bad_json", r.body
    finally:
        s.close()


def test_json_text_sequences_are_read(tmp_path):
    """``application/json-seq`` (RFC 7464, ``jq --seq``) is among the line types the intake reads,
    but its records start with the record separator (0x1E), and every such body was refused as
    ``line 1 is not valid JSON``."""
    s = start_sidecar(IRIS, tmp_path)
    try:
        event = json.dumps(EVENT)
        for body in (f"\x1e{event}\n\x1e{event}\n", f"\x1e{event}\x1e{event}\n"):
            r = http("POST", s.url + "/v1/events", body, {"Content-Type": "application/json-seq"})
            assert r.status == 202 and r.json()["accepted"] == 2, r.body
    finally:
        s.close()
