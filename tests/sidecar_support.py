"""Test support for the sidecar: run aiohttp applications on real 127.0.0.1 ports in a background
event loop, and a small synchronous HTTP client, so tests talk to the sidecar over real HTTP."""

from __future__ import annotations

import asyncio
import http.client as httplib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


class LoopThread:
    """An asyncio loop in a daemon thread; ``call(coro)`` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="test-loop")
        self.thread.start()

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class AppServer:
    """Serve ``app`` on 127.0.0.1 (a free port) from a :class:`LoopThread`; ``site`` makes the
    listener from the runner (default: an aiohttp ``TCPSite``)."""

    def __init__(self, app: web.Application, loop: LoopThread | None = None, port: int = 0,
                 site: Callable[[web.AppRunner, int], web.BaseSite] | None = None) -> None:
        self.own_loop = loop is None
        self.lt = loop or LoopThread()
        self.app = app
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)

        async def start() -> int:
            await self.runner.setup()
            listener = site(self.runner, port) if site is not None else web.TCPSite(self.runner, "127.0.0.1", port)
            await listener.start()
            return [a for a in self.runner.addresses if isinstance(a, tuple)][0][1]

        self.port = self.lt.call(start())
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.lt.call(self.runner.cleanup())
        if self.own_loop:
            self.lt.stop()


def infer_server(infer: Callable[[web.Request], Any]) -> AppServer:
    """A model server on 127.0.0.1 answering ``POST /v2/models/{model}/infer`` with ``infer``."""
    app = web.Application()
    app.router.add_post("/v2/models/{model}/infer", infer)
    return AppServer(app)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | str | Any = None, headers: dict[str, str] | None = None,
         timeout: float = 30.0) -> Reply:
    """One request over a fresh connection (bodies that are not bytes/str are sent as JSON)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = httplib.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, path or "/", body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    out = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    conn.close()
    return out


def child_pids(pid: int) -> list[int]:
    """The child processes of ``pid``, whichever of its threads started them (Linux ``/proc``)."""
    import os

    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return out


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds (functional waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def sample(text: str, name: str, **labels: str) -> float | None:
    """Value of one sample in a Prometheus text exposition (None when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def total(text: str, name: str, **labels: str) -> float:
    """Sum of every sample of ``name`` matching ``labels`` (0 when none)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out += float(s.value)
    return out


@dataclass
class RunningSidecar:
    sidecar: Any
    server: AppServer
    url: str

    def metrics(self) -> str:
        return http("GET", self.url + "/metrics").body.decode()

    def monitor(self, name: str | None = None) -> Any:
        return self.sidecar.resolve(name)

    def flush(self) -> None:
        """Everything answered so far processed: the proxy's data path process (if any) synced,
        then every monitor's queue drained."""
        if self.sidecar.data_planes:
            asyncio.run_coroutine_threadsafe(self.sidecar.sync_proxies(), self.server.lt.loop).result(10)
        for mon in self.sidecar.all_monitors():
            mon.flush()

    def close(self) -> None:
        self.server.close()


def start_sidecar(raw: dict[str, Any], folder: Any, *, factory: Callable[..., Any] | None = None,
                  wait_ready: bool = True, **overrides: Any) -> RunningSidecar:
    """Build a sidecar from a config mapping (paths relative to ``folder``) and serve it."""
    from monitor.config import parse_config
    from monitor.server.app import build_sidecar, create_app

    agent = parse_config(raw, str(folder / "monitor.yaml"), folder)
    sidecar = build_sidecar(agent, monitor_factory=factory, **overrides)
    server = AppServer(create_app(sidecar))
    if wait_ready:
        assert wait_until(lambda: sidecar.ready or sidecar.load_error is not None), "sidecar did not load"
        assert sidecar.load_error is None, sidecar.load_error
    return RunningSidecar(sidecar, server, server.url)


def quiet_factory(**kwargs: Any) -> Callable[..., Any]:
    """A monitor factory with a private registry and options (e.g. ``start_worker=False``)."""
    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor

    def make(cfg: Any) -> Any:
        return Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False), **kwargs)

    return make


def in_process_data_plane(raw: dict[str, Any], folder: Any) -> tuple[Any, Any]:
    """A loaded sidecar (monitors without a worker thread, so that tests and benchmarks run the
    worker themselves) with its proxy and a data plane that has no child process: the data
    path's frames are fed to ``plane._frame`` by the caller. Close with :func:`close_data_plane`."""
    import socket

    from monitor.config import parse_config
    from monitor.server.app import build_sidecar, create_app
    from monitor.server.dataplane import DataPlane

    agent = parse_config(raw, str(folder / "monitor.yaml"), folder)
    sidecar = build_sidecar(agent, monitor_factory=quiet_factory(start_worker=False))
    app = create_app(sidecar, load_in_thread=False)
    sidecar.load()
    assert sidecar.ready, sidecar.load_error
    plane = DataPlane(sidecar, 1.0)
    sock = socket.socket()
    plane.add(sock, app, None)
    sock.close()
    return sidecar, plane


def close_data_plane(sidecar: Any, plane: Any) -> None:
    for mon in sidecar.all_monitors():
        mon.close()
    plane.close_spawner()
