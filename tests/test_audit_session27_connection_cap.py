"""Requests that wait for a connection to the model server because every one of
``server.proxy.max_connections`` (100) is busy (long token streams hold one each) are answered
504 once ``server.proxy.timeout`` has passed, counted ``reason="timeout"``: the log said only
that the model server "is stuck or overloaded (or raise the timeout)", although it answered each
request it got in time, and the setting that bounds the proxy's connections was named only in a
comment of examples/monitor.yaml. The log line now names ``server.proxy.max_connections`` and
its value, and README documents it. Over real HTTP on 127.0.0.1, on both engines."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from aiohttp import web

from tests.sidecar_support import AppServer, http
from tests.test_proxy import IRIS, start_proxying

__all__: list[str] = []


def _slow_upstream() -> web.Application:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/slow", slow)
    return app


@pytest.mark.parametrize("engine", ["aiohttp", "lean"])
def test_a_request_left_waiting_by_the_connection_cap_names_it_in_the_log(tmp_path: Any, caplog: Any, engine: str) -> None:
    up = AppServer(_slow_upstream())
    cfg = {**IRIS, "server": {"proxy": {"max_connections": 1, "timeout": "1s"}}}
    s = start_proxying(cfg, tmp_path, engine, proxy_upstream=up.url)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            replies: list[int] = []
            threads = [threading.Thread(target=lambda: replies.append(http("GET", s.url + "/slow").status)) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
            assert sorted(replies) == [504, 504], replies
        said = [r.getMessage() for r in caplog.records if "server.proxy.timeout" in r.getMessage()]
        assert said and "server.proxy.max_connections (1)" in said[0], said
    finally:
        s.close()
        up.close()
