"""Typed keys of the objects the sidecar keeps on its aiohttp applications."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from monitor.server.auth import TokenAuth
    from monitor.server.cloudevents import CloudEventsIntake
    from monitor.server.forward import ForwardReceiver
    from monitor.server.lifecycle import Checkpointer
    from monitor.server.proxy import Proxy
    from monitor.server.sidecar import Sidecar

__all__ = ["SIDECAR", "WRITE_AUTH", "READ_AUTH", "CLOUDEVENTS", "CHECKPOINTER", "PROXY", "FORWARD", "TASKS", "LOADER"]

SIDECAR: web.AppKey["Sidecar"] = web.AppKey("sidecar")
WRITE_AUTH: web.AppKey["TokenAuth"] = web.AppKey("write_auth")
READ_AUTH: web.AppKey["TokenAuth"] = web.AppKey("read_auth")
CLOUDEVENTS: web.AppKey["CloudEventsIntake"] = web.AppKey("cloudevents")
CHECKPOINTER: web.AppKey["Checkpointer"] = web.AppKey("checkpointer")
PROXY: web.AppKey["Proxy"] = web.AppKey("proxy")
FORWARD: web.AppKey["ForwardReceiver"] = web.AppKey("forward_receiver")
TASKS: web.AppKey[list[asyncio.Task[Any]]] = web.AppKey("tasks")
LOADER: web.AppKey["asyncio.Future[None]"] = web.AppKey("loader")
