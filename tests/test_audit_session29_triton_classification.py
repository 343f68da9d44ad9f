"""Triton's classification extension through the proxy (session 29 audit).

A request asking for an output with ``parameters: {classification: k}`` is answered, in place of
the scores, with the top ``k`` classes as BYTES ``"score:index:label"``. Read as probabilities,
every such exchange was refused as ``non_numeric_output`` with nothing said about the extension.
With every class asked for, the score rows are rebuilt (each score at its class index); with
fewer, the other classes' scores are not in the answer, and the exchange is refused as
``classification_top_k`` with the fix in the log.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiohttp import web

from tests.sidecar_support import http, infer_server, total, wait_until
from tests.test_proxy import start_proxying

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
SCORES = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]


async def _infer(request: web.Request) -> web.Response:
    """Two rows; the top k of the three classes when the request asks for classification."""
    body = await request.json()
    k = body.get("outputs", [{}])[0].get("parameters", {}).get("classification")
    if not k:
        return web.json_response({"outputs": [{"name": "probs", "shape": [2, 3], "datatype": "FP32",
                                               "data": sum(SCORES, [])}]})
    names = IRIS["output"]["classes"]
    top = [[f"{row[j]:f}:{j}:{names[j]}" for j in np.argsort(row)[::-1][:k]] for row in SCORES]
    return web.json_response({"outputs": [{"name": "probs", "shape": [2, k], "datatype": "BYTES", "data": sum(top, [])}]})


@pytest.fixture(params=["aiohttp", "process"])
def proxied(request, tmp_path):
    upstream = infer_server(_infer)
    s = start_proxying({"models": [IRIS], "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, request.param,
                       proxy_upstream=upstream.url)
    yield s
    s.close()
    upstream.close()


def _synced(sc) -> None:
    if sc.sidecar.data_planes:
        asyncio.run_coroutine_threadsafe(sc.sidecar.sync_proxies(), sc.server.lt.loop).result(10)


def _ask(sc, k: int) -> None:
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.5, 0.2] * 2}],
            "outputs": [{"name": "probs", "parameters": {"classification": k}}]}
    assert http("POST", sc.url + "/v2/models/iris/infer", body).status == 200


def test_every_class_asked_for_gives_the_score_rows(proxied) -> None:
    _ask(proxied, 3)
    mon = proxied.monitor("iris")
    assert wait_until(lambda: _synced(proxied) is None and len(mon.queue) >= 1), "the exchange was not tapped"
    (event,) = mon.queue.items
    assert np.allclose(event[3], SCORES)
    assert total(proxied.metrics(), "monitor_intake_events_refused_total", endpoint="proxy") == 0


def test_the_top_k_of_fewer_classes_is_refused_with_the_fix(proxied, caplog) -> None:
    caplog.set_level("WARNING", logger="monitor")
    _ask(proxied, 1)

    def refused() -> float:
        _synced(proxied)
        return total(proxied.metrics(), "monitor_intake_events_refused_total", endpoint="proxy",
                     reason="classification_top_k")

    assert wait_until(lambda: refused() == 1), "the refusal was not counted"
    assert any("ask for classification: 3" in r.getMessage() for r in caplog.records)
    assert not proxied.monitor("iris").queue.items
