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
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from monitor.server.proxy import _Tap

__all__ = ["LOCAL", "RouteTable", "Target"]

_SLASH = re.compile("%2[fF]")
_CACHE = 4096  # resolved (method, path) pairs kept; cleared when full

@dataclass(frozen=True)
class Target:
    """Where one request goes: to the sidecar's own handlers (``local``), or to the upstream with
    or without a tap; ``model`` is the ``{model}`` part of the matched path."""

    local: bool
    tap: _Tap | None = None
    model: str | None = None


LOCAL = Target(True)


def _index_key(canonical: str) -> str:
    # the same key aiohttp's UrlDispatcher indexes a resource by (its static prefix)
    if "{" in canonical:
        canonical = canonical.partition("{")[0].rpartition("/")[0]
    return canonical.rstrip("/") or "/"


class RouteTable:
    """The aiohttp application's routes, resolved the way aiohttp resolves them: the resources
    indexed by their static prefix are tried from the most specific prefix of the path up to
    ``/``, in registration order within one prefix; a path that matches a resource without
    the request's method goes on to the next. Routes named in ``taps`` are the proxy's; any
    other match, or none, is the sidecar's own (``local``)."""

    def __init__(self, router: web.UrlDispatcher, taps: dict[str, _Tap | None]) -> None:
        self.index: dict[str, list[tuple[Callable[[str], dict[str, str] | None], dict[str, str | None]]]] = {}
        for resource in router.resources():
            info = resource.get_info()
            if "path" in info:
                fixed = info["path"]

                def match(path: str, fixed: str = fixed) -> dict[str, str] | None:
                    return {} if path == fixed else None
            elif "pattern" in info:
                pattern = info["pattern"]

                def match(path: str, pattern: Any = pattern) -> dict[str, str] | None:
                    m = pattern.fullmatch(path)
                    return None if m is None else {k: unquote(v) for k, v in m.groupdict().items()}
            else:  # static files or sub-applications: everything under the prefix is the sidecar's
                prefix = resource.canonical.rstrip("/")

                def match(path: str, prefix: str = prefix) -> dict[str, str] | None:
                    return {} if path == prefix or path.startswith(prefix + "/") else None
            names: dict[str, str | None] = {route.method: route.name for route in resource}
            self.index.setdefault(_index_key(resource.canonical), []).append((match, names))
        self.taps = taps
        self._cache: dict[tuple[bytes, bytes], Target] = {}

    def resolve(self, method: bytes, target: bytes) -> Target:
        key = (method, target.partition(b"?")[0])
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
                    continue
                if name is None or name not in self.taps:
                    return LOCAL
                return Target(False, self.taps[name], info.get("model"))
            if part == "/":
                break
            part = part.rpartition("/")[0] or "/"
        return LOCAL
