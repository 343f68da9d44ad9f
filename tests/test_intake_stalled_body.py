"""An intake request whose body stops arriving (``/v1/events``, ``/v1/feedback``, CloudEvents),
over real HTTP on 127.0.0.1. Both engines hand these routes to aiohttp, which waited for the rest
of such a body without any bound: a stalled upload held its connection, and up to
``max_body_bytes`` of buffer, for good. It is the client's 408 ``client_timeout`` after
``server.client_body_timeout`` of silence now, counted, and the connection closed."""

from __future__ import annotations

import json
import socket
import time

import pytest

from monitor.config import ConfigError
from tests.sidecar_support import http, start_sidecar, total
from tests.test_intake_content_coding import CE, EVENT
from tests.test_proxy import IRIS

__all__: list[str] = []


def _stalled(url: str, request: bytes) -> tuple[bytes, float]:
    """Send ``request`` (a head and part of its body), read until the sidecar closes the
    connection; the answer and the seconds it took."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as c:
        c.sendall(request)
        answer = b""
        while chunk := c.recv(4096):
            answer += chunk
    return answer, time.monotonic() - t0


def test_a_stalled_intake_body_is_a_counted_408_and_the_connection_closed(tmp_path):
    s = start_sidecar({**IRIS, "server": {"client_body_timeout": "1s"}}, tmp_path)
    try:
        heads = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
                 b"POST /v1/cloudevents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + b"".join(f"{k}: {v}\r\n".encode() for k, v in CE.items()) + b"Transfer-Encoding: chunked\r\n\r\n"
                 b"5\r\n{\"a\":\r\n")
        for head in heads:
            answer, took = _stalled(s.url, head + (b"{\"inp" if b"Content-Length" in head else b""))
            status, _, body = answer.partition(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 408 "), answer
            refusal = json.loads(body)
            assert refusal["reason"] == "client_timeout" and "server.client_body_timeout" in refusal["error"]
            assert took < 10  # closed after the answer, not after aiohttp's 10 s of lingering
        r = http("POST", s.url + "/v1/events", EVENT, {"Content-Type": "application/json"})
        assert r.status == 202 and r.json()["accepted"] == 1  # a whole body is still read
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", reason="client_timeout", endpoint="events") == 1
        assert total(text, "monitor_intake_events_refused_total", reason="client_timeout", endpoint="cloudevents") == 1
        assert total(text, "monitor_http_request_duration_seconds_count", code="408") == 2
    finally:
        s.close()


def test_a_slow_body_that_keeps_coming_is_read_whole(tmp_path):
    """The timeout is a silence between two chunks, not a deadline for the whole body."""
    s = start_sidecar({**IRIS, "server": {"client_body_timeout": "1s"}}, tmp_path)
    try:
        host, port = s.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as c:
            c.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                      + f"Content-Length: {len(EVENT)}\r\n\r\n".encode())
            for i in range(0, len(EVENT), len(EVENT) // 4 + 1):  # 4 pieces 0.6 s apart: 1.8 s in all
                c.sendall(EVENT[i:i + len(EVENT) // 4 + 1])
                time.sleep(0.6)
            answer = b""
            while chunk := c.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 202 "), answer
    finally:
        s.close()


@pytest.mark.parametrize("value", ["0s", "-1s", "soon"])
def test_client_body_timeout_must_be_a_positive_duration(tmp_path, value):
    with pytest.raises(ConfigError) as err:
        start_sidecar({**IRIS, "server": {"client_body_timeout": value}}, tmp_path, wait_ready=False)
    assert err.value.key == "server.client_body_timeout"
