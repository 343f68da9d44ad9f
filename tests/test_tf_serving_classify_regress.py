"""TensorFlow Serving's REST Classify and Regress APIs through the proxy (real HTTP, both engines).

``POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify`` / ``:regress`` take
``{"signature_name": ..., "context": {...}, "examples": [{feature: value or [value]}, ...]}`` and
answer ``{"results": [[[label, score], ...], ...]}`` (classify) or ``{"results": [value, ...]}``
(regress), as TF Serving's REST API guide and server write them. Only ``:predict`` was tapped:
a model called through its classification or regression signature (a canned estimator's) was
forwarded unmonitored, nothing counted.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from tests.sidecar_support import AppServer, http, quiet_factory, sample, start_sidecar, total, wait_until
from tests.test_audit_session29_tf_serving import CLASSES, IRIS, ROW, _scores, _tapped, assert_two_rows_read
from tests.test_proxy import start_proxying

OTHER = [6.7, 3.0, 5.2, 2.3]
EXAMPLES = {"signature_name": "serving_default", "context": {"d": 0.2},
            "examples": [{"a": [ROW[0]], "b": ROW[1], "c": [ROW[2]]}, {"a": OTHER[0], "b": OTHER[1], "c": OTHER[2], "d": [OTHER[3]]}]}
HOUSES = {"model": "houses", "features": ["rooms", "age"], "output": {"kind": "regression"}}


def tf_serving() -> web.Application:
    """TF Serving's classify (every class, labelled, in an order of its own) and regress."""
    def features(body: dict, i: int) -> list[float]:
        row = {**body.get("context", {}), **body["examples"][i]}
        return [v[0] if isinstance(v, list) else v for v in (row.get(k) for k in "abcd")]

    async def classify(request: web.Request) -> web.Response:
        body = await request.json()
        results = []
        for i in range(len(body["examples"])):
            p = _scores(features(body, i))
            results.append([[CLASSES[j], p[j]] for j in (2, 0, 1)])
        return web.json_response({"results": results})

    async def regress(request: web.Request) -> web.Response:
        body = await request.json()
        rows = [{**body.get("context", {}), **e} for e in body["examples"]]
        one = [{k: v[0] if isinstance(v, list) else v for k, v in row.items()} for row in rows]
        return web.json_response({"results": [10.0 * row["rooms"] + row["age"] for row in one]})

    app = web.Application()
    for suffix in ("", "/versions/{v}", "/labels/{l}"):
        app.router.add_post(f"/v1/models/iris{suffix}:classify", classify)
        app.router.add_post(f"/v1/models/houses{suffix}:regress", regress)
    return app


@pytest.fixture
def upstream():
    server = AppServer(tf_serving())
    yield server
    server.close()


@pytest.mark.parametrize("path", ["/v1/models/iris:classify", "/v1/models/iris/versions/3:classify",
                                  "/v1/models/iris/labels/stable:classify"])
@pytest.mark.parametrize("engine", ["aiohttp", "process"])
def test_classify_is_tapped_its_scores_read_in_the_configured_class_order(tmp_path, upstream, engine, path) -> None:
    sc = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        r = http("POST", sc.url + path, EXAMPLES)
        assert r.status == 200 and r.json() == http("POST", upstream.url + path, EXAMPLES).json()
        assert_two_rows_read(sc, [ROW, OTHER])
    finally:
        sc.close()


def test_classify_for_a_labels_model_gives_the_best_class(tmp_path, upstream) -> None:
    labels = {**IRIS, "output": {"kind": "labels", "classes": CLASSES}}
    sc = start_proxying({"models": [labels]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
    try:
        assert http("POST", sc.url + "/v1/models/iris:classify", EXAMPLES).status == 200
        (event,) = _tapped(sc)
        assert list(event[3]) == ["setosa", "virginica"]
    finally:
        sc.close()


def test_regress_is_tapped_its_values_read_as_the_predictions(tmp_path, upstream) -> None:
    sc = start_proxying({"models": [HOUSES]}, tmp_path, "process", proxy_upstream=upstream.url)
    try:
        body = {"signature_name": "tensorflow/serving/regress", "context": {"age": 5},
                "examples": [{"rooms": [3]}, {"rooms": 4, "age": 40}]}
        r = http("POST", sc.url + "/v1/models/houses:regress", body)
        assert r.status == 200 and r.json() == {"results": [35.0, 80.0]}
        (event,) = _tapped(sc, "houses")
        assert event[2] == [{"age": 5, "rooms": 3}, {"age": 40, "rooms": 4}] and list(event[3]) == [35.0, 80.0]
        sc.monitor("houses").flush()
        text = sc.metrics()
        assert total(text, "monitor_intake_events_refused_total") == 0
        assert sample(text, "monitor_predictions_total", model="houses") == 2
    finally:
        sc.close()


@pytest.mark.parametrize("answer, reason, said", [
    ({"results": [[["setosa", 0.9], ["virginica", 0.1]]]}, "classification_top_k", "Fix: answer every class's score"),
    ({"predictions": [[0.9, 0.1]]}, "missing_outputs", "results"),
    ({"results": [["setosa", 0.9]]}, "bad_data", "[label, score] pair"),
])
def test_answers_that_cannot_be_read_are_refused_naming_the_fix(tmp_path, answer, reason, said, caplog) -> None:
    async def classify(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/v1/models/iris:classify", classify)
    server = AppServer(app)
    try:
        sc = start_proxying({"models": [IRIS]}, tmp_path, "aiohttp", proxy_upstream=server.url)
        try:
            with caplog.at_level("WARNING"):
                assert http("POST", sc.url + "/v1/models/iris:classify", {"examples": [{"a": 1.0}]}).status == 200
                assert wait_until(lambda: sample(sc.metrics(), "monitor_intake_events_refused_total", model="iris",
                                                 endpoint="proxy", reason=reason) == 1)
            assert any(said in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
        finally:
            sc.close()
    finally:
        server.close()


def test_requests_without_examples_are_refused_naming_the_field() -> None:
    from monitor.server.payloads import PayloadError
    from monitor.server.tfexamples import decode_examples

    for body, field in (({"instances": [ROW]}, "examples"), ({"examples": [ROW]}, "examples[0]"),
                        ({"examples": [{"a": 1}], "context": [1]}, "context")):
        with pytest.raises(PayloadError) as err:
            decode_examples(body)
        assert err.value.field == field, err.value


def _logged(sc, model: str, ce_id: str, request_body: dict, response_body: dict) -> None:
    """One exchange as KServe's inference logger sends it: two binary-mode CloudEvents, without
    the request's path (so without its ``:classify`` or ``:regress``)."""
    for part, data in (("request", request_body), ("response", response_body)):
        headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "http://localhost:9081/",
                   "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Id": ce_id,
                   "Ce-Inferenceservicename": model}
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps(data), headers)
        assert r.status == 202, r.body


def test_kserve_logger_events_of_classify_and_regress_are_read_as_the_proxy_reads_them(tmp_path, upstream) -> None:
    """The logger path read only the predict APIs' bodies: a classify request was refused
    ``missing_inputs`` (no ``instances`` nor ``inputs``), so nothing of the model was recorded."""
    houses = {"signature_name": "tensorflow/serving/regress", "context": {"age": 5},
              "examples": [{"rooms": [3]}, {"rooms": 4, "age": 40}]}
    answers = {path: http("POST", upstream.url + path, body).json()
               for path, body in (("/v1/models/iris:classify", EXAMPLES), ("/v1/models/houses:regress", houses))}
    sc = start_sidecar({"models": [IRIS, HOUSES]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        _logged(sc, "iris", "c-1", EXAMPLES, answers["/v1/models/iris:classify"])
        _logged(sc, "houses", "r-1", houses, answers["/v1/models/houses:regress"])
        (event,) = sc.monitor("iris").queue.items
        assert event[2] == [{"d": 0.2, "a": ROW[0], "b": ROW[1], "c": ROW[2]}, dict(zip("abcd", OTHER))]
        assert [list(map(float, o)) for o in event[3]] == [_scores(ROW), _scores(OTHER)]  # configured class order
        (event,) = sc.monitor("houses").queue.items
        assert event[2] == [{"age": 5, "rooms": 3}, {"age": 40, "rooms": 4}] and list(event[3]) == [35.0, 80.0]
        assert total(sc.metrics(), "monitor_intake_events_refused_total") == 0
    finally:
        sc.close()


def test_classify_without_output_classes_reads_every_answer_in_one_label_order(tmp_path) -> None:
    """Without ``output.classes``, each answer was read in the order of its own first example's
    labels: from a server listing each example's classes best first, column 0 was setosa in one
    answer and virginica in the next, so every call's best class read as class 0. The first
    answer's label order is now kept for the model, and each example aligned by its labels."""
    async def classify(request: web.Request) -> web.Response:
        body = await request.json()
        results = []
        for example in body["examples"]:
            p = _scores([v[0] if isinstance(v, list) else v for v in (example[k] for k in "abcd")])
            results.append(sorted(([c, s] for c, s in zip(CLASSES, p)), key=lambda pair: -pair[1]))
        return web.json_response({"results": results})

    app = web.Application()
    app.router.add_post("/v1/models/iris:classify", classify)
    server = AppServer(app)
    unnamed = {**IRIS, "output": {"kind": "probabilities"}}
    try:
        sc = start_proxying({"models": [unnamed]}, tmp_path, "aiohttp", proxy_upstream=server.url)
        try:
            for row in (ROW, OTHER):
                body = {"examples": [dict(zip("abcd", row))]}
                assert http("POST", sc.url + "/v1/models/iris:classify", body).status == 200
            events = _tapped(sc, n=2)
            # setosa, versicolor, virginica: the first answer's order (setosa best), in both
            assert [list(map(float, e[3][0])) for e in events] == [[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]]
            sc.monitor("iris").flush()
            text = sc.metrics()
            assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "0"}) == 1
            assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "2"}) == 1
        finally:
            sc.close()
    finally:
        server.close()


def test_an_answer_mixing_labelled_and_unlabelled_examples_is_refused_naming_the_example() -> None:
    """Read by position after a labelled first example, an unlabelled one took its order."""
    from monitor.server.payloads import PayloadError
    from monitor.server.tfexamples import decode_results

    body = {"results": [[["", 0.7], ["", 0.2], ["", 0.1]], [["c", 0.6], ["a", 0.3], ["b", 0.1]]]}
    with pytest.raises(PayloadError) as err:
        decode_results(body, "classify", "probabilities", ())
    assert err.value.field == "results[1]" and err.value.reason == "bad_data" and "Fix:" in err.value.message
