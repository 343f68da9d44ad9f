"""The sidecar takes the calls of an ``output.kind: none`` model whatever their outputs (real HTTP).

Found by a user study: a text generator's or an object detector's traffic through the sidecar was
refused: events without ``outputs`` answered 400 ``missing_outputs``, the proxy's taps of answers
holding generated text (an OIP v2 BYTES tensor) or lists of boxes (KServe v1 ``predictions`` of
objects) were refused or had every row refused, and the inputs went with them. For such a model
the outputs are now not read on any path: ``/v1/events`` takes events with any outputs or none,
the proxy taps the request's rows without decoding the answer, and a CloudEvents request is the
prediction at once (its response accepted unread, nothing left waiting to be counted unmatched).
A model of another kind still refuses an event without outputs, naming the field.
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

from tests.sidecar_support import AppServer, http, quiet_factory, sample, start_sidecar, total, wait_until
from tests.test_cloudevents import kserve_headers
from tests.test_proxy import start_proxying

GEN = {"model": "gen", "features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}}
BOXES = {"model": "boxes", "features": ["a", "b", "c", "d"], "output": {"kind": "none"}}
IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _monitored(sc, model: str) -> tuple[float, float, float]:
    """(predictions, rows refused, intake events refused) of ``model`` after a flush."""
    sc.flush()
    text = sc.metrics()
    return (sample(text, "monitor_predictions_total", model=model) or 0.0,
            total(text, "monitor_rows_rejected_total", model=model),
            total(text, "monitor_intake_events_refused_total", model=model))


def test_events_with_any_outputs_or_none_are_taken_for_kind_none(tmp_path) -> None:
    sc = start_sidecar({"models": [GEN, IRIS]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        events = [
            {"model": "gen", "inputs": ["Write a haiku about rain.", "Summarise this memo."], "request_id": "r1",
             "segment": "eu", "client": "tenant-1"},
            {"model": "gen", "inputs": "Translate 'cat' to French.", "outputs": "Chat."},
            {"model": "gen", "inputs": ["Name three rivers."], "outputs": [{"text": "Nile, Amazon, Yangtze", "tokens": 7}]},
            {"model": "gen", "inputs": ["What is 2+2?"], "outputs": None, "timestamp": 1_700_000_000.0},
        ]
        r = http("POST", sc.url + "/v1/events", "\n".join(map(json.dumps, events)),
                 {"Content-Type": "application/x-ndjson"})
        assert r.status == 202, r.body
        assert r.json()["accepted"] == 4
        assert _monitored(sc, "gen") == (5.0, 0.0, 0.0)
        # another kind of model still needs outputs, told by field and reason
        r = http("POST", sc.url + "/v1/events", {"model": "iris", "inputs": [[5.1, 3.5, 1.4, 0.2]]})
        assert r.status == 400 and (r.json()["field"], r.json()["reason"]) == ("outputs", "missing_outputs"), r.body
        assert sample(sc.metrics(), "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="missing_outputs") == 1
    finally:
        sc.close()


def _boxes(rows: list) -> list:
    return [{"boxes": [[0, 0, 5, 5]] * i, "labels": ["cat"] * i} for i, _ in enumerate(rows)]


def model_server(predictions=_boxes) -> web.Application:
    """A text generator on OIP v2 (a BYTES tensor of answers) and a model on KServe v1 answering
    ``predictions(instances)`` (by default an object detector's list of boxes per row)."""
    async def infer(request: web.Request) -> web.Response:
        body = await request.json()
        prompts = body["inputs"][0]["data"]
        return web.json_response({"model_name": "gen", "id": body.get("id"), "outputs": [
            {"name": "text_output", "shape": [len(prompts)], "datatype": "BYTES", "data": [f"About {p}" for p in prompts]}]})

    async def predict(request: web.Request) -> web.Response:
        rows = (await request.json())["instances"]
        return web.json_response({"predictions": predictions(rows)})

    app = web.Application()
    app.router.add_post("/v2/models/{model}/infer", infer)
    app.router.add_post("/v1/models/{name}:predict", predict)
    return app


def test_the_proxy_taps_the_inputs_of_kind_none_without_reading_the_answer(tmp_path) -> None:
    upstream = AppServer(model_server())
    try:
        sc = start_proxying({"models": [GEN, BOXES]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
        try:
            prompts = ["Tell me a joke.", "Explain drift.", "Write a limerick."]
            request = {"id": "q1", "inputs": [{"name": "prompt", "shape": [3], "datatype": "BYTES", "data": prompts}]}
            r = http("POST", sc.url + "/v2/models/gen/infer", request)
            assert r.status == 200 and r.json()["outputs"][0]["data"][0] == "About Tell me a joke."
            r = http("POST", sc.url + "/v1/models/boxes:predict", {"instances": [[0.1, 0.2, 0.3, 0.4]] * 4})
            assert r.status == 200 and len(r.json()["predictions"]) == 4
            assert wait_until(lambda: len(sc.monitor("gen").queue) + len(sc.monitor("boxes").queue) == 2)
            (event,) = sc.monitor("gen").queue.items
            assert event[3] is None and event[6] == "q1"  # not read, and the request's id kept
            assert _monitored(sc, "gen") == (3.0, 0.0, 0.0)
            assert _monitored(sc, "boxes") == (4.0, 0.0, 0.0)
        finally:
            sc.close()
    finally:
        upstream.close()


def test_a_cloudevents_request_is_the_prediction_at_once_and_its_response_is_not_awaited(tmp_path) -> None:
    sc = start_sidecar(BOXES, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        rid = str(uuid.uuid4())
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 2}),
                 kserve_headers(rid, "request", isvc="boxes"))
        assert r.status == 202 and r.json()["status"] == "accepted", r.body
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"predictions": [{"boxes": []}, {"boxes": [[1, 2, 3, 4]]}]}),
                 kserve_headers(rid, "response", isvc="boxes"))
        assert r.status == 202 and r.json()["status"] == "accepted", r.body
        assert total(sc.metrics(), "monitor_cloudevents_pending") == 0  # no half waits for another
        assert _monitored(sc, "boxes") == (2.0, 0.0, 0.0)
        assert total(sc.metrics(), "monitor_cloudevents_unmatched_total") == 0
    finally:
        sc.close()


def test_prompts_that_read_as_numbers_stay_text(tmp_path) -> None:
    """One-row events of a text feature whose prompts look like numbers ('7') were stacked as
    floats by the sidecar and described as the text '7.0' (length 3, a non-letter share of 1)."""
    model = {"model": "gen", "features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}}
    sc = start_sidecar({"models": [model]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        seen = []
        mon = sc.monitor("gen")
        mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                       "__getattr__": lambda self, n: (lambda *a, **k: None)})())
        events = [{"model": "gen", "inputs": [str(i)]} for i in range(3)]
        r = http("POST", sc.url + "/v1/events", "\n".join(map(json.dumps, events)), {"Content-Type": "application/x-ndjson"})
        assert r.status == 202, r.body
        sc.flush()
        lengths = [v for b in seen for v in b.numeric[:, list(b.numeric_names).index("prompt.length")].tolist()]
        assert lengths == [1.0, 1.0, 1.0]
    finally:
        sc.close()


def _raw_server(body: bytes, content_type: str) -> web.Application:
    """A model on KServe v1 answering ``body`` whatever it is asked (a mask image, a large answer)."""
    async def predict(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/v1/models/{name}:predict", predict)
    return app


def test_the_proxy_taps_the_inputs_whatever_the_unread_answer_is(tmp_path) -> None:
    """The answer of a model of kind none is not read: a segmentation mask (no JSON) was refused
    as bad_json, and the request's rows with it."""
    upstream = AppServer(_raw_server(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"))
    try:
        sc = start_proxying({"models": [BOXES]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
        try:
            r = http("POST", sc.url + "/v1/models/boxes:predict", {"instances": [[0.1, 0.2, 0.3, 0.4]] * 4})
            assert r.status == 200
            assert wait_until(lambda: len(sc.monitor("boxes").queue) == 1
                              or total(sc.metrics(), "monitor_intake_events_refused_total") > 0)
            assert _monitored(sc, "boxes") == (4.0, 0.0, 0.0)
        finally:
            sc.close()
    finally:
        upstream.close()


def test_labels_for_a_model_without_compared_outputs_are_refused_at_the_intake(tmp_path) -> None:
    """Feedback for kind none (or text) was answered 202 and only then counted invalid at the join:
    an HTTP sender learnt it from the agent's log alone. It is refused 400 bad_label, with the fix."""
    text_model = {**GEN, "model": "writer", "output": {"kind": "text"}}
    sc = start_sidecar({"models": [GEN, text_model, IRIS]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        for model in ("gen", "writer"):
            r = http("POST", sc.url + "/v1/feedback", {"model": model, "request_ids": ["a"], "labels": ["good"]})
            body = r.json()
            assert r.status == 400 and body["reason"] == "bad_label" and body["field"] == "labels", body
            assert "Fix: stop sending labels" in body["error"] or "stop sending labels" in body.get("fix", body["error"]), body
            assert total(sc.metrics(), "monitor_intake_events_refused_total", model=model, reason="bad_label") == 1
        r = http("POST", sc.url + "/v1/feedback", {"model": "iris", "request_ids": ["a"], "labels": ["setosa"]})
        assert r.status == 202, r.json()
    finally:
        sc.close()
