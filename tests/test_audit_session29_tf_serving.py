"""TensorFlow Serving's REST predict API through the proxy and KServe's logger (session 29 audit).

``POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict`` takes rows (``instances``) or
columns (``inputs``: a list, or a dict of named inputs) and answers ``predictions`` (rows) or
``outputs`` (columns); a model of several named outputs (an estimator's ``probabilities``,
``class_ids``, ``classes``, ``logits``) answers a dict of them per row, or one dict of columns.
The proxy tapped those paths only through a route listed under ``server.proxy.routes``, and its
dotted paths cannot pick a named output out of every row: a TF-Serving classifier was not
monitored at all by default, and with the README's route every exchange was refused. They are
now tapped without configuration (KServe's v1 protocol is the same API); the scores are the
output ``server.proxy.oip_output`` names, else the only one, else the one named as the model's
``output.kind`` (``probabilities``, ``logits``, ``classes``...), else the exchange is refused
naming the outputs and that setting.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web

from tests.sidecar_support import AppServer, http, quiet_factory, sample, start_sidecar, total, wait_until
from tests.test_proxy import start_proxying

CLASSES = ["setosa", "versicolor", "virginica"]
IRIS = {"model": "iris", "features": ["a", "b", "c", "d"], "output": {"kind": "probabilities", "classes": CLASSES}}
ROW = [5.1, 3.5, 1.4, 0.2]


def _scores(x: list[float]) -> list[float]:
    return [0.8, 0.15, 0.05] if x[2] < 2.5 else [0.05, 0.15, 0.8]


def tf_serving(outputs: tuple[str, ...]) -> web.Application:
    """TF Serving's REST predict for a model of four inputs whose ``outputs`` are named (one
    name: answered unnamed, as TF Serving does for a single output). Rows in, rows out; columns
    in, columns out. Named inputs (a, b, c, d, or one ``x`` of four) are read back as rows."""
    def rows_of(value) -> list[list[float]]:
        if isinstance(value, dict):
            if "x" in value:
                return value["x"]
            return [list(r) for r in zip(*(value[k] for k in "abcd"))]
        if value and isinstance(value[0], dict):
            return [r["x"] if "x" in r else [r[k] for k in "abcd"] for r in value]
        return value

    def named(x: list[float]) -> dict:
        p = _scores(x)
        every = {"probabilities": p, "class_ids": [p.index(max(p))], "classes": [str(p.index(max(p)))],
                 "logits": [v * 10 for v in p], "dense_1": p, "dense_2": [sum(x)]}
        return {k: every[k] for k in outputs}

    async def predict(request: web.Request) -> web.Response:
        body = await request.json()
        if "instances" in body:
            rows = [named(x) for x in rows_of(body["instances"])]
            return web.json_response({"predictions": [r[outputs[0]] for r in rows] if len(outputs) == 1 else rows})
        rows = [named(x) for x in rows_of(body["inputs"])]
        columns = {k: [r[k] for r in rows] for k in outputs}
        return web.json_response({"outputs": columns[outputs[0]] if len(outputs) == 1 else columns})

    app = web.Application()
    for path in ("/v1/models/{name}:predict", "/v1/models/{name}/versions/{v}:predict",
                 "/v1/models/{name}/labels/{l}:predict"):
        app.router.add_post(path, predict)
    return app


ESTIMATOR = ("class_ids", "classes", "logits", "probabilities")
REQUESTS = {
    "rows": {"instances": [ROW, [6.7, 3.0, 5.2, 2.3]]},
    "named-rows": {"signature_name": "serving_default", "instances": [{"x": ROW}, {"x": [6.7, 3.0, 5.2, 2.3]}]},
    "columns": {"inputs": [ROW, [6.7, 3.0, 5.2, 2.3]]},
    "named-columns": {"inputs": {"a": [5.1, 6.7], "b": [3.5, 3.0], "c": [1.4, 5.2], "d": [0.2, 2.3]}},
    "one-named-column": {"inputs": {"x": [ROW, [6.7, 3.0, 5.2, 2.3]]}},
}


def _tapped(sc, model: str = "iris", n: int = 1) -> list:
    mon = sc.monitor(model)

    def arrived() -> bool:
        if sc.sidecar.data_planes:  # the data path process's taps handed over
            asyncio.run_coroutine_threadsafe(sc.sidecar.sync_proxies(), sc.server.lt.loop).result(10)
        return len(mon.queue) >= n

    assert wait_until(arrived), "the exchange was not tapped"
    return mon.queue.items


def assert_two_rows_read(sc, rows: list[list[float]]) -> None:
    """The one exchange tapped gave each row's scores (a setosa, a virginica), nothing refused,
    counted as a ``v1`` route."""
    (event,) = _tapped(sc)
    assert [list(map(float, o)) for o in event[3]] == [_scores(r) for r in rows]
    sc.monitor("iris").flush()
    text = sc.metrics()
    assert total(text, "monitor_intake_events_refused_total") == 0
    assert total(text, "monitor_rows_rejected_total", model="iris") == 0
    assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "setosa"}) == 1
    assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "virginica"}) == 1
    assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="v1", code="2xx") == 1


@pytest.mark.parametrize("outputs", [("probabilities",), ESTIMATOR], ids=["one-output", "estimator"])
@pytest.mark.parametrize("request_body", list(REQUESTS.values()), ids=list(REQUESTS))
@pytest.mark.parametrize("engine", ["aiohttp", "process"])
def test_tf_serving_is_tapped_without_configuration(tmp_path, engine, request_body, outputs) -> None:
    upstream = AppServer(tf_serving(outputs))
    try:
        sc = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=upstream.url)
        try:
            r = http("POST", sc.url + "/v1/models/iris:predict", request_body)
            assert r.status == 200 and r.json() == http("POST", upstream.url + "/v1/models/iris:predict",
                                                        request_body).json()
            assert_two_rows_read(sc, [ROW, [6.7, 3.0, 5.2, 2.3]])
        finally:
            sc.close()
    finally:
        upstream.close()


@pytest.mark.parametrize("path", ["/v1/models/iris/versions/2:predict", "/v1/models/iris/labels/stable:predict"])
def test_a_version_or_a_label_of_the_model_is_tapped_too(tmp_path, path) -> None:
    upstream = AppServer(tf_serving(ESTIMATOR))
    try:
        sc = start_proxying({"models": [IRIS]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
        try:
            assert http("POST", sc.url + path, REQUESTS["rows"]).status == 200
            (event,) = _tapped(sc)
            assert len(event[3]) == 2
        finally:
            sc.close()
    finally:
        upstream.close()


@pytest.mark.parametrize("kind, expected", [
    ("logits", [[8.0, 1.5, 0.5], [0.5, 1.5, 8.0]]),
    ("labels", [["0"], ["2"]]),
])
def test_the_output_named_as_the_output_kind_is_read(tmp_path, kind, expected) -> None:
    upstream = AppServer(tf_serving(ESTIMATOR))
    try:
        model = {**IRIS, "output": {"kind": kind, "classes": CLASSES}}
        sc = start_proxying({"models": [model]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
        try:
            assert http("POST", sc.url + "/v1/models/iris:predict", REQUESTS["rows"]).status == 200
            (event,) = _tapped(sc)
            assert [[round(float(v), 6) if kind == "logits" else v for v in o] for o in event[3]] == expected
        finally:
            sc.close()
    finally:
        upstream.close()


@pytest.mark.parametrize("request_body", [REQUESTS["rows"], REQUESTS["columns"]], ids=["rows", "columns"])
def test_outputs_of_other_names_are_refused_naming_the_setting_then_read_with_it(tmp_path, caplog, request_body) -> None:
    caplog.set_level(logging.WARNING, logger="monitor")
    upstream = AppServer(tf_serving(("dense_1", "dense_2")))  # a Keras model of two heads
    try:
        sc = start_proxying({"models": [IRIS]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
        try:
            assert http("POST", sc.url + "/v1/models/iris:predict", request_body).status == 200
            assert wait_until(lambda: total(sc.metrics(), "monitor_intake_events_refused_total", endpoint="proxy",
                                            reason="missing_outputs") == 1)
            said = " ".join(r.getMessage() for r in caplog.records)
            assert "dense_1" in said and "server.proxy.oip_output" in said
        finally:
            sc.close()
        sc = start_proxying({"models": [IRIS], "server": {"proxy": {"oip_output": "dense_1"}}}, tmp_path, "aiohttp",
                            proxy_upstream=upstream.url)
        try:
            assert http("POST", sc.url + "/v1/models/iris:predict", request_body).status == 200
            (event,) = _tapped(sc)
            assert [list(map(float, o)) for o in event[3]] == [_scores(ROW), _scores([6.7, 3.0, 5.2, 2.3])]
        finally:
            sc.close()
    finally:
        upstream.close()


def test_a_configured_route_on_the_same_path_still_wins(tmp_path) -> None:
    upstream = AppServer(tf_serving(("probabilities",)))
    try:
        proxy = {"routes": [{"path": "/v1/models/{model}:predict", "model": "iris"}]}  # served as "iris-tf"
        sc = start_proxying({"models": [IRIS], "server": {"proxy": proxy}}, tmp_path, "aiohttp",
                            proxy_upstream=upstream.url)
        try:
            assert http("POST", sc.url + "/v1/models/iris-tf:predict", REQUESTS["rows"]).status == 200
            (event,) = _tapped(sc)
            assert len(event[3]) == 2
            assert sample(sc.metrics(), "monitor_proxy_requests_total", model="_sidecar", route="predict",
                          code="2xx") == 1
        finally:
            sc.close()
    finally:
        upstream.close()


@pytest.mark.parametrize("response", [
    {"predictions": [{"probabilities": _scores(ROW), "class_ids": [0]}] * 2},
    {"outputs": {"probabilities": [_scores(ROW)] * 2, "class_ids": [[0], [0]]}},
], ids=["rows", "columns"])
def test_kserve_logger_events_of_tf_serving_named_outputs_are_read(tmp_path, response) -> None:
    sc = start_sidecar(IRIS, tmp_path, factory=quiet_factory())
    try:
        for part, data in (("request", REQUESTS["named-columns"]), ("response", response)):
            headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "test",
                       "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Id": "pair-1",
                       "Ce-Inferenceservicename": "iris"}
            r = http("POST", sc.url + "/v1/cloudevents", json.dumps(data), headers)
            assert r.status == 202, r.body
        sc.flush()
        text = sc.metrics()
        assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "setosa"}) == 2
        assert total(text, "monitor_rows_rejected_total", model="iris") == 0
    finally:
        sc.close()


def _logged_pair(sc, request_body: dict, model: str = "iris") -> int:
    status = 0
    for part, data in (("request", request_body), ("response", {"predictions": [_scores(ROW)] * 2})):
        headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "test",
                   "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Id": "pair-2",
                   "Ce-Inferenceservicename": model}
        status = http("POST", sc.url + "/v1/cloudevents", json.dumps(data), headers).status
        if status != 202:
            return status
    return status


@pytest.mark.parametrize("request_body", [
    {"inputs": {"a": [5.1, 6.7], "v": [[3.5, 1.4, 0.2], [3.0, 5.2, 2.3]]}},
    {"instances": [{"a": 5.1, "v": [3.5, 1.4, 0.2]}, {"a": 6.7, "v": [3.0, 5.2, 2.3]}]},
], ids=["columns", "rows"])
def test_several_named_inputs_of_which_a_vector_give_a_column_per_value(tmp_path, request_body) -> None:
    model = {**IRIS, "features": ["a", "v_0", "v_1", "v_2"]}
    sc = start_sidecar(model, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        assert _logged_pair(sc, request_body) == 202
        (event,) = sc.monitor("iris").queue.items
        assert event[2] == {"a": [5.1, 6.7], "v_0": [3.5, 3.0], "v_1": [1.4, 5.2], "v_2": [0.2, 2.3]}
    finally:
        sc.close()


@pytest.mark.parametrize("request_body, field", [
    ({"inputs": {"a": [5.1, 6.7, 1.0], "v": [[3.5, 1.4], [3.0, 5.2]]}}, "inputs"),
    ({"inputs": {"a": [5.1, 6.7], "v": [[3.5, 1.4], [3.0]]}}, "inputs.v"),
    ({"instances": [{"a": 5.1, "v": [3.5]}, {"v": [3.0]}]}, "instances[1]"),
], ids=["rows-differ", "ragged", "inputs-differ"])
def test_named_inputs_that_do_not_make_rows_are_refused_naming_the_field(tmp_path, request_body, field) -> None:
    sc = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "test",
                   "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Id": "bad", "Ce-Inferenceservicename": "iris"}
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps(request_body), headers)
        assert r.status == 400 and r.json()["field"] == field, r.body
        assert total(sc.metrics(), "monitor_intake_events_refused_total", endpoint="cloudevents", reason="bad_shape") == 1
    finally:
        sc.close()
