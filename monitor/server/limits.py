"""Limits that keep the sidecar bounded: body size, events per request, and admission into the
per-model and global queues (backpressure answered 429/503 and counted, never a silent loss).

Admission is all-or-nothing per request: a batch is only accepted when every event it holds
fits, so a client that is told 2xx knows that each of its events was enqueued, and a client told
429/503 knows that none was and can retry the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.web import RequestPayloadError

from monitor.server.errors import IntakeError

if TYPE_CHECKING:
    from monitor.core import Monitor

__all__ = ["read_body", "Admission"]


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 once it exceeds ``limit`` bytes (checked against
    Content-Length first, then while reading, so a lying or chunked client is caught too)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise IntakeError(413, "body", f"{declared} bytes is over the limit of {limit}; send smaller batches "
                                       "or raise server.max_body_bytes", "too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise IntakeError(413, "body", f"over the limit of {limit} bytes; send smaller batches or raise "
                                               "server.max_body_bytes", "too_large")
            chunks.append(chunk)
    except RequestPayloadError as err:  # e.g. Content-Encoding: gzip over bytes that are not gzip
        cause = err.__cause__ or err
        message = str(getattr(cause, "message", "") or cause).strip()[:120]
        raise IntakeError(400, "body", f"cannot be read ({message}); check Content-Encoding and the body's framing",
                          "bad_body") from None
    return b"".join(chunks)


class Admission:
    """Decides whether a batch of events fits into the queues right now.

    Parameters
    ----------
    max_queued_events
        Global bound over every model's queue: beyond it the sidecar answers 503 (the whole
        process is saturated); a single model's full queue answers 429 (that model is behind).
    """

    def __init__(self, max_queued_events: int) -> None:
        self.max_queued_events = int(max_queued_events)

    def check(self, wanted: Mapping["Monitor", int], all_monitors: Iterable["Monitor"]) -> None:
        """Raise :class:`IntakeError` (429 or 503) unless every ``wanted[m]`` events fit."""
        total = sum(wanted.values())
        # a batch larger than the bound itself never fits, however long the client waits: 413
        # (do not retry: split), not 429/503 with Retry-After, which a client retries for ever
        if total > self.max_queued_events:
            raise IntakeError(413, "events", f"{total} events in one request are more than the sidecar queues in all "
                                             f"(server.max_queued_events {self.max_queued_events}), so no retry can "
                                             "succeed; split the batch or raise server.max_queued_events",
                              "too_many_events", events=total)
        for mon, n in wanted.items():
            if n > mon.queue.capacity:
                raise IntakeError(413, "events", f"{n} events for model {mon.model!r} in one request are more than its "
                                                 f"queue holds (queue.capacity {mon.queue.capacity}), so no retry can "
                                                 "succeed; split the batch or raise queue.capacity",
                                  "too_many_events", events=total)
        queued = sum(len(m.queue) for m in all_monitors)
        if queued + total > self.max_queued_events:
            raise IntakeError(503, "events", f"the sidecar holds {queued} queued events (limit {self.max_queued_events}); "
                                             "retry after a short delay", "overloaded", events=total,
                              headers={"Retry-After": "1"})
        for mon, n in wanted.items():
            q = mon.queue
            if q.closed:
                raise IntakeError(503, "events", "the sidecar is shutting down; retry against another instance",
                                  "shutting_down", events=total, headers={"Retry-After": "1"})
            if len(q) + n > q.capacity:
                raise IntakeError(429, "events", f"the queue of model {mon.model!r} is full ({len(q)}/{q.capacity}); "
                                                 "retry after a short delay or raise queue.capacity", "queue_full",
                                  events=n, headers={"Retry-After": "1"}, monitor=mon,
                                  others={m: k for m, k in wanted.items() if m is not mon})
