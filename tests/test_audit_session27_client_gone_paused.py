"""A client that goes away while the proxy waits for it to read a streamed answer (a download or
an event stream it stopped reading, then closed: a browser tab, a ``curl --max-time``), on the
aiohttp engine (``server.proxy.engine: aiohttp``, and every ``https://`` upstream). aiohttp fails
the paused write with a plain ``ConnectionError("Connection lost")``, not the
ConnectionResetError the middleware took as the client's 499: the sidecar logged ``ERROR
handler proxy failed`` with a traceback and counted a 500, a crash of the agent in the log for
an ordinary disconnection."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from aiohttp import web

from tests.sidecar_support import AppServer, total, wait_until
from tests.test_proxy import IRIS, start_proxying

__all__: list[str] = []


def _big_upstream() -> web.Application:
    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        try:
            for _ in range(4096):  # 256 MB, far more than the sockets' buffers hold
                await resp.write(b"x" * 65536)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_get("/big", big)
    return app


def test_a_client_gone_while_its_stream_is_paused_is_a_499_without_a_traceback(tmp_path: Any, caplog: Any) -> None:
    up = AppServer(_big_upstream())
    s = start_proxying(IRIS, tmp_path, "aiohttp", proxy_upstream=up.url)
    try:
        host, port = s.url.removeprefix("http://").rsplit(":", 1)
        with caplog.at_level(logging.DEBUG):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.connect((host, int(port)))
            c.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(1024).startswith(b"HTTP/1.1 200")
            time.sleep(1.0)  # the proxy's writes fill the buffers and wait for the client to read
            c.close()
            gone = lambda: total(s.metrics(), "monitor_http_request_duration_seconds_count", handler="proxy", code="499")  # noqa: E731
            assert wait_until(gone, timeout=15), s.metrics()
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], errors
        assert total(s.metrics(), "monitor_http_request_duration_seconds_count", code="500") == 0
    finally:
        s.close()
        up.close()
