"""Once the sidecar stops taking events (SIGTERM), every answer of its middleware carries
``Connection: close``: the answers of handlers, refusals, and now also the JSON 404/405 of an
unknown path and the 500 of a failing handler, which kept their connection open before (the
middleware called ``force_close`` in two of its branches instead of once for every answer)."""

from __future__ import annotations

from pathlib import Path

from tests.sidecar_support import http, quiet_factory, start_sidecar

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def test_every_answer_closes_its_connection_once_intake_is_closed(tmp_path: Path, monkeypatch) -> None:
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        # while serving: keep-alive (HTTP/1.1's default, no Connection header)
        assert http("GET", s.url + "/no/such/path").headers.get("connection") is None
        s.sidecar.accepting = False
        answers = {
            "handler": http("GET", s.url + "/healthz"),
            "refusal": http("POST", s.url + "/v1/events", {"inputs": [1, 2, 3, 4]}),
            "unknown path": http("GET", s.url + "/no/such/path"),
            "wrong method": http("PUT", s.url + "/v1/events", "{}"),
        }

        def fail(*_: object, **__: object) -> None:
            raise RuntimeError("a bug in a handler")

        monkeypatch.setattr(s.sidecar, "all_monitors", fail)
        answers["failing handler"] = http("GET", s.url + "/api/v1/clients")
        monkeypatch.undo()
        assert [a.status for a in answers.values()] == [200, 503, 404, 405, 500], {k: a.status for k, a in answers.items()}
        assert {k: a.headers.get("connection", "").lower() for k, a in answers.items()} == dict.fromkeys(answers, "close")
    finally:
        monkeypatch.undo()
        s.sidecar.accepting = True
        s.close()
