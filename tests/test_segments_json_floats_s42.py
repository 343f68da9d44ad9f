"""The event format's ``segment`` as a number with a fraction part or a whole float: a JSON
encoder writes a pandas column of integer segments with one gap (float64) as ``3.0``, and the
intake refused every such event (400 ``bad_segment``) while ``observe`` in process read ``3.0``
as the integer's segment ``"3"``. The intake now reads a finite number as the in-process API
does (``3.0`` is ``"3"``, ``2.5`` is ``"2.5"``); a boolean, NaN or infinity is still a 400 naming
the entry. Over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json

from tests.sidecar_support import http, sample, start_sidecar, total
from tests.test_proxy import IRIS

__all__: list[str] = []

CONFIG = {**IRIS, "detectors": [{"kind": "segments", "min_rows": 1}]}


def _event(segment: object) -> dict[str, object]:
    return {"inputs": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], "outputs": [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]],
            "segment": segment}


def test_a_whole_float_segment_over_http_is_the_integers_segment(tmp_path) -> None:
    s = start_sidecar(CONFIG, tmp_path)
    try:
        for seg in [3, 3.0, "3", [3.0, 2.5], [None, 4.0]]:
            r = http("POST", s.url + "/v1/events", json.dumps(_event(seg)),
                     {"Content-Type": "application/json"})
            assert r.status == 202, r.body
        r = http("POST", s.url + "/v1/events", json.dumps([_event(3.0), _event(3)]),
                 {"Content-Type": "application/json"})
        assert r.status == 202, r.body
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_segment_rows_in_window", model="iris", segment="3") == 2 + 2 + 2 + 1 + 2 + 2
        assert sample(text, "monitor_segment_rows_in_window", model="iris", segment="2.5") == 1
        assert sample(text, "monitor_segment_rows_in_window", model="iris", segment="4") == 1
        assert sample(text, "monitor_segment_rows_in_window", model="iris", segment="3.0") is None
        # JSON has no NaN or infinity, but Python's encoder writes them and its decoder reads them
        for bad, field in (("true", "segment"), ("[1, false]", "segment[1]"), ("NaN", "segment"), ("[1, Infinity]", "segment[1]")):
            body = json.dumps(_event(0)).replace('"segment": 0', f'"segment": {bad}')
            r = http("POST", s.url + "/v1/events", body, {"Content-Type": "application/json"})
            assert r.status == 400, (bad, r.body)
            out = r.json()
            assert out["field"] == field and out["reason"] == "bad_segment", out
            assert "finite number" in out["error"], out
        assert total(s.metrics(), "monitor_intake_events_refused_total", reason="bad_segment") == 4
    finally:
        s.close()
