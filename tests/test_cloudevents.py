"""CloudEvents intake over real HTTP with the headers KServe's and Seldon's inference loggers send
(binary mode: ce-specversion, ce-id, ce-type, ce-source, ce-time, ce-inferenceservicename,
ce-namespace, ce-component, ce-endpoint, ce-metadata, content-type)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.server.cloudevents import Joiner, _Half, held_bytes
from monitor.server.jsonbody import loads
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar, total, wait_until

IRIS = {"model": "sklearn-iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "labels", "classes": ["setosa", "versicolor", "virginica"]}}


def recent_ce_time() -> str:
    """A ``ce-time`` a moment ago, with microseconds. Recent: labels later than the model's window
    after their prediction are counted ``late``, not joined (a fixed date made the tests that join
    labels to these events fail once it was a day old)."""
    t = (datetime.now(timezone.utc) - timedelta(seconds=5)).replace(microsecond=123456)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kserve_headers(ce_id: str, part: str, isvc: str = "sklearn-iris", **extra: str) -> dict[str, str]:
    """What KServe's agent sends (pkg/logger: binary-mode CloudEvents over HTTP)."""
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": ce_id,
        "Ce-Type": f"org.kubeflow.serving.inference.{part}",
        "Ce-Source": "http://localhost:9081/",
        "Ce-Time": recent_ce_time(),
        "Ce-Inferenceservicename": isvc,
        "Ce-Namespace": "default",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "default",
        "Ce-Metadata": "{}",
        **extra,
    }


def seldon_headers(puid: str, ce_type: str, sdep: str = "sklearn-iris") -> dict[str, str]:
    """What Seldon Core's executor sends (executor/logger): a fresh ``ce-id`` for every event, the
    prediction's ``puid`` in the ``ce-requestid`` extension, the deployment, node and predictor."""
    return {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": str(uuid.uuid4()), "Ce-Type": ce_type,
            "Ce-Source": "http://seldon-executor", "Ce-Modelid": "classifier", "Ce-Inferenceservicename": sdep,
            "Ce-Namespace": "seldon", "Ce-Endpoint": "default", "Ce-Requestid": puid, "Ce-Protocol": "seldon"}


@pytest.fixture
def sc(tmp_path):
    s = start_sidecar({**IRIS, "server": {"client_header": "X-Client-Id"}}, tmp_path, factory=quiet_factory(start_worker=False))
    yield s
    s.close()


def post(sc, headers, body) -> dict:
    r = http("POST", sc.url + "/v1/cloudevents", json.dumps(body), headers)
    assert r.status == 202, r.body
    return r.json()


def test_kserve_v1_request_and_response_are_joined_by_ce_id(sc):
    rid = str(uuid.uuid4())
    meta = json.dumps({"X-Client-Id": ["tenant-7"]})
    request_headers = kserve_headers(rid, "request", **{"Ce-Metadata": meta})
    assert post(sc, request_headers, {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]})["status"] == "pending"
    assert len(sc.monitor().queue) == 0
    assert post(sc, kserve_headers(rid, "response"), {"predictions": [1, 1]})["status"] == "accepted"
    (event,) = list(sc.monitor().queue.items)
    # rows of numbers held as one float array while the response was awaited
    assert event[2].tolist() == [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]] and event[3] == [1, 1]
    assert event[5] == "tenant-7" and event[6] == rid
    ce_time = datetime.strptime(request_headers["Ce-Time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    assert event[1] == pytest.approx(ce_time, abs=1e-6)  # ce-time of the request is the event time
    sc.flush()
    r = http("POST", sc.url + "/v1/feedback", {"request_ids": [f"{rid}/0", f"{rid}/1"], "labels": ["versicolor", "virginica"]})
    assert r.status == 202
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_predictions_total", model="sklearn-iris") == 2
    assert sample(text, "monitor_feedback_labels_total", model="sklearn-iris", outcome="joined") == 2
    assert sample(text, "monitor_intake_events_accepted_total", model="sklearn-iris", endpoint="cloudevents") == 1


def test_response_may_arrive_before_request_and_v2_bodies_are_read(sc):
    rid = "abc-1"
    resp = {"model_name": "sklearn-iris", "id": rid, "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [2]}]}
    req = {"id": rid, "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.3, 3.3, 6.0, 2.5]}]}
    assert post(sc, kserve_headers(rid, "response"), resp)["status"] == "pending"
    assert post(sc, kserve_headers(rid, "request"), req)["status"] == "accepted"
    (event,) = list(sc.monitor().queue.items)
    assert event[2].tolist() == [[6.3, 3.3, 6.0, 2.5]] and event[3].tolist() == [2]
    sc.flush()
    # KServe's integer prediction 2 is the configured class at column 2
    assert sample(sc.metrics(), "monitor_predicted_class_total", model="sklearn-iris", **{"class": "virginica"}) == 1


def test_unmatched_halves_time_out_overflow_and_duplicates_are_counted(tmp_path):
    s = start_sidecar({**IRIS, "server": {"cloudevents": {"max_pending": 2, "pending_ttl": "200ms"}}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    try:
        for i in range(3):
            post(s, kserve_headers(f"q{i}", "request"), {"instances": [[1, 2, 3, 4]]})
        post(s, kserve_headers("q2", "request"), {"instances": [[1, 2, 3, 4]]})  # a retry of the same half
        post(s, kserve_headers("only-response", "response"), {"predictions": [0]})
        text = s.metrics()
        assert sample(text, "monitor_cloudevents_unmatched_total", model="sklearn-iris", part="request", reason="overflow") == 2
        assert sample(text, "monitor_cloudevents_unmatched_total", model="sklearn-iris", part="request", reason="duplicate") == 1
        assert wait_until(lambda: total(s.metrics(), "monitor_cloudevents_unmatched_total", reason="timeout") == 2, timeout=10)
        text = s.metrics()
        assert sample(text, "monitor_cloudevents_unmatched_total", model="sklearn-iris", part="response", reason="timeout") == 1
        assert sample(text, "monitor_cloudevents_pending", model="_sidecar") == 0
        assert len(s.monitor().queue) == 0
    finally:
        s.close()


def test_inference_service_name_selects_the_model(tmp_path):
    s = start_sidecar({"models": [IRIS, {**IRIS, "model": "other"}]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        post(s, kserve_headers("a", "request", isvc="other"), {"instances": [[1, 2, 3, 4]]})
        post(s, kserve_headers("a", "response", isvc="other"), {"predictions": [0]})
        assert len(s.monitor("other").queue) == 1 and len(s.monitor("sklearn-iris").queue) == 0
        r = http("POST", s.url + "/v1/cloudevents", json.dumps({"instances": [[1]]}), kserve_headers("b", "request", isvc="missing"))
        assert r.status == 404 and r.json()["field"] == "ce-inferenceservicename"
    finally:
        s.close()


@pytest.mark.parametrize("drop, field", [("Ce-Specversion", "ce-specversion"), ("Ce-Id", "ce-id"),
                                         ("Ce-Type", "ce-type"), ("Ce-Source", "ce-source")])
def test_missing_required_attributes_answer_400_naming_the_header(sc, drop, field):
    headers = kserve_headers("z", "request")
    del headers[drop]
    r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"instances": [[1, 2, 3, 4]]}), headers)
    assert r.status == 400 and r.json()["field"] == field


def test_bad_type_body_and_specversion_are_refused_and_counted(sc):
    h = kserve_headers("z", "request")
    r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"instances": [[1]]}), {**h, "Ce-Type": "com.example.other"})
    assert r.status == 400 and r.json()["reason"] == "bad_ce_type"
    r = http("POST", sc.url + "/v1/cloudevents", "not json", h)
    assert r.status == 400 and r.json()["reason"] == "bad_json"
    r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"foo": 1}), h)
    assert r.status == 400 and r.json()["field"] == "inputs"
    r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"instances": [[1]]}), {**h, "Ce-Specversion": "0.3"})
    assert r.status == 400 and r.json()["reason"] == "bad_specversion"
    text = sc.metrics()
    for reason in ("bad_ce_type", "bad_json", "missing_inputs", "bad_specversion"):
        assert total(text, "monitor_intake_events_refused_total", endpoint="cloudevents", reason=reason) == 1


def test_seldon_request_response_and_feedback(sc):
    """Seldon's two halves have different ``ce-id``s and share ``ce-requestid`` (the puid): joined by
    it, and the feedback (``response.meta.puid``) joins the prediction. Before, halves were joined
    by ``ce-id`` only: every Seldon request and response waited and was counted unmatched."""
    puid = "p-123"
    post(sc, seldon_headers(puid, "io.seldon.serving.inference.request"),
         {"data": {"names": ["a", "b", "c", "d"], "ndarray": [[5.1, 3.5, 1.4, 0.2]]}})
    post(sc, seldon_headers(puid, "io.seldon.serving.inference.response"),
         {"data": {"names": ["t:0"], "tensor": {"shape": [1, 1], "values": [0]}}, "meta": {"puid": puid}})  # a labels model
    (event,) = list(sc.monitor().queue.items)
    assert event[2] == [{"a": 5.1, "b": 3.5, "c": 1.4, "d": 0.2}] and event[6] == puid
    sc.flush()
    fb = {"request": {"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}}, "response": {"meta": {"puid": puid}, "data": {"ndarray": [[0.9, 0.05, 0.05]]}},
          "reward": 1.0, "truth": {"data": {"ndarray": [[1, 0, 0]]}}}
    assert post(sc, seldon_headers("fb-1", "io.seldon.serving.feedback"), fb)["status"] == "accepted"
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_feedback_labels_total", model="sklearn-iris", outcome="joined") == 1
    assert total(text, "monitor_cloudevents_unmatched_total") == 0


def test_structured_mode_is_accepted(sc):
    for part, data in (("request", {"instances": [[1, 2, 3, 4]]}), ("response", {"predictions": [0]})):
        env = {"specversion": "1.0", "id": "s1", "source": "x", "type": f"org.kubeflow.serving.inference.{part}",
               "inferenceservicename": "sklearn-iris", "datacontenttype": "application/json", "data": data}
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps(env), {"Content-Type": "application/cloudevents+json"})
        assert r.status == 202
    assert len(sc.monitor().queue) == 1


def test_root_path_takes_cloudevents_for_logger_urls_without_a_path(sc):
    r = http("POST", sc.url + "/", json.dumps({"instances": [[1, 2, 3, 4]]}), kserve_headers("root", "request"))
    assert r.status == 202 and r.json()["status"] == "pending"


def test_held_halves_are_bounded_in_bytes_too(tmp_path):
    """Up to 10,000 halves of up to max_body_bytes each would be gigabytes: the bodies held are
    bounded in bytes as well, the oldest pushed out and counted, the gauge following."""
    s = start_sidecar({**IRIS, "server": {"cloudevents": {"max_pending_bytes": 30_000}}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    big = {"instances": [[1.5, 2.5, 3.5, 4.5]] * 300}  # ~8 KB of JSON, ~55 KB as Python lists
    body = json.dumps(big).encode()
    assert held_bytes(loads(body)["instances"], len(body)) > 3 * len(body)  # decoded as the sidecar decodes it
    size = 300 * 4 * 8 + 128  # held as one float array (rows of numbers)
    try:
        for i in range(5):
            post(s, kserve_headers(f"b{i}", "request"), big)
        text = s.metrics()
        held = 30_000 // size
        assert 1 <= held < 5
        assert sample(text, "monitor_cloudevents_unmatched_total", model="sklearn-iris", part="request", reason="overflow") == 5 - held
        assert sample(text, "monitor_cloudevents_pending", model="_sidecar") == held
        assert sample(text, "monitor_cloudevents_pending_bytes", model="_sidecar") == held * size
        # the newest are the ones kept: the last one's response still joins
        post(s, kserve_headers("b4", "response"), {"predictions": [0] * 300})
        assert sample(s.metrics(), "monitor_cloudevents_pending_bytes", model="_sidecar") == (held - 1) * size
        assert len(s.monitor().queue) == 1
    finally:
        s.close()


def test_large_joined_tensors_count_against_the_queue_byte_budget(tmp_path):
    s = start_sidecar({**IRIS, "queue": {"max_bytes": 100_000}}, tmp_path, factory=quiet_factory(start_worker=False))
    rows = 4000  # 4000 x 4 float64 = 128,000 bytes once decoded: over the budget on its own
    try:
        for rid, n in (("big", rows), ("small", 1)):
            resp = {"id": rid, "outputs": [{"name": "predict", "shape": [n], "datatype": "INT64", "data": [2] * n}]}
            req = {"id": rid, "inputs": [{"name": "input-0", "shape": [n, 4], "datatype": "FP32", "data": [1.0] * (4 * n)}]}
            post(s, kserve_headers(rid, "response"), resp)
            assert post(s, kserve_headers(rid, "request"), req)["status"] == "accepted"
        q = s.monitor().queue
        assert len(q) == 1 and q.counters()[0] == {"queue_bytes_full": 1}
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_events_dropped_total", model="sklearn-iris", reason="queue_bytes_full") == 1
        assert sample(text, "monitor_calls_total", model="sklearn-iris") == 1
        assert q.reserved == 0
    finally:
        s.close()


def test_joiner_is_bounded_and_expires_in_age_order():
    j = Joiner(max_pending=3, ttl_s=10.0)
    mon = object()
    for i in range(5):
        other, given_up = j.offer(("m", str(i)), _Half("request", mon, float(i), 0.0, None, 1, None))  # type: ignore[arg-type]
        assert other is None
    assert len(j) == 3
    assert [h.received for h, _ in j.expire(12.5)] == [2.0]
    other, _ = j.offer(("m", "3"), _Half("response", mon, 12.0, 0.0, None, None, None))  # type: ignore[arg-type]
    assert other is not None and other.part == "request"
    assert [reason for _, reason in j.drain()] == ["shutdown"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.dictionaries(st.sampled_from(["Ce-Specversion", "Ce-Id", "Ce-Type", "Ce-Source", "Ce-Time", "Ce-Inferenceservicename",
                                                "Ce-Metadata", "Content-Type"]),
                               st.one_of(st.sampled_from(["1.0", "org.kubeflow.serving.inference.request", "io.seldon.serving.feedback",
                                                          "org.kubeflow.serving.inference.response", "sklearn-iris",
                                                          "application/cloudevents+json", "{]"]),
                                         st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20))),
       body=st.one_of(st.binary(max_size=100), st.builds(lambda v: json.dumps(v).encode(),
                                                          st.dictionaries(st.sampled_from(["instances", "predictions", "inputs", "outputs", "data", "truth", "response"]),
                                                                          st.recursive(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3)),
                                                                                       lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=5), i, max_size=3),
                                                                                       max_leaves=8), max_size=3))))
def test_fuzzed_cloudevents_never_crash(sc, headers, body):
    r = http("POST", sc.url + "/v1/cloudevents", body, headers)
    assert r.status in (202, 400, 404, 413), (r.status, r.body[:300])


def test_cloudevents_can_be_exempted_from_the_write_token(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MONITOR_CE_TOKEN", "t" * 20)
    for require, expected in ((True, 401), (False, 202)):
        s = start_sidecar({**IRIS, "server": {"write_token_env": "TEST_MONITOR_CE_TOKEN",
                                              "cloudevents": {"require_token": require}}}, tmp_path / str(require),
                          factory=quiet_factory(start_worker=False))
        try:
            r = http("POST", s.url + "/v1/cloudevents", json.dumps({"instances": [[1, 2, 3, 4]]}), kserve_headers("t1", "request"))
            assert r.status == expected
            assert http("POST", s.url + "/v1/events", {"inputs": [1, 2, 3, 4], "outputs": [1]}).status == 401
        finally:
            s.close()


@pytest.mark.parametrize("instances", [
    [[float(i) + 0.5, 2.25, -3.125, 4.0] for i in range(3000)],  # KServe v1 rows of numbers
    [{"amount": float(i), "channel": f"web-{i % 7}", "zip": 75000 + i} for i in range(2000)],  # rows as objects
    [[[[0.1 * c + r] * 3 for c in range(8)] for _ in range(8)] for r in range(50)],  # a small image batch
])
def test_a_held_half_is_counted_at_the_memory_it_takes(instances):
    """max_pending_bytes counted the bodies' bytes, but a v1 ``instances`` half is held as Python
    lists, about ten times its JSON (a 3 MB body held 28 MB): the table could hold ten times its
    bound. Its estimate is now within a third of what decoding it really allocates."""
    import tracemalloc

    body = json.dumps({"instances": instances}).encode()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoded = loads(body)["instances"]
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    estimate = held_bytes(decoded, len(body))
    assert used > 2 * len(body)  # why bodies' bytes were not the bound
    assert 0.67 * used <= estimate <= 1.5 * used, (estimate, used, len(body))


def test_a_half_larger_than_the_byte_bound_is_given_up_alone():
    """Halves count their decoded memory: a max_body_bytes instances body (10 MB of JSON lists,
    some 66 MB held) is over the default max_pending_bytes (64 MB) on its own. Offered like the
    others, it pushed every held half out before itself (each counted overflow): one large request
    emptied the table. It is given up alone; the others stay and still join."""
    j = Joiner(max_pending=100, ttl_s=10.0, max_bytes=1000)
    mon = object()
    for i in range(3):
        j.offer(("m", str(i)), _Half("request", mon, float(i), 0.0, None, 1, None, size=200))  # type: ignore[arg-type]
    other, given_up = j.offer(("m", "big"), _Half("request", mon, 3.0, 0.0, None, 1, None, size=5000))  # type: ignore[arg-type]
    assert other is None
    assert [(h.size, reason) for h, reason in given_up] == [(5000, "overflow")]
    assert len(j) == 3 and j.bytes == 600
    other, _ = j.offer(("m", "1"), _Half("response", mon, 4.0, 0.0, None, None, None))  # type: ignore[arg-type]
    assert other is not None and other.received == 1.0


def test_a_large_request_of_numbers_waits_for_its_answer_within_the_default_bound(tmp_path):
    """Held as Python lists, a KServe v1 request of 6.5 MB took all of the default 64 MB and was
    given up (never joined, never monitored); rows of numbers are held as one float array, a
    tenth of that. Rows holding text are kept as sent (a category "1" is not made a number)."""
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    rows = 300_000
    big = {"instances": [[1.25 + i % 7, 2.5, 3.5, 4.5] for i in range(rows)]}
    assert len(json.dumps(big)) > 6_000_000
    try:
        post(s, kserve_headers("large", "request"), big)
        text = s.metrics()
        assert sample(text, "monitor_cloudevents_pending", model="_sidecar") == 1
        assert sample(text, "monitor_cloudevents_pending_bytes", model="_sidecar") == rows * 4 * 8 + 128
        post(s, kserve_headers("large", "response"), {"predictions": [0] * rows})
        (event,) = list(s.monitor().queue.items)
        assert event[2].shape == (rows, 4) and event[2][1, 0] == 2.25
        post(s, kserve_headers("text", "request"), {"instances": [["1", 2.5, 3.5, 4.5]] * 10})
        post(s, kserve_headers("text", "response"), {"predictions": [0] * 10})
        held = list(s.monitor().queue.items)[1][2]
        assert isinstance(held, list) and held[0][0] == "1"
    finally:
        s.close()


BOXES = {"model": "boxes", "features": ["a", "b", "c", "d"], "output": {"kind": "none"}}


def test_recorded_requests_of_a_kind_none_model_are_pending_halves_within_the_bound(tmp_path):
    """The requests of an ``output.kind: none`` model, recorded at once, wait for their responses
    so that those are not taken for orphans: they were held in a table of their own, up to
    ``max_pending`` more entries that no ``monitor_cloudevents_pending*`` gauge showed. They are
    now in the gauges, within ``max_pending`` with the other halves, and the first pushed out (a
    half of a model whose outputs are read still joins)."""
    s = start_sidecar({"models": [IRIS, BOXES], "server": {"cloudevents": {"max_pending": 3}}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    try:
        assert post(s, kserve_headers("iris-1", "request"), {"instances": [[1, 2, 3, 4]]})["status"] == "pending"
        for i in range(5):
            r = post(s, kserve_headers(f"b{i}", "request", isvc="boxes"), {"instances": [[1, 2, 3, 4]]})
            assert r["status"] == "accepted"
        text = s.metrics()
        assert sample(text, "monitor_cloudevents_pending", model="_sidecar") == 3  # max_pending
        assert sample(text, "monitor_cloudevents_pending_bytes", model="_sidecar") > 0
        for i in (3, 4):  # the newest recorded: their responses are known for theirs
            r = post(s, kserve_headers(f"b{i}", "response", isvc="boxes"), {"predictions": [{"boxes": []}]})
            assert r["status"] == "accepted"
        assert post(s, kserve_headers("iris-1", "response"), {"predictions": [1]})["status"] == "accepted"
        text = s.metrics()
        assert sample(text, "monitor_cloudevents_pending", model="_sidecar") == 0
        assert sample(text, "monitor_cloudevents_pending_bytes", model="_sidecar") == 0
        assert total(text, "monitor_cloudevents_unmatched_total") == 0
        assert len(s.monitor("boxes").queue) == 5 and len(s.monitor("sklearn-iris").queue) == 1
    finally:
        s.close()


def test_halves_held_without_a_body_count_the_memory_they_hold():
    """A kind-none response waiting for its request was counted 256 bytes and a recorded request
    nothing, while each holds its table entry, key, request id, half and times (some 330 to 600
    bytes): ``max_pending_bytes`` bounded less memory than it said. What the joiner counts is now
    at least what tracemalloc sees the held entries take (and not more than twice it)."""
    import gc
    import tracemalloc

    from monitor.server.cloudevents import bodiless

    joiner = Joiner(10**6, 30.0, 10**12)
    n = 4000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            key = ("boxes", str(uuid.uuid4()))  # the id: held by the key alone once its event is gone
            if i % 2:
                joiner.offer(key, bodiless("response", None, 0.0, key))  # type: ignore[arg-type]
            else:
                joiner.record(key, bodiless("request", None, 0.0, key))  # type: ignore[arg-type]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(joiner) == n
    assert held <= joiner.bytes <= 2 * held, (held / n, joiner.bytes / n)
