"""The reverse proxy's lean data path: asyncio protocols and the llhttp parser (``httptools``).

Why: behind aiohttp's server and client session a proxied request cost about 750 us of CPU in
``benchmarks/bench_proxy.py`` (request and response objects, header multidicts, a task per
request, a client request object, payload writers, timers), so on a 2-core pod the proxy
queued at a few hundred requests per second and its tail latency grew with it. Here one client
connection is one :class:`asyncio.Protocol`: each request is parsed by llhttp (the C parser
aiohttp and uvicorn use), its head re-framed once as bytes and written to a pooled keep-alive
upstream connection, whose response is parsed the same way and relayed; bodies are passed
through as they arrive (small responses are buffered and written with their head in one call).

What is forwarded, and answered, is what the aiohttp engine (:mod:`monitor.server.proxy`)
forwards and answers: method, path and query as sent, every header but the hop-by-hop ones (and
those the ``Connection`` header lists) with ``Host`` set to the upstream; status, reason,
headers and body back unchanged; ``Content-Length``, chunked and close-delimited responses;
HEAD; interim 1xx answers swallowed; streaming relayed chunk by chunk; 502/504 with the same JSON
body when the model server cannot be reached, breaks off or times out (``server.proxy.timeout``
is the time to the response head, then the longest silence while the body streams: see
:mod:`monitor.server.proxy`); the same metrics and the
same tap (:meth:`monitor.server.proxy.Proxy.tap`, run once the response has been handed to the
client's connection).

The sidecar's own endpoints keep their precedence: each request is resolved against the aiohttp
application's routes, the way aiohttp resolves them (:mod:`monitor.server.proxyroutes`), and a
request for one of the sidecar's own routes (``/metrics``, ``/v1/events``...) hands the
connection over to the application's aiohttp protocol, with the bytes of that request, so auth,
limits and answers there are aiohttp's as before; so does one of those paths asked for with another
method (``GET /v1/events``), which the sidecar answers 405 rather than the model server. The upstream connections and their pool are in
:mod:`monitor.server.upstream`.

Differences from the aiohttp engine, all on the wire: a request body with a ``Content-Length``
is forwarded with it (the aiohttp engine re-chunked large ones) and a request without a body
without the ``Content-Length: 0`` aiohttp's client adds to e.g. DELETE; no ``Date``/``Server``
header is added to an upstream response that has none; a malformed request is answered ``400``
and the connection closed; a header field over 8 KiB is aiohttp's 400, where the lean engine
forwards heads up to 1 MiB (:data:`_HEAD_MAX`) and answers a longer one ``431``, the connection
closed; an upgrade request (WebSocket) is forwarded
without its ``Upgrade`` header as before, and its connection closed after the answer. Once a connection has carried a
request for the sidecar's own routes, aiohttp serves the rest of it (its proxied requests on the
aiohttp engine). Alike on both: a request body that stops arriving is answered 408
``client_timeout`` once ``server.proxy.timeout`` has passed, and the connection closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from monitor.server import keys as K
from monitor.server.errors import CLIENT_TIMEOUT
from monitor.server.proxy import (BUFFER_LIMIT, HOP_BY_HOP, BinaryHeads, Proxy, _Tap, client_timeout_body, fail_body,
                                  header_text, request_labels)
from monitor.server.proxyroutes import RouteTable, Target

try:  # the llhttp binding; without it the proxy runs on the aiohttp engine
    import httptools

    from monitor.server.upstream import UpstreamConnection, UpstreamPool
except ImportError:  # pragma: no cover - httptools is a dependency
    httptools = None

__all__ = ["Deadlines", "LeanProxy", "LeanProxySite", "LeanSettings", "ProxySink", "SidecarSink", "TapRecord", "engine_of",
           "lean_available", "make_site"]

log = logging.getLogger("monitor.server")

_HOP = frozenset(h.encode() for h in HOP_BY_HOP)
_HOP_OR_HOST = _HOP | {b"host"}  # request headers not forwarded as they are (Host is the upstream's)
#: Message framing: a ``Connection`` header may not remove these (the proxy frames bodies itself;
#: honouring ``Connection: Content-Length`` would forward a body without its length and let its
#: bytes be read upstream as a second, smuggled request).
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host"})
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_PAUSE_BYTES = 1 << 20  # request bytes held while no upstream connection is ready, before reading pauses
#: A request head (request line and headers) longer than this is answered 431 and its connection
#: closed: llhttp holds a header until its end, so an endless header line or URL grew the data
#: path's memory without a bound (400 MB sent: 790 MB resident). aiohttp's server caps a header
#: at 8 KiB; heads are counted a read at a time, so the bound is loose by at most one read.
_HEAD_MAX = 1 << 20
#: the client's connection paused because the model server's side is not taking the request's bytes
#: (its connection does not read, or none is free): a body not all sent then is not the client's fault
_UPSTREAM_PAUSES = frozenset({"upstream", "buffer"})


def lean_available() -> bool:
    """Whether ``httptools`` (the llhttp binding) can be imported."""
    return httptools is not None


def engine_of(proxy: Proxy) -> str:
    """The engine a proxy runs on: ``lean`` or ``aiohttp`` (``server.proxy.engine``; ``auto``
    takes the lean one for an ``http://`` upstream when httptools is installed)."""
    wanted = proxy.settings.engine
    plain = proxy.upstream.startswith("http://")
    if wanted == "aiohttp":
        return "aiohttp"
    if wanted == "lean":
        if not plain:
            raise ValueError("server.proxy.engine: lean speaks plain HTTP to the model server; use engine: aiohttp for https")
        if not lean_available():
            raise ValueError("server.proxy.engine: lean needs httptools (pip install httptools), or write engine: aiohttp")
        return "lean"
    return "lean" if plain and lean_available() else "aiohttp"


# -- headers ---------------------------------------------------------------------------------------
def _find(headers: list[tuple[bytes, bytes]], lname: bytes) -> bytes | None:
    for name, value in headers:
        if name.lower() == lname:
            return value
    return None


_LOWER: dict[bytes, bytes] = {}  # header names as sent -> lower case: the same few names come in every request
_LOWER_MAX = 1024  # names remembered (any client may send any names: bounded, as is each name's length);
_LOWER_NAME_MAX = 64  # beyond, lowered each time


def _lower(name: bytes) -> bytes:
    lname = name.lower()
    if len(_LOWER) < _LOWER_MAX and len(name) <= _LOWER_NAME_MAX:
        _LOWER[name] = lname
    return lname


#: what the response re-framing does with a header, by its name as sent: 0 relay it, 1 its
#: Content-Length, 2 its Content-Type, 3 its Content-Encoding (relayed, and looked at), 4 its
#: Transfer-Encoding, 5 its Connection, 6 another hop-by-hop header (not relayed), 7 its
#: Inference-Header-Content-Length (relayed, and kept for the tap: Triton's binary tensors)
_RESP_CODES: dict[bytes, int] = {}
_RESP_CODE_OF = {b"content-length": 1, b"content-type": 2, b"content-encoding": 3, b"transfer-encoding": 4,
                 b"connection": 5, b"inference-header-content-length": 7}


def _resp_code(name: bytes) -> int:
    lname = name.lower()
    code = _RESP_CODE_OF.get(lname, 6 if lname in _HOP else 0)
    if len(_RESP_CODES) < _LOWER_MAX and len(name) <= _LOWER_NAME_MAX:
        _RESP_CODES[name] = code
    return code


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")



# -- one request and its response ------------------------------------------------------------------
class _Exchange:
    """One proxied request: its head re-framed for the upstream, its body relayed as it
    arrives, the upstream's answer relayed back, then metrics and the tap."""

    # one is made per request: slots make it, and reading its fields, cheaper
    __slots__ = ("body_done", "chunked", "close_client", "conn", "deadline", "done", "head_sent",
                 "last_read", "lean", "meta", "method", "mode", "out", "out_size", "reason", "resp", "resp_binary", "resp_encoding",
                 "resp_lines", "resp_size", "retried", "route", "sent", "sent_size", "started", "status", "t0", "t_req",
                 "t_start", "tap_body", "tap_size", "timer", "until_close", "upstream", "upstream_keep_alive", "version")

    def __init__(self, conn: "_Client", method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]],
                 keep_alive: bool, route: Target) -> None:
        lean = conn.lean
        self.conn = conn
        self.lean = lean
        self.method = method
        self.version = version
        self.route = route
        self.t_start = time.time()
        self.t_req = time.perf_counter()
        self.t0 = 0.0
        self.done = False
        self.started = False
        self.body_done = False
        self.upstream: UpstreamConnection | None = None
        self.timer: asyncio.TimerHandle | None = None  # once the first deadline has passed mid-body: the next one
        self.deadline: list | None = None  # this exchange's entry in the listener's deadline queue
        self.last_read = 0.0  # loop time of the response's last bytes (its head, then each body chunk)
        self.retried = False
        chunked = False
        listed: set[bytes] | None = None  # headers the Connection header names: hop-by-hop too
        meta: dict[bytes, bytes] = {}
        wanted = lean.wanted
        # the head is framed as the headers are read; should the Connection header name some of
        # them (rare), it is framed again without those
        lines = [method, b" ", lean.prefix, target, b" HTTP/1.1\r\nHost: ", lean.host_header, b"\r\n"]
        lowered = _LOWER.get
        for name, value in headers:
            lname = lowered(name) or _lower(name)
            if lname in _HOP_OR_HOST:
                if lname == b"transfer-encoding":
                    chunked = chunked or b"chunked" in value.lower()
                elif lname == b"connection":
                    listed = (listed or set()) | {t.strip().lower() for t in value.split(b",") if t.strip()}
                continue
            if lname in wanted and lname not in meta:
                meta[lname] = value
            lines += (name, b": ", value, b"\r\n")
        self.meta = meta
        if listed:
            listed -= _FRAMING
            if listed:
                del lines[7:]
                for name, value in headers:
                    lname = name.lower()
                    if lname not in _HOP_OR_HOST and lname not in listed:
                        lines += (name, b": ", value, b"\r\n")
        if chunked:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        lines.append(b"\r\n")
        self.chunked = chunked
        self.out: list[bytes] | None = [b"".join(lines)]  # request bytes not yet written upstream
        self.out_size = 0
        self.sent: list[bytes] | None = [] if method in _IDEMPOTENT else None  # for one retry on a stale connection
        self.sent_size = 0
        self.tap_body: list[bytes] | None = [] if route.tap is not None else None
        self.tap_size = 0
        # the response
        self.status = 0
        self.mode = ""
        self.until_close = False
        self.head_sent = False
        self.resp: list[bytes] = []
        self.resp_size = 0
        self.resp_lines = b""  # the response's header lines as they are relayed (framing and Connection apart)
        self.resp_binary: bytes | None = None  # its Inference-Header-Content-Length
        self.close_client = not keep_alive

    # -- the request -----------------------------------------------------------------------------
    def start(self) -> None:
        """Called when this exchange reaches the front of its connection's queue."""
        self.started = True
        self.deadline = self.lean.deadlines.add(self)
        if not self.body_done and self.version == "1.1" and self.meta.get(b"expect", b"").lower() == b"100-continue":
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.t0 = time.perf_counter()
        self.lean.pool.acquire(self)

    def attach(self, up: UpstreamConnection) -> None:
        self.upstream = up
        up.exchange = self
        up.received = False
        conn = self.conn
        if conn.write_paused:  # the client is not reading: neither does this answer's connection
            up.hold(conn)
            conn.held = up
        out = self.out
        self.out = None
        if out:
            data = b"".join(out)
            if self.sent is not None:
                self.sent.append(data)
                self.sent_size += len(data)
            assert up.transport is not None
            up.transport.write(data)
        if conn.pauses:
            conn.resume("buffer")

    def _send(self, data: bytes) -> None:
        if self.out is not None:
            self.out.append(data)
            self.out_size += len(data)
            if self.out_size > _PAUSE_BYTES:
                self.conn.pause("buffer")
        elif self.upstream is not None and not self.upstream.closed:
            assert self.upstream.transport is not None
            self.upstream.transport.write(data)
        if self.sent is not None:
            if self.out is None:
                self.sent.append(data)
                self.sent_size += len(data)
            if self.out_size > BUFFER_LIMIT or self.sent_size > BUFFER_LIMIT:
                self.sent = None

    def request_body(self, data: bytes) -> None:
        if self.done:
            return
        tap_body = self.tap_body
        if tap_body is not None:
            self.tap_size += len(data)
            if self.tap_size > self.lean.max_body:
                self.tap_body = None
            else:
                tap_body.append(data)
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        elif self.sent is None and self.out is not None:  # the common case, as _send does it
            self.out.append(data)
            self.out_size += len(data)
            if self.out_size > _PAUSE_BYTES:
                self.conn.pause("buffer")
            return
        self._send(data)

    def request_done(self) -> None:
        self.body_done = True
        if not self.done and self.chunked:
            self._send(b"0\r\n\r\n")

    # -- the response ----------------------------------------------------------------------------
    def response_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], keep_alive: bool) -> None:
        self.status = status
        self.last_read = self.lean.loop.time()  # from here the timeout bounds each silence, not the whole body
        self.upstream_keep_alive = keep_alive
        length = None
        chunked = False
        sse = False
        encoding = None
        binary = None
        te_chunked = False
        listed: set[bytes] | None = None
        # the header lines but Content-Length's, framed as they are read: what a buffered answer
        # (the common case) sends, with its length written anew; the other cases frame again below
        lines: list[bytes] = []
        code_of = _RESP_CODES.get
        for name, value in headers:
            code = code_of(name)
            if code is None:
                code = _resp_code(name)
            if code:
                if code == 1:
                    length = int(value)
                    continue
                elif code == 2:
                    sse = value.lower().startswith(b"text/event-stream")
                elif code == 3:
                    encoding = encoding or value
                elif code == 7:
                    binary = binary or value
                else:
                    if code == 4:
                        chunked = True
                        te_chunked = te_chunked or b"chunked" in value.lower()
                    elif code == 5:
                        listed = (listed or set()) | {t.strip().lower() for t in value.split(b",") if t.strip()}
                    continue
            lines += (name, b": ", value, b"\r\n")
        if listed:
            listed -= _FRAMING
        # no length and not chunked upstream: the body ends when the model server closes
        self.until_close = length is None and not te_chunked
        buffered = False
        if self.method == b"HEAD" or status in (101, 204, 304):
            mode = "none"
            self.close_client = self.close_client or status == 101
        elif length is not None and not chunked and length <= BUFFER_LIMIT and not sse:
            mode = "buffer"  # its Content-Length is written anew with the body
            buffered = True
        elif length is not None and not chunked:
            mode = "length"
        else:
            mode = "chunked" if self.version == "1.1" else "close"
            if mode == "close":
                self.close_client = True
        self.mode = mode
        self.reason = reason
        if listed or (length is not None and not buffered):
            # a header the Connection header names, or a Content-Length that stays where it was
            lines = []
            for name, value in headers:
                lname = name.lower()
                if lname in _HOP or (listed and lname in listed) or (buffered and lname == b"content-length"):
                    continue
                lines += (name, b": ", value, b"\r\n")
        self.resp_lines = b"".join(lines)
        self.resp_encoding = encoding
        self.resp_binary = binary
        if not buffered and mode != "none":  # length, chunked, close: the head goes now, the body as it comes
            self.conn.write(self._head())
            self.head_sent = True

    def _head(self, body_length: int | None = None) -> bytes:
        v11 = self.version == "1.1"
        if not self.body_done:
            self.close_client = True  # the rest of the request body is not read
        if body_length is not None:
            framing = b"Content-Length: %d\r\n" % body_length
        elif self.mode == "chunked":
            framing = b"Transfer-Encoding: chunked\r\n"
        else:
            framing = b""
        if self.close_client:
            connection = b"Connection: close\r\n"
        else:
            connection = b"" if v11 else b"Connection: keep-alive\r\n"
        return b"%s %d %s\r\n%s%s%s\r\n" % (b"HTTP/1.1" if v11 else b"HTTP/1.0", self.status, self.reason, self.resp_lines,
                                             framing, connection)

    def response_body(self, data: bytes) -> None:
        if self.done:
            return
        self.last_read = self.lean.loop.time()
        mode = self.mode
        if mode == "buffer":
            self.resp.append(data)
            return
        self.conn.write(b"%x\r\n%s\r\n" % (len(data), data) if mode == "chunked" else data)
        if self.route.tap is not None and self.resp_size >= 0:
            self.resp_size += len(data)
            if self.resp_size > self.lean.max_body:
                self.resp, self.resp_size = [], -1
            else:
                self.resp.append(data)

    def response_done(self, up: UpstreamConnection, close: bool) -> None:
        if self.done:
            return
        route = self.route
        lean = self.lean
        if route.tap is not None:
            lean.sink.tapping()  # before the answer's last bytes: a tap is never owed unannounced
        now = time.perf_counter()  # the answer is complete: both durations end here
        elapsed = now - self.t0
        body: bytes | None = None
        mode = self.mode
        if mode == "buffer":
            body = b"".join(self.resp)
            self.conn.write(self._head(len(body)) + body)
        elif mode == "none":
            self.conn.write(self._head())
        elif mode == "chunked":
            self.conn.write(b"0\r\n\r\n")
            body = None if self.resp_size < 0 else b"".join(self.resp)
        else:
            body = None if self.resp_size < 0 else b"".join(self.resp)
        self.done = True  # _finished, inline: once per answer
        if self.deadline is not None:
            self.deadline[1] = None
            self.deadline = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        keep = self.upstream_keep_alive and not close and self.body_done and not up.closed
        self.upstream = None
        try:
            lean.pool.release(up, keep)
            tap = None if route.tap is None else self._tap(body)
            lean.sink.answered(route, self.status, elapsed, now - self.t_req, tap)
        except Exception:  # noqa: BLE001 - Proxy.tap counts its own failures; this is a last guard
            log.exception("proxy: bookkeeping after a response failed")
        finally:
            self.conn.exchange_done(self)

    def _tap(self, resp_body: bytes | None) -> "TapRecord":
        req_body = None if self.tap_body is None else b"".join(self.tap_body)
        meta = self.meta
        encoding = self.resp_encoding
        resp_encoding = None if encoding is None else encoding.decode("latin-1")
        resp_binary = self.resp_binary
        if not meta:  # the common case: no header the tap reads
            return (self.route.model, self.conn.peer, None, req_body, resp_body, resp_encoding, None, self.t_start,
                    None if resp_binary is None else (None, _text(resp_binary)), None)
        header = self.lean.client_header
        client = Proxy.client_identity(header_text(meta.get(header)) if header else None, self.conn.peer)
        req_binary = meta.get(b"inference-header-content-length")
        binary = None if req_binary is None and resp_binary is None else (_text(req_binary), _text(resp_binary))
        segment_header = self.lean.segment_header
        segment = Proxy.header_segment(header_text(meta.get(segment_header))) if segment_header else None
        return (self.route.model, client, header_text(meta.get(b"x-request-id")), req_body, resp_body,
                resp_encoding, _text(meta.get(b"content-encoding")), self.t_start, binary, segment)

    # -- failures --------------------------------------------------------------------------------
    def upstream_lost(self, up: UpstreamConnection, exc: BaseException | None) -> None:
        """The upstream connection closed, or its answer could not be parsed, mid-exchange."""
        if self.done:
            return
        self.upstream = None
        if self.status == 0:
            if (up.reused and not up.received and (exc is None or isinstance(exc, OSError)) and self.sent is not None
                    and self.body_done and not self.retried):
                # a keep-alive connection the model server had closed: once more on a fresh one, as
                # aiohttp's client does for idempotent methods
                self.retried = True
                self.out = list(self.sent)
                self.out_size = sum(map(len, self.out))
                self.sent = []
                self.sent_size = 0
                self.lean.pool.acquire(self)
                return
            name = "ServerDisconnectedError" if exc is None else type(exc).__name__
            self.fail(502, "disconnect", f"the model server closed the connection ({name})")
        elif exc is None and (self.mode == "close" or (self.mode == "chunked" and self.until_close)):
            self.response_done(up, True)  # a close-delimited body ends with the connection
        elif not self.head_sent:
            name = "ClientPayloadError" if exc is None else type(exc).__name__
            self.fail(502, "disconnect", f"the model server broke off the response ({name})")
        else:
            self.broke_off()

    def broke_off(self) -> None:
        """The upstream failed after the response head went out: the client must see the
        truncation, so its connection is closed."""
        self._finished()
        lean = self.lean
        lean.sink.count("monitor_proxy_upstream_errors", ("disconnect",))
        lean.sink.count("monitor_proxy_requests", request_labels(self.route.tap, self.status))
        self._record(self.status)
        self._drop_upstream()
        self.conn.abort()

    def fail(self, status: int, reason: str, message: str) -> None:
        if self.done:
            return
        if self.head_sent:
            self.broke_off()
            return
        self._finished()
        self._drop_upstream()
        lean = self.lean
        lean.sink.count("monitor_proxy_upstream_errors", (reason,))
        lean.sink.count("monitor_proxy_requests", ("error", f"{status // 100}xx"))
        self._record(status)
        body = json.dumps(fail_body(reason, message)).encode()
        if not self.body_done:
            self.close_client = True
        self.conn.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n%s\r\n%s"
                        % (status, b"Bad Gateway" if status == 502 else b"Gateway Timeout", len(body),
                           b"Connection: close\r\n" if self.close_client else b"", body))
        self.conn.exchange_done(self)

    def timed_out(self) -> None:
        """``server.proxy.timeout`` has passed since the exchange started (no head yet: 504) or
        since the response's last bytes (a silence that long mid-body: cut). The timer is not
        moved on every chunk: it fires, and is set again from the last read while the body flows."""
        self.timer = None
        if self.done:
            return
        if self.status == 0:
            if not self.body_done and not (self.conn.pauses & _UPSTREAM_PAUSES):
                self.client_body_timed_out()
                return
            self.fail(504, "timeout", "the model server did not answer in time")
            return
        loop = self.lean.loop
        again = self.last_read + self.lean.timeout
        if again > loop.time():
            self.timer = loop.call_at(again, self.timed_out)
        elif self.conn.write_paused:
            # the client has not read for the timeout (and so the model server was not read):
            # the client's stall, counted 499 as a client gone, not as the model server's failure
            self.client_lost()
            self.conn.abort()
        else:
            self.fail(502, "disconnect", "the model server broke off the response (TimeoutError)")

    def client_body_timed_out(self) -> None:
        """No response head within the timeout because the client has not sent all of its request
        body (a stalled upload, or a Content-Length larger than the body sent) while the proxy was
        reading it: the model server is waiting for that body. Answered 408 and the connection
        closed, counted as the client's (``code="408"``): it was answered 504 upstream_timeout,
        counted in ``monitor_proxy_upstream_errors_total`` and logged as the model server being
        stuck, which pages MonitorProxyUpstreamFailing for clients that break off their uploads.
        On a tapped route the exchange is also counted refused (``reason="client_timeout"``), as
        the aiohttp engine counts it."""
        self._finished()
        self._drop_upstream()
        lean = self.lean
        lean.sink.count("monitor_proxy_requests", ("error", "4xx"))
        if self.route.tap is not None:
            lean.sink.count("monitor_intake_events_refused", ("proxy", CLIENT_TIMEOUT))
        self._record(408)
        body = json.dumps(client_timeout_body(lean.timeout)).encode()
        self.close_client = True
        self.conn.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        self.conn.exchange_done(self)

    def client_lost(self) -> None:
        """The client went away (or its connection is given up) before the answer."""
        if self.done:
            return
        self._finished()
        self._drop_upstream()
        if self.started:  # a pipelined request never started was never handled: not counted
            self._record(499)

    def _drop_upstream(self) -> None:
        up = self.upstream
        self.upstream = None
        if up is not None:
            up.exchange = None
            up.close()

    def _finished(self) -> None:
        self.done = True
        if self.deadline is not None:
            self.deadline[1] = None  # its entry in the deadline queue is now void
            self.deadline = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _record(self, status: int) -> None:
        self.lean.sink.request_time(status, time.perf_counter() - self.t_req)


# -- the client side -------------------------------------------------------------------------------
class _Bridge:
    """Requests for the sidecar's own routes, re-framed as bytes for the application's aiohttp
    protocol, which takes the connection over once everything before them is answered."""

    def __init__(self, conn: "_Client") -> None:
        self.conn = conn
        self.proto: asyncio.Protocol | None = None
        self.buf: list[bytes] = []
        self.size = 0
        self.chunked = False
        #: the name of the sidecar route the latest request is for (its refusals' endpoint label)
        self.route: str | None = None

    def write(self, data: bytes) -> None:
        if self.proto is not None:
            self.proto.data_received(data)
        else:
            self.buf.append(data)
            self.size += len(data)
            if self.size > _PAUSE_BYTES:
                self.conn.pause("bridge")  # read on once the requests before it are answered


class _Client(asyncio.Protocol):
    """One client connection: requests parsed by llhttp, answered in order, one at a time."""

    def __init__(self, lean: "LeanProxy") -> None:
        self.lean = lean
        self.parser: "httptools.HttpRequestParser" = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.queue: deque[_Exchange | _Bridge] = deque()
        self.cur: _Exchange | None = None
        self.in_message = False
        #: inside a request's head: its bytes so far are in the parser (and ``url``/``headers``),
        #: not yet re-framed for the bridge
        self.in_head = False
        self.head_size = 0  # bytes read while in the current request's head (see _HEAD_MAX)
        self.url: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.bridge: _Bridge | None = None
        self.handed_over = False
        self.pauses: set[str] = set()
        self.closing = False
        self.ignore = False
        self.write_paused = False
        self.held: UpstreamConnection | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, (tuple, list)) and peer else None
        self.lean.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.lean.conns.discard(self)
        for item in self.queue:
            if isinstance(item, _Exchange):
                item.client_lost()
        self.queue.clear()
        if self.bridge is not None and self.bridge.proto is not None:
            self.bridge.proto.connection_lost(exc)

    def eof_received(self) -> bool | None:
        if self.bridge is not None and self.bridge.proto is not None:
            return self.bridge.proto.eof_received()
        return None

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.bridge is not None and self.bridge.proto is not None:
            self.bridge.proto.pause_writing()
        elif self.queue and isinstance(self.queue[0], _Exchange):
            up = self.queue[0].upstream
            if up is not None:
                up.hold(self)
                self.held = up

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.bridge is not None and self.bridge.proto is not None:
            self.bridge.proto.resume_writing()
        if self.held is not None:
            self.held.unhold(self)
            self.held = None

    def data_received(self, data: bytes) -> None:
        if self.ignore or self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as up:
            if self.bridge is not None:
                self.bridge.write(data[up.args[0]:])
            else:  # forwarded without its Upgrade header, answered, then closed: what follows is not HTTP
                self.ignore = True
                last = self.queue[-1] if self.queue else None
                if isinstance(last, _Exchange):
                    last.close_client = True
                else:
                    self._close_after()
        except httptools.HttpParserCallbackError as err:
            log.error("proxy: failure while parsing a request", exc_info=err.__context__ or err)
            self.lean.sink.count("monitor_proxy_requests", ("error", "5xx"))
            self.bad(500, b"Internal Server Error")
        except httptools.HttpParserError:
            # a request that is not HTTP/1.1 (a TLS hello on the plain port, a broken client): counted
            # as the aiohttp engine's middleware counts its 400s, else no series showed it
            self.lean.sink.count("monitor_proxy_requests", ("error", "4xx"))
            self.bad(400, b"Bad Request")
        if self.in_head and not self.ignore:
            self.head_size += len(data)
            if self.head_size > _HEAD_MAX:
                self.lean.sink.count("monitor_proxy_requests", ("error", "4xx"))
                self.bad(431, b"Request Header Fields Too Large")
                return
        queue = self.queue
        if queue and not self.closing:  # after the whole read: a request's head and body go upstream in one write
            front = queue[0]
            if type(front) is _Exchange:
                if not front.started:
                    front.start()
            else:
                self._start_front()
        bridge = self.bridge
        if bridge is not None and bridge.proto is not None and not self.in_message and not self.handed_over:
            self.handed_over = True  # from now on the bytes go to aiohttp's protocol directly
            assert self.transport is not None
            self.transport.set_protocol(bridge.proto)

    # llhttp callbacks
    def on_message_begin(self) -> None:
        self.in_message = True
        self.in_head = True
        self.head_size = 0
        self.url = []
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.ignore:
            return
        parser = self.parser
        version = parser.get_http_version()
        if version == "1.1" and _find(self.headers, b"host") is None:
            # HTTP/1.1 requires it, and aiohttp (both engines' server) answers 400: here, as llhttp's
            # refusals are, counted and without the traceback aiohttp logs at ERROR per request
            self.lean.sink.count("monitor_proxy_requests", ("error", "4xx"))
            self.bad(400, b"Bad Request: missing Host header")
            return
        method = parser.get_method()
        target = b"".join(self.url)
        route = self.lean.routes.resolve(method, target)
        if route.local or self.bridge is not None:
            self._to_bridge(method, target, version, route.name if route.local else None)
            return
        ex = _Exchange(self, method, target, version, self.headers, parser.should_keep_alive(), route)
        self.cur = ex
        self.queue.append(ex)

    def on_body(self, body: bytes) -> None:
        if self.cur is not None:
            self.cur.request_body(body)
        elif self.bridge is not None:
            self.bridge.write(b"%x\r\n%s\r\n" % (len(body), body) if self.bridge.chunked else body)

    def on_message_complete(self) -> None:
        self.in_message = False
        ex = self.cur
        if ex is not None:
            self.cur = None
            ex.request_done()
            if len(self.queue) > 1:
                self.pause("pipeline")  # answered in order: read on once the earlier ones are done
        elif self.bridge is not None and self.bridge.chunked:
            self.bridge.write(b"0\r\n\r\n")

    # the sidecar's own routes
    def _to_bridge(self, method: bytes, target: bytes, version: str, route: str | None) -> None:
        bridge = self.bridge
        if bridge is None:
            bridge = self.bridge = _Bridge(self)
            self.queue.append(bridge)
        bridge.route = route
        te = _find(self.headers, b"transfer-encoding")
        bridge.chunked = te is not None and b"chunked" in te.lower()
        lines = [method, b" ", target, b" HTTP/", version.encode(), b"\r\n"]
        for name, value in self.headers:
            lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        bridge.write(b"".join(lines))

    def _attach(self, bridge: _Bridge) -> None:
        proto = self.lean.local_protocol()
        bridge.proto = proto
        self.lean.conns.discard(self)  # aiohttp's server tracks it from here
        self.pauses.clear()
        assert self.transport is not None
        self.transport.resume_reading()
        proto.connection_made(self.transport)
        if bridge.buf:
            data = b"".join(bridge.buf)
            bridge.buf = []
            proto.data_received(data)

    # flow and order
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def pause(self, why: str) -> None:
        if not self.pauses and self.transport is not None and not self.closing:
            self.transport.pause_reading()
        self.pauses.add(why)

    def resume(self, why: str) -> None:
        if why in self.pauses:
            self.pauses.discard(why)
            if not self.pauses and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    def exchange_done(self, ex: _Exchange) -> None:
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        elif ex in self.queue:
            self.queue.remove(ex)
        if self.cur is ex:
            self.cur = None
            self.ignore = True  # answered before its body ended: the connection closes
        if ex.close_client:
            self._close_after()
            return
        if self.pauses:
            self.resume("pipeline")
            self.resume("upstream")
            self.resume("buffer")
        if self.queue:
            self._start_front()
            bridge = self.bridge
            if bridge is not None and bridge.proto is not None and not self.in_message and not self.handed_over:
                self.handed_over = True
                assert self.transport is not None
                self.transport.set_protocol(bridge.proto)
        elif self.lean.stopping:
            self._close_after()

    def _start_front(self) -> None:
        front = self.queue[0]
        if isinstance(front, _Bridge):
            if front.proto is None:
                self._attach(front)
        elif not front.started:
            front.start()

    def _close_after(self) -> None:
        self.closing = True
        self.ignore = True
        for item in list(self.queue):
            if isinstance(item, _Exchange) and not item.done:
                item.client_lost()
        self.queue.clear()
        self.lean.conns.discard(self)
        if self.transport is not None:
            self.transport.close()  # after the buffered answer has gone out

    def abort(self) -> None:
        self._close_after()

    def bad(self, status: int, reason: bytes) -> None:
        """A request llhttp refuses: answered (when nothing is in flight) and the connection closed."""
        self.ignore = True
        if self.queue or self.bridge is not None:
            self.closing = True
            for item in list(self.queue):
                if isinstance(item, _Exchange):
                    item.client_lost()
            self.queue.clear()
            if self.transport is not None:
                self.transport.close()
            return
        body = b"%d: %s" % (status, reason)
        self.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                   % (status, reason, len(body), body))
        self._close_after()

    def idle(self) -> bool:
        return not self.queue and not self.in_message


# -- the listener ----------------------------------------------------------------------------------
_EARLY_S = 0.001  # a loop's timer may run up to its clock's resolution before its time (asyncio: clock_resolution)
_COMPACT_MIN = 4096  # entries in the deadline queue before void ones behind a live one are dropped


class Deadlines:
    """The first deadline of every exchange of one listener (``server.proxy.timeout`` after its
    start), in one queue served by one loop timer, instead of a timer per exchange (each a
    handle made, scheduled and cancelled per request).

    Every exchange gets the same timeout, so the deadlines come in the order they are added:
    the queue is first in, first out, and its timer waits for the oldest live one. An entry is
    ``[deadline, exchange]``; a finished exchange voids its own (``[deadline, None]``), and void
    entries are dropped as they reach the front, or, behind a live one (a long stream), all at
    once when the queue has doubled. An exchange whose deadline passes is called (``timed_out``)
    at that time, as its own timer did; a later deadline of the same exchange (a silence while
    its body streams) is its own timer, as before."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.queue: deque[list] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.compact_at = _COMPACT_MIN
        self.expiring = False  # in _expire: what is added meanwhile is timed from there, once it is done

    def add(self, ex: "_Exchange") -> list:
        queue = self.queue
        while queue and queue[0][1] is None:
            queue.popleft()
        if len(queue) >= self.compact_at:  # in place: _expire may be adding from inside a call
            live = [entry for entry in queue if entry[1] is not None]
            queue.clear()
            queue.extend(live)
            self.compact_at = max(_COMPACT_MIN, 2 * len(queue))
        entry = [self.loop.time() + self.timeout, ex]
        queue.append(entry)
        if self.timer is None and not self.expiring:
            self.timer = self.loop.call_at(entry[0], self._expire)
        return entry

    def _expire(self) -> None:
        self.timer = None
        self.expiring = True
        queue = self.queue
        now = self.loop.time() + _EARLY_S
        try:
            while queue:
                entry = queue[0]
                ex = entry[1]
                if ex is not None:
                    if entry[0] > now:
                        break
                    queue.popleft()  # before the call, which may add (and compact)
                    entry[1] = None
                    ex.deadline = None
                    ex.timed_out()
                    continue
                queue.popleft()
        finally:
            self.expiring = False
            if queue and self.timer is None:
                self.timer = self.loop.call_at(queue[0][0], self._expire)  # the oldest deadline left

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass(frozen=True)
class LeanSettings:
    """What the lean data path needs to know of the sidecar's settings (plain values: the data
    path may run in its own process, :mod:`monitor.server.dataplane`)."""

    upstream: str
    timeout_s: float
    max_connections: int
    max_body_bytes: int
    client_header: str | None
    segment_header: str | None = None

    @classmethod
    def of(cls, proxy: Proxy) -> "LeanSettings":
        settings = proxy.sidecar.settings
        return cls(proxy.upstream, proxy.settings.timeout_s, proxy.settings.max_connections, settings.max_body_bytes,
                   settings.client_header, settings.segment_header)


#: What the tap needs of a tapped exchange besides its route and status: the ``{model}`` of
#: the path, the client, the request's ``X-Request-Id``, both bodies (None: over the limit), the
#: response's and the request's content coding, the wall-clock time the request came in, and the
#: request's and the response's ``Inference-Header-Content-Length`` (None when neither has one),
#: and the segment of its rows (the ``server.segment_header`` value, :meth:`Proxy.header_segment`).
TapRecord = tuple[Optional[str], Optional[str], Optional[str], Optional[bytes], Optional[bytes], Optional[str],
                  Optional[str], float, BinaryHeads, Optional[str]]


class ProxySink(Protocol):
    """Where the data path reports each exchange: the sidecar itself (:class:`SidecarSink`), or,
    from the data path's own process, the channel to the sidecar. An answered exchange is one
    call (its metrics and its tap together); the failures' counts come one by one."""

    def tapping(self) -> None:
        """An exchange of a tapped route is being answered: its tap follows (or, should the
        process die first, is owed). Called before the answer's last bytes are written (a body
        relayed as it arrives with its length: just after), so that a client never holds a
        whole answer whose tap nothing counted."""
        ...

    def answered(self, route: Target, status: int, upstream_seconds: float, request_seconds: float,
                 tap: TapRecord | None) -> None: ...

    def count(self, name: str, labels: tuple[str, ...]) -> None: ...

    def request_time(self, status: int, seconds: float) -> None: ...


class SidecarSink:
    """The data path's reports, into the sidecar of this process: its store, its buffered
    histograms and the proxy's tap."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.store = proxy.sidecar.store
        self.http = proxy.sidecar.http

    def tapping(self) -> None:
        return None  # in this process the tap follows in the same call

    def answered(self, route: Target, status: int, upstream_seconds: float, request_seconds: float,
                 tap: TapRecord | None) -> None:
        self.record(route.tap, status, upstream_seconds, request_seconds, tap)

    def record(self, tap_route: "_Tap | None", status: int, upstream_seconds: float, request_seconds: float,
               tap: TapRecord | None) -> None:
        """One answered exchange into the sidecar's metrics, and through the tap (whichever
        process the data path ran in: the data path process's batches name the route's tap)."""
        self.count("monitor_proxy_requests", request_labels(tap_route, status))
        self.proxy.sidecar.upstream.record((), upstream_seconds)
        self.request_time(status, request_seconds)
        if tap_route is not None and tap is not None:
            model, client, request_id, body, resp_body, resp_encoding, req_encoding, ts, binary, segment = tap
            self.proxy.tap(tap_route, model, client, request_id, body, resp_body, status, resp_encoding, req_encoding,
                           upstream_seconds, ts, binary, segment)

    def count(self, name: str, labels: tuple[str, ...], n: int = 1) -> None:
        if name == "monitor_proxy_upstream_errors":  # counted and said by the proxy (the log's one place)
            self.proxy.upstream_failed(labels[0], n)
        else:
            self.store.inc(name, n, labels=labels)

    def request_time(self, status: int, seconds: float) -> None:
        self.http.record(("proxy", str(status)), seconds)


class LeanProxy:
    """State shared by every connection of one proxy listener: the route table, the upstream
    pool, where exchanges are reported, and the protocol factory of the sidecar's own routes."""

    def __init__(self, settings: LeanSettings, routes: RouteTable, sink: ProxySink,
                 local_protocol: Callable[[], asyncio.Protocol]) -> None:
        parts = urlsplit(settings.upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the lean proxy engine needs an http:// upstream, got {settings.upstream!r}")
        self.settings = settings
        self.sink = sink
        self.routes = routes
        self.local_protocol = local_protocol
        self.prefix = parts.path.rstrip("/").encode()
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna" if not parts.netloc.isascii() else "ascii")
        self.timeout = settings.timeout_s
        self.pool = UpstreamPool(parts.hostname, parts.port or 80, settings.max_connections, min(10.0, settings.timeout_s))
        self.max_body = settings.max_body_bytes
        header = settings.client_header
        self.client_header = header.lower().encode("latin-1") if header else None
        header = settings.segment_header
        self.segment_header = header.lower().encode("latin-1") if header else None
        #: request headers an exchange keeps aside while re-framing (the tap's and Expect)
        self.wanted = frozenset({b"expect", b"x-request-id", b"content-encoding", b"inference-header-content-length"}
                                | {h for h in (self.client_header, self.segment_header) if h})
        self.loop = asyncio.get_running_loop()
        self.conns: set[_Client] = set()
        self.stopping = False
        self.deadlines = Deadlines(self.loop, self.timeout)

    @classmethod
    def in_process(cls, proxy: Proxy, router: web.UrlDispatcher, local_protocol: Callable[[], asyncio.Protocol]) -> "LeanProxy":
        """The data path on this process's event loop, reporting to its sidecar."""
        return cls(LeanSettings.of(proxy), RouteTable.from_router(router, proxy.taps), SidecarSink(proxy), local_protocol)

    def protocol(self) -> _Client:
        return _Client(self)

    def in_flight(self) -> int:
        """Connections with a request in flight, once stopping; idle ones are closed here."""
        self.stopping = True  # a connection closes as soon as its last answer has gone out
        for conn in list(self.conns):
            if conn.idle():
                conn._close_after()
        return len(self.conns)

    async def shutdown(self, timeout: float) -> None:
        """Close idle connections, let the requests in flight finish (up to ``timeout``),
        then close everything: the requests still in flight are cut (their clients see the
        connection close; each is counted with code 499)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.conns):
            conn._close_after()
        self.pool.close()
        self.deadlines.close()


class LeanProxySite(web.BaseSite):
    """A TCP listener of an aiohttp runner whose connections start on the lean proxy path;
    requests for the application's own routes are handed to the runner's aiohttp protocol."""

    def __init__(self, runner: web.BaseRunner, app: web.Application, host: str, port: int, *,
                 reuse_address: bool = True, shutdown_timeout: float = 20.0) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._reuse_address = reuse_address
        self._shutdown_timeout = shutdown_timeout
        self._app = app
        self.lean: LeanProxy | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port} (lean proxy)"

    async def start(self) -> None:
        await super().start()
        await self._listen()

    async def _listen(self, sock: "socket.socket | None" = None) -> None:
        """Serve the lean path on this process's loop, on ``sock`` when it is already bound."""
        server = self._runner.server
        assert server is not None, "runner.setup() first"
        self.lean = LeanProxy.in_process(self._app[K.PROXY], self._app.router, server)
        loop = asyncio.get_running_loop()
        if sock is None:
            self._server = await loop.create_server(self.lean.protocol, self._host, self._port, backlog=self._backlog,
                                                    reuse_address=self._reuse_address)
        else:
            self._server = await loop.create_server(self.lean.protocol, sock=sock, backlog=self._backlog)
        log.info("proxy to %s on the lean engine (httptools)", self.lean.settings.upstream)

    def stop_listening(self) -> None:
        """Accept no more connections; the open ones close once their requests are answered
        (see :meth:`in_flight`). ``monitor serve`` calls this on every listener at once, waits
        for :meth:`in_flight` under its one shutdown deadline, then :meth:`stop` cuts the rest."""
        if self._server is not None:
            self._server.close()
        if self.lean is not None:
            self.lean.in_flight()

    def in_flight(self) -> int:
        """Connections of this listener with a proxied request in flight (0 before start)."""
        return 0 if self.lean is None else self.lean.in_flight()

    async def stop(self) -> None:
        """Stop listening, wait up to ``shutdown_timeout`` for the requests in flight, cut the rest."""
        self.stop_listening()
        if self.lean is not None:
            await self.lean.shutdown(self._shutdown_timeout)
        await super().stop()


def make_site(runner: web.BaseRunner, app: web.Application, host: str, port: int, *, reuse_address: bool = True,
              shutdown_timeout: float = 20.0) -> web.BaseSite:
    """The listener for ``app``: when the app carries the proxy and its engine is the lean one, a
    :class:`monitor.server.dataplane.DataPlaneSite` (the data path in a child process,
    ``server.proxy.process``, where the platform passes sockets) or a :class:`LeanProxySite`
    (on this process's loop); an aiohttp ``TCPSite`` otherwise."""
    proxy = app.get(K.PROXY)
    if proxy is not None and engine_of(proxy) == "lean":
        if proxy.settings.process:
            from monitor.server.dataplane import DataPlaneSite, process_available

            if process_available():
                return DataPlaneSite(runner, app, host, port, reuse_address=reuse_address, shutdown_timeout=shutdown_timeout)
            log.warning("server.proxy.process: this platform cannot pass sockets between processes; "
                        "the proxy's data path runs on the sidecar's event loop")
        return LeanProxySite(runner, app, host, port, reuse_address=reuse_address, shutdown_timeout=shutdown_timeout)
    return web.TCPSite(runner, host, port, reuse_address=reuse_address)
