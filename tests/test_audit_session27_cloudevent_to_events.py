"""A KServe (or Seldon) inference logger pointed at ``/v1/events`` instead of
``/v1/cloudevents`` (the endpoint README lists first): every CloudEvent was refused as a
malformed event, ``type: must be one of prediction, error, feedback, got
'org.kubeflow.serving.inference.request'`` or ``instances: unknown key``, which names the wrong
fix (the payload is right, the URL is not). It is now a counted 400 ``wrong_endpoint`` on
``path`` that says to post CloudEvents to /v1/cloudevents. Over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json

from tests.sidecar_support import http, start_sidecar, total
from tests.test_proxy import IRIS

__all__: list[str] = []


def test_a_cloudevent_posted_to_the_event_intake_names_the_cloudevents_endpoint(tmp_path):
    s = start_sidecar(IRIS, tmp_path)
    try:
        binary = {"Ce-Specversion": "1.0", "Ce-Id": "r1", "Ce-Source": "kserve", "Content-Type": "application/json",
                  "Ce-Type": "org.kubeflow.serving.inference.request"}
        structured = {"specversion": "1.0", "id": "r2", "source": "kserve", "type": "org.kubeflow.serving.inference.request",
                      "data": {"instances": [[1, 2, 3, 4]]}}
        for path in ("/v1/events", "/v1/feedback"):
            for body, headers in ((json.dumps({"instances": [[1, 2, 3, 4]]}), binary),
                                  (json.dumps(structured), {"Content-Type": "application/cloudevents+json"})):
                r = http("POST", s.url + path, body, headers)
                assert r.status == 400, r.body
                out = r.json()
                assert out["field"] == "path" and out["reason"] == "wrong_endpoint" and "/v1/cloudevents" in out["error"], out
        assert total(s.metrics(), "monitor_intake_events_refused_total", reason="wrong_endpoint") == 4
        r = http("POST", s.url + "/v1/cloudevents", json.dumps({"instances": [[1, 2, 3, 4]]}), binary)
        assert r.status == 202, r.body
    finally:
        s.close()
