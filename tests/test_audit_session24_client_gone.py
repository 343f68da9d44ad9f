"""A client that goes away while the sidecar reads its request body (a sender killed mid-upload,
a pod restarted, a load balancer that cut the connection), found by session 24's audit. aiohttp
raises ConnectionResetError from the body read; the sidecar counted the request as 499 and
re-raised it, so that aiohttp logged ``ERROR aiohttp.server: Error handling request`` with a
full traceback for every such client: an ordinary disconnection read in the log as a crash of
the agent (and a client could fill the log with them). It is the client's 499, counted, with no
traceback; the sidecar goes on serving."""

from __future__ import annotations

import logging
import socket
import struct
from typing import Any

from tests.sidecar_support import http, start_sidecar, total, wait_until
from tests.test_intake_content_coding import EVENT
from tests.test_proxy import IRIS

__all__: list[str] = []


def test_a_client_gone_mid_body_is_a_counted_499_without_a_traceback(tmp_path: Any, caplog: Any) -> None:
    s = start_sidecar(IRIS, tmp_path)
    try:
        host, port = s.url.removeprefix("http://").rsplit(":", 1)
        with caplog.at_level(logging.DEBUG, logger="aiohttp"):
            for path in ("/v1/events", "/v1/feedback"):
                c = socket.create_connection((host, int(port)), timeout=10)
                c.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: 1000\r\n\r\n{\"model\": \"ir".encode())
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, as a killed client
                c.close()
            cut = lambda: total(s.metrics(), "monitor_http_request_duration_seconds_count", code="499")  # noqa: E731
            assert wait_until(lambda: cut() == 2), cut()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]
        r = http("POST", s.url + "/v1/events", EVENT, {"Content-Type": "application/json"})
        assert r.status == 202 and r.json()["accepted"] == 1
    finally:
        s.close()
