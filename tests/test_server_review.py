"""Defects found by a review of the sidecar, each proved over real HTTP on 127.0.0.1 (a real
upstream for the proxy) before its fix; kept as regression tests."""

from __future__ import annotations

import gzip
import json

from tests.sidecar_support import http, total, wait_until
from tests.test_proxy import IRIS, engine, oip, start_proxying, upstream  # noqa: F401 - fixtures

__all__: list[str] = []


def _refused(s, **labels: str) -> float:
    return total(s.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", **labels)


def test_a_gzip_request_body_reaches_the_upstream_intact_and_is_tapped(tmp_path, upstream, engine):  # noqa: F811
    """A client that compresses its request (``Content-Encoding: gzip``) must reach the model
    server with a body that matches its headers. aiohttp's server decompresses request bodies,
    so the aiohttp engine forwarded plain bytes under ``Content-Encoding: gzip`` (and the
    compressed length): the model server answered 400 and the tap counted bad_json."""
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        raw = gzip.compress(b'{"k": "v"}')
        r = http("POST", s.url + "/echo/gz", raw, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status == 201, r.body
        assert r.json()["body"] == '{"k": "v"}'  # the upstream (aiohttp) decoded what it was sent
        body = gzip.compress(json.dumps(oip(1)).encode())
        r = http("POST", s.url + "/v2/models/iris/infer", body, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status == 200, r.body
        mon = s.monitor("iris")
        assert wait_until(lambda: len(mon.queue) >= 1 or _refused(s) >= 1)
        assert _refused(s) == 0
        (event,) = list(mon.queue.items)
        assert event[2].shape == (1, 4)
    finally:
        s.close()


def test_the_tap_does_not_decompress_past_the_body_limit(tmp_path, upstream, engine):  # noqa: F811
    """A small gzip body that expands past ``server.max_body_bytes`` (a gzip bomb: 10 MB of
    zeros fit in 10 kB) is forwarded but not decompressed whole by the tap: it is counted
    too_large. Before the fix the tap inflated any body in memory without a bound."""
    limit = 64 * 1024
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=upstream.url, max_body_bytes=limit)
    try:
        doc = json.dumps(oip(1)).encode()
        padded = doc[:-1] + b" " * (4 * limit) + doc[-1:]  # valid JSON, 4x the limit once inflated
        body = gzip.compress(padded)
        assert len(body) < limit
        r = http("POST", s.url + "/v2/models/iris/infer", body, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status in (200, 413)  # forwarded (or refused by the server's own limit), never a crash
        mon = s.monitor("iris")
        assert wait_until(lambda: _refused(s) >= 1 or len(mon.queue) >= 1)
        assert len(mon.queue) == 0
        assert _refused(s, reason="too_large") == 1
    finally:
        s.close()


def test_deeply_nested_json_is_a_400_naming_the_body_not_a_500(tmp_path):
    """JSON nested deeper than Python's recursion limit makes ``json.loads`` raise
    RecursionError, which is not a ValueError: the intake answered 500 internal_error and the
    forwarding receiver lost the datagram without counting it."""
    import socket

    from tests.sidecar_support import start_sidecar

    sock = str(tmp_path / "f.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    try:
        deep = b"[" * 50_000
        for ctype in ("application/json", "application/x-ndjson"):
            r = http("POST", s.url + "/v1/events", deep, {"Content-Type": ctype})
            assert r.status == 400, (ctype, r.status, r.body)
            assert r.json()["reason"] == "bad_json" and r.json()["field"] in ("body", "line 1")
        ce = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": "d-1", "Ce-Source": "x",
              "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Inferenceservicename": "iris"}
        r = http("POST", s.url + "/v1/cloudevents", deep, ce)
        assert r.status == 400 and r.json()["field"] == "body", (r.status, r.body)
        r = http("POST", s.url + "/v1/cloudevents", b'{"specversion": "1.0", "data": ' + deep,
                 {"Content-Type": "application/cloudevents+json"})
        assert r.status == 400 and r.json()["field"] == "body", (r.status, r.body)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.sendto(b'{"v": 1, "events": ' + b"[" * 30_000, sock)
        c.close()
        assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="forward") >= 1)
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", endpoint="forward", reason="bad_json") == 1
        assert total(text, "monitor_intake_events_refused_total", reason="internal_error") == 0
    finally:
        s.close()
