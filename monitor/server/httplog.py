"""aiohttp's server log for the sidecar's connections, with a client's malformed request counted.

Why: aiohttp answers a request it cannot read (no ``Host`` on HTTP/1.1, a broken header line, a
bad ``Content-Length``) with 400 before any handler or middleware of the sidecar sees it, and logs
it at ERROR with a traceback, once per request: one broken client (or a scanner) filled the
agent's log with tracebacks that are not the agent's failures, while no counter showed that
requests were refused. Each is now counted in
``monitor_intake_events_refused_total{endpoint="http",reason="malformed_request"}`` and the first
one logged once, as a warning naming what was wrong (the sidecar's other refusals are said the
same way); what aiohttp logs about anything else is passed on unchanged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp.http_exceptions import HttpProcessingError

if TYPE_CHECKING:
    from monitor.server.sidecar import Sidecar

__all__ = ["MalformedRequestLog"]


class MalformedRequestLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The ``logger`` of the sidecar's aiohttp request handlers (``handler_args``)."""

    def __init__(self, sidecar: Sidecar) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.sidecar = sidecar

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        err = kwargs.get("exc_info")
        if isinstance(err, HttpProcessingError) and 400 <= (err.code or 0) < 500:
            what = " ".join(str(err.message).split()) or type(err).__name__
            self.sidecar.count_refused("http", "malformed_request", detail=(
                f"a request that is not valid HTTP/1.1 was answered {err.code} before reaching any route ({what}); "
                "the client must send well-formed HTTP/1.1 (a Host header, valid header lines and Content-Length)"))
            return
        super().log(level, msg, *args, **kwargs)
