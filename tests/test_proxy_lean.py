"""The proxy's lean engine (:mod:`monitor.server.leanproxy`) on the wire, against real upstream
servers on 127.0.0.1: what the shared tests in test_proxy.py cannot reach with a one-request
client (pipelining, a keep-alive connection that moves between proxied requests and the
sidecar's own routes, HTTP/1.0, Expect: 100-continue, a stream broken off, timeouts, closed
keep-alive connections, malformed requests), parity with the aiohttp engine, engine selection,
and a real ``monitor serve --proxy`` process. Tests that describe behaviour both engines share
run on both."""

from __future__ import annotations

import asyncio
import http.client as httplib
import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sidecar_support import AppServer, LoopThread, http, sample, total, wait_until
from tests.test_proxy import IRIS, engine, oip, start_proxying, tapped, upstream_app  # noqa: F401 - engine is a fixture

pytestmark = pytest.mark.skipif(not __import__("monitor.server.leanproxy", fromlist=["x"]).lean_available(),
                                reason="the lean proxy engine needs httptools (a dependency of model-monitor)")


BIG_CHUNKS = 128  # 8 MiB
AT_UPSTREAM = threading.Event()  # /moment was reached


def awkward_app() -> web.Application:
    """An upstream that misbehaves on purpose."""
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")

    async def broken_stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b"first part ")
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()  # gone mid-body
        return resp

    async def nocontent(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Gone": "1"})

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(BIG_CHUNKS):
            await resp.write(bytes([i % 256]) * 65536)
        await resp.write_eof()
        return resp

    async def a_moment(request: web.Request) -> web.Response:
        AT_UPSTREAM.set()
        await asyncio.sleep(0.5)
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/moment", a_moment)
    app.router.add_get("/broken-stream", broken_stream)
    app.router.add_delete("/thing", nocontent)
    app.router.add_get("/big", big)
    return app


@pytest.fixture(scope="module")
def servers():
    lt = LoopThread()
    up = AppServer(upstream_app(), lt)
    odd = AppServer(awkward_app(), lt)
    yield up, odd
    odd.close()
    up.close()
    lt.stop()


@pytest.fixture
def lean(tmp_path, servers):
    s = start_proxying({"models": [IRIS, {**IRIS, "model": "mirror"}], "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "lean",
                       proxy_upstream=servers[0].url)
    yield s
    s.close()


class Wire:
    """A raw HTTP/1.x connection: bytes out, responses parsed one by one (Content-Length,
    chunked or close-delimited), so that pipelining and framing are visible."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status_line = self.f.readline()
        assert status_line, "the connection closed before a response"
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := self.f.readline()) not in (b"\r\n", b"\n", b""):
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if head_only or 100 <= status < 200 or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, self.f.read(int(headers["content-length"]))
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while (size := int(self.f.readline().split(b";")[0], 16)) > 0:
                body += self.f.read(size)
                self.f.readline()
            self.f.readline()
            return status, headers, body
        return status, headers, self.f.read()  # close-delimited

    def closed(self) -> bool:
        return self.f.read(1) == b""

    def close(self) -> None:
        self.f.close()
        self.sock.close()

    def __enter__(self) -> "Wire":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def test_pipelined_requests_are_answered_in_order_across_own_and_proxied_routes(lean):
    w = Wire(lean.url)
    try:
        body = json.dumps(oip(1)).encode()
        w.send(post("/v2/models/iris/infer", body) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               + post("/v2/models/iris/infer", json.dumps(oip(2, "req-3")).encode()) + b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        s1, h1, b1 = w.response()
        s2, _, b2 = w.response()
        s3, _, b3 = w.response()
        s4, _, b4 = w.response()
    finally:
        w.close()
    assert s1 == 200 and json.loads(b1)["outputs"][0]["data"] == [0.7, 0.2, 0.1] and h1["x-upstream"] == "yes"
    assert s2 == 200 and json.loads(b2) == {"status": "ok"}
    assert s3 == 200 and json.loads(b3)["id"] == "req-3"
    assert s4 == 200 and json.loads(b4)["ready"] is True
    # the third was answered by the aiohttp engine once the connection was handed over: tapped all the same
    assert [e[6] for e in tapped(lean.monitor("iris"), 2)] == ["req-1", "req-3"]


def test_keep_alive_connection_moves_between_proxied_requests_and_own_routes(lean):
    conn = httplib.HTTPConnection(lean.url.removeprefix("http://").split(":")[0], int(lean.url.rsplit(":", 1)[1]), timeout=10)
    try:
        seen = []
        for path in ("/v2/models/iris/infer", "/v2/models/iris/infer", "/metrics", "/v2/models/iris/infer", "/healthz"):
            if path == "/metrics" or path == "/healthz":
                conn.request("GET", path)
            else:
                conn.request("POST", path, body=json.dumps(oip(1)), headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            seen.append((r.status, r.read()))
    finally:
        conn.close()
    assert [s for s, _ in seen] == [200] * 5
    assert b"monitor_proxy_requests_total" in seen[2][1] and json.loads(seen[4][1]) == {"status": "ok"}
    assert len(tapped(lean.monitor("iris"), 3)) == 3


def test_http_1_0_clients_get_a_length_or_a_close_delimited_body(lean):
    w = Wire(lean.url)
    try:
        body = json.dumps(oip(1)).encode()
        w.send(f"POST /v2/models/iris/infer HTTP/1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        status, headers, payload = w.response()
        assert status == 200 and json.loads(payload)["id"] == "req-1"
        assert w.closed()  # HTTP/1.0 without keep-alive: closed after the answer
    finally:
        w.close()
    w = Wire(lean.url)
    try:
        w.send(b"GET /stream HTTP/1.0\r\n\r\n")
        status, headers, payload = w.response()  # the upstream streams chunked; a 1.0 client gets it close-delimited
        assert status == 200 and "transfer-encoding" not in headers and "content-length" not in headers
        assert payload == b"".join(f"data: chunk {i}\n\n".encode() for i in range(5))
    finally:
        w.close()


def test_expect_100_continue(proxied):
    w = Wire(proxied.url)
    try:
        body = json.dumps(oip(1)).encode()
        w.send(f"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        status, _, _ = w.response()
        assert status == 100
        w.send(body)
        status, _, payload = w.response()
        assert status == 200 and json.loads(payload)["id"] == "req-1"
    finally:
        w.close()


@pytest.fixture
def proxied(tmp_path, servers, engine):
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, engine, proxy_upstream=servers[0].url)
    yield s
    s.close()


@pytest.fixture
def awkward(tmp_path, servers, engine):
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=servers[1].url)
    yield s
    s.close()


def test_a_stream_broken_off_by_the_upstream_closes_the_client_connection(awkward):
    with Wire(awkward.url) as w:
        w.send(b"GET /broken-stream HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = w.response(head_only=True)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        rest = w.f.read()  # read to the end: the connection closes without the last chunk
        assert b"first part " in rest and not rest.endswith(b"0\r\n\r\n")
    assert wait_until(lambda: sample(awkward.metrics(), "monitor_proxy_upstream_errors_total", model="_sidecar", reason="disconnect") == 1)


def test_upstream_timeout_answers_504(tmp_path, servers, engine):
    s = start_proxying({**IRIS, "server": {"proxy": {"timeout": "300ms"}}}, tmp_path, engine, proxy_upstream=servers[1].url)
    try:
        r = http("GET", s.url + "/slow")
        assert r.status == 504 and r.json() == {"error": "the model server did not answer in time", "reason": "upstream_timeout",
                                                "source": "monitor-proxy"}
        assert sample(s.metrics(), "monitor_proxy_upstream_errors_total", model="_sidecar", reason="timeout") == 1
    finally:
        s.close()


def test_no_content_answers_keep_the_connection_usable(awkward):
    with Wire(awkward.url) as w:
        w.send(b"DELETE /thing HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = w.response()
        assert status == 204 and headers["x-gone"] == "1" and body == b""
        assert w.response()[0] == 200


def test_keep_alive_connections_closed_by_the_upstream_are_not_reused(tmp_path, engine):
    lt = LoopThread()
    runner = web.AppRunner(upstream_app(), access_log=None, keepalive_timeout=0.1)  # idle connections close fast

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return [a for a in runner.addresses if isinstance(a, tuple)][0][1]

    port = lt.call(start())
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{port}")
    try:
        for _ in range(3):
            r = http("POST", s.url + "/v2/models/iris/infer", oip(1))
            assert r.status == 200
            time.sleep(0.3)  # the upstream closes the idle keep-alive connection meanwhile
        assert total(s.metrics(), "monitor_proxy_upstream_errors_total") == 0
        assert sample(s.metrics(), "monitor_proxy_requests_total", model="_sidecar", route="oip_v2", code="2xx") == 3
    finally:
        s.close()
        lt.call(runner.cleanup())
        lt.stop()


def test_malformed_requests_are_answered_400_and_the_connection_closed(lean):
    w = Wire(lean.url)
    try:
        w.send(b"POST /v2/models/iris/infer HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        status, _, _ = w.response()
        assert status == 400 and w.closed()
    finally:
        w.close()
    assert http("GET", lean.url + "/healthz").status == 200


def test_both_engines_forward_the_same_headers(tmp_path, servers):
    seen = {}
    headers = {"X-A": "1", "Connection": "X-Drop", "X-Drop": "dropped", "Keep-Alive": "5", "TE": "trailers", "Authorization": "Bearer t"}
    for eng in ("aiohttp", "lean"):
        (tmp_path / eng).mkdir()
        s = start_proxying(IRIS, tmp_path / eng, eng, proxy_upstream=servers[0].url)
        try:
            seen[eng] = [(r.status, r.json()["headers"], r.json()["path_qs"], r.json()["body"], r.headers.get("content-type"))
                         for r in (http(m, s.url + "/echo/a%2Fb?q=1&q=2", b, headers) for m, b in
                                   (("GET", None), ("POST", b""), ("POST", b"abc"), ("PUT", b"x" * 10), ("PATCH", b"{}")))]
        finally:
            s.close()
    assert seen["lean"] == seen["aiohttp"]
    assert all("X-Drop" not in h and "Keep-Alive" not in h and "TE" not in h for _, h, _, _, _ in seen["lean"])


def test_engine_selection_and_its_settings(tmp_path, monkeypatch):
    from monitor.config import ConfigError, parse_config
    from monitor.server.leanproxy import engine_of
    from monitor.server.proxy import Proxy
    from monitor.server.settings import settings_from

    def proxy(engine_value: str, upstream: str) -> Proxy:
        agent = parse_config({**IRIS, "server": {"proxy": {"engine": engine_value, "upstream": upstream}}}, str(tmp_path / "m.yaml"), tmp_path)
        return Proxy(object(), settings_from(agent).proxy)  # type: ignore[arg-type]

    assert engine_of(proxy("auto", "http://127.0.0.1:8080")) == "lean"
    assert engine_of(proxy("auto", "https://model.internal")) == "aiohttp"
    assert engine_of(proxy("aiohttp", "http://127.0.0.1:8080")) == "aiohttp"
    assert engine_of(proxy("lean", "http://127.0.0.1:8080")) == "lean"
    with pytest.raises(ConfigError, match="server.proxy.engine"):
        proxy("fast", "http://127.0.0.1:8080")
    with pytest.raises(ConfigError, match="plain HTTP"):
        proxy("lean", "https://model.internal")
    import monitor.server.leanproxy as lean_module

    monkeypatch.setattr(lean_module, "httptools", None)  # not installed: auto falls back, lean says why
    assert engine_of(proxy("auto", "http://127.0.0.1:8080")) == "aiohttp"
    with pytest.raises(ValueError, match="needs httptools"):
        engine_of(proxy("lean", "http://127.0.0.1:8080"))


def test_monitor_serve_runs_the_lean_engine_and_stops_cleanly(tmp_path, servers):
    from tests.test_server_lifecycle import ServeProcess

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "proxy": {"upstream": servers[0].url, "oip_output": "probs"}}}))
    serve = ServeProcess(cfg)
    try:
        conn = httplib.HTTPConnection("127.0.0.1", int(serve.url.rsplit(":", 1)[1]), timeout=10)
        for _ in range(20):
            conn.request("POST", "/v2/models/iris/infer", body=json.dumps(oip(2)), headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["outputs"][0]["shape"] == [2, 3]
        assert wait_until(lambda: sample(serve.metrics(), "monitor_predictions_total", model="iris") == 40)
        text = serve.metrics()
        assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="oip_v2", code="2xx") == 20
        assert sample(text, "monitor_http_request_duration_seconds_count", model="_sidecar", handler="proxy", code="200") == 20
    finally:
        code = serve.stop(signal.SIGTERM)  # with the keep-alive connection still open
        conn.close()
    assert code == 0, Path(tmp_path / "serve.log").read_text()


def test_a_slow_reader_gets_a_large_stream_intact_and_the_connection_stays_usable(awkward):
    """The client reads slowly: the proxy stops reading the upstream while the client's socket
    is full (instead of buffering the whole answer) and resumes; the keep-alive connection and
    the upstream connection are both usable afterwards."""
    with Wire(awkward.url) as w:
        w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        w.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = w.response(head_only=True)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        body = bytearray()
        while (size := int(w.f.readline().split(b";")[0], 16)) > 0:
            body += w.f.read(size)
            w.f.readline()
            if len(body) < 1 << 20:
                time.sleep(0.001)  # slow at first, so that the proxy's write buffer fills up
        w.f.readline()
        assert len(body) == BIG_CHUNKS * 65536
        assert all(body[i * 65536] == i % 256 and body[i * 65536 + 65535] == i % 256 for i in range(BIG_CHUNKS))
        w.send(b"DELETE /thing HTTP/1.1\r\nHost: x\r\n\r\n")
        assert w.response()[0] == 204
    assert http("GET", awkward.url + "/big").body == body


class _AnswersOnce(asyncio.Protocol):
    """An upstream that answers the first request of each connection and closes the connection,
    unanswered, on the second: a keep-alive connection the server dropped while the proxy
    reused it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""
        self.answered = 0

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
            if len(rest) < length:
                return
            self.buf = rest[length:]
            if self.answered:
                self.transport.close()
                return
            self.answered += 1
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_a_dropped_keep_alive_connection_is_retried_for_idempotent_requests_only(tmp_path, engine):
    lt = LoopThread()

    async def start() -> asyncio.AbstractServer:
        return await asyncio.get_running_loop().create_server(_AnswersOnce, "127.0.0.1", 0)

    server = lt.call(start())
    port = server.sockets[0].getsockname()[1]
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{port}")
    try:
        conn = httplib.HTTPConnection("127.0.0.1", int(s.url.rsplit(":", 1)[1]), timeout=10)
        answers = []
        for method in ("GET", "GET", "PUT", "POST"):
            conn.request(method, "/thing", body=b"x" if method != "GET" else None)
            r = conn.getresponse()
            answers.append((r.status, r.read()))
        conn.close()
        # GET and PUT go once more on a fresh connection; a POST is never sent twice: 502
        assert answers[:3] == [(200, b"ok")] * 3
        assert answers[3][0] == 502 and json.loads(answers[3][1])["reason"] == "upstream_disconnect"
    finally:
        s.close()
        server.close()
        lt.stop()


def test_a_large_intake_batch_on_the_proxy_port_reaches_the_sidecar_whole(lean):
    """A body spread over many reads, for one of the sidecar's own routes, is handed to aiohttp
    whole; chunked too."""
    rows = [{"inputs": [i % 5, 1.0, 2.0, 3.0], "outputs": [0.2, 0.5, 0.3], "request_id": f"r{i}"} for i in range(5000)]
    nd = "\n".join(json.dumps(r) for r in rows).encode()
    r = http("POST", lean.url + "/v1/events?model=iris", nd, {"Content-Type": "application/x-ndjson"})
    assert r.status == 202, r.body
    with Wire(lean.url) as w:
        half = len(nd) // 2
        w.send(b"POST /v1/events?model=iris HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, nd[:half], len(nd) - half, nd[half:]))
        assert w.response()[0] == 202
    assert wait_until(lambda: sample(lean.metrics(), "monitor_intake_events_accepted_total", model="iris", endpoint="events") == 10000)


def test_an_upgrade_request_is_forwarded_without_upgrading_and_the_connection_closed(lean):
    with Wire(lean.url) as w:
        w.send(b"GET /echo/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Keep: 1\r\n\r\n\x81\x05hello")
        status, headers, body = w.response()
        seen = json.loads(body)["headers"]
        assert status == 201 and seen["X-Keep"] == "1" and "Upgrade" not in seen and "Connection" not in seen
        assert headers["connection"] == "close" and w.closed()


@pytest.mark.parametrize("request_line", [b"GET /healthz HTTP/1.1\r\n", b"POST /v2/models/iris/infer HTTP/1.1\r\nContent-Length: 2\r\n"])
def test_an_http11_request_without_host_is_answered_400_counted_and_not_logged_as_an_error(lean, caplog, request_line):
    """HTTP/1.1 requires Host; aiohttp answered such a request for the sidecar's own routes 400,
    with a traceback logged at ERROR for each one (a broken client filled the agent's log). The
    lean engine answers it 400 itself, for every route as aiohttp does, counted as its other
    refusals are."""
    caplog.clear()
    before = sample(lean.metrics(), "monitor_proxy_requests_total", model="_sidecar", route="error", code="4xx") or 0
    with Wire(lean.url) as w:
        w.send(request_line + b"\r\n" + (b"{}" if request_line.startswith(b"POST") else b""))
        status, _, body = w.response()
        assert status == 400 and b"Host" in body and w.closed()
    assert sample(lean.metrics(), "monitor_proxy_requests_total", model="_sidecar", route="error", code="4xx") == before + 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    with Wire(lean.url) as w:  # with it, the same request is served
        w.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert w.response()[0] == 200


_PIECES = [b"POST /v2/models/iris/infer HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\n", b"GET /echo/x HTTP/1.0\r\n", b"Host: x\r\n",
           b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n", b"Expect: 100-continue\r\n",
           b"\r\n", b"5\r\nhello\r\n", b"0\r\n\r\n", b"hello", b'{"inputs": []}', b"\x00\xff", b"GET / HTTP/9.9\r\n"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=40)), max_size=12))
def test_fuzzed_bytes_never_break_the_lean_proxy(lean, caplog, parts):
    caplog.clear()
    sock = socket.create_connection(("127.0.0.1", int(lean.url.rsplit(":", 1)[1])), timeout=5)
    try:
        sock.sendall(b"".join(parts))
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # whatever the answers, the proxy ends the connection
            pass
    except OSError:
        pass  # reset by the proxy: fine
    finally:
        sock.close()
    assert http("POST", lean.url + "/v2/models/iris/infer", oip(1)).status == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_pipelining_and_hand_over_on_uvloop(tmp_path, servers):
    """``monitor serve`` runs on uvloop when it is installed: its transports hand the connection
    over (``set_protocol``) and pause and resume the same way."""
    uvloop = pytest.importorskip("uvloop")
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        s = start_proxying(IRIS, tmp_path, "lean", proxy_upstream=servers[0].url)
        assert type(s.server.lt.loop).__module__.startswith("uvloop")
    finally:
        asyncio.set_event_loop_policy(policy)
    try:
        with Wire(s.url) as w:
            w.send(post("/v2/models/iris/infer", json.dumps(oip(1)).encode()) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                   + post("/v2/models/iris/infer", json.dumps(oip(1, "req-2")).encode()))
            assert [w.response()[0] for _ in range(3)] == [200, 200, 200]
        assert [e[6] for e in tapped(s.monitor("iris"), 2)] == ["req-1", "req-2"]
    finally:
        s.close()


def test_shutdown_lets_a_request_in_flight_finish(tmp_path, servers, engine):
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=servers[1].url)
    answers: list = []
    AT_UPSTREAM.clear()
    t = threading.Thread(target=lambda: answers.append(http("GET", s.url + "/moment")))
    t.start()
    assert AT_UPSTREAM.wait(10), "the request did not reach the upstream"
    s.close()  # stops listening, waits for the answer in flight, then closes
    t.join(10)
    assert len(answers) == 1 and answers[0].status == 200 and answers[0].body == b"done"


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE"]),
       path=st.one_of(st.sampled_from(["/healthz", "/metrics", "/v1/events", "/v1/cloudevents", "/api/v1/status", "/",
                                       "/v2/models/iris/infer", "/v2/models/iris/versions/3/infer", "/v2/models/special/infer",
                                       "/models/a%20b/predict", "/v2/models/x%2Fy/infer", "/healthz/", "/metrics%3F"]),
                      st.lists(st.sampled_from(["v2", "models", "iris", "infer", "versions", "1", "metrics", "a%2F", "%41"]),
                               max_size=6).map(lambda parts: "/" + "/".join(parts))))
def test_the_route_table_resolves_as_aiohttp_does(method, path):
    """Each request goes where the application's aiohttp router sends it: the sidecar's own
    handler, or the proxy route with its tap and {model}; but for a path of the sidecar's own with
    another method, which the router gives to the proxy's catch-all and the table to the sidecar
    (its 405, with the methods of that path)."""
    from aiohttp.test_utils import make_mocked_request

    from monitor.config import parse_config
    from monitor.server import keys as K
    from monitor.server.app import build_sidecar, create_app
    from monitor.server.proxyroutes import RouteTable

    app = _ROUTED.get("app")
    if app is None:
        raw = {**IRIS, "server": {"proxy": {"upstream": "http://127.0.0.1:9", "routes": [
            {"path": "/v2/models/special/infer", "model": "iris"}, {"path": "/models/{model}/predict"}]}}}
        app = _ROUTED["app"] = create_app(build_sidecar(parse_config(raw, "/tmp/m.yaml", Path("/tmp"))))
    table = RouteTable.from_router(app.router, app[K.PROXY].taps)
    match = asyncio.run(app.router.resolve(make_mocked_request(method, path, app=app)))
    name = getattr(match.route, "name", None)
    got = table.resolve(method.encode(), path.encode())
    own = {r.canonical: {route.method for route in r} for r in app.router.resources()
           if all(route.name not in app[K.PROXY].taps for route in r)}
    if path in own and method not in own[path]:
        assert name == "proxy" and got.local and set(got.allowed) == own[path], (name, got)
    elif name in app[K.PROXY].taps:
        assert not got.local and got.tap is app[K.PROXY].taps[name] and got.model == match.get("model")
    else:
        assert got.local


_ROUTED: dict = {}


def test_a_client_gone_before_the_answer_is_counted_499_and_its_upstream_connection_dropped(tmp_path, servers):
    s = start_proxying(IRIS, tmp_path, "lean", proxy_upstream=servers[1].url)
    try:
        AT_UPSTREAM.clear()
        with Wire(s.url) as w:
            w.send(b"GET /moment HTTP/1.1\r\nHost: x\r\n\r\n")
            assert AT_UPSTREAM.wait(10), "the request did not reach the upstream"
        assert wait_until(lambda: sample(s.metrics(), "monitor_http_request_duration_seconds_count", model="_sidecar",
                                         handler="proxy", code="499") == 1)
        assert http("GET", s.url + "/moment").body == b"done"  # on a fresh upstream connection
    finally:
        s.close()


def test_requests_wait_for_a_connection_when_the_pool_is_full(tmp_path, servers, engine):
    from concurrent.futures import ThreadPoolExecutor

    s = start_proxying({**IRIS, "server": {"proxy": {"max_connections": 1, "oip_output": "probs"}}}, tmp_path, engine,
                       proxy_upstream=servers[0].url)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: http("POST", s.url + "/v2/models/iris/infer", oip(1, f"q{i}")), range(24)))
        assert [a.status for a in answers] == [200] * 24
        assert [a.json()["id"] for a in answers] == [f"q{i}" for i in range(24)]
        assert sorted(e[6] for e in tapped(s.monitor("iris"), 24)) == sorted(f"q{i}" for i in range(24))
    finally:
        s.close()


# -- framing headers named in Connection, close-delimited upstream bodies (both engines) ------------
def _raw_upstream(answer: bytes, *, close_after: bool) -> tuple[int, list[bytes]]:
    """A model server on a raw socket: records what it receives, answers ``answer`` to every read."""
    got: list[bytes] = []
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def handle(c: socket.socket) -> None:
        with c:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                got.append(data)
                c.sendall(answer)
                if close_after:
                    return

    def accept() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1], got


def _read_all(url: str, request: bytes, timeout: float = 5.0) -> bytes:
    host, port = url.replace("http://", "").split(":")
    data = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as c:
        c.sendall(request)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data += b
        except socket.timeout:
            pass
    return data


def test_connection_header_cannot_strip_the_request_length(tmp_path, engine):
    """``Connection: Content-Length`` must not make the proxy forward a body without its length:
    the upstream would read the body as a second, smuggled request."""
    port, got = _raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close_after=False)
    s = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{port}")
    try:
        body = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        reply = _read_all(s.url, b"POST /x HTTP/1.1\r\nHost: x\r\nConnection: close, Content-Length\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok")
        sent = b"".join(got)
        head, _, rest = sent.partition(b"\r\n\r\n")
        assert b"content-length: %d" % len(body) in head.lower()
        assert rest == body  # the body, framed by its length: nothing left over to parse as a request
    finally:
        s.close()


def test_connection_header_cannot_strip_the_response_length(tmp_path, engine):
    big = 2 * 1024 * 1024  # above the buffering limit: relayed as it arrives, with its length
    port, _ = _raw_upstream(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Content-Length\r\nContent-Length: %d\r\n\r\n%s"
                            % (big, b"x" * big), close_after=False)
    s = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{port}")
    try:
        reply = _read_all(s.url, b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        assert b"content-length: %d" % big in head.lower() and len(body) == big
    finally:
        s.close()


def test_a_close_delimited_upstream_body_reaches_the_client_whole(tmp_path, engine):
    """An HTTP/1.0 model server that ends its body by closing: an HTTP/1.1 client gets it chunked
    and complete (the terminating chunk included), not cut off."""
    port, _ = _raw_upstream(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world", close_after=True)
    s = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{port}")
    try:
        reply = _read_all(s.url, b"GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200")
        assert reply.endswith(b"b\r\nhello world\r\n0\r\n\r\n")
    finally:
        s.close()
