"""Audit (session 8) of issue 7 item 2: CloudEvents exactly as KServe's inference logger sends them.

tests/test_cloudevents.py sends every extension KServe may set, with values of its own choosing.
KServe's own logger sample (kserve/kserve docs/samples/logger/basic/README.md, the event_display
dump) shows what actually arrives from an ``InferenceService`` with ``logger.mode: all``: an
*empty* ``endpoint`` extension, no ``component`` or ``metadata``, a ``traceparent`` that differs
between request and response, and a ``ce-time`` with nanoseconds (9 fractional digits). This file
posts that, over real HTTP, and checks the pair is joined by ``ce-id``, timed by the request's
``ce-time`` and counted.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

IRIS = {"model": "sklearn-iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "labels", "classes": ["setosa", "versicolor", "virginica"]}}
CE_ID = "0009174a-24a8-4603-b098-09c8799950e9"


def _headers(part: str, time: str, traceparent: str) -> dict[str, str]:
    """The binary-mode headers of the sample's dump (context attributes and extensions)."""
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Type": f"org.kubeflow.serving.inference.{part}",
        "Ce-Source": "http://localhost:9081/",
        "Ce-Id": CE_ID,
        "Ce-Time": time,
        "Ce-Endpoint": "",
        "Ce-Inferenceservicename": "sklearn-iris",
        "Ce-Namespace": "default",
        "Traceparent": traceparent,
    }


@pytest.fixture
def sc(tmp_path):
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory())
    yield s
    s.close()


def test_the_pair_from_kserves_logger_sample_is_joined_timed_and_counted(sc) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    req_time = now.strftime("%Y-%m-%dT%H:%M:%S") + ".078952900Z"
    resp_time = now.strftime("%Y-%m-%dT%H:%M:%S") + ".080736102Z"
    body = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}, indent=2)  # as the model server received it
    r = http("POST", sc.url + "/", body, _headers("request", req_time, "00-90bdf848647d50283394155d2df58f19-84dacdfdf07cadfc-00"))
    assert r.status == 202 and r.json()["status"] == "pending", r.body
    r = http("POST", sc.url + "/", json.dumps({"predictions": [1, 1]}),
             _headers("response", resp_time, "00-55de1514e1d23ee17eb50dda6167bb8c-b6c6e0f6dd8f741d-00"))
    assert r.status == 202 and r.json()["status"] == "accepted", r.body
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_predictions_total", model="sklearn-iris") == 2
    assert sample(text, "monitor_predicted_class_total", model="sklearn-iris", **{"class": "versicolor"}) == 2
    assert sample(text, "monitor_intake_events_accepted_total", model="sklearn-iris", endpoint="cloudevents") == 1
    assert (sample(text, "monitor_cloudevents_unmatched_total") or 0) == 0
    # the request's ce-time (nanoseconds read to the microsecond) is the event time
    expected = now.timestamp() + 0.078952
    assert sample(text, "monitor_last_event_timestamp_seconds", model="sklearn-iris") == pytest.approx(expected, abs=2e-6)
    # each row is joined under ce-id/row, so delayed labels for the rows find their predictions
    r = http("POST", sc.url + "/v1/feedback", {"request_ids": [f"{CE_ID}/0", f"{CE_ID}/1"], "labels": ["versicolor", "virginica"]})
    assert r.status == 202
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_feedback_labels_total", model="sklearn-iris", outcome="joined") == 2
