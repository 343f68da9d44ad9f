"""The sidecar's two timeouts over real HTTP on 127.0.0.1, each proved failing before its fix.

1. ``server.shutdown_timeout`` is one deadline from SIGTERM to the final checkpoint. Before, the
   lean proxy's listener waited the whole timeout for requests in flight and aiohttp's cleanup
   waited it again (once more per listener with a separate ``server.proxy.port``): with slow
   requests in flight a shutdown took twice the timeout or more, so under a pod's grace period
   the SIGKILL could land before the final checkpoint.
2. ``server.proxy.timeout`` is the time to the response head and then the longest silence of
   the body, not a limit on the whole exchange: a server-sent-event stream longer than the
   timeout was cut (and counted as an upstream disconnect) on both engines.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import threading
import time

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.sidecar_support import AppServer, http, sample, total, wait_until
from tests.test_proxy import IRIS, engine, start_proxying  # noqa: F401 - engine is a fixture
from tests.test_server_lifecycle import ServeProcess, events

__all__: list[str] = []

DRIP = [f"data: token {i}\n\n".encode() for i in range(8)]  # one every 0.5 s: 4 s in all


# -- 1. one shutdown deadline ---------------------------------------------------------------------
class SlowUpstream:
    """A model server that holds every request for up to 30 s (released at teardown)."""

    def __init__(self) -> None:
        self.arrived = 0
        self.release = threading.Event()

        async def hold(request: web.Request) -> web.Response:
            self.arrived += 1
            for _ in range(300):
                if self.release.is_set():
                    break
                await asyncio.sleep(0.1)
            return web.json_response({"outputs": []})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", hold)
        self.server = AppServer(app)
        self.url = self.server.url

    def close(self) -> None:
        self.release.set()
        self.server.close()


@pytest.fixture
def slow_upstream():
    up = SlowUpstream()
    yield up
    up.close()


def _request_in_background(url: str, path: str, outcome: list) -> threading.Thread:
    def go() -> None:
        try:
            outcome.append(http("POST", url + path, {"inputs": []}, timeout=60).status)
        except Exception as err:  # noqa: BLE001 - the expected outcome: the connection is cut
            outcome.append(type(err).__name__)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


SHUTDOWN_TIMEOUT_S = 6.0
MARGIN_S = 3.0  # over the timeout; the old behaviour took at least twice the timeout (12 s)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("engine_name", ["lean", "aiohttp"])
@pytest.mark.parametrize("separate_port", [False, True], ids=["same-port", "proxy-port"])
def test_sigterm_with_requests_in_flight_checkpoints_within_the_shutdown_timeout(tmp_path, slow_upstream, engine_name,
                                                                                  separate_port):
    """Proxied requests held 30 s by the model server and an intake request whose body never
    completes are in flight at SIGTERM. The process must exit within ``shutdown_timeout`` (plus a
    margin for the drain and the interpreter's exit) with the final checkpoint holding every
    event accepted before. Before the fix: the lean listener, then aiohttp's cleanup of each
    listener, each waited the whole timeout (12 s and more here)."""
    from monitor.server.leanproxy import lean_available

    if engine_name == "lean" and not lean_available():
        pytest.skip("the lean proxy engine needs httptools (a dependency of model-monitor)")
    proxy = {"upstream": slow_upstream.url, "engine": engine_name, **({"port": 0} if separate_port else {})}
    cfg = {**IRIS, "checkpoint": {"path": "state/iris.ckpt", "interval": "1h"},
           "server": {"port": 0, "shutdown_timeout": f"{SHUTDOWN_TIMEOUT_S}s", "proxy": proxy}}
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(cfg))
    serve = ServeProcess(config)
    stopped = False
    try:
        if separate_port:
            assert wait_until(lambda: len(serve.ready_file.read_text().split()) == 2, 20)
            proxy_url = "http://" + serve.ready_file.read_text().split()[1]
        else:
            proxy_url = serve.url
        assert http("POST", serve.url + "/v1/events", events(0, 40)).status == 202
        outcomes: list = []
        threads = [_request_in_background(proxy_url, f"/v2/models/iris/infer?n={i}", outcomes) for i in range(3)]
        assert wait_until(lambda: slow_upstream.arrived == 3, 20)
        # an intake request in flight on the sidecar's own port: its body never completes
        host, port = serve.url.removeprefix("http://").rsplit(":", 1)
        slow_intake = socket.create_connection((host, int(port)), timeout=60)
        slow_intake.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 100000\r\n\r\n[")
        time.sleep(0.3)  # let the sidecar start its handler

        t0 = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        code = serve.proc.wait(60)
        took = time.monotonic() - t0
        serve.log.close()
        stopped = True
        assert code == 0, (tmp_path / "serve.log").read_text()
        assert took <= SHUTDOWN_TIMEOUT_S + MARGIN_S, f"shutdown took {took:.1f} s with shutdown_timeout {SHUTDOWN_TIMEOUT_S} s"
        for t in threads:
            t.join(10)
        assert len(outcomes) == 3 and 200 not in outcomes  # cut at the deadline, not answered
        slow_intake.close()

        from monitor import checkpoint

        state, _ = checkpoint.load(tmp_path / "state" / "iris.ckpt", model="iris")
        assert sorted(state["joiner"]["ids"]) == sorted(f"r{i}" for i in range(40))
        log = (tmp_path / "serve.log").read_text()
        assert "cutting" in log and "Traceback" not in log
    finally:
        if not stopped:
            serve.proc.kill()
            serve.proc.wait(10)
            serve.log.close()


def test_the_request_budget_leaves_a_reserve_for_the_drain_and_checkpoint():
    from monitor.server.lifecycle import request_budget

    assert request_budget(20.0) == 15.0  # the default: 5 s kept for drain, rules, checkpoint
    assert request_budget(2.0) == 1.5
    assert request_budget(60.0) == 55.0  # the reserve is capped
    assert request_budget(0.0) == 0.0


# -- 2. the proxy timeout is an idle timeout -------------------------------------------------------
def timing_app() -> web.Application:
    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for chunk in DRIP:
                await resp.write(chunk)
                await asyncio.sleep(0.5)
            await resp.write_eof()
        except ConnectionError:
            pass  # cut by the proxy (what the timeout did before the fix)
        return resp

    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: first\n\n")
        await asyncio.sleep(3)  # silent mid-body, past the proxy timeout
        try:
            await resp.write(b"data: late\n\n")
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(3)  # no head within the proxy timeout
        return web.Response(text="late")

    async def firehose(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        block = b"x" * 65536
        try:
            for _ in range(2000):  # up to 128 MiB, far more than the socket buffers on the way hold
                await resp.write(block)
            await resp.write_eof()
        except ConnectionError:
            pass  # the proxy gave up on this exchange
        return resp

    async def upload(request: web.Request) -> web.Response:
        try:
            body = await request.read()  # waits for the whole body, as a model server does
        except (ConnectionError, aiohttp.ClientPayloadError, web.HTTPException):
            return web.Response(status=400)
        return web.Response(text=str(len(body)))

    app = web.Application()
    app.router.add_post("/upload", upload)
    app.router.add_post("/v2/models/{name}/infer", upload)  # a tapped route (its answer is no prediction)
    app.router.add_get("/firehose", firehose)
    app.router.add_get("/drip", drip)
    app.router.add_get("/stall", stall)
    app.router.add_get("/silent", silent)
    return app


@pytest.fixture(scope="module")
def timing_upstream():
    srv = AppServer(timing_app())  # on its own loop thread, stopped by close()
    yield srv
    srv.close()


@pytest.fixture
def proxied(tmp_path, timing_upstream, engine):  # noqa: F811
    s = start_proxying({**IRIS, "server": {"proxy": {"timeout": "1s"}}}, tmp_path, engine, proxy_upstream=timing_upstream.url)
    yield s
    s.close()


async def _stream(url: str) -> tuple[int, list[bytes], str | None]:
    """Status, chunks, and the error that ended the body early (None when it ended cleanly)."""
    chunks: list[bytes] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async with s.get(url) as resp:
            try:
                async for chunk in resp.content.iter_any():
                    chunks.append(chunk)
            except aiohttp.ClientError as err:
                return resp.status, chunks, type(err).__name__
            return resp.status, chunks, None


def test_a_stream_longer_than_the_timeout_is_relayed_whole_while_its_chunks_keep_coming(proxied):
    """Chunks every 0.5 s for 4 s with ``server.proxy.timeout: 1s``: every chunk arrives and
    nothing is counted as an upstream error. Before the fix the timeout bounded the whole
    exchange: the stream was cut after 1 s and counted as a disconnect."""
    status, chunks, error = asyncio.run(_stream(proxied.url + "/drip"))
    assert status == 200 and error is None
    assert b"".join(chunks) == b"".join(DRIP)
    text = proxied.metrics()
    assert total(text, "monitor_proxy_upstream_errors_total") == 0
    assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="other", code="2xx") == 1


def test_a_body_silent_for_longer_than_the_timeout_is_cut_and_counted(proxied):
    """The head and a first chunk, then 3 s of silence with a 1 s timeout: the client sees the
    stream break off (no clean end) and the upstream error is counted as a disconnect, as an
    upstream timeout mid-body always was."""
    status, chunks, error = asyncio.run(_stream(proxied.url + "/stall"))
    assert status == 200
    assert error is not None  # the truncation is visible to the client
    assert b"".join(chunks) == b"data: first\n\n"
    assert wait_until(lambda: sample(proxied.metrics(), "monitor_proxy_upstream_errors_total", model="_sidecar",
                                     reason="disconnect") == 1)


def test_no_response_head_within_the_timeout_is_still_a_504(proxied):
    r = http("GET", proxied.url + "/silent")
    assert r.status == 504 and r.json()["reason"] == "upstream_timeout"
    assert sample(proxied.metrics(), "monitor_proxy_upstream_errors_total", model="_sidecar", reason="timeout") == 1



def test_a_client_that_stops_reading_is_cut_as_its_own_stall_not_an_upstream_error(proxied):
    """The timeout no longer bounds the whole exchange, so a client that stops reading a stream
    (which stops the model server's being read too) must not hold its upstream connection
    forever: after the timeout without progress its connection is closed and the request
    counted with code 499; nothing is counted against the model server."""
    host, port = proxied.url.removeprefix("http://").rsplit(":", 1)
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect((host, int(port)))
    try:
        c.sendall(b"GET /firehose HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
        cut = lambda: sample(proxied.metrics(), "monitor_http_request_duration_seconds_count",  # noqa: E731
                             model="_sidecar", handler="proxy", code="499")
        assert wait_until(lambda: (cut() or 0) == 1, 20)
        text = proxied.metrics()
        assert total(text, "monitor_proxy_upstream_errors_total") == 0
    finally:
        c.close()


def _stalled_upload(url: str, request: bytes) -> bytes:
    """Send ``request`` (a head and part of its body) and read the answer until the connection
    closes: the proxy closes it after its 408 (the rest of the body will never come)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=20) as c:
        c.sendall(request)
        answer = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                return answer
            answer += chunk


def _skip_unless_available(engine_name: str) -> None:
    if engine_name == "process":
        from monitor.server.dataplane import process_available

        if not process_available():
            pytest.skip("this platform cannot pass sockets between processes")
    if engine_name != "aiohttp":
        from monitor.server.leanproxy import lean_available

        if not lean_available():
            pytest.skip("the lean proxy engine needs httptools (a dependency of model-monitor)")


@pytest.mark.parametrize("engine_name", ["aiohttp", "lean", "process"])
def test_a_request_body_that_stops_arriving_is_the_clients_408_not_an_upstream_timeout(tmp_path, timing_upstream,
                                                                                       engine_name):
    """A client that declares a Content-Length and stops sending before its end (a stalled
    upload, a wrong length): the model server waits for the rest of the body, so no head comes
    within the timeout. The lean engine answered 504 upstream_timeout, counted it in
    monitor_proxy_upstream_errors_total{reason="timeout"} and logged the model server as stuck,
    which pages MonitorProxyUpstreamFailing for the clients' broken uploads; the aiohttp engine,
    which reads such a body whole before forwarding it, waited for it without any bound (this
    test's client gave up after 20 s). It is the client's 408 on every engine now, the connection
    closed after it, and nothing is counted against the model server. A complete body still gets
    the model server's answer on the same listener."""
    _skip_unless_available(engine_name)
    s = start_proxying({**IRIS, "server": {"proxy": {"timeout": "1s"}}}, tmp_path, engine_name,
                       proxy_upstream=timing_upstream.url)
    try:
        answer = _stalled_upload(s.url, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer
        assert b"Connection: close" in head
        assert json.loads(body)["reason"] == "client_timeout"
        r = http("POST", s.url + "/upload", b"y" * 1000)
        assert r.status == 200 and r.body == b"1000"
        text = s.metrics()
        assert total(text, "monitor_proxy_upstream_errors_total") == 0
        assert sample(text, "monitor_http_request_duration_seconds_count", model="_sidecar", handler="proxy", code="408") == 1
        assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="error", code="4xx") == 1
        assert total(text, "monitor_intake_events_refused_total") == 0  # an untapped route: nothing to monitor
    finally:
        s.close()


@pytest.mark.parametrize("engine_name", ["aiohttp", "lean", "process"])
def test_a_chunked_inference_request_that_stops_arriving_is_a_408_counted_as_refused(tmp_path, timing_upstream,
                                                                                     engine_name):
    """The same stall on a tapped route, in chunked transfer coding (a body of unknown length,
    which the aiohttp engine streams to the model server rather than reading it first): the
    aiohttp engine answered 504 upstream_timeout and counted it against the model server. Both
    engines answer the client's 408 now, and count the exchange the monitor never saw in the
    refusal metric under its own reason (neither counted it before)."""
    _skip_unless_available(engine_name)
    s = start_proxying({**IRIS, "server": {"proxy": {"timeout": "1s"}}}, tmp_path, engine_name,
                       proxy_upstream=timing_upstream.url)
    try:
        answer = _stalled_upload(s.url, b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n"
                                        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        b"a\r\n{\"inputs\":\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer
        assert json.loads(body)["reason"] == "client_timeout"
        assert wait_until(lambda: sample(s.metrics(), "monitor_intake_events_refused_total", model="_sidecar",
                                         endpoint="proxy", reason="client_timeout") == 1)
        text = s.metrics()
        assert total(text, "monitor_proxy_upstream_errors_total") == 0
        assert sample(text, "monitor_http_request_duration_seconds_count", model="_sidecar", handler="proxy", code="408") == 1
    finally:
        s.close()
