"""A small real model server behind the sidecar's reverse proxy, as a platform team runs one.

KServe's v1 protocol as its ``ModelServer`` answers it: ``POST /v1/models/<name>:predict`` with
``{"instances": rows}`` answers ``{"predictions": ...}``, ``GET /v1/models/<name>`` says it is
ready. It is an aiohttp server on a real 127.0.0.1 port with keep-alive connections (the proxy
pools its connections to the model server, as it does to KServe's), in a background event loop
of the test process.

:meth:`ModelServer.stop` closes its listening socket and its connections, so that the port
refuses connections as a model server that is down or restarting does (the proxy answers its
clients 502 ``upstream_connect`` and counts them); :meth:`ModelServer.start` serves on the same
port again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.sidecar_support import AppServer, LoopThread

__all__ = ["kserve_v1_app", "ModelServer"]


def kserve_v1_app(name: str, predict: Callable[[list[list[float]]], Any]) -> web.Application:
    """KServe's v1 routes for the model ``name``: ``predict(instances)`` (an array, or anything with
    ``tolist()``) is the answer's ``predictions``."""

    async def infer(request: web.Request) -> web.Response:
        out = predict((await request.json())["instances"])
        return web.json_response({"predictions": out.tolist() if hasattr(out, "tolist") else out})

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response({"name": name, "ready": True})

    app = web.Application()
    app.router.add_post(f"/v1/models/{name}:predict", infer)
    app.router.add_get(f"/v1/models/{name}", metadata)
    return app


class ModelServer:
    """:func:`kserve_v1_app` served on 127.0.0.1 (a free port, kept across :meth:`stop` and
    :meth:`start`) from a loop thread of its own."""

    def __init__(self, name: str, predict: Callable[[list[list[float]]], Any]) -> None:
        self.name = name
        self.predict = predict
        self.loop = LoopThread()
        self.server: AppServer | None = AppServer(kserve_v1_app(name, predict), self.loop)
        self.port = self.server.port
        self.url = self.server.url

    @property
    def running(self) -> bool:
        return self.server is not None

    def stop(self) -> None:
        """Close the listener and every connection: the port refuses connections until :meth:`start`."""
        if self.server is not None:
            self.server.close()
            self.server = None

    def start(self) -> None:
        """Serve again on the same port (a new application: an aiohttp one runs once)."""
        if self.server is None:
            self.server = AppServer(kserve_v1_app(self.name, self.predict), self.loop, port=self.port)

    def close(self) -> None:
        self.stop()
        self.loop.stop()
