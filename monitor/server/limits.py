"""Limits that keep the sidecar bounded: body size, events per request, and admission into the
per-model and global queues (backpressure answered 429/503 and counted, never a silent loss).

Admission is all-or-nothing per request: a batch is only accepted when every event it holds
fits, so a client that is told 2xx knows that each of its events was enqueued, and a client told
429/503 knows that none was and can retry the whole batch.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.web import RequestPayloadError

from monitor.server.coding import READ_CODINGS, decode_body
from monitor.server.errors import CLIENT_TIMEOUT, IntakeError

if TYPE_CHECKING:
    from monitor.core import Monitor

__all__ = ["read_body", "Admission"]


class _BodyStalled(Exception):
    """Set on a request's body stream when no byte came within ``server.client_body_timeout``."""


async def read_body(request: web.Request, limit: int, idle_timeout_s: float = 60.0) -> bytes:
    """The request body without its content coding, refused with 413 once it exceeds ``limit``
    bytes (checked against Content-Length first, then while reading, so a lying or chunked client
    is caught too, and again once inflated: a few kB of gzip can hold gigabytes).

    Inflated here, not by aiohttp (whose decompression the application turns off:
    :mod:`monitor.server.coding`), so that every body that cannot be read is a JSON 4xx naming the
    field and the fix, counted in ``monitor_intake_events_refused_total``: a coding not read
    (``br``, ``zstd``) is 415 ``unsupported_encoding``, a body that is not in its coding 400
    ``bad_body``. A body that stops arriving for ``idle_timeout_s`` (``server.client_body_timeout``)
    is the client's 408 ``client_timeout``, the connection then closed: without a deadline a
    stalled upload held its connection and buffer for good."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(f"{declared} bytes is over the limit of {limit}", limit)
    encoding = request.headers.get("Content-Encoding")
    if encoding is not None and encoding.strip().lower() not in ("identity", "", *READ_CODINGS):
        # refused before the body is read (as a client may send a large one)
        raise IntakeError(415, "Content-Encoding", f"{encoding[:40]!r} is not read here; send the body uncompressed, or "
                                                   "with Content-Encoding: gzip or deflate", "unsupported_encoding",
                          headers={"Accept-Encoding": "gzip, deflate"})
    chunks: list[bytes] = []
    size = 0
    content = request.content
    loop = asyncio.get_running_loop()
    # one timer, moved on at each chunk (cheaper than a wait_for task per chunk): when it fires,
    # the read waiting for the next chunk raises
    stall = loop.call_later(idle_timeout_s, content.set_exception, _BodyStalled())
    try:
        while True:
            chunk = await content.readany()
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _too_large(f"over the limit of {limit} bytes", limit)
            chunks.append(chunk)
            stall.cancel()
            stall = loop.call_later(idle_timeout_s, content.set_exception, _BodyStalled())
    except RequestPayloadError as err:  # the body's framing (chunked encoding) is broken
        raise _unreadable(err.__cause__ or err) from None
    except _BodyStalled:  # answered, then the connection closed (see errors.answer_and_close)
        raise IntakeError(408, "body", f"no byte of the request body arrived for {idle_timeout_s:g} s "
                                       f"(server.client_body_timeout); send the whole body, as long as its "
                                       "Content-Length says", CLIENT_TIMEOUT) from None
    finally:
        stall.cancel()
    body = b"".join(chunks)
    if encoding is None:
        return body
    try:
        plain = decode_body(body, encoding, limit)
    except zlib.error as err:  # e.g. Content-Encoding: gzip over bytes that are not gzip
        raise _unreadable(err) from None
    if plain is None:
        raise _too_large(f"inflates ({encoding.strip()[:20]}) past the limit of {limit} bytes", limit)
    return plain


def _too_large(what: str, limit: int) -> IntakeError:
    return IntakeError(413, "body", f"{what}; send smaller batches or raise server.max_body_bytes", "too_large")


def _unreadable(cause: BaseException) -> IntakeError:
    message = str(getattr(cause, "message", "") or cause).strip()[:120]
    return IntakeError(400, "body", f"cannot be read ({message}); check Content-Encoding and the body's framing", "bad_body")


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
