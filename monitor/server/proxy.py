"""Reverse proxy mode: ``monitor serve --proxy http://127.0.0.1:8080`` in front of a model server.

Every request is forwarded unchanged (method, path, query, headers except hop-by-hop ones, body)
and the upstream's response is returned unchanged: status, reason, headers, body, errors, and
streaming (a response without a length, or ``text/event-stream``, is relayed chunk by chunk).
Compressed bodies stay compressed (the client session never decompresses).

Inference routes are tapped: Open Inference Protocol v2 (``/v2/models/{name}[/versions/{v}]/infer``,
as KServe, Triton and MLServer speak it), KServe's v1 protocol and TF Serving's REST predict
(``/v1/models/{name}[/versions/{v}|/labels/{l}]:predict``), TF Serving's classify and regress on the
same paths (:mod:`monitor.server.tfexamples`) and the configured plain JSON predict
routes, which take precedence on the same path. The tap
runs after the response has been handed to the client's connection, so the client never waits
for the monitor; its failures are counted (``monitor_intake_events_refused_total{endpoint="proxy"}``),
never surfaced. The client identity for probing detection is the configured header
(``server.client_header``) or the peer address; the segment of every row of a request is the
value of the header ``server.segment_header`` names (none without it: ``unset``).

Two engines forward: this module's aiohttp handlers and client session (``server.proxy.engine:
aiohttp``, and any ``https://`` upstream), and the lean data path of
:mod:`monitor.server.leanproxy` (asyncio protocols and llhttp, about a third of the CPU per
request), which ``monitor serve`` runs by default. Both share the tap (:meth:`Proxy.tap`), the
error answers (:func:`fail_body`) and the metrics.

``server.proxy.timeout`` (default 60 s), on both engines, is the time to the response head and
then the longest silence while the body streams (an idle timeout, as nginx's
``proxy_read_timeout`` or Envoy's stream idle timeout), never a limit on the whole exchange: a
server-sent-event or LLM token stream may last as long as its chunks keep coming. No head in
time: 504 (``monitor_proxy_upstream_errors_total{reason="timeout"}``); a body silent for longer
once the head has gone out: cut, the client's connection closed, counted as
``reason="disconnect"`` (a buffered body not yet sent: 502). A client that stops reading a
stream stops the model server's being read too: when it has not read for the timeout, its
connection is closed and the request counted with code 499.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from monitor.events import ERROR, PREDICTION, id_key, segment_text
from monitor.once import Once
from monitor.server.binary_tensors import HEADER as BINARY_HEADER
from monitor.server.binary_tensors import attach_binary, split_binary
from monitor.server.coding import UnsupportedCoding, decode_body
from monitor.server.errors import CLIENT_TIMEOUT, IntakeError, answer_and_close
from monitor.queue import event_bytes
from monitor.server.payloads import (UNSAFE_JSON_MESSAGES, PayloadError, classification_outputs, decode_inputs,
                                     decode_outputs, dotted, loads,
                                     oip_request_id, unsafe_json)
from monitor.server.settings import PredictRoute, ProxySettings

if sys.version_info >= (3, 11):
    from asyncio import timeout as _within
else:  # pragma: no cover - aiohttp requires async-timeout below 3.11
    from async_timeout import timeout as _within

if TYPE_CHECKING:
    from monitor.server.sidecar import Sidecar

__all__ = ["BinaryHeads", "Proxy", "HOP_BY_HOP", "V1_PATHS", "BUFFER_LIMIT", "client_timeout_body", "decoded_header", "fail_body", "header_text", "request_labels"]

ENDPOINT = "proxy"

log = logging.getLogger("monitor.server")

#: the proxy's own 502/504 answers, for the log (:meth:`Proxy.upstream_failed`)
_UPSTREAM_FAILURES = {
    "connect": "cannot connect to the model server at {url}: check --proxy / server.proxy.upstream (host and port) and "
               "that the model server is up",
    "timeout": "the model server at {url} did not answer within server.proxy.timeout ({timeout:g} s): it is stuck or "
               "overloaded (or raise the timeout), or every one of the proxy's server.proxy.max_connections "
               "({max_connections}) connections to it was busy and the request waited for one (long streams hold "
               "one each: raise it)",
    "disconnect": "the model server at {url} closed the connection before its answer was complete, or went silent "
                  "for server.proxy.timeout ({timeout:g} s) in the middle of it: see its log (a crash, an OOM kill, a "
                  "restart, a stuck stream)",
}
_UPSTREAM_LOG_EVERY_S = 60.0
#: idle connections to the model server kept this long, below uvicorn's 5 s keep-alive (see
#: ``_IDLE_S`` of :mod:`monitor.server.upstream`, the lean engine's)
_IDLE_UPSTREAM_S = 4.0

#: What a refusal without a message of its own means, for the one log line of its reason.
_REFUSALS = {
    "client_error": "the model server answered 4xx, so the exchange holds no prediction",
    "too_large": "the request or response body is over server.max_body_bytes (raise it to monitor larger exchanges)",
    "bad_json": "the request or response body is not JSON (the tap reads JSON tensors, and Triton's binary tensors "
                "after a JSON head as long as the Inference-Header-Content-Length header says)",
    "unsupported_encoding": "the request or response body is in a content coding the tap does not read (it reads "
                            "gzip and deflate: have the model server or its clients use one of those, or none)",
    "bad_body": "the request or response body is not in the content coding its Content-Encoding names "
                "(truncated or corrupt gzip/deflate)",
}

#: Headers that describe one connection, not the message (RFC 9110 section 7.6.1): never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-connection"})
BUFFER_LIMIT = 1 << 20  # bodies up to this size with a Content-Length are relayed in one write
_OVER = b"\x00over-the-limit"  # marker: a streamed body grew past the tap's limit


class _Upload:
    """A streamed request body on its way to the model server (:meth:`Proxy._tee`)."""

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        #: waiting for the client's next bytes (else for the model server to take the last ones)
        self.waiting = False


#: The request's and the response's ``Inference-Header-Content-Length`` (Triton's binary tensor
#: extension, :mod:`monitor.server.binary_tensors`) as sent, None when neither has one.
BinaryHeads = Optional[tuple[Optional[str], Optional[str]]]


@dataclass(frozen=True)
class _Tap:
    kind: str  # "oip_v2", "v1" (KServe v1 and TF Serving's REST predict) or "predict" (a configured route)
    route: PredictRoute | None


#: KServe's v1 protocol and TF Serving's REST predict API, one API: tapped without a route of
#: ``server.proxy.routes``. Listed as a route, ``- path: /v1/models/{model}:predict``, its dotted
#: paths could not pick TF Serving's named outputs out of every row, and without one a TF Serving
#: model was forwarded untapped.
V1_PATHS = ("/v1/models/{model}:predict", "/v1/models/{model}/versions/{version}:predict",
            "/v1/models/{model}/labels/{label}:predict")
#: TF Serving's Classify and Regress APIs (:mod:`monitor.server.tfexamples`) on the same paths,
#: tapped as kinds of their own, counted as ``route="v1"`` as its predict is.
TF_VERBS = {"classify": "v1_classify", "regress": "v1_regress"}


_TF_KINDS = frozenset(TF_VERBS.values())


def _forward_headers(headers: Any, drop_host: bool) -> CIMultiDict[str]:
    extra = {h.strip().lower() for h in headers.get("Connection", "").split(",") if h.strip()}
    out: CIMultiDict[str] = CIMultiDict()
    for k, v in headers.items():
        lk = k.lower()
        if lk in HOP_BY_HOP or lk in extra or (drop_host and lk == "host"):
            continue
        out.add(k, v)
    return out


class _Relayed:
    """A response whose headers are written as the upstream sent them: aiohttp's server adds
    ``Content-Type: application/octet-stream`` and ``Server`` to a response that has none, which
    a proxy must not (the lean engine adds nothing either). ``absent`` names those the upstream's
    response did not have; they are taken out again just before the head is written. (``Date``
    stays: RFC 9110 asks a proxy to add it to a response forwarded without one.)"""

    absent: tuple[str, ...] = ()

    async def _write_headers(self) -> None:
        for name in self.absent:
            self._headers.popall(name, None)  # type: ignore[attr-defined]
        await super()._write_headers()  # type: ignore[misc]


class _RelayedResponse(_Relayed, web.Response):
    pass


class _RelayedStreamResponse(_Relayed, web.StreamResponse):
    pass


_ADDED_BY_AIOHTTP = ("Content-Type", "Server")


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


def request_labels(tap: "_Tap | None", status: int) -> tuple[str, str]:
    """The labels of ``monitor_proxy_requests`` for an answered request: its route kind
    (``other`` for a route forwarded untapped) and status class, on every engine."""
    if tap is None:
        return ("other", _status_class(status))
    return ("v1" if tap.kind in _TF_KINDS else tap.kind, _status_class(status))


def _answered(reason: str) -> str:
    """What the clients of a request failed for ``reason`` got, for the log."""
    if reason == "timeout":
        return "answered 504 upstream_timeout by the proxy"
    if reason == "disconnect":
        return "answered 502 upstream_disconnect by the proxy, or, when the answer had begun, cut short"
    return f"answered 502 upstream_{reason} by the proxy"


def header_text(raw: bytes | None) -> str | None:
    """A header value's text as both engines read it (the request id, the client key): UTF-8 when
    the bytes are UTF-8 (curl, Go, browsers send text so), else Latin-1 (Python's http.client and
    requests encode text so). The lean engine read Latin-1 and the aiohttp engine UTF-8, so a
    non-ASCII ``X-Request-Id`` was another id on each, and feedback sent with the id the client
    made did not join on one of them."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decoded_header(value: str) -> str:
    """:func:`header_text` of a header value aiohttp decoded (as UTF-8, with the bytes that are
    not UTF-8 kept as surrogate escapes)."""
    if value.isascii():
        return value
    return header_text(value.encode("utf-8", "surrogateescape")) or ""


def _header(request: web.Request, name: str) -> str | None:
    value = request.headers.get(name)
    return None if value is None else decoded_header(value)


def fail_body(reason: str, message: str) -> dict[str, str]:
    """The JSON body of the proxy's own error answers (502/504), the same from both engines."""
    return {"error": message, "reason": f"upstream_{reason}", "source": "monitor-proxy"}



def client_timeout_body(timeout_s: float) -> dict[str, str]:
    """The JSON body of that 408, the same from both engines."""
    return {"error": f"the request body did not arrive within server.proxy.timeout ({timeout_s:g} s): send the whole "
                     "body, as long as its Content-Length says", "reason": CLIENT_TIMEOUT, "source": "monitor-proxy"}


class Proxy:
    """The proxy's handlers and its upstream client session."""

    def __init__(self, sidecar: "Sidecar", settings: ProxySettings) -> None:
        if not settings.upstream:
            raise ValueError("the proxy needs an upstream URL (--proxy or server.proxy.upstream)")
        self.sidecar = sidecar
        self.settings = settings
        self.upstream = settings.upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: route name -> its tap (None: forwarded untapped); the lean engine resolves requests with it
        self.taps: dict[str, _Tap | None] = {}
        #: the taps' events waiting for the end of a batch (:meth:`batched`), else None
        self._pending: list[tuple[Any, tuple[Any, ...]]] | None = None
        #: upstream failure reason -> (monotonic time of its last log line, failures since then)
        self._upstream_said: dict[str, tuple[float, int]] = {}
        #: upstream failure reason -> the timer that logs its failures left unsaid at the end of the minute
        self._upstream_timers: dict[str, asyncio.TimerHandle] = {}
        #: the application's routes as the lean engine resolves them (:meth:`sidecar_methods`), built on first use
        self._routes: Any = None
        #: models whose OIP v2 answers hold several output tensors, told which one is read (once each)
        self._tensors_said = Once(max_keys=256)

    def _refuse(self, reason: str, detail: str | None = None, n: int = 1, mon: Any = None) -> None:
        """Count ``n`` refused taps. The proxy's client gets the model server's answer, so the
        field and the fix of a refused tap reach nobody but the log: the first of each reason is
        logged with ``detail`` (the reason's own words when None), see :meth:`Sidecar.count_refused`."""
        self.sidecar.count_refused(ENDPOINT, reason, n, mon=mon, detail=detail or _REFUSALS.get(reason, reason))

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.settings.max_connections, keepalive_timeout=_IDLE_UPSTREAM_S,
                                       ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            # no total: the head's deadline is forward()'s; sock_read bounds each silence of the body
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(10.0, self.settings.timeout_s),
                                          sock_read=self.settings.timeout_s),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            # answers' header fields as long as the requests' (monitor.server.app._HANDLER_ARGS)
            max_field_size=1 << 16, max_line_size=1 << 16,
        )

    async def close(self) -> None:
        for reason in list(self._upstream_said):  # failures of the last, partial minute: said before the exit
            self._say_unsaid(reason)
        if self.session is not None:
            await self.session.close()
            self.session = None

    def add_routes(self, app: web.Application) -> None:
        """OIP v2 infer routes, the configured predict routes and the v1 predict routes (tapped),
        then everything else."""
        oip = _Tap("oip_v2", None)
        for path in ("/v2/models/{model}/infer", "/v2/models/{model}/versions/{version}/infer"):
            self._add(app, "POST", path, oip, f"proxy_oip_v2{'_version' if 'version' in path else ''}")
        for i, route in enumerate(self.settings.routes):
            self._add(app, "POST", route.path, _Tap("predict", route), f"proxy_predict_{i}")
        v1 = _Tap("v1", None)
        for path, name in zip(V1_PATHS, ("proxy_v1", "proxy_v1_version", "proxy_v1_label")):
            self._add(app, "POST", path, v1, name)  # after the configured routes: one on the same path wins
            for verb, kind in TF_VERBS.items():
                self._add(app, "POST", path.replace(":predict", f":{verb}"), _Tap(kind, None),
                          name.replace("proxy_v1", f"proxy_v1_{verb}"))
        self._add(app, "*", "/{tail:.*}", None, "proxy")

    def _add(self, app: web.Application, method: str, path: str, tap: _Tap | None, name: str) -> None:
        app.router.add_route(method, path, self._handler(tap), name=name)
        self.taps[name] = tap

    def sidecar_methods(self, request: web.Request) -> tuple[str, ...]:
        """The methods of the sidecar's own route at ``request``'s path when the request is not one
        of them (then the sidecar answers 405, it is not forwarded), else ``()``: the lean engine's
        resolution (:class:`monitor.server.proxyroutes.RouteTable`), for the aiohttp engine, whose
        router would hand ``GET /v1/events`` to the proxy's catch-all route."""
        if self._routes is None:
            from monitor.server.proxyroutes import RouteTable

            self._routes = RouteTable.from_router(request.app.router, self.taps)
        return self._routes.resolve(request.method.encode("latin-1", "replace"),
                                    request.raw_path.encode("utf-8", "surrogateescape")).allowed

    def _handler(self, tap: _Tap | None) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.forward(request, tap)

        return handle

    # -- forwarding ------------------------------------------------------------------------------
    async def forward(self, request: web.Request, tap: _Tap | None) -> web.StreamResponse:
        assert self.session is not None, "Proxy.start() was not awaited"
        store = self.sidecar.store
        t_start = time.time()
        url = URL(self.upstream + request.raw_path, encoded=True)  # path and query exactly as sent
        headers = _forward_headers(request.headers, drop_host=True)
        # the body as sent, compressed or not (the application does not inflate request bodies:
        # create_app): forwarded under its own headers, inflated by the tap
        req_encoding = request.headers.get("Content-Encoding")
        body: bytes | None = None
        data: Any = None
        teed: list[bytes] | None = None
        upload: _Upload | None = None
        timeout_s = self.settings.timeout_s
        t_body = time.perf_counter()
        if request.body_exists:
            limit = self.sidecar.settings.max_body_bytes
            length = request.content_length
            if length is not None and length <= min(limit, BUFFER_LIMIT if tap is None else limit):
                try:
                    async with _within(timeout_s):  # a client that stops sending: its 408, as on the lean engine
                        body = await request.read()
                except asyncio.TimeoutError:
                    return await self._client_timed_out(request, tap)
                data = body
            else:  # large or of unknown length: streamed to the upstream, kept for the tap up to the limit
                teed = [] if tap is not None else None
                upload = _Upload()
                data = self._tee(request, teed, limit, upload)
        t0 = time.perf_counter()
        try:
            # to the response head (pool wait, connect, upload included), from the request's start
            async with _within(max(0.0, timeout_s - (t0 - t_body))):
                upstream = await self.session.request(request.method, url, headers=headers, data=data,
                                                      allow_redirects=False, compress=None)
        except asyncio.TimeoutError:
            if upload is not None and upload.waiting:  # the model server waits for the rest of the body
                return await self._client_timed_out(request, tap)
            return self._fail(504, "timeout", "the model server did not answer in time")
        except aiohttp.ClientConnectorError:
            return self._fail(502, "connect", "cannot connect to the model server")
        except aiohttp.ClientError as err:
            return self._fail(502, "disconnect", f"the model server closed the connection ({type(err).__name__})")
        try:
            resp_headers = _forward_headers(upstream.headers, drop_host=False)
            absent = tuple(name for name in _ADDED_BY_AIOHTTP if name not in upstream.headers)
            resp_body: bytes | None = None
            streaming = (upstream.content_length is None or upstream.content_length > BUFFER_LIMIT
                         or upstream.headers.get("Content-Type", "").startswith("text/event-stream"))
            if request.method == "HEAD":  # no body, but the upstream's Content-Length stays as it was
                response = _RelayedStreamResponse(status=upstream.status, reason=upstream.reason, headers=resp_headers)
                response.absent = absent
                await response.prepare(request)
                await response.write_eof()
                resp_body = None
            elif not streaming:
                try:
                    resp_body = await upstream.read()
                except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                    return self._fail(502, "disconnect", f"the model server broke off the response ({type(err).__name__})")
                resp_headers.popall("Content-Length", None)
                response = _RelayedResponse(status=upstream.status, reason=upstream.reason, body=resp_body, headers=resp_headers)
                response.absent = absent
                await response.prepare(request)
                await response.write_eof()
            else:
                response = _RelayedStreamResponse(status=upstream.status, reason=upstream.reason, headers=resp_headers)
                response.absent = absent
                if upstream.content_length is not None:
                    response.content_length = upstream.content_length
                else:
                    response.enable_chunked_encoding()
                await response.prepare(request)
                keep = tap is not None
                chunks: list[bytes] = []
                size = 0
                incoming = upstream.content.iter_any()
                while True:
                    try:
                        chunk = await incoming.__anext__()
                    except StopAsyncIteration:
                        break
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        self.upstream_failed("disconnect")
                        store.inc("monitor_proxy_requests", labels=request_labels(tap, upstream.status))
                        if request.transport is not None:
                            request.transport.close()  # the client must see the truncation, not a clean end
                        return response
                    # outside the upstream's try: a client gone raises ConnectionResetError (a
                    # ClientError too), which is the client's 499, not the model server's failure
                    try:
                        async with _within(self.settings.timeout_s):  # a client that stopped reading
                            await response.write(chunk)
                    except asyncio.TimeoutError:
                        if request.transport is not None:
                            request.transport.close()
                        raise ConnectionResetError("the client stopped reading the response") from None
                    if keep:
                        size += len(chunk)
                        if size > self.sidecar.settings.max_body_bytes:
                            keep, chunks = False, []
                        else:
                            chunks.append(chunk)
                await response.write_eof()
                resp_body = b"".join(chunks) if keep else None
            elapsed = time.perf_counter() - t0
        finally:
            upstream.release()
        store.inc("monitor_proxy_requests", labels=request_labels(tap, upstream.status))
        self.sidecar.upstream.record((), elapsed)
        if teed is not None and body is None:
            body = None if teed and teed[-1] is _OVER else b"".join(teed)
        if tap is not None:
            heads = (request.headers.get(BINARY_HEADER), upstream.headers.get(BINARY_HEADER))
            self.tap(tap, request.match_info.get("model"), self._client(request), _header(request, "X-Request-Id"),
                     body, resp_body, upstream.status, upstream.headers.get("Content-Encoding"),
                     req_encoding, elapsed, t_start, None if heads == (None, None) else heads, self._segment(request))
        return response

    @staticmethod
    async def _tee(request: web.Request, keep: list[bytes] | None, limit: int, upload: "_Upload") -> Any:
        """Relay the request body chunk by chunk, keeping a copy (up to ``limit``) for the tap;
        ``upload.waiting`` says whether it is waiting for the client's next bytes (rather than
        for the model server to take the last ones)."""
        size = 0
        chunks = request.content.iter_any().__aiter__()
        while True:
            upload.waiting = True
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            finally:
                upload.waiting = False
            if keep is not None and (not keep or keep[-1] is not _OVER):
                size += len(chunk)
                if size > limit:
                    keep.clear()
                    keep.append(_OVER)
                else:
                    keep.append(chunk)
            yield chunk

    def upstream_failed(self, reason: str, n: int = 1) -> None:
        """Count ``n`` requests the proxy answered itself (502/504) because the model server could
        not be reached, did not answer in time or broke off, whichever engine or process answered
        them. Their clients got the proxy's error and the model server may have logged nothing, so
        the first of each reason is logged with the upstream and the fix, then at most one line a
        minute per reason with the count since (an outage that starts later is said again).

        Failures held back within a minute are said when it ends (a timer on the event loop), or
        when the proxy closes: before, they waited for the next failure after the minute, so a
        short outage (ten failures in twenty seconds) logged its first and never the other nine."""
        self.sidecar.store.inc("monitor_proxy_upstream_errors", n, labels=(reason,))
        now = time.monotonic()
        last, unsaid = self._upstream_said.get(reason, (None, 0))
        if last is not None and now - last < _UPSTREAM_LOG_EVERY_S:
            self._upstream_said[reason] = (last, unsaid + n)
            self._say_later(reason, last + _UPSTREAM_LOG_EVERY_S - now)
            return
        # this line says one failure; the rest of a batch (the data path process reports its
        # failures in batches) is held back as the minute's next ones are
        self._upstream_said[reason] = (now, n - 1)
        timer = self._upstream_timers.pop(reason, None)
        if timer is not None:  # due now: this line says what it held
            timer.cancel()
        if n > 1:
            self._say_later(reason, _UPSTREAM_LOG_EVERY_S)
        log.warning("proxy: %s; its clients were %s; counted in monitor_proxy_upstream_errors_total{reason=\"%s\"}, %s",
                    self._upstream_what(reason), _answered(reason), reason, f"{unsaid} more since the last line"
                    if unsaid else "further ones logged at most once a minute")

    def _say_later(self, reason: str, delay: float) -> None:
        """Have the failures of ``reason`` held back said in ``delay`` seconds (once a timer is set,
        the failures that follow are said with them)."""
        if reason in self._upstream_timers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called off the loop: said by the next failure after the minute, or at close
            return
        self._upstream_timers[reason] = loop.call_later(delay, self._say_unsaid, reason)

    def _say_unsaid(self, reason: str) -> None:
        """Log the failures of ``reason`` held back since its last line, if any (its minute is over,
        or the proxy closes); the next minute's are held back again."""
        timer = self._upstream_timers.pop(reason, None)
        if timer is not None:
            timer.cancel()
        last, unsaid = self._upstream_said.get(reason, (None, 0))
        if not unsaid:
            return
        self._upstream_said[reason] = (time.monotonic(), 0)
        log.warning("proxy: %d more request(s) since the last line: %s; its clients were %s; counted in "
                    "monitor_proxy_upstream_errors_total{reason=\"%s\"}", unsaid, self._upstream_what(reason),
                    _answered(reason), reason)

    def _upstream_what(self, reason: str) -> str:
        return _UPSTREAM_FAILURES.get(reason, "the model server at {url} failed ({reason})").format(
            url=self.upstream, timeout=self.settings.timeout_s, max_connections=self.settings.max_connections, reason=reason)

    async def _client_timed_out(self, request: web.Request, tap: _Tap | None) -> web.Response:
        """No response head within ``server.proxy.timeout`` because the client has not sent all
        of its request body (a stalled upload, a Content-Length larger than the body sent): the
        client's 408 ``client_timeout``, counted as the lean engine counts it (``code="408"``,
        and a refused exchange on a tapped route), never as the model server's failure. Before,
        a buffered body was waited for without a bound, and a streamed one was answered 504
        upstream_timeout. The connection is closed once the answer is written: what the client
        sends after it is the rest of a body nobody reads (aiohttp would linger reading it)."""
        self.sidecar.store.inc("monitor_proxy_requests", labels=("error", "4xx"))
        if tap is not None:
            self._refuse(CLIENT_TIMEOUT, "a client stopped sending its request body before its end: the proxy answered "
                                         "408 and the exchange was not forwarded whole (a stalled upload, or a "
                                         "Content-Length larger than the body sent)")
        return await answer_and_close(request, web.json_response(client_timeout_body(self.settings.timeout_s), status=408))

    def _fail(self, status: int, reason: str, message: str) -> web.Response:
        self.upstream_failed(reason)
        self.sidecar.store.inc("monitor_proxy_requests", labels=("error", _status_class(status)))
        return web.json_response(fail_body(reason, message), status=status)

    # -- the tap ---------------------------------------------------------------------------------
    def _client(self, request: web.Request) -> str | None:
        header = self.sidecar.settings.client_header
        return self.client_identity(_header(request, header) if header else None, request.remote)

    @staticmethod
    def client_identity(header_value: str | None, peer: str | None) -> str | None:
        """The client for probing detection: the configured header's value when the request has
        it (a long one as its digest, :func:`~monitor.events.id_key`, as the event intake and an
        in-process Monitor track it: cut to 200 characters, two bearer tokens sharing their first
        200 were one client), else the peer address."""
        return id_key(header_value) if header_value else peer

    def _segment(self, request: web.Request) -> str | None:
        header = self.sidecar.settings.segment_header
        return self.header_segment(_header(request, header)) if header else None

    @staticmethod
    def header_segment(header_value: str | None) -> str | None:
        """The segment of every row of a request: the ``server.segment_header`` value's text as the
        event format reads a segment (:func:`~monitor.events.segment_text`: cut to 200
        characters), an absent or empty header none (``unset``)."""
        return segment_text(header_value) if header_value else None

    def tap(self, tap: _Tap, path_model: str | None, client: str | None, header_request_id: str | None,
            body: bytes | None, resp_body: bytes | None, status: int, resp_encoding: str | None,
            req_encoding: str | None, latency: float, ts: float, binary: BinaryHeads = None,
            segment: str | None = None) -> None:
        """Turn the request/response pair into a monitor event. Never raises: failures are counted.

        ``path_model`` is the ``{model}`` part of the matched route, ``header_request_id`` the
        request's ``X-Request-Id`` (used when the body carries no id; on OIP v2 routes the
        answer's ``id`` follows it); ``body``/``resp_body`` are
        None when they were over the size limit; ``binary`` the request's and the response's
        ``Inference-Header-Content-Length`` (Triton's binary tensors), None when neither has one;
        ``segment`` the request's ``server.segment_header`` value (:meth:`header_segment`).
        Both engines call this, so they tap alike.
        Inside :meth:`batched` the event is enqueued when the batch ends, with the others."""
        sidecar = self.sidecar
        try:
            model = tap.route.model if tap.route is not None and tap.route.model else path_model
            mon = sidecar.resolve(model, field="model")
        except Exception as err:  # noqa: BLE001
            reason = getattr(err, "reason", "unknown_model")
            detail = _detail(err)
            if reason == "unknown_model":  # the model server's name for its model is not the config's
                detail = (f"{detail}. Fix: the model is named by the request path (/v2/models/NAME/infer, a route's "
                          "{model}) or server.proxy.routes[].model; give the config's model: the name the model "
                          "server uses")
            self._refuse(reason, detail)
            return
        try:
            event = self._event(tap, mon, client, header_request_id, body, resp_body, status, resp_encoding,
                                req_encoding, latency, ts, binary, segment)
            if event is None:
                return
            if self._pending is not None:
                self._pending.append((mon, event))
                return
            sidecar.enqueue_to(mon, [event], ENDPOINT)
        except Exception as err:  # noqa: BLE001 - the tap must never hurt the proxy
            self._refuse(_refusal(err), _detail(err), mon=mon)

    def _event(self, tap: _Tap, mon: Any, client: str | None, header_request_id: str | None, body: bytes | None,
               resp_body: bytes | None, status: int, resp_encoding: str | None, req_encoding: str | None,
               latency: float, ts: float, binary: BinaryHeads = None, segment: str | None = None) -> tuple[Any, ...] | None:
        """The event of one exchange, or None when it is refused here (counted)."""
        sidecar = self.sidecar
        if status >= 500:
            return (ERROR, ts, f"HTTP{status}", latency, client)
        if status >= 400:
            self._refuse("client_error", mon=mon)
            return None
        # output.kind: none: the answer is not monitored, so not read at all: neither refused for its
        # size, its encoding or for not being JSON (a mask image, a stream), nor for lacking outputs
        unread = not mon.config.output.reads_outputs
        if body is None or (resp_body is None and not unread):
            self._refuse("too_large", mon=mon)
            return None
        limit = sidecar.settings.max_body_bytes
        req_raw = decode_body(body, req_encoding, limit)
        resp_raw = b"null" if unread else decode_body(resp_body, resp_encoding, limit)
        if req_raw is None or resp_raw is None:
            self._refuse("too_large", mon=mon)
            return None
        req_blob = resp_blob = None
        if binary is not None and tap.kind == "oip_v2":
            if binary[0] is not None:
                req_raw, req_blob = split_binary(req_raw, binary[0], "request")
            if binary[1] is not None and not unread:
                resp_raw, resp_blob = split_binary(resp_raw, binary[1], "response")
        req_obj = loads(req_raw)
        resp_obj = loads(resp_raw)
        unsafe = unsafe_json(req_raw, req_obj) or unsafe_json(resp_raw, resp_obj)
        if unsafe is not None:
            self._refuse(unsafe, UNSAFE_JSON_MESSAGES[unsafe], mon=mon)
            return None
        if req_blob is not None:
            attach_binary(req_obj, req_blob, "inputs")
        if resp_blob is not None:
            attach_binary(resp_obj, resp_blob, "outputs")
        if tap.kind == "oip_v2":
            inputs = decode_inputs(req_obj, one_feature=mon.one_feature)
            rows = int(inputs.shape[0]) if hasattr(inputs, "shape") else len(inputs) if isinstance(inputs, list) else None
            outputs = None
            if not unread:
                outputs = decode_outputs(resp_obj, output_name=self.settings.oip_output, rows=rows)
                outputs = classification_outputs(outputs, mon.config.output.kind, mon.config.output.classes)
                if self.settings.oip_output is None:
                    self._say_tensor_read(mon, resp_obj)
            # a request without an id: the client's X-Request-Id, else the id the server answered
            # with (MLServer and KServe put a uuid there), the one id its client can see
            rid: Any = oip_request_id(req_obj) or header_request_id or oip_request_id(resp_obj)
        elif tap.kind == "v1":
            inputs = decode_inputs(req_obj, one_feature=mon.one_feature)
            outputs = None if unread else decode_outputs(resp_obj, output_name=self.settings.oip_output,
                                                         kind=mon.config.output.kind)
            rid = header_request_id  # neither KServe v1 nor TF Serving has an id in the body
        elif tap.kind in _TF_KINDS:
            from monitor.server.tfexamples import decode_examples, decode_results

            inputs = decode_examples(req_obj)
            out = mon.config.output
            outputs = None if unread else decode_results(resp_obj, tap.kind[3:], out.kind, out.classes, mon)
            rid = header_request_id
        else:
            route = tap.route
            assert route is not None
            inputs = self._route_field(route, "inputs", "request", lambda: decode_inputs(req_obj, route.inputs), req_obj)
            outputs = None if unread else self._route_field(route, "outputs", "answer",
                                                            lambda: decode_outputs(resp_obj, route.outputs), resp_obj)
            rid = None
            if route.request_id:
                try:
                    rid = dotted(req_obj, route.request_id)
                except PayloadError:
                    rid = None
            rid = rid if rid is not None else header_request_id
        return (PREDICTION, ts, inputs, outputs, latency, client, rid, segment, None)

    def _route_field(self, route: PredictRoute, key: str, body: str, read: Callable[[], Any], obj: Any) -> Any:
        """``read()``, the rows a predict route's dotted path names; a path the body does not hold
        is refused under the setting to change, with what the body does hold. Only the path was
        said ("instances: not found in the JSON body"): not which route, whether in the request or
        the answer, nor that a bare list of rows is ``.``."""
        try:
            return read()
        except PayloadError as err:
            if err.reason != "missing_field":
                raise
            index = self.settings.routes.index(route)
            top = (f"its keys: {', '.join(map(str, list(obj)[:10]))}" if isinstance(obj, dict) else
                   f"it is a JSON {type(obj).__name__}")
            raise PayloadError(f"server.proxy.routes[{index}].{key}",
                               f"{err.field!r} is not in the {body} body of {route.path} ({err.message}; {top}). Fix: "
                               f"the dotted path of the rows in the {body} ('.' for the whole body, a bare list)",
                               "missing_field") from None

    def _say_tensor_read(self, mon: Any, resp_obj: Any) -> None:
        """Log, once per model, which output tensor is read when an OIP v2 answer holds several and
        ``server.proxy.oip_output`` names none. MLServer's scikit-learn runtime answers ``predict``
        (labels) before ``predict_proba`` when asked for both: read first, the labels were refused
        as ``output_shape``, whose logged fix points at ``output.kind``, not at this setting."""
        tensors = resp_obj.get("outputs") if isinstance(resp_obj, dict) else None
        if not isinstance(tensors, list) or len(tensors) < 2:
            return
        model = getattr(mon, "model", "")
        if not self._tensors_said.first(model):
            return
        names = [str(t.get("name"))[:100] if isinstance(t, dict) else "?" for t in tensors[:20]]
        log.warning("proxy: model %r answers %d output tensors (%s); the monitor reads the first, %r. If the scores are "
                    "in another (MLServer: predict_proba), set server.proxy.oip_output to its name", model, len(tensors),
                    ", ".join(names), names[0])

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Taps made inside are enqueued together when it ends: one call per model for a batch
        of the data path's process (:meth:`DataPlane._batch`) instead of one per exchange, with
        the same events in the same order and the same counters. An exchange whose inputs are large
        (``event_bytes``: reserved in the queue's byte budget, all or nothing per call) is
        enqueued alone as ever, so that one of them shed does not take the others along."""
        if self._pending is not None:  # already batching: the outer batch enqueues
            yield
            return
        pending: list[tuple[Any, tuple[Any, ...]]] = []
        self._pending = pending
        try:
            yield
        finally:
            self._pending = None
            self._enqueue_batch(pending)

    def _enqueue_batch(self, items: list[tuple[Any, tuple[Any, ...]]]) -> None:
        groups: dict[Any, list[tuple[Any, ...]]] = {}
        for mon, event in items:
            group = groups.get(mon)
            if group is None:
                groups[mon] = [event]
            else:
                group.append(event)
        sidecar = self.sidecar
        for mon, events in groups.items():
            for part in _runs(events) if len(events) > 1 and any(map(event_bytes, events)) else (events,):
                try:
                    sidecar.enqueue_to(mon, part, ENDPOINT, stack=False)
                except Exception as err:  # noqa: BLE001 - the tap must never hurt the proxy
                    self._refuse(_refusal(err), _detail(err), len(part), mon=mon)


def _runs(events: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """``events`` in order, each one with large inputs alone, the others in runs between them."""
    out: list[list[tuple[Any, ...]]] = []
    run: list[tuple[Any, ...]] = []
    for event in events:
        if event_bytes(event):
            if run:
                out.append(run)
                run = []
            out.append([event])
        else:
            run.append(event)
    if run:
        out.append(run)
    return out


def _detail(err: Exception) -> str | None:
    """What a refused tap's exception says, naming the field (None: the reason's own words)."""
    if isinstance(err, (PayloadError, IntakeError)):
        return f"{err.field}: {err.message}"
    if isinstance(err, (ValueError, UnicodeDecodeError, RecursionError, zlib.error)):
        return None
    return f"{type(err).__name__}: {err}"


def _refusal(err: Exception) -> str:
    """The reason a tap is refused for ``err``: the payload's own, else undecodable JSON, else
    an internal error."""
    if isinstance(err, (PayloadError, IntakeError)):
        return err.reason
    if isinstance(err, UnsupportedCoding):  # a ValueError: said apart, the body may be JSON in br
        return "unsupported_encoding"
    if isinstance(err, zlib.error):
        return "bad_body"
    if isinstance(err, (ValueError, UnicodeDecodeError, RecursionError)):
        return "bad_json"
    return "internal_error"
