"""Errors about a JSON value of the wrong type named it by Python's type (``got NoneType``,
``got str``, ``got dict``) where the sender wrote JSON (``null``, a string, an object): a line
``null`` in an NDJSON batch was ``event: must be a JSON object, got NoneType``. They now name
the JSON type, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json

from tests.sidecar_support import http, start_sidecar
from tests.test_proxy import IRIS

__all__: list[str] = []


def test_wrong_types_are_named_as_json_names_them(tmp_path):
    s = start_sidecar(IRIS, tmp_path)
    try:
        ok = {"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}
        for body, field, said in (("null", "event", "got null"), ('"text"', "event", "got a string"),
                                  (json.dumps({**ok, "timestamp": [1]}), "timestamp", "got a list"),
                                  (json.dumps({**ok, "client": {"id": 1}}), "client", "got an object")):
            r = http("POST", s.url + "/v1/events", body, {"Content-Type": "application/json"})
            assert r.status == 400, r.body
            out = r.json()
            assert out["field"] == field and said in out["error"], out
            assert "NoneType" not in out["error"] and "dict" not in out["error"] and "got str" not in out["error"], out
    finally:
        s.close()
