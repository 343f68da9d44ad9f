"""Which requests the proxy forwards, and how each is tapped: the sidecar application's aiohttp
routes, resolved without aiohttp's request objects.

The lean proxy engine (:mod:`monitor.server.leanproxy`) parses requests itself; to keep the
sidecar's own endpoints' precedence exactly as the aiohttp engine has it, it resolves each
request against the same application router, with aiohttp's resolution rules (see
:class:`RouteTable`), using only the resources' public ``get_info()``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote

from aiohttp import web

from monitor.server.proxy import _Tap

__all__ = ["LOCAL", "RouteSpec", "RouteTable", "Target", "route_specs"]

_SLASH = re.compile("%2[fF]")
_CACHE = 4096  # resolved (method, path) pairs kept; cleared when full

@dataclass(frozen=True)
class Target:
    """Where one request goes: to the sidecar's own handlers (``local``), or to the upstream with
    or without a tap; ``model`` is the ``{model}`` part of the matched path."""

    local: bool
    tap: _Tap | None = None
    model: str | None = None
    name: str | None = None  # the route's name (for the proxy's routes, its tap's key)
    #: the methods of the sidecar's own route at this path, when the request's method is not one
    #: of them: answered 405 by the sidecar (:meth:`RouteTable.resolve`), never forwarded
    allowed: tuple[str, ...] = ()


LOCAL = Target(True)


def _index_key(canonical: str) -> str:
    # the same key aiohttp's UrlDispatcher indexes a resource by (its static prefix)
    if "{" in canonical:
        canonical = canonical.partition("{")[0].rpartition("/")[0]
    return canonical.rstrip("/") or "/"


#: One resource of the router, in a form that can cross a process boundary: its index key, how
#: it matches (``path``: equal to a fixed path; ``pattern``: a regular expression; ``prefix``:
#: everything under a path), the path or expression, and its route names by method.
RouteSpec = tuple[str, str, str, dict[str, Optional[str]]]


def route_specs(router: web.UrlDispatcher) -> list[RouteSpec]:
    """The application's resources in registration order, as :class:`RouteTable` reads them."""
    out: list[RouteSpec] = []
    for resource in router.resources():
        info = resource.get_info()
        if "path" in info:
            kind, value = "path", info["path"]
        elif "pattern" in info:
            kind, value = "pattern", info["pattern"].pattern
        else:  # static files or sub-applications: everything under the prefix is the sidecar's
            kind, value = "prefix", resource.canonical.rstrip("/")
        names: dict[str, str | None] = {route.method: route.name for route in resource}
        out.append((_index_key(resource.canonical), kind, value, names))
    return out


def _matcher(kind: str, value: str) -> Callable[[str], dict[str, str] | None]:
    if kind == "path":
        return lambda path: {} if path == value else None
    if kind == "pattern":
        pattern = re.compile(value)

        def match(path: str) -> dict[str, str] | None:
            m = pattern.fullmatch(path)
            return None if m is None else {k: unquote(v) for k, v in m.groupdict().items()}

        return match
    return lambda path: {} if path == value or path.startswith(value + "/") else None


class RouteTable:
    """The aiohttp application's routes, resolved the way aiohttp resolves them: the resources
    indexed by their static prefix are tried from the most specific prefix of the path up to
    ``/``, in registration order within one prefix; a path that matches a resource without
    the request's method goes on to the next. Routes named in ``taps`` are the proxy's; any
    other match, or none, is the sidecar's own (``local``).

    One exception to aiohttp's order: a path of the sidecar's own (``/v1/events``, ``/metrics``...)
    asked for with another method is not forwarded by the proxy's catch-all route (the untapped
    one) but answered 405 by the sidecar, as without the proxy: ``GET /v1/events`` or ``POST
    /metrics`` reached the model server, whose 404 or 405 said nothing of the sidecar's endpoint
    and its methods. The target is then ``local`` with the ``allowed`` methods; the aiohttp
    engine asks the same (:func:`monitor.server.app._middleware`). A route listed under
    ``server.proxy.routes`` on such a path is still the proxy's (it was asked for by name).

    Built from the router's :func:`route_specs` (:meth:`from_router`), so that the proxy's data
    path in its own process (:mod:`monitor.server.dataplane`) resolves exactly as in this one."""

    def __init__(self, specs: list[RouteSpec], taps: dict[str, _Tap | None]) -> None:
        self.index: dict[str, list[tuple[Callable[[str], dict[str, str] | None], dict[str, str | None]]]] = {}
        for key, kind, value, names in specs:
            self.index.setdefault(key, []).append((_matcher(kind, value), names))
        self.taps = taps
        self._cache: dict[tuple[bytes, bytes], Target] = {}

    @classmethod
    def from_router(cls, router: web.UrlDispatcher, taps: dict[str, _Tap | None]) -> "RouteTable":
        return cls(route_specs(router), taps)

    def resolve(self, method: bytes, target: bytes) -> Target:
        key = (method, target.partition(b"?")[0] if b"?" in target else target)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = self._resolve(method.decode("latin-1"), key[1])
        if len(self._cache) >= _CACHE:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _resolve(self, method: str, raw: bytes) -> Target:
        if raw[:1] != b"/":
            return LOCAL  # absolute-form, authority-form or '*': left to aiohttp, as before
        path = raw.decode("utf-8", "surrogateescape")
        if "%" in path:
            path = "%2F".join(unquote(p) for p in _SLASH.split(path))
        part = path
        own: set[str] = set()  # methods of the sidecar's own routes whose path matched
        while part:
            for match, names in self.index.get(part, ()):
                info = match(path)
                if info is None:
                    continue
                if method in names:
                    name = names[method]
                elif "*" in names:
                    name = names["*"]
                else:
                    if not any(n in self.taps for n in names.values() if n is not None):
                        own.update(names)
                    continue
                if name is None:
                    return LOCAL
                if name not in self.taps:
                    return Target(True, name=name)
                if own and self.taps[name] is None:
                    return Target(True, allowed=tuple(sorted(own)))
                return Target(False, self.taps[name], info.get("model"), name)
            if part == "/":
                break
            part = part.rpartition("/")[0] or "/"
        return LOCAL
