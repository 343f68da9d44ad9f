"""The proxy's data path in a process of its own: ``python -m monitor.server.dataplane_child -``
(its configuration in the environment variable :data:`CONFIG_ENV`: the upstream's URL may carry
credentials, and a command line is every local user's to read).

Started and supervised by :mod:`monitor.server.dataplane` (never by hand). It accepts on the
listening sockets the sidecar bound and passed down, runs the lean engine
(:mod:`monitor.server.leanproxy`) on them, and reports over the channel socket
(:mod:`monitor.server.channel`): every few milliseconds one batch of the tapped exchanges,
unparsed (the bodies as they were sent: the parsing is the sidecar's, off this process's loop),
with the metric increments and durations of the requests answered since the last batch. A
connection that asks for one of the sidecar's own routes (``/metrics``, ``/v1/events``...) is
handed over whole: its socket goes to the sidecar, with the bytes already read from it.

Memory is bounded: when the sidecar does not read the channel (it is busy, or stopped), the
tapped exchanges waiting beyond ``max_pending_bytes`` are dropped, and counted
(``monitor_intake_events_refused_total{endpoint="proxy",reason="tap_backlog"}``), and the
requests answered meanwhile are counted without their durations; the requests themselves are
never held back. Each tap is also added to a counter in memory shared with the sidecar
(:mod:`monitor.server.tally`): if this process is killed, the taps of the batch it was
collecting are counted by the sidecar (``reason="process_lost"``). The process exits when its
channel closes (the sidecar is gone), and on SIGTERM after the requests in flight are answered
(up to ``stop_budget_s``), with its last batch written.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import marshal
import os
import signal
import socket
import sys
import weakref
from dataclasses import dataclass
from typing import Any

from monitor.server.channel import FrameWriter
from monitor.server.errors import endpoint_of
from monitor.server.leanproxy import LeanProxy, LeanSettings, TapRecord, _Client
from monitor.server.proxy import _Tap, request_labels
from monitor.server.proxyroutes import RouteTable, Target
from monitor.server.tally import SharedTally

__all__ = ["BATCH", "CONFIG_ENV", "HANDOVER", "READY", "SYNCED", "SYNC", "ChildConfig", "main"]

log = logging.getLogger("monitor.server.dataplane")

BATCH, HANDOVER, SYNCED, READY = 0, 1, 2, 3
#: The environment variable that carries the configuration (JSON) when the argument is ``-``.
CONFIG_ENV = "MONITOR_DATAPLANE_CONFIG"
#: The one thing the sidecar writes to the child: "send what you have, then say so" (before a
#: scrape, so that it counts every request answered until then).
SYNC = b"s"
#: A batch collects what is answered in this time: one write, not one per request. A batch costs
#: ~23,000 instructions whatever it holds (its timer and wake-up, marshal, the send): at 1,000
#: requests/s 10 ms (ten answers a batch) instead of 2 ms cut the data path's CPU per request by
#: 8% (benchmarks/proxy_instructions.py --cpu-gap-ms 1). Taps reach the sidecar that much later,
#: which holds them 20 ms anyway (dataplane.HOLD_S); a scrape's sync still counts every answer.
_BATCH_DELAY_S = 0.010
_HEAD_ROOM = 64 * 1024  # request heads and chunk framing, beyond the body limit
_LINGER_S = 1.0
_DURATION_BYTES = 32  # what one request's duration weighs in a batch, against the bound
_HELD_RETRY_S = 0.05  # while the sidecar does not read: how often a held batch tries again


@dataclass(frozen=True)
class ChildConfig:
    """What the sidecar tells the data path (JSON in its environment: :data:`CONFIG_ENV`)."""

    settings: LeanSettings
    channel_fd: int
    #: per listener: its socket's fd, the application's route specs, the proxy routes' tap kinds by name
    listeners: list[tuple[int, list[Any], dict[str, str | None]]]
    max_pending_bytes: int
    stop_budget_s: float
    loop: str = "asyncio"
    #: the shared counter of the exchanges tapped (:class:`~monitor.server.tally.SharedTally`)
    tally_fd: int | None = None

    def dumps(self) -> str:
        return json.dumps({"settings": vars(self.settings), "channel_fd": self.channel_fd, "listeners": self.listeners,
                           "max_pending_bytes": self.max_pending_bytes, "stop_budget_s": self.stop_budget_s,
                           "loop": self.loop, "tally_fd": self.tally_fd})

    @classmethod
    def loads(cls, text: str) -> "ChildConfig":
        raw = json.loads(text)
        listeners = [(int(fd), [(k, kind, value, names) for k, kind, value, names in specs], dict(taps))
                     for fd, specs, taps in raw["listeners"]]
        tally = raw.get("tally_fd")
        return cls(LeanSettings(**raw["settings"]), int(raw["channel_fd"]), listeners, int(raw["max_pending_bytes"]),
                   float(raw["stop_budget_s"]), raw.get("loop", "asyncio"), None if tally is None else int(tally))


class ChannelSink:
    """The lean engine's reports, batched for the channel (see the module's docstring)."""

    def __init__(self, writer: FrameWriter, loop: asyncio.AbstractEventLoop, max_pending_bytes: int,
                 tally: SharedTally | None = None) -> None:
        self.writer = writer
        self.loop = loop
        self.max_pending_bytes = max_pending_bytes
        #: every tap counted here as it is made: what this process dies with is counted by the sidecar
        self.tally = tally
        if tally is not None:
            self.tapping = tally.add  # type: ignore[method-assign]  # the same, one call less per tap
        self._reset()
        self._timer: asyncio.TimerHandle | None = None

    def _reset(self) -> None:
        self.answers: list[tuple[Any, ...]] = []
        self.tap_bytes = 0
        self.counts: dict[tuple[str, tuple[str, ...]], int] = {}
        self.requests: list[tuple[int, float]] = []
        self.dropped = 0

    def _soon(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(_BATCH_DELAY_S, self.flush)

    def tapping(self) -> None:
        if self.tally is not None:
            self.tally.add()

    def answered(self, route: Target, status: int, upstream_seconds: float, request_seconds: float,
                 tap: TapRecord | None) -> None:
        if tap is None:
            size = 100
        else:
            body, resp_body = tap[3], tap[4]
            size = (len(body) if body else 0) + (len(resp_body) if resp_body else 0) + 200
        if self.writer.pending + self.tap_bytes + size > self.max_pending_bytes:
            # the sidecar has not read for a while: the tap is dropped (counted), the request only
            # counted, without its durations, so that what waits here stays bounded
            self.dropped += tap is not None
            self.count("monitor_proxy_requests", request_labels(route.tap, status))
            return
        self.tap_bytes += size
        self.answers.append((route.name, status, upstream_seconds, request_seconds, tap))
        if self._timer is None:
            self._timer = self.loop.call_later(_BATCH_DELAY_S, self.flush)

    def count(self, name: str, labels: tuple[str, ...]) -> None:
        key = (name, labels)
        self.counts[key] = self.counts.get(key, 0) + 1
        self._soon()

    def request_time(self, status: int, seconds: float) -> None:
        if self.writer.pending + self.tap_bytes + _DURATION_BYTES > self.max_pending_bytes:
            return  # as for an answered exchange beyond the bound: its count (sent) without its duration
        self.tap_bytes += _DURATION_BYTES
        self.requests.append((status, seconds))
        self._soon()

    def flush(self, force: bool = False) -> None:
        """Send what was collected as one batch. While the sidecar has not read what waits
        already (beyond ``max_pending_bytes``), the timer's batches are held here instead, their
        counts merged, so that what waits stays bounded: no new frame every batch delay. ``force``
        (a sync, a handover, the last batch) sends regardless."""
        if self._timer is not None:
            self._timer.cancel()  # (a no-op when the timer is what called)
            self._timer = None
        if not (self.answers or self.counts or self.requests or self.dropped):
            return
        if not force and self.writer.pending > self.max_pending_bytes and not self.writer.broken:
            self._timer = self.loop.call_later(_HELD_RETRY_S, self.flush)
            return
        payload = marshal.dumps((BATCH, self.answers, list(self.counts.items()), self.requests, self.dropped))
        self._reset()
        self.writer.send(payload)


class _Handover(asyncio.Protocol):
    """Stands in for the sidecar's aiohttp protocol on a connection that asked for one of the
    sidecar's routes: collects the bytes meant for it, then sends the socket and those bytes to
    the sidecar, once this process has nothing more to write on it and the byte stream is at a
    point the sidecar can read on from (not inside a request head, whose bytes so far are in the
    parser, nor inside a chunked body this process re-framed)."""

    def __init__(self, plane: "DataPlaneChild", listener: int) -> None:
        self.plane = plane
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.buf: list[bytes] = []
        self.size = 0
        self.sent = False
        self.lost = False
        self.client: _Client | None = None  # the lean engine's protocol, which parsed the heads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        front = transport.get_protocol()
        self.client = front if isinstance(front, _Client) else None
        self.plane.handovers.add(self)  # the child's shutdown waits for it to go
        self.plane.loop.call_soon(self._try)

    def data_received(self, data: bytes) -> None:
        if self.sent or self.lost:
            return
        self.buf.append(data)
        self.size += len(data)
        if self.size > self.plane.cfg.settings.max_body_bytes + _HEAD_ROOM:
            self._too_large()
            return
        self.plane.loop.call_soon(self._try)

    def _too_large(self) -> None:
        """A chunked body for the sidecar's routes, past the body limit before it ends: it cannot
        be handed over mid-body (its chunks were re-framed here), so it is answered here, as
        the sidecar would answer it."""
        self.lost = True
        self.buf = []
        t = self.transport
        if t is not None and not t.is_closing():
            limit = self.plane.cfg.settings.max_body_bytes
            body = json.dumps({"status": "error", "error": f"over the limit of {limit} bytes; send smaller batches or "
                               "raise server.max_body_bytes", "field": "body", "reason": "too_large"}).encode()
            t.write(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json; charset=utf-8\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            # the client may still be sending: read on (and discard) a while, as closing a socket
            # with unread bytes resets it and could take the answer with it
            self.plane.loop.call_later(_LINGER_S, t.close)
        bridge = None if self.client is None else self.client.bridge
        endpoint = endpoint_of(None if bridge is None else bridge.route)
        if endpoint is not None:  # as the sidecar, which counts refused events on the routes that take events
            self.plane.sink.count("monitor_intake_events_refused", (endpoint, "too_large"))

    def eof_received(self) -> bool:
        return True  # half-closed: the sidecar still answers; it sees the EOF on its own socket

    def resume_writing(self) -> None:
        self.plane.loop.call_soon(self._try)  # the earlier answers are out: the connection can go

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.plane.handovers.discard(self)

    def _try(self) -> None:
        t = self.transport
        if self.sent or self.lost or t is None or t.is_closing():
            return
        front = t.get_protocol()
        if isinstance(front, _Client) and front.in_message and (front.in_head or (front.bridge is not None and front.bridge.chunked)):
            # read on to the end of the head (its bytes so far are in the parser, not in what
            # would be handed over) or of the chunked message (data_received calls again)
            return
        if t.get_write_buffer_size():
            # earlier answers still going out (the client is slow, or not reading): with no
            # high-water mark the transport pauses this protocol now and resumes it once its
            # buffer is empty (resume_writing tries again), instead of this process polling
            t.set_write_buffer_limits(high=0, low=0)
            return
        t.pause_reading()
        sock = t.get_extra_info("socket")
        try:
            fd = os.dup(sock.fileno())
        except (OSError, AttributeError):
            t.abort()
            return
        self.sent = True
        self.plane.handovers.discard(self)
        self.plane.hand_over(self.listener, b"".join(self.buf), fd)
        self.buf = []
        t.abort()  # closes this process's descriptor only: the sidecar holds the connection now


class DataPlaneChild:
    """The listeners, their lean engines and the channel."""

    def __init__(self, cfg: ChildConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.loop = loop
        self.writer = FrameWriter(socket.socket(fileno=cfg.channel_fd), loop)
        self.sink = ChannelSink(self.writer, loop, cfg.max_pending_bytes,
                                None if cfg.tally_fd is None else SharedTally(cfg.tally_fd))
        self.leans: list[LeanProxy] = []
        self.servers: list[asyncio.AbstractServer] = []
        self.stop = asyncio.Event()
        #: every client connection (while its transport lives): at exit, their answers are written out first
        self.clients: weakref.WeakSet[_Client] = weakref.WeakSet()
        #: connections waiting to be handed over to the sidecar
        self.handovers: set[_Handover] = set()

    async def start(self) -> None:
        for index, (fd, specs, kinds) in enumerate(self.cfg.listeners):
            taps = {name: (None if kind is None else _Tap(kind, None)) for name, kind in kinds.items()}
            lean = LeanProxy(self.cfg.settings, RouteTable(specs, taps), self.sink,
                             lambda index=index: _Handover(self, index))
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)

            def accept(lean: LeanProxy = lean) -> _Client:
                client = lean.protocol()
                self.clients.add(client)
                return client

            self.servers.append(await self.loop.create_server(accept, sock=sock, backlog=1024))
            self.leans.append(lean)
        self.loop.add_reader(self.writer.sock.fileno(), self._channel_readable)
        self.writer.send(marshal.dumps((READY, os.getpid())))

    def _channel_readable(self) -> None:
        try:
            data = self.writer.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the sidecar is gone: nobody takes the taps or the handed-over connections
            self.loop.remove_reader(self.writer.sock.fileno())
            self.writer.broken = True
            self.stop.set()
            return
        for _ in range(data.count(SYNC)):
            self.sink.flush(force=True)
            self.writer.send(marshal.dumps((SYNCED,)))

    def hand_over(self, listener: int, prefix: bytes, fd: int) -> None:
        self.sink.flush(force=True)  # what this connection's earlier requests reported goes first
        self.writer.send(marshal.dumps((HANDOVER, listener, prefix)), fd)

    def _unsent(self) -> bool:
        """Whether a connection still has answer bytes this process has not written out, or
        waits to be handed over (both are lost when the process exits)."""
        if self.handovers:
            return True
        for client in list(self.clients):
            t = client.transport
            try:
                if t is not None and t.get_write_buffer_size():
                    return True
            except (AttributeError, RuntimeError):  # a transport already gone
                continue
        return False

    async def shutdown(self) -> None:
        """Stop accepting, answer what is in flight, write out the answers the clients have not
        read yet and hand over what waits to be, all within ``stop_budget_s``; then the last batch."""
        for server in self.servers:
            server.close()
        budget = 0.0 if self.writer.broken else self.cfg.stop_budget_s
        deadline = self.loop.time() + budget
        await asyncio.gather(*(lean.shutdown(budget) for lean in self.leans))
        while self._unsent() and not self.writer.broken and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.sink.flush(force=True)
        self.writer.flush_blocking(5.0)
        self.writer.close()


async def _run(cfg: ChildConfig) -> None:
    loop = asyncio.get_running_loop()
    plane = DataPlaneChild(cfg, loop)
    loop.add_signal_handler(signal.SIGTERM, plane.stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # Ctrl-C reaches the sidecar, which stops us
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the sidecar's rules reload; a group's hangup is its
    await plane.start()
    # what start-up made lives as long as the process: out of the collector's reach, so that a
    # full collection never walks it while requests wait (as the sidecar does once loaded)
    gc.collect()
    gc.freeze()
    await plane.stop.wait()
    await plane.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or (args[0] == "-" and CONFIG_ENV not in os.environ):
        print(f"usage: python -m monitor.server.dataplane_child CONFIG_JSON, or - with {CONFIG_ENV} set "
              "(started by monitor serve)", file=sys.stderr)
        return 2
    cfg = ChildConfig.loads(os.environ.pop(CONFIG_ENV) if args[0] == "-" else args[0])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s[dataplane]: %(message)s")
    sys.setswitchinterval(0.0005)
    runner = asyncio.run
    if cfg.loop == "uvloop":
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    runner(_run(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
