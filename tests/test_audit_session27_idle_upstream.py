"""Pooled connections to the model server kept idle for 60 s while uvicorn (MLServer's and
KServe's server) closes its idle keep-alive connections after 5 s: a request that came as the
model server closed one was written to it and answered 502 upstream_disconnect (1 of 40
requests spaced by the model server's idle timeout on the aiohttp engine, counted against the
model server and paging MonitorProxyUpstreamFailing). A connection idle for longer than 4 s is
no longer reused, on either engine, so a model server that keeps them 5 s never closes one under
a request. Over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web

from tests.sidecar_support import AppServer, http
from tests.test_proxy import IRIS, start_proxying

__all__: list[str] = []


def _counting_upstream(peers: set[Any]) -> web.Application:
    async def ping(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername"))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/ping", ping)
    return app


@pytest.mark.parametrize("engine", ["aiohttp", "lean"])
def test_a_connection_idle_past_uvicorns_keepalive_is_not_reused(tmp_path: Any, engine: str) -> None:
    peers: set[Any] = set()
    up = AppServer(_counting_upstream(peers))
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=up.url)
    try:
        # the premise: a connection idle for less than the bound is reused (else the last check
        # holds however the pool behaves). Not "four requests need at most two connections", as
        # this was: on a loaded machine (CI with other jobs) a connection went back to the pool
        # only after the next request had come, four times in a row, and each rightly opened
        # another; the requests now go on until one comes over a connection seen before
        reused = False
        for _ in range(20):
            before = set(peers)
            assert http("POST", s.url + "/ping", b"{}").status == 200
            if peers <= before:
                reused = True
                break
            time.sleep(0.2)
        assert reused, f"20 requests 0.2 s apart never reused a connection: {peers}"
        fresh = set(peers)
        time.sleep(4.6)  # past the proxy's idle bound, before uvicorn's 5 s
        assert http("POST", s.url + "/ping", b"{}").status == 200
        assert peers - fresh, f"a connection idle for 4.6 s was reused: {peers}"
    finally:
        s.close()
        up.close()
