"""The id of an OIP v2 exchange whose request has none (session 29 audit).

MLServer (and KServe) answer a request sent without ``id`` with a uuid of their own in the
answer's ``id``: the only id the client sees, so the one its labels come back under. The proxy
read the request's ``id`` and ``X-Request-Id`` only: such predictions were held under no id, and
every label sent for them was counted ``unknown_id``. The answer's ``id`` is now the event's id
when the request gives none; a request's own ``id`` or ``X-Request-Id`` still wins.
"""

from __future__ import annotations

import uuid

import pytest
from aiohttp import web

from tests.sidecar_support import AppServer, http, infer_server, sample, wait_until
from tests.test_proxy import start_proxying

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _mlserver_like() -> AppServer:
    """Answers as MLServer does: the request's id, else a new uuid."""
    async def infer(request: web.Request) -> web.Response:
        body = await request.json()
        n = body["inputs"][0]["shape"][0]
        return web.json_response({"model_name": "iris", "id": body.get("id") or str(uuid.uuid4()), "outputs": [
            {"name": "probs", "shape": [n, 3], "datatype": "FP32", "data": [0.7, 0.2, 0.1] * n}]})

    return infer_server(infer)


@pytest.fixture(scope="module")
def upstream():
    srv = _mlserver_like()
    yield srv
    srv.close()


def _request(rid: str | None = None) -> dict:
    body: dict = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.5, 0.2]}]}
    if rid is not None:
        body["id"] = rid
    return body


@pytest.mark.parametrize("engine", ["aiohttp", "process"])
def test_labels_sent_under_the_answers_id_join(tmp_path, upstream, engine) -> None:
    sc = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        answered = http("POST", sc.url + "/v2/models/iris/infer", _request()).json()["id"]
        http("POST", sc.url + "/v2/models/iris/infer", _request("mine"))
        http("POST", sc.url + "/v2/models/iris/infer", _request(), {"X-Request-Id": "from-header"})
        mon = sc.monitor("iris")
        # the taps run after the answers went out: processed as they come
        assert wait_until(lambda: sc.flush() or mon.store.value("monitor_predictions") == 3), "the taps were not processed"
        r = http("POST", sc.url + "/v1/feedback", {"model": "iris", "request_ids": [answered, "mine", "from-header"],
                                                   "labels": ["setosa", "setosa", "setosa"]})
        assert r.status == 202, r.body
        mon.flush()
        text = sc.metrics()
        assert sample(text, "monitor_feedback_labels_total", model="iris", outcome="joined") == 3
        assert (sample(text, "monitor_feedback_labels_total", model="iris", outcome="unknown_id") or 0) == 0
    finally:
        sc.close()
