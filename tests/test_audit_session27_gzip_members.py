"""A gzip body of several members (RFC 1952: a gzip file is a series of members; a logger that
compresses each flush and appends, ``cat a.gz b.gz``, sends one), over real HTTP on 127.0.0.1:
every member's events are read, and bytes after the end of a stream are a counted 400, never
dropped unseen."""

from __future__ import annotations

import gzip
import json
import zlib

from tests.sidecar_support import http, start_sidecar, total
from tests.test_proxy import IRIS

__all__: list[str] = []


def _event(i: int) -> bytes:
    return json.dumps({"inputs": [1.0, 2.0, 3.0, float(i)], "outputs": [0.2, 0.5, 0.3]}).encode() + b"\n"


NDJSON = {"Content-Type": "application/x-ndjson"}


def test_every_member_of_a_multi_member_gzip_body_is_read(tmp_path):
    """Only the first member was inflated and the rest ignored: 202 ``accepted: 1`` for a body of
    three events, two lost with no count and no error."""
    s = start_sidecar(IRIS, tmp_path, max_body_bytes=64 * 1024)
    try:
        body = b"".join(gzip.compress(_event(i)) for i in range(3))
        r = http("POST", s.url + "/v1/events", body, {"Content-Encoding": "gzip", **NDJSON})
        assert r.status == 202 and r.json()["accepted"] == 3, r.body
        # the members together are held to the body limit, as one member is
        many = b"".join(gzip.compress(b" " * (20 * 1024) + _event(i)) for i in range(4))
        r = http("POST", s.url + "/v1/events", many, {"Content-Encoding": "gzip", **NDJSON})
        assert r.status == 413 and r.json()["reason"] == "too_large", r.body
    finally:
        s.close()


def test_bytes_after_the_end_of_the_stream_are_a_counted_400(tmp_path):
    """Garbage after a gzip member or after a deflate stream was ignored as well (the events in
    it, if any, lost unseen): now 400 ``bad_body`` naming the body, counted."""
    s = start_sidecar(IRIS, tmp_path)
    try:
        for coding, body in (("gzip", gzip.compress(_event(0)) + b"trailing junk"),
                             ("deflate", zlib.compress(_event(0)) + _event(1))):
            r = http("POST", s.url + "/v1/events", body, {"Content-Encoding": coding, **NDJSON})
            assert r.status == 400, (coding, r.status, r.body)
            out = r.json()
            assert out["field"] == "body" and out["reason"] == "bad_body" and "after the end" in out["error"], out
        assert total(s.metrics(), "monitor_intake_events_refused_total", reason="bad_body") == 2
    finally:
        s.close()
