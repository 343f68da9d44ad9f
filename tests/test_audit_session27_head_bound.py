"""A request head without a bound on the lean engine (the default data path): llhttp holds a
header until its end, so one client sending an endless header line (or URL) grew the data path
process without limit (400 MB sent: 790 MB resident, towards the pod's OOM kill, which takes
every request in flight with it). aiohttp's server caps a header at 8 KiB; the lean engine now
answers a head over 1 MiB 431 and closes the connection, counted as the proxy's own 4xx answer,
and still forwards large heads below it. Over real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.sidecar_support import http, wait_until, total
from tests.test_proxy import IRIS, start_proxying, upstream  # noqa: F401 - fixture

__all__: list[str] = []


def _answer_until_closed(c: socket.socket) -> bytes:
    """What the proxy answered on ``c`` until it closed the connection (then closed here too)."""
    answer = b""
    try:
        while chunk := c.recv(65536):
            answer += chunk
    except OSError:
        pass
    c.close()
    return answer


@pytest.mark.parametrize("engine", ["lean", "process"])
def test_an_endless_request_head_is_answered_431_and_its_connection_closed(tmp_path: Any, upstream: Any,  # noqa: F811
                                                                           engine: str) -> None:
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        host, port = s.url.removeprefix("http://").rsplit(":", 1)
        large = {f"X-Big-{i}": "a" * 8000 for i in range(12)}  # 96 kB: large, but a head a client may send
        big = http("GET", s.url + "/echo/x", headers=large)
        assert big.status == 201 and all(big.json()["headers"][k] == v for k, v in large.items()), big.status
        c = socket.create_connection((host, int(port)), timeout=10)
        c.sendall(b"GET /echo/x HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:  # far past the bound: the answer comes, then the connection closes
                c.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass
        answer = _answer_until_closed(c)
        assert answer.startswith(b"HTTP/1.1 431"), (sent, answer[:200])
        assert sent < 64 * 1024 * 1024
        assert http("GET", s.url + "/echo/y").status == 201  # the proxy serves on
        assert wait_until(lambda: total(s.metrics(), "monitor_proxy_requests_total", route="error", code="4xx") == 1), s.metrics()
    finally:
        s.close()


@pytest.mark.parametrize("engine", ["lean", "process"])
def test_a_request_that_is_not_http_is_answered_400_and_counted(tmp_path: Any, upstream: Any,  # noqa: F811
                                                                engine: str) -> None:
    """llhttp's refusals (a TLS hello on the plain port, a broken client) were answered 400 by the
    lean engine without a count, where the aiohttp engine's middleware counts its 400s."""
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        host, port = s.url.removeprefix("http://").rsplit(":", 1)
        c = socket.create_connection((host, int(port)), timeout=10)
        c.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")
        answer = _answer_until_closed(c)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert wait_until(lambda: total(s.metrics(), "monitor_proxy_requests_total", route="error", code="4xx") == 1), s.metrics()
    finally:
        s.close()
