"""Triton's classification extension on every intake and output kind (session 29 audit).

An output asked for with ``parameters: {classification: k}`` is answered as BYTES
``"score:index:label"``, the top ``k`` classes of each row. The proxy read them as score rows
(every class asked for), but KServe's logger posting the same answer as a CloudEvent had it
refused as ``non_numeric_output``; and for ``output.kind: labels`` (a model monitored for its
predicted class) the texts were taken as class names: refused against configured classes
(``too_many_classes``), or, without them, learned as new classes, one per distinct score.
The top class of each row is now the row's label, on the proxy and on CloudEvents alike.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from aiohttp import web

from tests.sidecar_support import http, infer_server, quiet_factory, sample, start_sidecar, total, wait_until
from tests.test_proxy import start_proxying

CLASSES = ["setosa", "versicolor", "virginica"]
PROBS = {"model": "iris", "features": ["a", "b", "c", "d"], "output": {"kind": "probabilities", "classes": CLASSES}}
LABELS = {**PROBS, "output": {"kind": "labels", "classes": CLASSES}}
SCORES = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]
REQUEST = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.5, 0.2] * 2}]}


def _classified(k: int, label: bool = True) -> dict:
    top = [[f"{row[j]:f}:{j}" + (f":{CLASSES[j]}" if label else "") for j in np.argsort(row)[::-1][:k]]
           for row in SCORES]
    return {"outputs": [{"name": "probs", "shape": [2, k], "datatype": "BYTES", "data": sum(top, [])}]}


def _pair(sc, response: dict) -> int:
    """A KServe logger's request and response CloudEvents; the response's status."""
    status = 0
    for part, data in (("request", REQUEST), ("response", response)):
        headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "test",
                   "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Id": "pair-1",
                   "Ce-Inferenceservicename": "iris"}
        status = http("POST", sc.url + "/v1/cloudevents", json.dumps(data), headers).status
    return status


def test_a_logged_classification_of_every_class_gives_the_score_rows(tmp_path) -> None:
    sc = start_sidecar(PROBS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        assert _pair(sc, _classified(3)) == 202
        (event,) = sc.monitor("iris").queue.items
        assert np.allclose(event[3], SCORES)
    finally:
        sc.close()


def test_a_logged_classification_of_fewer_classes_is_refused_with_the_fix(tmp_path) -> None:
    sc = start_sidecar(PROBS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        assert _pair(sc, _classified(1)) == 400
        assert total(sc.metrics(), "monitor_intake_events_refused_total", endpoint="cloudevents",
                     reason="classification_top_k") == 1
    finally:
        sc.close()


@pytest.mark.parametrize("label", [True, False], ids=["score:index:label", "score:index"])
@pytest.mark.parametrize("k", [1, 2])
def test_a_logged_classification_is_the_label_of_a_labels_model(tmp_path, k, label) -> None:
    sc = start_sidecar(LABELS, tmp_path, factory=quiet_factory())
    try:
        assert _pair(sc, _classified(k, label)) == 202
        sc.flush()
        text = sc.metrics()
        assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "setosa"}) == 1
        assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "virginica"}) == 1
        assert total(text, "monitor_rows_rejected_total", model="iris") == 0
    finally:
        sc.close()


def test_a_labels_model_without_classes_learns_the_labels_not_the_texts(tmp_path) -> None:
    sc = start_sidecar({**LABELS, "output": {"kind": "labels"}}, tmp_path, factory=quiet_factory())
    try:
        assert _pair(sc, _classified(1)) == 202
        sc.flush()
        text = sc.metrics()
        assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "setosa"}) == 1
        assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "virginica"}) == 1
    finally:
        sc.close()


async def _infer(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(_classified(body["outputs"][0]["parameters"]["classification"]))


@pytest.mark.parametrize("engine", ["aiohttp", "process"])
def test_the_proxy_reads_a_top_1_classification_as_the_label(tmp_path, engine) -> None:
    upstream = infer_server(_infer)
    try:
        sc = start_proxying({"models": [LABELS]}, tmp_path, engine, proxy_upstream=upstream.url)
        try:
            body = {**REQUEST, "outputs": [{"name": "probs", "parameters": {"classification": 1}}]}
            assert http("POST", sc.url + "/v2/models/iris/infer", body).status == 200
            mon = sc.monitor("iris")

            def tapped() -> bool:
                if sc.sidecar.data_planes:
                    asyncio.run_coroutine_threadsafe(sc.sidecar.sync_proxies(), sc.server.lt.loop).result(10)
                return len(mon.queue) >= 1

            assert wait_until(tapped), "the exchange was not tapped"
            (event,) = mon.queue.items
            assert list(event[3]) == ["setosa", "virginica"]
        finally:
            sc.close()
    finally:
        upstream.close()


def test_text_labels_with_a_colon_stay_labels() -> None:
    from monitor.server.payloads import classification_outputs

    answer = np.array([["10:30"], ["11:00"]], dtype=object)
    assert classification_outputs(answer, "labels", []) is answer
    read = classification_outputs(np.array(["0.700000:2:c", "-nan:0:a", "inf:1:b"], dtype=object), "labels", [])
    assert read.tolist() == ["b"]
