"""The lean proxy's side towards the model server: keep-alive connections, each parsing its
answers with llhttp (``httptools``), and the pool that hands them to requests.

One connection carries one exchange at a time (no pipelining towards the upstream, as aiohttp's
client); the exchange (:class:`monitor.server.leanproxy` ``_Exchange``) receives the parsed
answer through ``response_head`` / ``response_body`` / ``response_done`` and learns of a broken
or closed connection through ``upstream_lost``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    from monitor.server.leanproxy import _Client, _Exchange

__all__ = ["UpstreamConnection", "UpstreamPool"]

log = logging.getLogger("monitor.server")

#: An upstream connection idle longer than this is closed instead of reused (the aiohttp engine's
#: keepalive_timeout is the same): below uvicorn's 5 s (MLServer, KServe), so that the model
#: server never closes an idle connection just as a request is written to it. At 60 s, a request
#: that came as it closed one was answered 502 upstream_disconnect, counted against the model server.
_IDLE_S = 4.0


class _HeadDone(Exception):
    """Raised from the response parser's head callback to stop at a body-less HEAD response."""


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to the model server, carrying one exchange at a time."""

    def __init__(self, pool: "UpstreamPool") -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.received = False
        self.interim = False
        self.reason: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.holders: set[_Client] = set()  # clients whose full write buffer pauses reading here

    def hold(self, who: "_Client") -> None:
        if not self.holders and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.holders.add(who)

    def unhold(self, who: "_Client | None" = None) -> None:
        if not self.holders:
            return
        if who is None:
            self.holders.clear()
        else:
            self.holders.discard(who)
        if not self.holders and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        ex = self.exchange
        if ex is not None:
            self.exchange = None
            ex.upstream_lost(self, exc)
        self.pool.lost(self)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.conn.pause("upstream")

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.conn.resume("upstream")

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as err:
            if isinstance(err.__context__, _HeadDone):
                self.parser = httptools.HttpResponseParser(self)  # the HEAD answer ended at its head
                self.finish_message()
                return
            self.broken(err.__context__ or err)
        except httptools.HttpParserUpgrade:
            self.finish_message(close=True)  # a 101 answer: nothing after its head is HTTP any more
        except httptools.HttpParserError as err:
            self.broken(err)

    def broken(self, err: BaseException) -> None:
        ex = self.exchange
        self.exchange = None
        self.close()
        if ex is not None:
            if not isinstance(err, _parser_errors()):
                log.error("proxy: failure while relaying the upstream response", exc_info=err)
            ex.upstream_lost(self, err)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    # llhttp callbacks (no on_message_begin: ``reason`` and ``headers`` are emptied once a head
    # is handled, for the next one)
    def on_status(self, reason: bytes) -> None:
        self.reason.append(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        reason, headers = self.reason, self.headers
        self.reason, self.headers = [], []
        if 100 <= status < 200 and status != 101:
            self.interim = True  # 100 Continue, 103 Early Hints...: not relayed, as aiohttp's client
            return
        ex = self.exchange
        if ex is None:
            raise ConnectionError("an answer from the model server to no request")
        ex.response_head(status, b"".join(reason), headers, parser.should_keep_alive())
        if ex.method == b"HEAD":
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is not None:
            if ex.mode == "buffer" and not ex.done:  # response_body's common case, inline
                ex.last_read = self.pool.loop.time()
                ex.resp.append(body)
            else:
                ex.response_body(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        ex = self.exchange  # finish_message, inline: once per answer
        if ex is not None:
            self.exchange = None
            ex.response_done(self, False)

    def finish_message(self, close: bool = False) -> None:
        ex = self.exchange
        if ex is not None:
            self.exchange = None
            ex.response_done(self, close)


def _parser_errors() -> tuple[type[BaseException], ...]:
    return (httptools.HttpParserError, ConnectionError)


class UpstreamPool:
    """Keep-alive connections to the upstream: at most ``limit`` open or opening (as aiohttp's
    connector limit), the most recently used reused first, waiters served in order."""

    def __init__(self, host: str, port: int, limit: int, connect_timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.idle: list[UpstreamConnection] = []
        self.count = 0
        self.waiters: deque[_Exchange] = deque()
        self.tasks: set[asyncio.Task[None]] = set()

    def acquire(self, ex: "_Exchange") -> None:
        """Give ``ex`` a connection now, or once one is connected or released."""
        loop_time = self.loop.time()
        while self.idle:
            up = self.idle.pop()
            if up.closed:
                continue
            if loop_time - up.idle_since > _IDLE_S:
                up.close()
                continue
            up.reused = True
            ex.attach(up)
            return
        if self.count < self.limit:
            self._open(ex)
        else:
            self.waiters.append(ex)

    def _open(self, ex: "_Exchange") -> None:
        self.count += 1
        task = self.loop.create_task(self._connect(ex))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, ex: "_Exchange") -> None:
        loop = self.loop
        try:
            _, up = await asyncio.wait_for(loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
                                           self.connect_timeout)
        except asyncio.TimeoutError:
            self._failed(ex, 504, "timeout", "the model server did not answer in time")
            return
        except OSError:
            self._failed(ex, 502, "connect", "cannot connect to the model server")
            return
        if ex.done:
            self.release(up, True)
        elif up.closed:  # the model server closed it before this task resumed: nobody else will tell the exchange
            ex.upstream_lost(up, None)
        else:
            ex.attach(up)

    def _failed(self, ex: "_Exchange", status: int, reason: str, message: str) -> None:
        self.count -= 1
        if not ex.done:
            ex.fail(status, reason, message)
        self._next_waiter()

    def release(self, up: UpstreamConnection, keep: bool) -> None:
        if up.holders:
            up.unhold()
        if not keep or up.closed:
            up.close()  # its connection_lost will count it out
            return
        while self.waiters:
            ex = self.waiters.popleft()
            if not ex.done:
                up.reused = True
                ex.attach(up)
                return
        up.idle_since = self.loop.time()
        self.idle.append(up)

    def lost(self, up: UpstreamConnection) -> None:
        self.count -= 1
        if up in self.idle:
            self.idle.remove(up)
        self._next_waiter()

    def _next_waiter(self) -> None:
        while self.waiters and self.count < self.limit:
            ex = self.waiters.popleft()
            if not ex.done:
                self._open(ex)

    def close(self) -> None:
        for up in list(self.idle):
            up.close()
        for task in list(self.tasks):
            task.cancel()
