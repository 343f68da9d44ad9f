"""Request bodies in a content coding (``Content-Encoding``) on the sidecar's write endpoints,
over real HTTP on 127.0.0.1: every body that cannot be read is a JSON 4xx naming the field and
the fix, counted, and never an aiohttp traceback in the log."""

from __future__ import annotations

import gzip
import json
import logging
import zlib

from tests.sidecar_support import http, start_sidecar, total
from tests.test_proxy import IRIS

__all__: list[str] = []

EVENT = json.dumps({"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}).encode()
CE = {"Ce-Specversion": "1.0", "Ce-Id": "r1", "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Source": "t"}


def test_a_coding_the_sidecar_cannot_read_is_a_counted_415_naming_content_encoding(tmp_path):
    """``Content-Encoding: br`` (or zstd) was refused by aiohttp while it parsed the request head:
    a plain-text 400 ("Please install `Brotli`") that reached no handler, so it was counted in
    neither monitor_intake_events_refused_total nor monitor_http_request_duration_seconds, and the
    log held an ERROR traceback instead of the refusal."""
    s = start_sidecar(IRIS, tmp_path)
    try:
        for path, extra in (("/v1/events", {}), ("/v1/feedback", {}), ("/v1/cloudevents", CE)):
            for coding in ("br", "zstd"):
                r = http("POST", s.url + path, EVENT, {"Content-Encoding": coding, "Content-Type": "application/json", **extra})
                assert r.status == 415, (path, coding, r.status, r.body)
                body = r.json()
                assert body["field"] == "Content-Encoding" and body["reason"] == "unsupported_encoding"
                assert "gzip or deflate" in body["error"]
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", reason="unsupported_encoding") == 6
        assert total(text, "monitor_http_request_duration_seconds_count", code="415") == 6
    finally:
        s.close()


def test_gzip_and_deflate_bodies_are_read_and_broken_ones_leave_no_traceback(tmp_path, caplog):
    """A gzip body that is not gzip was answered 400, but aiohttp then read the rest of the broken
    body after the handler and logged ``ERROR aiohttp.server: Unhandled exception`` with a
    traceback, once per such request. Real gzip and deflate (zlib-wrapped or raw) bodies are read;
    one that inflates past the body limit is 413."""
    s = start_sidecar(IRIS, tmp_path, max_body_bytes=64 * 1024)
    try:
        raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        for coding, body in (("gzip", gzip.compress(EVENT)), ("deflate", zlib.compress(EVENT)),
                             ("deflate", raw_deflate.compress(EVENT) + raw_deflate.flush()), ("identity", EVENT)):
            r = http("POST", s.url + "/v1/events", body, {"Content-Encoding": coding, "Content-Type": "application/json"})
            assert r.status == 202 and r.json()["accepted"] == 1, (coding, r.body)
        with caplog.at_level(logging.DEBUG, logger="aiohttp"):
            for body in (b"not gzip at all", gzip.compress(EVENT)[:12]):
                r = http("POST", s.url + "/v1/events", body, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
                assert r.status == 400 and r.json()["field"] == "body" and r.json()["reason"] == "bad_body", r.body
            bomb = gzip.compress(b" " * (1 << 20) + EVENT)
            assert len(bomb) < 64 * 1024
            r = http("POST", s.url + "/v1/events", bomb, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
            assert r.status == 413 and r.json()["reason"] == "too_large", r.body
            assert http("GET", s.url + "/healthz").status == 200  # after the answers, on the loop that logged
        assert [rec.getMessage() for rec in caplog.records if rec.name.startswith("aiohttp") and rec.levelno >= logging.ERROR] == []
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", reason="bad_body") == 2
        assert total(text, "monitor_intake_events_refused_total", reason="too_large") == 1
    finally:
        s.close()
