"""A one-feature model's flat inputs (session 29 audit).

``predict(x)`` on a 1-D array of ``n`` values, an OIP v2 tensor of shape ``[n]`` and KServe v1
``instances: [v1, ..., vn]`` are ``n`` rows of the model's one feature. They were read as one row
of ``n`` features: refused (``wrong_shape``, or ``output_shape`` against the ``n`` outputs), and
with a reference of unnamed columns (``f0``) the first such call taught the monitor a schema of
``n`` features. A model of several features still reads a vector as one row.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.reference import Reference
from tests.sidecar_support import AppServer, http, quiet_factory, sample, start_sidecar, wait_until
from tests.test_proxy import start_proxying

ONE = {"model": "one", "features": ["x"], "output": {"kind": "probabilities", "classes": ["no", "yes"]}}


def _reference(features: int) -> Reference:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=300)
    return Reference.from_arrays(rng.normal(size=(300, features)), scores=np.c_[1 - p, p])


@pytest.mark.parametrize("configured", [True, False], ids=["features-configured", "reference-only"])
def test_the_decorator_reads_a_flat_array_as_rows_of_the_one_feature(configured) -> None:
    config = {"features": ["f0"]} if configured else None
    mon = Monitor(model="m", config=config, reference=_reference(1), registry=CollectorRegistry(), start_worker=False,
                  live=False)
    try:
        @mon.watch
        def predict_proba(x: np.ndarray) -> np.ndarray:
            return np.c_[1 - x / 10, x / 10]

        predict_proba(np.array([1.0, 2.0, 3.0]))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 3
        assert mon.pipeline.builder.schema.names == ("f0",)
        for reason in ("wrong_shape", "output_shape", "rows_mismatch"):
            assert mon.store.value("monitor_rows_rejected", {"reason": reason}) in (None, 0.0)
    finally:
        mon.close()


def test_a_model_of_several_features_still_reads_a_vector_as_one_row() -> None:
    mon = Monitor(model="m", reference=_reference(3), registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(np.array([1.0, 2.0, 3.0]), np.array([0.4, 0.6]))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 1
    finally:
        mon.close()


def _upstream() -> web.Application:
    """An OIP v2 model server of one feature: a tensor of shape [n] in, P(no), P(yes) per value out."""
    async def infer(request: web.Request) -> web.Response:
        body = await request.json()
        n = body["inputs"][0]["shape"][0]
        return web.json_response({"model_name": "one", "outputs": [
            {"name": "probs", "shape": [n, 2], "datatype": "FP64", "data": [0.3, 0.7] * n}]})

    app = web.Application()
    app.router.add_post("/v2/models/{model}/infer", infer)
    return app


@pytest.mark.parametrize("engine", ["aiohttp", "process"])
def test_the_proxy_reads_an_oip_tensor_of_shape_n_as_n_rows(tmp_path, engine) -> None:
    upstream = AppServer(_upstream())
    try:
        sc = start_proxying({"models": [ONE, {**ONE, "model": "three", "features": ["a", "b", "c"]}]}, tmp_path,
                            engine, proxy_upstream=upstream.url)
        try:
            tensor = {"name": "x", "shape": [3], "datatype": "FP64", "data": [0.1, 0.2, 0.3]}
            for model in ("one", "three"):
                assert http("POST", f"{sc.url}/v2/models/{model}/infer", {"inputs": [tensor]}).status == 200
            assert wait_until(lambda: len(sc.monitor("one").queue) and len(sc.monitor("three").queue))
            (event,) = sc.monitor("one").queue.items
            assert event[2].tolist() == [[0.1], [0.2], [0.3]]
            (event,) = sc.monitor("three").queue.items  # three features: the vector is one row
            assert event[2].tolist() == [[0.1, 0.2, 0.3]]
            sc.monitor("one").flush()
            assert sample(sc.metrics(), "monitor_predictions_total", model="one") == 3
        finally:
            sc.close()
    finally:
        upstream.close()


def _ce(part: str, data: dict) -> tuple[str, dict[str, str]]:
    return json.dumps(data), {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "test",
                              "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Id": f"ce-{part}-{len(str(data))}",
                              "Ce-Inferenceservicename": "one"}


@pytest.mark.parametrize(("request_body", "response_body"), [
    ({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [0.1, 0.2, 0.3]}]},
     {"outputs": [{"name": "probs", "shape": [3, 2], "datatype": "FP32", "data": [0.3, 0.7] * 3}]}),
    ({"instances": [0.1, 0.2, 0.3]}, {"predictions": [[0.3, 0.7]] * 3}),
], ids=["oip-v2", "v1-instances"])
def test_the_kserve_logger_pair_of_a_flat_input_is_n_rows(tmp_path, request_body, response_body) -> None:
    sc = start_sidecar(ONE, tmp_path, factory=quiet_factory())
    try:
        body, headers = _ce("request", request_body)
        headers["Ce-Id"] = "pair-1"
        assert http("POST", sc.url + "/v1/cloudevents", body, headers).status == 202
        body, headers = _ce("response", response_body)
        headers["Ce-Id"] = "pair-1"
        r = http("POST", sc.url + "/v1/cloudevents", body, headers)
        assert r.status == 202 and r.json()["status"] == "accepted", r.body
        sc.flush()
        text = sc.metrics()
        assert sample(text, "monitor_predictions_total", model="one") == 3
        assert (sample(text, "monitor_rows_rejected_total", model="one", reason="output_shape") or 0) == 0
    finally:
        sc.close()
