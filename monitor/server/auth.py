"""Optional bearer-token auth, separately for the write endpoints and for the read endpoints
(``/metrics``, ``/api/v1/*``). Health probes are never protected (the kubelet has no token).

Tokens come from a file (one per line, so a new token can be added before the old one is
removed) or an environment variable. Every configured token is compared with
:func:`hmac.compare_digest` and the loop never exits early, so the time taken does not reveal
which token or how much of it matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from monitor.server.errors import IntakeError

__all__ = ["TokenAuth", "WRITE", "READ"]

WRITE = "write"
READ = "read"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenAuth:
    """Checks ``Authorization: Bearer <token>`` against a set of tokens; disabled when empty.

    ``keys`` names the config keys the tokens come from, for the 401's fix: with two scopes, a
    client holding a token of the other one (the write token on ``/metrics``) was only told that
    "a valid bearer token" was required, not which."""

    def __init__(self, tokens: Sequence[str], keys: str = "the configured tokens") -> None:
        self._tokens = tuple(t.encode("utf-8") for t in tokens)
        self.keys = keys

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def allows(self, header: str | None) -> bool:
        if not self._tokens:
            return True
        if not header:
            return False
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        candidate = given.strip().encode("utf-8", "replace")
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(candidate, token)
        return ok

    def check(self, request: web.Request) -> None:
        """Raise a 401 :class:`IntakeError` unless the request carries a valid token."""
        if not self.allows(request.headers.get("Authorization")):
            raise IntakeError(401, "Authorization", f"a valid bearer token is required (Authorization: Bearer <token>), "
                                                    f"one of {self.keys}", "unauthorized",
                              headers={"WWW-Authenticate": 'Bearer realm="monitor"'})
