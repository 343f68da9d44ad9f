"""The sidecar's settings: ``server:`` in ``monitor.yaml`` validated into dataclasses.

The foundation's :class:`~monitor.config.ServerConfig` carries the common keys; the sidecar's own
sections (``proxy``, ``cloudevents``, ``forward``, ``max_queued_events``, ``shutdown_timeout``)
arrive in ``ServerConfig.extra`` and are validated here, with errors that name the key and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.config import AgentConfig, ConfigError, ConfigErrors, ServerConfig, ConfigReader, parse_duration, url_unreadable

__all__ = ["PredictRoute", "ProxySettings", "CloudEventsSettings", "ForwardSettings", "SidecarSettings", "settings_from",
           "check_ports", "PORT_KEYS"]


@dataclass(frozen=True)
class PredictRoute:
    """A plain JSON predict route of the model server, tapped by the proxy.

    ``path`` is an aiohttp route pattern (``/predict``, ``/models/{model}/predict``); the model is
    the ``{model}`` part of the path or ``model``; ``inputs``/``outputs`` are dotted paths into the
    request and response JSON (``instances``, ``data.rows``; ``.`` is the whole body, a bare list of
    rows); ``request_id`` optionally one into the request."""

    path: str
    model: str | None = None
    inputs: str = "instances"
    outputs: str = "predictions"
    request_id: str | None = None


@dataclass(frozen=True)
class ProxySettings:
    upstream: str | None = None
    port: int | None = None
    #: ``server.proxy.timeout``: the time to the response head, and the longest silence while the
    #: body streams (an idle timeout: a server-sent-event or LLM token stream may last longer as
    #: long as its chunks keep coming). No head in time: 504; a silence that long mid-body: cut.
    timeout_s: float = 60.0
    routes: tuple[PredictRoute, ...] = ()
    #: which output holds the scores: an OIP v2 answer's tensor (default: the first), or one of TF
    #: Serving's named outputs (default: the only one, else the one named as output.kind reads)
    oip_output: str | None = None
    max_connections: int = 100
    #: "auto" (the lean httptools data path when httptools is installed and the upstream is
    #: http://), "lean" (that path, or an error) or "aiohttp" (server and client session).
    engine: str = "auto"
    #: ``server.proxy.process``: run the lean engine's data path in a child process of its own
    #: (:mod:`monitor.server.dataplane`), so that nothing the monitor does (the tap's parsing,
    #: the worker's drains, rule evaluation, checkpoints, scrapes) holds the proxy's GIL; the
    #: sidecar's own routes on the proxy's port are handed back to this process by their socket.
    #: Needs a platform that passes sockets between processes (Linux, macOS); elsewhere, and
    #: with ``false``, the data path runs on this process's event loop.
    process: bool = True


@dataclass(frozen=True)
class CloudEventsSettings:
    max_pending: int = 10_000
    #: Bytes of request/response bodies held at most while halves wait (the count alone would let
    #: 10,000 halves of up to ``max_body_bytes`` each pile up); the oldest go first, counted ``overflow``.
    max_pending_bytes: int = 64 * 1024 * 1024
    pending_ttl_s: float = 30.0
    #: KServe's and Seldon's loggers cannot send a bearer token: ``require_token: false`` exempts
    #: the CloudEvents endpoint from the write token (protect it with a NetworkPolicy instead).
    require_token: bool = True


@dataclass(frozen=True)
class ForwardSettings:
    unix: str | None = None
    udp: str | None = None  # "host:port"
    receive_buffer_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class SidecarSettings:
    """Everything ``monitor serve`` needs besides the per-model configs."""

    addr: str = "127.0.0.1"
    port: int = 9108
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch_events: int = 10_000
    max_queued_events: int = 1_000_000
    #: ``server.shutdown_timeout``: one deadline from SIGTERM to the final checkpoint (see
    #: :mod:`monitor.server.lifecycle`); keep it below the pod's termination grace period.
    shutdown_timeout_s: float = 20.0
    #: ``server.client_body_timeout``: the longest silence while an intake request's body (events,
    #: feedback, CloudEvents) arrives, as nginx's ``client_body_timeout``; then 408
    #: ``client_timeout`` and the connection closed (a stalled upload held its connection, and up
    #: to ``max_body_bytes`` of buffer, for good).
    client_body_timeout_s: float = 60.0
    #: ``server.worker_nice``: the nice value of the sidecar's monitoring work, 0 to 19 (Linux,
    #: where nice is per thread). With the proxy's data path in its own process
    #: (``server.proxy.process``), every thread of the sidecar (its event loop with the tap's
    #: parsing and the intake, the models' workers, scrapes) is niced and the data path process
    #: keeps its priority; otherwise only the threads that load the models and run their workers
    #: (a niced thread holding the GIL would keep the event loop, and a proxy on it, waiting
    #: longer, not shorter). On a busy node the proxied requests then get the CPU first and the
    #: monitoring work waits (bounded by the queues and the tap's backlog, shed and counted when
    #: full), as a monitor that must never slow the model it watches should. 0 leaves all as is.
    worker_nice: int = 0
    write_tokens: tuple[str, ...] = ()
    metrics_tokens: tuple[str, ...] = ()
    client_header: str | None = None
    #: ``server.segment_header``: the request header whose value is the segment of every row of
    #: a proxied request or of a CloudEvent (from KServe's ``ce-metadata``), as ``client_header``
    #: gives the client; None: those rows have no segment (``unset``).
    segment_header: str | None = None
    #: ``server.unmonitored_models``: models the model server also serves that this sidecar
    #: deliberately does not monitor; their proxied exchanges and CloudEvents are counted
    #: (``reason="unmonitored"``) without a warning and page nobody, where an unknown model would.
    unmonitored_models: frozenset[str] = frozenset()
    proxy: ProxySettings = field(default_factory=ProxySettings)
    cloudevents: CloudEventsSettings = field(default_factory=CloudEventsSettings)
    forward: ForwardSettings = field(default_factory=ForwardSettings)

    def replace(self, **changes: Any) -> "SidecarSettings":
        return dataclasses.replace(self, **changes)


def _int(value: Any, key: str, source: str, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        rng = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(key, f"must be an integer {rng}, got {value!r}", f"write a whole number {rng}", source)
    return value


def _tokens(r: ConfigReader, file: str | None, env: str | None, key: str, base: Path) -> tuple[str, ...]:
    """Bearer tokens, one per line of the file and/or the environment variable (several allow
    rotation without downtime). Empty lines and ``#`` comments are ignored. The file and the
    variable are two keys: an error of each is kept (:meth:`ConfigReader.attempt`), its tokens left out."""
    from_file = r.attempt(lambda: _file_tokens(file, key, base, r.source), ()) if file else ()
    return from_file + (r.attempt(lambda: _env_tokens(env, key, r.source), ()) if env else ())


def _file_tokens(file: str, key: str, base: Path, source: str) -> tuple[str, ...]:
    p = Path(file)
    if not p.is_absolute():
        p = base / p
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"server.{key}_token_file", f"cannot read {p}: {err.strerror}", "check the path and permissions", source) from None
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ConfigError(f"server.{key}_token_file", f"{p} holds no token", "write the token on the first line", source)
    _check_token_lengths([(t, f"line {i} of {p}") for i, t in lines], f"server.{key}_token_file", source)
    return tuple(t for _, t in lines)


def _env_tokens(env: str, key: str, source: str) -> tuple[str, ...]:
    value = os.environ.get(env)
    if not value or not value.strip():
        raise ConfigError(f"server.{key}_token_env", f"environment variable {env} is not set or empty",
                          f"export {env}=<token> before starting", source)
    tokens = [t.strip() for t in value.split(",") if t.strip()]
    _check_token_lengths([(t, f"token {i} of {env}") for i, t in enumerate(tokens, 1)], f"server.{key}_token_env", source)
    return tuple(tokens)


#: The shortest bearer token accepted (the README says it where tokens are configured).
MIN_TOKEN_CHARS = 16


def _check_token_lengths(tokens: list[tuple[str, str]], key: str, source: str) -> None:
    """Refuse a token shorter than :data:`MIN_TOKEN_CHARS`, naming where it is (a line of the file,
    the n-th of the variable; never the token) under the key it came from: with both a file and a
    variable set, a short token of the variable was blamed on the file."""
    for token, where in tokens:
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(key, f"a token must be at least {MIN_TOKEN_CHARS} characters; {where} has {len(token)}",
                              "generate one with: openssl rand -hex 32", source)


def _check_route_pattern(path: str, key: str, source: str) -> None:
    """A route path as aiohttp's router compiles it (the proxy adds it there): an unbalanced
    ``{``, a bad ``{name:regex}`` or ``{model}`` twice passed ``config check`` and stopped
    ``monitor serve`` with aiohttp's ValueError traceback after the listeners were bound."""
    from aiohttp import web

    try:
        web.UrlDispatcher().add_resource(path)
    except ValueError as err:
        raise ConfigError(key, f"is not a route pattern the proxy can match ({err})",
                          "write a path such as /predict or /models/{model}/predict (each {name} once, braces balanced)",
                          source) from None


def _check_upstream(upstream: Any, key: str, engine: str, source: str) -> None:
    """The model server's URL, from the file or from ``monitor serve --proxy`` alike: without a
    scheme (``127.0.0.1:8080``) every proxied request would be answered 502."""
    if upstream is None:
        return
    if not isinstance(upstream, str) or not upstream.startswith(("http://", "https://")):
        raise ConfigError(key, f"must be an http(s) URL, got {upstream!r}", "write e.g. http://127.0.0.1:8080", source)
    # a host or port that cannot be read passed here and stopped `monitor serve` with a traceback
    # from the proxy's start (the data path process's, then the sidecar's) after config check said SUCCESS
    try:
        parts = urlsplit(upstream)
    except ValueError as err:
        raise ConfigError(key, url_unreadable(err), "write e.g. http://127.0.0.1:8080", source) from None
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or beyond 65535
        port_ok = False
    if not parts.hostname or not port_ok:
        # (the URL itself is not repeated: it may carry credentials)
        what = "names no host" if not parts.hostname else f"has no valid port ({parts.netloc.rpartition(':')[2]!r})"
        raise ConfigError(key, f"the URL {what}", "write the model server's address with a port from 1 to 65535, "
                                                  "e.g. http://127.0.0.1:8080", source)
    if engine == "lean" and not upstream.startswith("http://"):
        raise ConfigError("server.proxy.engine", "the lean engine speaks plain HTTP to the model server",
                          "use an http:// upstream (the model server in the same pod), or engine: aiohttp", source)


def settings_from(agent: AgentConfig, *, errors_before: "Sequence[ConfigError]" = (), **overrides: Any) -> SidecarSettings:
    """Validate ``agent.server`` (and its ``extra`` sections) into :class:`SidecarSettings`.
    Keyword arguments (from the command line) override the file. ``errors_before``: the errors
    met reading the file's other sections (``monitor config check`` reads on past them), whose
    keys were left at their defaults: ports left so are not compared (:func:`check_ports`).

    Raises
    ------
    ConfigErrors
        Every independent error of the section (``errors``, one per key, in the order the file is
        read; a key in error is left at its default and the rest read on), read as the first:
        ``monitor serve`` and a reload say that one, as they did; ``monitor config check`` each.
    """
    r = ConfigReader(agent.source)
    settings = _read(r, agent)
    if overrides:
        proxy_url = overrides.pop("proxy_upstream", None)
        # (--proxy in error is not taken: the ports' check would read it)
        if proxy_url is not None and r.attempt(lambda: _check_upstream(proxy_url, "--proxy", settings.proxy.engine,
                                                                        agent.source) or True, False):
            settings = settings.replace(proxy=dataclasses.replace(settings.proxy, upstream=proxy_url))
        settings = settings.replace(**{k: v for k, v in overrides.items() if v is not None})
    # the ports are compared only when those read are the file's (or the command line's): a key in
    # error left at its default could clash with another (`port: x` read as 8080 beside a proxy on 8080)
    if not any(e.key in PORT_KEYS for e in (*errors_before, *r.errors)):
        r.attempt(lambda: check_ports(settings, agent.source), None)
    if r.errors:
        raise ConfigErrors(r.errors)
    return settings


def _read(r: ConfigReader, agent: AgentConfig) -> SidecarSettings:
    """The file's settings, each error kept in ``r`` and its key left at its default."""
    srv: ServerConfig = agent.server
    source = agent.source
    base = Path(source).parent if source and not source.startswith("<") else Path(".")
    extra = srv.extra
    d = SidecarSettings()
    proxy = _proxy(r, extra.get("proxy"), agent)
    cloudevents = _cloudevents(r, extra.get("cloudevents"))
    forward = _forward(r, extra.get("forward"))
    unmonitored = r.attempt(lambda: _unmonitored(extra.get("unmonitored_models", []), agent, source), frozenset())

    def number(name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
        return r.attempt(lambda: _int(extra.get(name, default), f"server.{name}", source, minimum, maximum), default)

    def duration(name: str, default: float) -> float:
        return r.attempt(lambda: parse_duration(extra.get(name, f"{default:g}s"), f"server.{name}", source), default)

    return SidecarSettings(
        addr=srv.addr,
        port=srv.port,
        max_body_bytes=srv.max_body_bytes,
        max_batch_events=srv.max_batch_events,
        max_queued_events=number("max_queued_events", d.max_queued_events),
        shutdown_timeout_s=duration("shutdown_timeout", d.shutdown_timeout_s),
        client_body_timeout_s=duration("client_body_timeout", d.client_body_timeout_s),
        worker_nice=number("worker_nice", d.worker_nice, 0, 19),
        write_tokens=_tokens(r, srv.write_token_file, srv.write_token_env, "write", base),
        metrics_tokens=_tokens(r, srv.metrics_token_file, srv.metrics_token_env, "metrics", base),
        client_header=srv.client_header,
        segment_header=srv.segment_header,
        unmonitored_models=unmonitored,
        proxy=proxy,
        cloudevents=cloudevents,
        forward=forward,
    )


def _proxy(r: ConfigReader, value: Any, agent: AgentConfig) -> ProxySettings:
    """``server.proxy``, each key's error kept (:meth:`ConfigReader.attempt`) and the key left at its default."""
    source = r.source
    d = ProxySettings()
    px = r.mapping(value, "server.proxy", "server.proxy")
    routes = _routes(r, px.get("routes", []) or [], [m.model for m in agent.models])

    def oip_output() -> str | None:
        name = px.get("oip_output")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError("server.proxy.oip_output", f"must be the name of an output tensor, got {name!r}",
                              "write the name of the output tensor holding the probabilities, e.g. oip_output: "
                              "predict_proba (MLServer's scikit-learn runtime)", source)
        return name

    def engine() -> str:
        name = px.get("engine", "auto")
        if name not in ("auto", "lean", "aiohttp"):
            raise ConfigError("server.proxy.engine", f"must be auto, lean or aiohttp, got {name!r}",
                              "write engine: auto (or aiohttp to use the aiohttp client session)", source)
        return name

    the_oip_output = r.attempt(oip_output, d.oip_output)
    the_engine = r.attempt(engine, d.engine)
    upstream = px.get("upstream")
    upstream = r.attempt(lambda: _check_upstream(upstream, "server.proxy.upstream", the_engine, source) or upstream,
                         d.upstream)
    port = px.get("port")
    return ProxySettings(
        upstream=upstream,
        process=r.attempt(lambda: _flag(px.get("process", True), "server.proxy.process", "write process: false to run "
                                        "the proxy's data path on the sidecar's own event loop", source), d.process),
        port=None if port is None else r.attempt(lambda: _int(port, "server.proxy.port", source, 0, 65535), d.port),
        timeout_s=r.attempt(lambda: parse_duration(px.get("timeout", "60s"), "server.proxy.timeout", source), d.timeout_s),
        routes=routes,
        oip_output=the_oip_output,
        max_connections=r.attempt(lambda: _int(px.get("max_connections", 100), "server.proxy.max_connections", source),
                                  d.max_connections),
        engine=the_engine,
    )


def _routes(r: ConfigReader, value: Any, served: list[str]) -> tuple[PredictRoute, ...]:
    """``server.proxy.routes``: each entry's errors kept, and an entry in error left out."""
    if not isinstance(value, list):
        r.add(ConfigError("server.proxy.routes", "must be a list", "write routes: [- path: /predict]", r.source))
        return ()
    routes = (_route(r, raw, f"server.proxy.routes[{i}]", served) for i, raw in enumerate(value))
    return tuple(route for route in routes if route is not None)


def _route(r: ConfigReader, raw: Any, key: str, served: list[str]) -> PredictRoute | None:
    """One route, or None when it is in error (each of its keys' errors kept in ``r``)."""
    source = r.source
    errors = len(r.errors)
    route = r.mapping(raw, key, "server.proxy.routes[]")
    if raw is not None and not isinstance(raw, dict):
        return None  # its error alone: the keys it then lacks would be its consequence

    def path() -> str:
        value = route.get("path")
        if not isinstance(value, str) or not value.startswith("/"):
            raise ConfigError(f"{key}.path", f"must be a URL path starting with /, got {value!r}", "write path: /predict", source)
        _check_route_pattern(value, f"{key}.path", source)
        return value

    the_path = r.attempt(path, None)
    model = route.get("model")
    if the_path is not None and model is None and "{model}" not in the_path and len(served) != 1:
        r.add(ConfigError(f"{key}.model", "is required when the path has no {model} part and several models are served",
                          "write model: <name>", source))
    for k in ("model", "inputs", "outputs", "request_id"):
        if route.get(k) is not None and (not isinstance(route[k], str) or not route[k]):
            r.add(ConfigError(f"{key}.{k}", f"must be a non-empty string, got {route[k]!r}", "quote the value", source))
    # (a served name that is itself in error, which `monitor config check` reads on with, is no name to match)
    if model is not None and model not in served and "" not in served:
        # every request tapped on it was refused (unknown_model) while the proxy answered it
        r.add(ConfigError(f"{key}.model", f"names no served model: {model!r} (served: {', '.join(served)})",
                          "write one of the served names (model: in the file, or under models:)", source))
    if len(r.errors) > errors:
        return None
    return PredictRoute(the_path, model, route.get("inputs", "instances"), route.get("outputs", "predictions"),
                        route.get("request_id"))


def _cloudevents(r: ConfigReader, value: Any) -> CloudEventsSettings:
    """``server.cloudevents``, each key's error kept and the key left at its default."""
    source = r.source
    d = CloudEventsSettings()
    ce = r.mapping(value, "server.cloudevents", "server.cloudevents")
    require_token = r.attempt(lambda: _flag(ce.get("require_token", True), "server.cloudevents.require_token",
                                            "write require_token: false to let the inference logger post without a "
                                            "token", source), d.require_token)
    return CloudEventsSettings(
        max_pending=r.attempt(lambda: _int(ce.get("max_pending", d.max_pending), "server.cloudevents.max_pending", source),
                              d.max_pending),
        max_pending_bytes=r.attempt(lambda: _int(ce.get("max_pending_bytes", d.max_pending_bytes),
                                                 "server.cloudevents.max_pending_bytes", source), d.max_pending_bytes),
        pending_ttl_s=r.attempt(lambda: parse_duration(ce.get("pending_ttl", "30s"), "server.cloudevents.pending_ttl",
                                                       source), d.pending_ttl_s),
        require_token=require_token,
    )


def _forward(r: ConfigReader, value: Any) -> ForwardSettings:
    """``server.forward``, each key's error kept and the key left at its default."""
    source = r.source
    d = ForwardSettings()
    fw = r.mapping(value, "server.forward", "server.forward")

    def udp() -> str | None:
        value = fw.get("udp")
        if value is None:
            return None
        host, _, port = str(value).rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError("server.forward.udp", f"must be host:port, got {value!r}", "write udp: 127.0.0.1:9109", source)
        return str(value)

    def unix() -> str | None:
        value = fw.get("unix")
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError("server.forward.unix", f"must be a socket path, got {value!r}",
                              "write unix: /run/monitor/forward.sock", source)
        return value

    return ForwardSettings(
        udp=r.attempt(udp, d.udp),
        unix=r.attempt(unix, d.unix),
        receive_buffer_bytes=r.attempt(lambda: _int(fw.get("receive_buffer_bytes", d.receive_buffer_bytes),
                                                    "server.forward.receive_buffer_bytes", source, 65536),
                                       d.receive_buffer_bytes),
    )


def _unmonitored(value: Any, agent: AgentConfig, source: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise ConfigError("server.unmonitored_models", f"must be a list of model names, got {value!r}",
                          "write e.g. unmonitored_models: [resnet-canary, tokenizer]", source)
    both = sorted({m.model for m in agent.models}.intersection(value))
    if both:
        raise ConfigError("server.unmonitored_models", f"names {', '.join(map(repr, both))}, which this config monitors",
                          "remove it from unmonitored_models, or its models: entry", source)
    return frozenset(value)


def _flag(value: Any, key: str, fix: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}", fix, source)
    return value


#: What :func:`check_ports` reads: an error at one of these leaves a default it must not compare.
PORT_KEYS = frozenset({"server", "server.port", "server.addr", "server.proxy", "server.proxy.port", "server.proxy.upstream"})


def check_ports(settings: SidecarSettings, source: str = "<config>") -> None:
    """Refuse a proxy port that is the sidecar's own: the second listener failed to bind with
    "Address already in use", after the models had loaded, and the error named the sidecar's
    port as if something else held it."""
    if settings.proxy.port is not None and settings.proxy.port != 0 and settings.proxy.port == settings.port:
        raise ConfigError("server.proxy.port", f"is the sidecar's own port ({settings.port}, server.port / --port)",
                          "leave server.proxy.port (--proxy-port) out to serve the proxy behind the sidecar's routes "
                          "on that port, or give it a port of its own", source)
    # an upstream that is the sidecar itself (the model server's port mistyped as the sidecar's) was
    # taken: each proxied request was forwarded to the proxy again, 100 times over (the connection pool),
    # until the timeout answered 504 and the log blamed "the model server" for not answering
    up = settings.proxy.upstream
    if up:
        parts = urlsplit(up)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        own = {p for p in (settings.port, settings.proxy.port) if p}
        local = host in ("localhost", "::1", "0.0.0.0", "::", settings.addr.lower()) or host.startswith("127.")
        if port in own and local:
            which = "server.port / --port" if port == settings.port else "server.proxy.port / --proxy-port"
            raise ConfigError("server.proxy.upstream", f"is the sidecar itself ({host}:{port} is where it listens, "
                              f"{which}): every proxied request would be forwarded back to the proxy",
                              "write the model server's own address and port (server.proxy.upstream or --proxy), "
                              "or move the sidecar to another port", source)
