"""A file of events uploaded as a form (``curl -F file=@events.ndjson``, ``requests.post(url,
files=...)``), the way many users first try to send a file, over real HTTP on 127.0.0.1. The
answer was ``is not valid JSON (Expecting value at line 1 column 1)``: true of the multipart
envelope, but it named neither the cause nor the fix, and the user's file looked fine. It is
still a counted 400 ``bad_json`` on ``body``, now saying it is a form upload and how to send the
file as the body itself."""

from __future__ import annotations

import json
import uuid

from tests.sidecar_support import http, start_sidecar, total
from tests.test_proxy import IRIS

__all__: list[str] = []


def test_a_form_upload_is_a_400_that_says_to_send_the_file_as_the_body(tmp_path):
    s = start_sidecar(IRIS, tmp_path)
    try:
        event = json.dumps({"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]})
        boundary = uuid.uuid4().hex
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"events.ndjson\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n{event}\n{event}\n\r\n--{boundary}--\r\n").encode()
        for path in ("/v1/events", "/v1/feedback"):
            r = http("POST", s.url + path, form, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            assert r.status == 400, r.body
            out = r.json()
            assert out["field"] == "body" and out["reason"] == "bad_json", out
            assert "multipart" in out["error"] and "--data-binary" in out["error"], out
        assert total(s.metrics(), "monitor_intake_events_refused_total", reason="bad_json") == 2
        # the same file as the body is read
        r = http("POST", s.url + "/v1/events", f"{event}\n{event}\n", {"Content-Type": "application/x-ndjson"})
        assert r.status == 202 and r.json()["accepted"] == 2
    finally:
        s.close()
