"""The sidecar's one error shape: a status, the offending field, a message with the fix, and a
short reason that becomes the ``reason`` label of ``monitor_intake_events_refused_total``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["CLIENT_TIMEOUT", "IntakeError", "answer_and_close", "error_response", "endpoint_of"]

#: the ``endpoint`` label of the sidecar's write routes, by route name
_ENDPOINT = {"events": "events", "feedback": "feedback", "cloudevents": "cloudevents", "cloudevents_root": "cloudevents"}


def endpoint_of(route: str | None) -> str | None:
    """The ``endpoint`` label of events refused on the sidecar route named ``route``; None for a
    route that takes no events (nothing refused there is an event)."""
    return _ENDPOINT.get(route) if route else None


class IntakeError(Exception):
    """A request the sidecar refuses. ``events`` is how many events it carried (for the refused
    counter; 1 when unknown); ``monitor`` the served model they were for when that is known (they
    are counted under it, so that alerts weigh them against that model's own traffic);
    ``others``: the events of other models refused with them (a batch refused as a whole for one
    model's full queue), counted under their own models with the same reason: back-pressure
    refused them too, which MonitorIntakeOverloaded (not MonitorIntakeRefused) watches."""

    def __init__(self, status: int, field: str, message: str, reason: str, *, events: int = 1,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
                 monitor: Any = None, others: dict[Any, int] | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message
        self.reason = reason
        self.events = events
        self.details = details
        self.headers = headers
        self.monitor = monitor
        self.others = others


#: The reason of the 408 answered when a request body stops arriving (the intake's and both proxy
#: engines'), and of the refusal counted for it (``monitor_intake_events_refused_total``).
CLIENT_TIMEOUT = "client_timeout"


async def answer_and_close(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Send ``response`` whole, then close the connection: after a stalled request body, what
    the client sends later is the rest of a body nobody reads, which aiohttp would otherwise
    linger reading (10 s) before closing."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def error_response(err: IntakeError) -> web.Response:
    body: dict[str, Any] = {"status": "error", "error": err.message, "field": err.field, "reason": err.reason}
    if err.details:
        body["errors"] = err.details
    return web.json_response(body, status=err.status, headers=err.headers)
