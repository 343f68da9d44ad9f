"""Reverse proxy added latency at a fixed request rate, against calling the upstream directly.

An upstream model server (aiohttp, Open Inference Protocol v2, its own process) and ``monitor
serve --proxy`` (its own process) run on 127.0.0.1. An open-loop client sends OIP v2 infer
requests at a fixed rate, alternating between the upstream directly and the proxy in short
rounds so that all see the same machine load; it records every request's latency. The added
latency is the difference of the percentiles. Targets: p50 added < 1 ms, p99 added < 3 ms at
1,000 requests/s. Every proxied request is also tapped into the monitor, which is checked at the end.

Targets: the upstream directly; nginx when installed (a compiled reverse proxy that monitors
nothing: what any data path, however written, adds on this machine); a byte relay (no HTTP
parsing: the floor of any asyncio proxy on this machine, latency and CPU); a bare aiohttp proxy without monitoring (the baseline: what the
aiohttp stack alone costs); ``monitor serve --proxy`` on its default lean engine (httptools,
:mod:`monitor.server.leanproxy`) in its own process (:mod:`monitor.server.dataplane`, the
default), the same engine on the sidecar's loop (``server.proxy.process: false``), and on
``server.proxy.engine: aiohttp``. For each proxy the CPU per request of its process tree (and of
its data path alone: the child process, or the event-loop thread) is reported: on a shared
machine the latency percentiles are noisy, the CPU per request is not.

Run: ``.venv/bin/python benchmarks/bench_proxy.py [--rate 1000] [--seconds 10] [--rounds 5]``;
``--quick`` measures only the upstream, nginx, the relay and the two lean variants (printed, not
written), ``--nice N`` adds the default with ``server.worker_nice: N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sidecar import serve_forever, Serve, metric, write_section  # noqa: E402
from tests.sidecar_support import child_pids  # noqa: E402

BODY = json.dumps({"id": "bench", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                               "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()


def _upstream(port_q: "multiprocessing.Queue[int]") -> None:
    from aiohttp import web

    reply = json.dumps({"model_name": "iris", "id": "bench", "outputs": [
        {"name": "probs", "shape": [1, 3], "datatype": "FP32", "data": [0.8, 0.15, 0.05]}]}).encode()

    async def infer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=reply, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v2/models/{model}/infer", infer)
    serve_forever(app, port_q)


def _bare_proxy(upstream: str, port_q: "multiprocessing.Queue[int]") -> None:
    """The least an aiohttp reverse proxy does: forward the body, return status and body."""
    import aiohttp
    from aiohttp import web

    sessions: list[aiohttp.ClientSession] = []

    async def start(app: web.Application) -> None:  # the client session needs the running loop
        sessions.append(aiohttp.ClientSession(auto_decompress=False))

    async def fwd(request: web.Request) -> web.Response:
        body = await request.read()
        async with sessions[0].post(upstream + request.raw_path, data=body,
                                    headers={"Content-Type": request.headers.get("Content-Type", "")}) as r:
            return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)

    app = web.Application()
    app.on_startup.append(start)
    app.router.add_post("/{tail:.*}", fwd)
    serve_forever(app, port_q)


def _relay_proxy(upstream: str, port_q: "multiprocessing.Queue[int]") -> None:
    """The floor of any asyncio proxy: bytes relayed between each client connection and its own
    upstream connection, no HTTP parsing (enough for this bench's one-request-at-a-time
    keep-alive connections, not a real proxy). On uvloop when installed, as ``monitor serve``."""
    up_port = int(upstream.rsplit(":", 1)[1])

    class Upstream(asyncio.Protocol):
        def __init__(self, client: "Client") -> None:
            self.client = client

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.client.transport.write(data)

    class Client(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.up: Upstream | None = None
            self.pending: list[bytes] = []
            asyncio.get_running_loop().create_task(self.connect())

        async def connect(self) -> None:
            _, self.up = await asyncio.get_running_loop().create_connection(lambda: Upstream(self), "127.0.0.1", up_port)
            for data in self.pending:
                self.up.transport.write(data)

        def data_received(self, data: bytes) -> None:
            if self.up is None:
                self.pending.append(data)
            else:
                self.up.transport.write(data)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Client, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


_NGINX_CONF = """worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    keepalive_requests 1000000;
    upstream model {{ server 127.0.0.1:{up_port}; keepalive 32; keepalive_requests 1000000; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def _nginx_proxy(upstream: str) -> "tuple[subprocess.Popen[bytes], str] | None":
    """nginx in front of the upstream (one worker, pooled keep-alive upstream connections, no
    access log): what a compiled reverse proxy adds on this machine, the floor of any data path
    however it is written. None when nginx is not installed (Debian: ``apt-get install nginx-light``)."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if binary is None:
        return None
    folder = tempfile.mkdtemp(prefix="monitor-bench-nginx-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = os.path.join(folder, "nginx.conf")
    with open(conf, "w") as f:
        f.write(_NGINX_CONF.format(folder=folder, up_port=int(upstream.rsplit(":", 1)[1]), port=port))
    proc = subprocess.Popen([binary, "-p", folder, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    return None


def _stall_probe(stop: "multiprocessing.synchronize.Event", out: "multiprocessing.Queue[list[float]]") -> None:
    """How late a process that only sleeps 1 ms at a time wakes up, all through the run: the
    machine's own scheduling stalls, which no proxy's code causes and every request crossing
    them pays (a proxied request crosses three processes, a direct one two)."""
    late: list[float] = []
    while not stop.is_set():
        t = time.perf_counter()
        time.sleep(0.001)
        late.append(time.perf_counter() - t - 0.001)
    out.put(late)


def _cpu(pid: int) -> float:
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the load generator: writes a prebuilt request and
    reads one response (Content-Length framed). Much cheaper than a full client, so that the
    load generator does not eat the CPU the servers under test need."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0 or self.waiter is None:
            return
        head = self.buf[:head_end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        if len(self.buf) >= head_end + 4 + length:
            status = int(head.split(" ", 2)[1])
            self.buf = self.buf[head_end + 4 + length:]
            waiter, self.waiter = self.waiter, None
            if not waiter.done():
                waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    async def request(self, raw: bytes) -> int:
        if not self.open:  # a write to a closed transport is dropped: its answer would never come
            raise ConnectionError("closed")
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(raw)
        return await self.waiter


async def _stream(url: str, rate: float, seconds: float,
                  start_at: Callable[[], Awaitable[float]]) -> tuple[list[float], int]:
    """Requests at fixed start times (open loop: a slow answer does not delay the next), from the
    time ``start_at()`` gives once this stream's connections are warm."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    raw = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    loop = asyncio.get_running_loop()
    idle: list[_Conn] = []
    lat: list[float] = []
    errors = 0

    async def one(record: bool) -> None:
        nonlocal errors
        while idle and not idle[-1].open:  # closed by the server while idle (keep-alive limits)
            idle.pop()
        conn = idle.pop() if idle else (await loop.create_connection(_Conn, parts.hostname, parts.port))[1]
        t0 = time.perf_counter()
        try:
            status = await conn.request(raw)
        except ConnectionError:
            errors += 1
            return
        if status != 200:
            errors += 1
        elif record:
            lat.append(time.perf_counter() - t0)
        idle.append(conn)

    await asyncio.gather(*(one(False) for _ in range(16)))  # warm up the connections
    start = await start_at()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(True)))
    await asyncio.gather(*tasks)
    for c in idle:
        if c.transport is not None:
            c.transport.close()
    return lat, errors


async def open_loop(url: str, rate: float, seconds: float, control: str | None = None,
                    control_rate: float = 0.0) -> tuple[list[float], int, list[float]]:
    """``url`` at ``rate``; with ``control``, the upstream called directly at ``control_rate`` in
    the same round, from the same client, each of its requests half-way between two proxied ones:
    what a direct call met meanwhile (the same stalls, the same load). The errors are both
    streams'."""
    plan = [(url, rate, 0.0)]
    if control is not None and control_rate > 0:
        plan.append((control, control_rate, 0.5 / rate))
    # both schedules start once both streams are warm: a start fixed beforehand would let one run
    # while the other warms, and make a stream whose warm-up overran send what it is behind on at once
    go: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    warm = 0

    async def start_at(offset: float) -> float:
        nonlocal warm
        warm += 1
        if warm == len(plan):
            go.set_result(time.perf_counter() + 0.01)
        return await go + offset

    results = await asyncio.gather(*(_stream(u, r, seconds, lambda o=offset: start_at(o)) for u, r, offset in plan))
    lat, errors = results[0]
    if len(results) > 1:
        return lat, errors + results[1][1], results[1][0]
    return lat, errors, []


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1e3


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid`` (the event loop is the first, the monitor's worker another)."""
    import os

    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


class _Target:
    """One thing the client sends requests to, with its latencies, errors and CPU."""

    def __init__(self, name: str, url: str, pid: int | None, child: bool = False, short: str = "") -> None:
        self.name = name
        self.short = short or name
        self.url = url
        self.pid = pid
        #: the proxy's data path runs in a child process: its CPU is added, and stands for the loop's
        self.child = child
        self.lat: list[float] = []
        #: latencies of the direct calls made during this target's rounds (the paired control)
        self.control: list[float] = []
        self.errors = 0
        self.cpu = 0.0
        self.loop_cpu = 0.0  # the process's main thread (event loop)

    def round(self, rate: float, seconds: float, control: str | None = None, control_rate: float = 0.0) -> None:
        kids = child_pids(self.pid) if self.pid and self.child else []
        c0 = _cpu(self.pid) if self.pid else 0.0
        k0 = sum(_cpu(k) for k in kids)
        t0 = _threads(self.pid) if self.pid else {}
        path = "/v2/models/iris/infer"
        lat, e, ctl = asyncio.run(open_loop(self.url + path, rate, seconds, control and control + path, control_rate))
        if self.pid:
            k1 = sum(_cpu(k) for k in kids)
            self.cpu += _cpu(self.pid) - c0 + k1 - k0
            t1 = _threads(self.pid)
            self.loop_cpu += (k1 - k0) if self.child else t1.get(str(self.pid), 0.0) - t0.get(str(self.pid), 0.0)
        self.lat += lat
        self.control += ctl
        self.errors += e

    def us(self, cpu: float) -> str:
        return f"{cpu / max(1, len(self.lat)) * 1e6:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second (bounded)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of load per target, split into rounds")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--nice", type=int, default=0,
                    help="also measure the default with server.worker_nice at this value (the monitor's threads niced)")
    ap.add_argument("--control-rate", type=float, default=100.0,
                    help="direct calls per second made during every target's rounds, interleaved with its requests (the paired "
                         "control; 0: none)")
    ap.add_argument("--quick", action="store_true",
                    help="only the upstream directly, nginx (when installed), the byte relay and the lean engine in and out of process (the table "
                         "is printed, not written to benchmarks/results/)")
    args = ap.parse_args()

    q: multiprocessing.Queue[int] = multiprocessing.Queue()
    up = multiprocessing.Process(target=_upstream, args=(q,), daemon=True)
    up.start()
    upstream = f"http://127.0.0.1:{q.get(timeout=30)}"

    def cfg(engine: str, process: bool = True, nice: int = 0) -> dict:
        return {"model": "iris", "features": ["a", "b", "c", "d"],
                "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
                "server": {"port": 0, "worker_nice": nice,
                           "proxy": {"oip_output": "probs", "engine": engine, "process": process}}}

    lean = Serve(cfg("lean"), extra_args=("--proxy", upstream))
    inproc = Serve(cfg("lean", process=False), extra_args=("--proxy", upstream))
    niced = Serve(cfg("lean", nice=args.nice), extra_args=("--proxy", upstream)) if args.nice else None
    aio = Serve(cfg("aiohttp"), extra_args=("--proxy", upstream))
    bq: multiprocessing.Queue[int] = multiprocessing.Queue()
    bare_proc = multiprocessing.Process(target=_bare_proxy, args=(upstream, bq), daemon=True)
    bare_proc.start()
    bare_url = f"http://127.0.0.1:{bq.get(timeout=30)}"
    rq: multiprocessing.Queue[int] = multiprocessing.Queue()
    relay_proc = multiprocessing.Process(target=_relay_proxy, args=(upstream, rq), daemon=True)
    relay_proc.start()
    relay_url = f"http://127.0.0.1:{rq.get(timeout=30)}"
    direct = _Target("upstream directly", upstream, None)
    bare = _Target("through a bare aiohttp proxy (no monitoring; baseline)", bare_url, bare_proc.pid, short="bare")
    proxied = _Target("through monitor serve --proxy (lean engine in its own process, the default)", lean.url,
                      lean.proc.pid, child=True, short="default")
    proxied_inproc = _Target("through monitor serve --proxy (lean engine on the sidecar's loop: process: false)",
                             inproc.url, inproc.proc.pid, short="in-process")
    proxied_aio = _Target("through monitor serve --proxy (engine: aiohttp)", aio.url, aio.proc.pid, short="aiohttp")
    relay = _Target("through a byte relay (no HTTP parsing, no monitoring: the floor of an asyncio proxy)", relay_url,
                    relay_proc.pid, short="relay")
    nginx = _nginx_proxy(upstream)
    nginx_t = None if nginx is None else _Target(
        "through nginx (a compiled reverse proxy, one worker, keep-alive upstream, no monitoring: the floor of any data "
        "path)", nginx[1], nginx[0].pid, child=True, short="nginx")
    targets = [direct, relay, bare, proxied, proxied_inproc, proxied_aio]
    if nginx_t is not None:
        targets.insert(1, nginx_t)
    proxied_niced = None if niced is None else _Target(
        f"through monitor serve --proxy (the default, with server.worker_nice: {args.nice})", niced.url, niced.proc.pid,
        child=True, short="niced")
    if proxied_niced is not None:
        targets.append(proxied_niced)
    try:
        per_round = args.seconds / args.rounds
        load_before = os.getloadavg()[0]
        print("machine load average before the run:", ", ".join(f"{v:.1f}" for v in os.getloadavg()), flush=True)
        stop_probe = multiprocessing.Event()
        probe_q: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
        probe = multiprocessing.Process(target=_stall_probe, args=(stop_probe, probe_q), daemon=True)
        probe.start()
        measured = [direct, relay, proxied, proxied_inproc] if args.quick else list(targets)
        if args.quick and nginx_t is not None:
            measured.insert(1, nginx_t)
        if args.quick and proxied_niced is not None:
            measured.append(proxied_niced)
        for _ in range(args.rounds):
            for t in measured:
                t.round(args.rate, per_round, upstream, args.control_rate)
        stop_probe.set()
        late = probe_q.get(timeout=30)
        probe.join(10)
        time.sleep(0.5)
        tapped = metric(lean.metrics(), "monitor_intake_events_accepted_total", model="iris", endpoint="proxy")
        tapped_aio = metric(aio.metrics(), "monitor_intake_events_accepted_total", model="iris", endpoint="proxy")
        tapped_inproc = metric(inproc.metrics(), "monitor_intake_events_accepted_total", model="iris", endpoint="proxy")
    finally:
        lean.stop()
        inproc.stop()
        aio.stop()
        if niced is not None:
            niced.stop()
        bare_proc.terminate()
        bare_proc.join(10)
        relay_proc.terminate()
        relay_proc.join(10)
        if nginx is not None:
            nginx[0].terminate()
            nginx[0].wait(10)
        up.terminate()
        up.join(10)

    d50, d99 = pct(direct.lat, 0.5), pct(direct.lat, 0.99)
    bare_cpu = bare.cpu / len(bare.lat) if bare.lat else None
    rows = []
    for t in measured:
        cpu = f"{t.us(t.cpu)} ({t.us(t.loop_cpu)})" if t.pid else "-"
        added = "-" if t is direct else f"{pct(t.lat, 0.5) - d50:.3f} / {pct(t.lat, 0.99) - d99:.3f}"
        paired = (f"{pct(t.lat, 0.5) - pct(t.control, 0.5):.3f} / {pct(t.lat, 0.99) - pct(t.control, 0.99):.3f}"
                  if t.control else "-")
        ratio = "-" if t is direct or bare_cpu is None else f"{t.cpu / max(1, len(t.lat)) / max(1e-12, bare_cpu):.2f}"
        rows.append(f"| {t.name} | {len(t.lat):,} | {pct(t.lat, 0.5):.3f} | {pct(t.lat, 0.9):.3f} | {pct(t.lat, 0.99):.3f} | "
                    f"{added} | {paired} | {cpu} | {ratio} |")
    add50 = pct(proxied.lat, 0.5) - d50
    add99 = pct(proxied.lat, 0.99) - d99
    in99 = pct(proxied_inproc.lat, 0.99) - d99
    per_req = proxied.cpu / max(1, len(proxied.lat))
    relay99 = pct(relay.lat, 0.99) - d99
    stalls = [x for x in late if x > 0.005]
    stall_line = (f"Machine stalls during the run: a process that only sleeps 1 ms at a time woke more than 5 ms late "
                  f"{len(stalls)} times in {sum(late) + 0.001 * len(late):.0f} s (longest {max(late, default=0) * 1e3:.1f} ms; "
                  f"p99 of its lateness {pct(late, 0.99):.2f} ms). The byte relay, which parses nothing and monitors nothing, "
                  f"added p99 {relay99:.3f} ms in the same rounds: the default's p99 beyond that floor is "
                  f"{add99 - relay99:.3f} ms; the lean engine on the sidecar's own loop added p99 {in99:.3f} ms."
                  + ("" if nginx_t is None else
                     f" nginx, a compiled proxy that monitors nothing, added p99 {pct(nginx_t.lat, 0.99) - d99:.3f} ms in the "
                     "same rounds."))
    if proxied.control:
        p50 = pct(proxied.lat, 0.5) - pct(proxied.control, 0.5)
        p99 = pct(proxied.lat, 0.99) - pct(proxied.control, 0.99)
        floor = pct(direct.lat, 0.99) - pct(direct.control, 0.99)
        paired_line = (
            f"Paired with direct calls interleaved with the proxied ones ({args.control_rate:,.0f}/s to the upstream "
            f"during every round, from the same client, each half-way between two proxied requests; they meet the same "
            f"stalls and the same load; the difference of the two streams' percentiles): the default added p50 "
            f"**{p50:.3f} ms**, p99 **{p99:.3f} ms** (target < 3 ms: {'met' if p99 < 3 else 'NOT met'}); the byte relay "
            f"{pct(relay.lat, 0.99) - pct(relay.control, 0.99):.3f} ms at p99"
            + ("" if nginx_t is None or not nginx_t.control else
               f", nginx {pct(nginx_t.lat, 0.99) - pct(nginx_t.control, 0.99):.3f} ms")
            + "; the same comparison on the direct "
            f"rounds (direct calls against direct calls: the estimator's own error) {floor:.3f} ms. The proxy's CPU "
            "slows the paired direct calls too, so this leaves out what the proxy costs the upstream; the rounds "
            "above do not.")
    else:
        paired_line = ""
    errors = ", ".join(f"{t.short} {t.errors}" for t in measured if t is not direct)
    busy = load_before > 0.5 * (os.cpu_count() or 1)  # before: the bench itself then adds ~1.5
    verdict = ("**Busy machine** (load average above the 2 cores' share this bench needs): other processes competed for "
               "the cores, so the latency percentiles and their differences are not meaningful here; the CPU per request is. "
               if busy else "")
    lines = [
        f"OIP v2 infer requests at {args.rate:,.0f}/s (open loop), {args.rounds} alternating rounds per target, "
        "upstream, proxies and client on 127.0.0.1 of this 2-core machine. Latency in ms; CPU per request in us "
        "(whole process tree, and in brackets the proxy's data path alone: its event-loop thread, or its process when it "
        "runs in one; the rest is the monitor's tap parsing and worker); CPU ratio against the bare aiohttp proxy measured "
        "in the same run.",
        "",
        "| target | requests | p50 | p90 | p99 | added p50 / p99 | paired: added p50 / p99 | CPU per request (data path) | "
        "CPU vs bare aiohttp |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"{verdict}Added latency (the default: lean engine in its own process): p50 **{add50:.3f} ms** (target < 1 ms: "
        f"{'met' if add50 < 1 else 'NOT met'}), p99 **{add99:.3f} ms** (target < 3 ms: {'met' if add99 < 3 else 'NOT met'}).",
        stall_line,
        paired_line,
        f"CPU per proxied request, the default: {per_req * 1e6:.0f} us in all (data path {proxied.us(proxied.loop_cpu)} us; "
        "the rest is the sidecar parsing the taps and its worker)"
        + ("" if args.quick else f"; engine: aiohttp {proxied_aio.us(proxied_aio.cpu)} us, bare aiohttp proxy "
                                 f"{bare.us(bare.cpu)} us") + ".",
        "The lean engine (`monitor/server/leanproxy.py`) parses with llhttp (`httptools`) on asyncio protocols, keeps "
        "pooled keep-alive upstream connections and relays bodies as they arrive; by default it runs in a child process "
        "(`monitor/server/dataplane.py`) that sends the tapped exchanges unparsed to the sidecar, so that nothing the "
        "monitor does holds the proxy's GIL; the aiohttp engine uses aiohttp's server and client session. All run the "
        "same tap and the same metrics, and all are tested on every proxy test.",
        f"Errors: {errors}. Proxied requests tapped into the monitor: default {tapped:,.0f}, in-process "
        f"{tapped_inproc:,.0f}" + ("" if args.quick else f", aiohttp {tapped_aio:,.0f}")
        + f" (each includes {16 * args.rounds} warm-up requests).",
        "",
        "Reproduce: `.venv/bin/python benchmarks/bench_proxy.py`",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.quick:
        write_section("Reverse proxy added latency", body)


if __name__ == "__main__":
    main()
