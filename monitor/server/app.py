"""The sidecar's aiohttp application: routes, middleware, start-up and shutdown hooks.

aiohttp was chosen because it gives the server, the reverse proxy's client and the Alertmanager
client one asyncio stack (one event loop, one dependency), with streaming in both directions.

Endpoints (see :func:`create_app`):

================================  =========  ===================================================
``POST /v1/events``               write      one event, a JSON array or NDJSON (documented format)
``POST /v1/feedback``             write      delayed labels
``POST /v1/cloudevents``          write      KServe / Seldon inference logger (also ``POST /``
                                             when the proxy does not own the root path)
``GET /metrics``                  read       Prometheus text, or OpenMetrics by ``Accept``
``GET /api/v1/alerts``            read       active alerts in Prometheus's JSON shape
``GET /api/v1/status``            read       models, queues, checkpoints, readiness
``GET /api/v1/clients``           read       clients the probing detectors find suspicious, and the
                                             models no probing detector watches (with why)
``POST /api/v1/clients/lookup``   write      a raw client id's hashed id and verdict
``POST /-/reload``                write      apply monitor.yaml's rules: section and read the
                                             rule files again (also on SIGHUP)
``GET /healthz``                  open       the process is alive
``GET /readyz``                   open       models and references loaded, intake open
================================  =========  ===================================================

"write" and "read" are the two optional bearer-token scopes (``server.write_token_*`` and
``server.metrics_token_*``). In proxy mode on this port, every other request is forwarded to the
model server, but for these paths with another method: answered 405 here (see
:class:`monitor.server.proxyroutes.RouteTable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from monitor.config import AgentConfig
from monitor.server.auth import TokenAuth
from monitor.server.cloudevents import CloudEventsIntake, handle_cloudevent
from monitor.server.errors import CLIENT_TIMEOUT, IntakeError, answer_and_close, endpoint_of, error_response
from monitor.server.httplog import MalformedRequestLog
from monitor.server.intake import handle_events, handle_feedback
from monitor.server.lifecycle import Checkpointer, housekeeping, shutdown
from monitor.server.settings import SidecarSettings, settings_from
from monitor.server.sidecar import MonitorFactory, Sidecar
from monitor.server import keys as K

__all__ = ["create_app", "build_sidecar", "alerts_payload"]

log = logging.getLogger("monitor.server")

WRITE_ROUTES = frozenset({"events", "feedback", "cloudevents", "cloudevents_root", "reload", "client_lookup"})
_CLOUDEVENT_ROUTES = frozenset({"cloudevents", "cloudevents_root"})
READ_ROUTES = frozenset({"metrics", "alerts", "status", "clients"})
_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_TEXT = "text/plain; version=0.0.4; charset=utf-8"
#: aiohttp's request decompression off, on every connection of the sidecar's applications: it
#: refused a coding it cannot read (br, zstd) with a plain-text 400 before any handler, counter or
#: log line of the sidecar saw the request; the intake inflates bodies itself, bounded
#: (:func:`monitor.server.limits.read_body`), and the proxy forwards them as sent
#: and header fields and request lines of up to 64 KiB (aiohttp's 8 KiB refused a long bearer
#: token, cookie or query string with a plain-text 400 that no counter saw, where the lean data
#: path forwards a head of up to 1 MiB)
_HANDLER_ARGS = {"auto_decompress": False, "max_field_size": 1 << 16, "max_line_size": 1 << 16}


def build_sidecar(agent: AgentConfig, *, monitor_factory: MonitorFactory | None = None, **overrides: Any) -> Sidecar:
    """A :class:`Sidecar` for a validated config; ``overrides`` (``addr``, ``port``,
    ``proxy_upstream``...) take precedence over the file."""
    return Sidecar(agent, settings_from(agent, **overrides), monitor_factory=monitor_factory)


_SAID_LOGGER_TOKEN: "weakref.WeakSet[Sidecar]" = weakref.WeakSet()


def _logger_without_token(sidecar: Sidecar) -> IntakeError:
    """The 401 of a CloudEvent posted without a token while write tokens are set. KServe's and
    Seldon's inference loggers cannot send one, so every event they post is refused: the answer
    goes to a logger that only retries, hence the fix is also logged (once per sidecar); before,
    only ``monitor_intake_events_refused_total{endpoint="cloudevents",reason="unauthorized"}``
    said so."""
    fix = ("KServe's and Seldon's inference loggers cannot send a bearer token: set "
           "server.cloudevents.require_token: false (and let only the model's pods reach this port, "
           "e.g. with a NetworkPolicy), or send Authorization: Bearer <write token>")
    if sidecar not in _SAID_LOGGER_TOKEN:
        _SAID_LOGGER_TOKEN.add(sidecar)
        log.warning("CloudEvents without a token refused (401: write tokens are set). Fix: %s; counted in "
                    "monitor_intake_events_refused_total{endpoint=\"cloudevents\",reason=\"unauthorized\"}", fix)
    return IntakeError(401, "Authorization", f"a valid bearer token is required. Fix: {fix}", "unauthorized",
                       headers={"WWW-Authenticate": 'Bearer realm="monitor"'})


def _unread_refusal(route: str, err: IntakeError, request: web.Request) -> str | None:
    """What a refused CloudEvent was told, for the log (:meth:`Sidecar.count_refused` logs the first
    of each reason): its 4xx goes back to KServe's or Seldon's inference logger, which logs only the
    status, in the model's pod. None on the other routes, whose clients read the answer, for
    back-pressure (429, 503: the logger retries) and for the 401 of an event without a token
    (:func:`_logger_without_token` logs that one with its own fix). A 401 for a token that is
    none of the write tokens (a logger or proxy configured with an old or wrong one) was only
    counted: nothing in the sidecar's log said why its CloudEvents were refused."""
    if route not in _CLOUDEVENT_ROUTES or not 400 <= err.status < 500 or err.status == 429:
        return None
    if err.status == 401:
        if "Authorization" not in request.headers:
            return None
        return (f"Authorization: the bearer token sent is none of {request.app[K.WRITE_AUTH].keys} (or not 'Bearer "
                "<token>'). Fix: give the sender a current write token, or set server.cloudevents.require_token: "
                "false if it is KServe's or Seldon's inference logger (they send none)")
    return f"{err.field}: {err.message}"


@web.middleware
async def _middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    sidecar: Sidecar = request.app[K.SIDECAR]
    route = request.match_info.route
    name = route.name or ("proxy" if route.resource is not None else "unmatched")
    t0 = time.perf_counter()
    status = 500
    sidecar.in_flight += 1
    try:
        if name.startswith("proxy") and K.PROXY in request.app:
            allowed = request.app[K.PROXY].sidecar_methods(request)
            if allowed:  # the sidecar's own path with another method: its 405, not the model server's
                name = "unmatched"
                raise web.HTTPMethodNotAllowed(request.method, allowed)
        if name in WRITE_ROUTES:
            if sidecar.settings.cloudevents.require_token or name not in _CLOUDEVENT_ROUTES:
                try:
                    request.app[K.WRITE_AUTH].check(request)
                except IntakeError:
                    if name in _CLOUDEVENT_ROUTES and "Authorization" not in request.headers:
                        raise _logger_without_token(sidecar) from None
                    raise
        elif name in READ_ROUTES:
            request.app[K.READ_AUTH].check(request)
        response = await handler(request)
        status = response.status
    except IntakeError as err:
        status = err.status
        endpoint = endpoint_of(name) or name
        if err.events:
            sidecar.count_refused(endpoint, err.reason, err.events, err.monitor, detail=_unread_refusal(name, err, request))
        for other, n in (err.others or {}).items():  # back-pressure refused them too (another model's full queue)
            sidecar.count_refused(endpoint, err.reason, n, other)
        response = error_response(err)
        if err.reason == CLIENT_TIMEOUT:
            response = await answer_and_close(request, response)
    except web.HTTPException as exc:
        status = exc.status
        if name != "unmatched" or status not in (404, 405):
            raise
        response = _no_route(request, exc)
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    except Exception as err:  # noqa: BLE001 - answer 500 as JSON and count it; never crash the server
        if _client_went_away(request, err):
            # the client went away (mid-body, or while a stream was written to it): its 499,
            # answered to nobody. Re-raised, aiohttp logged "Error handling request" at ERROR with
            # a traceback for every such client, which read as a crash of the agent; an answer
            # written to the closed connection is dropped by aiohttp as a premature
            # disconnection, quietly
            status = 499
            if request.transport is not None:
                request.transport.close()
            response = web.Response(status=499)
            response.force_close()
        else:
            log.exception("handler %s failed", name)
            if name in WRITE_ROUTES:
                sidecar.count_refused(endpoint_of(name) or name, "internal_error")
            response = web.json_response({"status": "error", "error": "internal error in the monitor sidecar",
                                          "reason": "internal_error"}, status=500)
    finally:
        sidecar.in_flight -= 1
        sidecar.http.record((name if not name.startswith("proxy") else "proxy", str(status)), time.perf_counter() - t0)
    if not sidecar.accepting:
        response.force_close()  # shutting down: this connection takes no further request, whatever the answer
    return response


def _client_went_away(request: web.Request, err: BaseException) -> bool:
    """Whether ``err`` is the client's connection lost, not a failure of the sidecar: aiohttp
    raises ConnectionResetError from a body read or a write, but a write that waited for a client
    that stopped reading (a paused stream) fails with a plain ``ConnectionError("Connection
    lost")`` once that client closes; any ConnectionError is the client's when its transport is
    gone or closing."""
    if isinstance(err, ConnectionResetError):
        return True
    if not isinstance(err, ConnectionError):
        return False
    transport = request.transport
    return transport is None or transport.is_closing()


def _no_route(request: web.Request, exc: web.HTTPException) -> web.Response:
    """404/405 in the sidecar's one error shape (aiohttp answers them in plain text)."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        return error_response(IntakeError(405, "method", f"{request.method} is not allowed on {request.path}; use "
                                          f"{' or '.join(allowed)}", "method_not_allowed", headers={"Allow": ", ".join(allowed)}))
    paths = sorted({route.resource.canonical for route in request.app.router.routes() if route.resource is not None and route.name})
    return error_response(IntakeError(404, "path", f"no endpoint {request.path}; the sidecar serves {', '.join(paths)}",
                                      "not_found"))


# -- read endpoints --------------------------------------------------------------------------------
async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    sidecar: Sidecar = request.app[K.SIDECAR]
    if sidecar.load_error:
        return web.json_response({"status": "error", "ready": False, "error": sidecar.load_error}, status=503)
    if not sidecar.ready:
        return web.json_response({"status": "loading", "ready": False}, status=503)
    if not sidecar.accepting:
        return web.json_response({"status": "shutting_down", "ready": False}, status=503)
    return web.json_response({"status": "ok", "ready": True, "models": sorted(sidecar.monitors)})


async def _metrics(request: web.Request) -> web.Response:
    sidecar: Sidecar = request.app[K.SIDECAR]
    om = "application/openmetrics-text" in request.headers.get("Accept", "")
    await sidecar.sync_proxies()
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(None, sidecar.metrics_text, om)
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = _OPENMETRICS if om else _TEXT
    return resp


def alerts_payload(alerts: list[Any]) -> dict[str, Any]:
    """Prometheus's ``GET /api/v1/alerts`` shape from the rule evaluator's alert objects.
    Uses the rules package's own formatter when it has one."""
    if alerts and all(hasattr(a, "active_at") and hasattr(a, "state") for a in alerts):
        from monitor.rules.evaluator import alerts_api_response

        return alerts_api_response(alerts)
    out = []
    for a in alerts:
        d = a.to_dict() if hasattr(a, "to_dict") else dict(a) if isinstance(a, dict) else vars(a)
        active = d.get("activeAt", d.get("active_at"))
        if isinstance(active, (int, float)):
            active = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(active)) + f".{int((active % 1) * 1e9):09d}Z"
        out.append({
            "labels": dict(d.get("labels", {})),
            "annotations": dict(d.get("annotations", {})),
            "state": str(d.get("state", "firing")),
            "activeAt": active,
            "value": str(d.get("value", "")),
        })
    return {"status": "success", "data": {"alerts": out}}


async def _alerts(request: web.Request) -> web.Response:
    sidecar: Sidecar = request.app[K.SIDECAR]
    alerts: list[Any] = []
    for mon in sidecar.all_monitors():
        alerts.extend(mon.alerts())
    return web.json_response(alerts_payload(alerts))


async def _status(request: web.Request) -> web.Response:
    return web.json_response({"status": "success", "data": request.app[K.SIDECAR].status()})


def _with_readable_times(d: Any) -> Any:
    """``d`` (a verdict's JSON form) with, after each ``*_ts`` field of Unix seconds (event time),
    the same instant as RFC 3339 in UTC, ``*_time`` (``first_seen_ts`` 1765079584.1 ->
    ``first_seen_time`` "2025-12-07T03:53:04.100Z"), in its signals too: on-call reads the
    clients API to learn since when a client is flagged, and the floats, kept for scripts, say
    nothing to a person. A NaN time (never) is null in both."""
    from monitor.rules.notifier import format_rfc3339_ms

    if isinstance(d, list):
        return [_with_readable_times(x) for x in d]
    if not isinstance(d, dict):
        return d
    out: dict[str, Any] = {}
    for key, value in d.items():
        out[key] = _with_readable_times(value)
        if key.endswith("_ts") and (value is None or isinstance(value, (int, float))) and not isinstance(value, bool):
            finite = value is not None and value == value and abs(value) < 1e12
            out[key[:-3] + "_time"] = format_rfc3339_ms(float(value)) if finite else None
    return out


async def _clients(request: web.Request) -> web.Response:
    sidecar: Sidecar = request.app[K.SIDECAR]
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError:
        raise IntakeError(400, "limit", "must be an integer between 1 and 1000", "bad_limit", events=0) from None
    out = []
    without: list[dict[str, str]] = []
    for mon in sidecar.all_monitors():
        if not mon.watches_clients():
            # no client of such a model is ever listed: said, or "no suspicious client" and "not
            # watched" answer the same
            without.append({"model": mon.model, "reason": mon.why_no_probing()})
            continue
        for item in mon.suspicious_clients(limit):
            d = item.to_dict() if hasattr(item, "to_dict") else item
            out.append({"model": mon.model, **(_with_readable_times(d) if isinstance(d, dict) else {"client": str(d)})})
    return web.json_response({"status": "success", "data": {"clients": out, "models_without_probing": without}})


async def _client_lookup(request: web.Request) -> web.Response:
    """``POST /api/v1/clients/lookup`` ``{"client": "<raw id>"}``: the id each watched model
    exports for it and its verdict, so that an operator can match an alert's hashed id with an
    account from the access logs (hashed with each model's salt, never echoed back nor stored).
    Write scope, in a body: the holders of write tokens send raw ids already, while a read
    token (Prometheus's) must not be able to test guessed ids (IPs can be enumerated) against the
    hashes it scrapes; and a raw API key in a URL would land in access logs."""
    sidecar: Sidecar = request.app[K.SIDECAR]
    try:
        body = await request.json()
    except ValueError:
        body = None
    client = body.get("client") if isinstance(body, dict) else None
    if not isinstance(client, str) or not client:
        raise IntakeError(400, "client", 'must be the raw client id to look up, as your model receives it (API key, '
                          'user, IP), in a JSON body: {"client": "key-1"}', "bad_client", events=0)
    lookup: list[dict[str, Any]] = []
    for mon in sidecar.all_monitors():
        if mon.watches_clients():
            lookup.extend({"model": mon.model, **_with_readable_times(item)} for item in mon.client_lookup(client))
    return web.json_response({"status": "success", "data": {"lookup": lookup}})


async def _reload(request: web.Request) -> web.Response:
    """Prometheus's ``POST /-/reload`` (what configmap-reload and the Prometheus Operator's config
    reloader call when a mounted ConfigMap changes): ``monitor.yaml`` and the rule files read again,
    each model's ``rules:`` section applied (:meth:`Sidecar.reload`). 200 with the rules per model,
    or 400 naming each model's problems, what it evaluated before left in place. That the file no
    longer loads, or which of its keys changed that take effect at a restart, is said in the
    answer's ``warnings``."""
    from monitor.server.sidecar import RulesReloadError

    sidecar: Sidecar = request.app[K.SIDECAR]
    if not sidecar.ready:
        raise IntakeError(503, "models", "are still loading (their rules with them); retry when /readyz answers 200",
                          "not_ready", events=0, headers={"Retry-After": "1"})
    loop = asyncio.get_running_loop()
    try:
        loaded, warnings = await loop.run_in_executor(None, sidecar.reload)
    except RulesReloadError as err:
        raise IntakeError(400, "rules.files", f"the rules of {', '.join(sorted(err.failed))} did not load; their "
                          "rules, receivers and settings loaded before stay in place. Fix the files (`monitor rules "
                          "check FILE`) and reload again", "rules_invalid", events=0,
                          details=[{"model": m, "error": e} for m, e in sorted(err.failed.items())]
                          + [{"warning": w} for w in err.warnings]) from None
    # as Prometheus's API: "warnings" only when there are some
    return web.json_response({"status": "success", "data": {"rules": loaded}, **({"warnings": warnings} if warnings else {})})


# -- the application ---------------------------------------------------------------------------------
def create_app(sidecar: Sidecar, *, proxy_on_this_app: bool | None = None, load_in_thread: bool = True) -> web.Application:
    """The sidecar's application. With a proxy upstream and no separate ``server.proxy.port``,
    the proxy's routes are added behind the sidecar's own (which take precedence)."""
    settings: SidecarSettings = sidecar.settings
    app = web.Application(middlewares=[_middleware], client_max_size=settings.max_body_bytes + 1,
                          handler_args={**_HANDLER_ARGS, "logger": MalformedRequestLog(sidecar)})
    app[K.SIDECAR] = sidecar
    app[K.WRITE_AUTH] = TokenAuth(settings.write_tokens, "the write tokens (server.write_token_file / write_token_env)")
    app[K.READ_AUTH] = TokenAuth(settings.metrics_tokens, "the metrics tokens (server.metrics_token_file / metrics_token_env; "
                                                          "a write token does not read)")
    app[K.CLOUDEVENTS] = CloudEventsIntake(sidecar)
    app[K.CHECKPOINTER] = Checkpointer(sidecar)
    r = app.router
    r.add_get("/healthz", _healthz, name="healthz")
    r.add_get("/readyz", _readyz, name="readyz")
    r.add_get("/metrics", _metrics, name="metrics")
    r.add_get("/api/v1/alerts", _alerts, name="alerts")
    r.add_get("/api/v1/status", _status, name="status")
    r.add_get("/api/v1/clients", _clients, name="clients")
    r.add_post("/api/v1/clients/lookup", _client_lookup, name="client_lookup")
    r.add_post("/v1/events", handle_events, name="events")
    r.add_post("/v1/feedback", handle_feedback, name="feedback")
    r.add_post("/v1/cloudevents", handle_cloudevent, name="cloudevents")
    r.add_post("/-/reload", _reload, name="reload")
    with_proxy = bool(settings.proxy.upstream) and (settings.proxy.port is None if proxy_on_this_app is None else proxy_on_this_app)
    if with_proxy:
        from monitor.server.proxy import Proxy

        proxy = Proxy(sidecar, settings.proxy)
        proxy.add_routes(app)
        app[K.PROXY] = proxy
    else:
        r.add_post("/", handle_cloudevent, name="cloudevents_root")

    async def startup(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        if load_in_thread:
            app[K.LOADER] = loop.run_in_executor(None, sidecar.load)
        else:
            sidecar.load()
        if K.PROXY in app:
            await app[K.PROXY].start()
        fw = settings.forward
        if fw.unix or fw.udp:
            from monitor.server.forward import ForwardReceiver

            receiver = ForwardReceiver(sidecar, fw)
            try:
                await receiver.start(app.get(K.LOADER))
            except BaseException:
                # the start stops here and this app's cleanup never runs: the proxy's client session
                # is closed now, else asyncio logs it at ERROR next to the real cause
                if K.PROXY in app:
                    await app[K.PROXY].close()
                raise
            app[K.FORWARD] = receiver
        app[K.TASKS] = [asyncio.create_task(housekeeping(app)), asyncio.create_task(app[K.CHECKPOINTER].run())]

    async def cleanup(app: web.Application) -> None:
        for task in app.get(K.TASKS, []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        loader = app.get(K.LOADER)
        if loader is not None:
            with contextlib.suppress(Exception):
                await loader
        await shutdown(app)
        if K.PROXY in app:
            await app[K.PROXY].close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


def create_proxy_app(sidecar: Sidecar) -> web.Application:
    """The proxy alone, for a separate listener (``server.proxy.port``)."""
    from monitor.server.proxy import Proxy

    app = web.Application(middlewares=[_middleware], client_max_size=sidecar.settings.max_body_bytes + 1,
                          handler_args={**_HANDLER_ARGS, "logger": MalformedRequestLog(sidecar)})
    app[K.SIDECAR] = sidecar
    proxy = Proxy(sidecar, sidecar.settings.proxy)
    proxy.add_routes(app)
    app[K.PROXY] = proxy

    async def startup(app: web.Application) -> None:
        await proxy.start()

    async def cleanup(app: web.Application) -> None:
        await proxy.close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app
