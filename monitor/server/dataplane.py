"""The reverse proxy's data path in a child process, supervised by the sidecar.

Why: in one process the proxy's event loop shares the GIL with everything the monitor does:
the tap's JSON parsing, the worker's drains, rule evaluation, checkpoints, scrapes. Each of
those holds the GIL for a while, and a proxied request arriving then waits (in
``benchmarks/bench_proxy.py`` the data path in its own process added less at p99 than on the
sidecar's loop in 10 runs of 13, the same in one, more in two; see the README). In its own
process the data path (:mod:`monitor.server.leanproxy`, :mod:`monitor.server.dataplane_child`) does only HTTP:
it parses nothing of the bodies and sends the tapped exchanges over a Unix socket, unparsed;
this process turns them into events with the same tap as ever (:meth:`Proxy.tap`).

The sidecar keeps what it had: it binds the listening socket (so a port in use is its error at
start, and ``--port 0`` its port), serves its own routes (``/metrics``, ``/v1/events``...) on the
proxy's port, whose connections the child hands back by their socket (``SCM_RIGHTS``) with the
bytes it read, so auth, limits and answers there are aiohttp's in this process, and the client's
address is the client's; the metrics of the proxied requests arrive with the batches and land
in the same series as on the in-process engine.

Supervision: a child that dies is started again on the same listening socket (connections wait
in the kernel's backlog meanwhile), after 0.1 s, doubling up to 5 s while it keeps dying, and
counted in ``monitor_proxy_process_restarts_total``; the taps of the batch it was collecting when
it died are counted from a counter it kept in shared memory (:mod:`monitor.server.tally`), as
``monitor_intake_events_refused_total{endpoint="proxy",reason="process_lost"}``. On shutdown
the sidecar stops the child first (SIGTERM: it stops accepting, answers what is in flight,
writes its last batch, exits) and then drains its queues, so nothing the child tapped is lost
to the shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from monitor.server import keys as K
from monitor.server.channel import FrameReader, can_pass_sockets
from monitor.server.dataplane_child import BATCH, CONFIG_ENV, HANDOVER, READY, SYNC, SYNCED, ChildConfig
from monitor.server.leanproxy import LeanProxySite, LeanSettings, SidecarSink
from monitor.server.lifecycle import request_budget
from monitor.server.proxy import ENDPOINT, Proxy
from monitor.server.proxyroutes import route_specs
from monitor.server.priority import lower_process_priority
from monitor.server.tally import SharedTally

if TYPE_CHECKING:
    from monitor.server.sidecar import Sidecar

__all__ = ["DataPlane", "DataPlaneSite", "process_available", "HOLD_MAX_TAPS", "HOLD_S", "MAX_PENDING_BYTES",
           "READY_TIMEOUT_S"]

log = logging.getLogger("monitor.server")

#: Tapped bytes the child holds while this process does not read them, before it drops taps.
MAX_PENDING_BYTES = 64 * 1024 * 1024
#: the log line of the first taps dropped for the backlog (answered, so nobody else hears of it)
_BACKLOG = ("the data path process answered these exchanges but dropped their taps: more than 64 MB of them waited "
            "while the sidecar's loop did not read them, so the sidecar is short of CPU for this traffic; give the pod "
            "more CPU, lower queue.sample_rate, or leave costly detectors (probing) out of detectors:")
#: The child's batches are handled together this long after the first arrives, so that the tap
#: parses many exchanges with its code and data still in the CPU's caches, on a machine where the
#: client, the model server and the data path run in between. Measured when the child sent a
#: batch every 2 ms (2-3 exchanges at 1,000 requests/s; ~20 held together): about a third less CPU
#: per exchange than handling each batch as it arrives (``benchmarks/bench_tap_cost.py --live``).
#: Its batches now come every 10 ms (~10 exchanges): what the hold adds on top is not measured.
#: Events reach the queue up to this much later (the worker drains about once a second anyway);
#: a scrape, a sync or any other message from the child has them handled first.
HOLD_S = 0.02
#: More exchanges than this held are handled at once (bounds what is held at high rates).
HOLD_MAX_TAPS = 256
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.1, 5.0
_STABLE_S = 10.0  # a child that lived this long resets the backoff
READY_TIMEOUT_S = 20.0  # for the child to import and accept, at start
CHILD_MODULE = "monitor.server.dataplane_child"
_LINGER_S = 1.0  # a child still running this long after its channel closed is killed
_REAP_POLL_S = 0.01


def process_available() -> bool:
    """Whether the data path can run in a child process here (sockets passed over Unix sockets)."""
    return can_pass_sockets() and sys.platform != "win32"


class _Prefixed(asyncio.Protocol):
    """Gives an accepted connection to ``inner`` with the bytes already read from it: before the
    transport reads anything more (asyncio calls ``connection_made`` before it starts reading)."""

    def __init__(self, inner: asyncio.Protocol, prefix: bytes) -> None:
        self.inner = inner
        self.prefix = prefix

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.set_protocol(self.inner)
        self.inner.connection_made(transport)
        if self.prefix:
            self.inner.data_received(self.prefix)  # type: ignore[attr-defined]


@dataclass
class _Listener:
    sock: socket.socket
    proxy: Proxy
    local_protocol: Any  # the aiohttp Server of the application: a protocol factory


class DataPlane:
    """The child process, its channel, and what arrives on it."""

    def __init__(self, sidecar: "Sidecar", stop_budget_s: float) -> None:
        self.sidecar = sidecar
        self.stop_budget_s = stop_budget_s
        self.listeners: list[_Listener] = []
        self.specs: list[tuple[list[Any], dict[str, str | None]]] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.reader: FrameReader | None = None
        self.stopping = False
        self.restarts = 0
        #: respawns whose process could not be started (fork/exec refused): tried again later
        self.failed_spawns = 0
        self._backoff = _BACKOFF_MIN_S
        self._backoff_reset = False
        self._started_at = 0.0
        self._exited: asyncio.Event | None = None
        self._respawn: asyncio.TimerHandle | None = None
        self._adopting: set[asyncio.Task[Any]] = set()
        self._syncs: list[asyncio.Future[None]] = []
        self._ready: asyncio.Future[int] | None = None
        #: batches received and not handled yet (:meth:`_hold`), their exchanges, and the timer
        self._held: list[tuple[Any, ...]] = []
        self._held_taps = 0
        self._held_timer: asyncio.TimerHandle | None = None
        #: the running child's count of its taps, and how many of them arrived (or were dropped and counted)
        self.tally: SharedTally | None = None
        self.taps_received = 0
        #: the children are started from this thread, made now: nice is per thread and inherited
        #: at fork, so they keep the priority the sidecar has now even once its own threads are
        #: niced (``server.worker_nice``)
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataplane-spawner")
        self.spawner_tid: int = self._spawner.submit(threading.get_native_id).result()

    def add(self, sock: socket.socket, app: web.Application, local_protocol: Any) -> None:
        proxy: Proxy = app[K.PROXY]
        self.listeners.append(_Listener(sock, proxy, local_protocol))
        kinds = {name: (None if tap is None else tap.kind) for name, tap in proxy.taps.items()}
        self.specs.append((route_specs(app.router), kinds))

    # -- the child ---------------------------------------------------------------------------------
    def spawn(self) -> None:
        loop = asyncio.get_running_loop()
        self._respawn = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            tally: SharedTally | None = SharedTally.create()
        except OSError as err:  # no shared memory here: a killed child's last batch goes uncounted
            log.warning("proxy data path: no shared counter (%s); taps lost with a killed process are not counted", err)
            tally = None
        proxy = self.listeners[0].proxy
        cfg = ChildConfig(LeanSettings.of(proxy), theirs.fileno(),
                          [(lst.sock.fileno(), specs, kinds) for lst, (specs, kinds) in zip(self.listeners, self.specs)],
                          MAX_PENDING_BYTES, self.stop_budget_s, _loop_kind(), None if tally is None else tally.fd)
        fds = [theirs.fileno(), *(lst.sock.fileno() for lst in self.listeners), *([] if tally is None else [tally.fd])]
        env = dict(os.environ)
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if here not in _default_paths():  # a source checkout: the child imports this very package
            env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env[CONFIG_ENV] = cfg.dumps()  # not on the command line: the upstream's URL may carry credentials
        try:
            self.proc = self._spawner.submit(subprocess.Popen, [sys.executable, "-m", CHILD_MODULE, "-"], pass_fds=fds,
                                             close_fds=True, env=env, stdin=subprocess.DEVNULL).result()
        except OSError:
            ours.close()
            if tally is not None:
                tally.close()
            raise
        finally:
            theirs.close()
        self.tally = tally
        self.taps_received = 0
        self._started_at = loop.time()
        self._exited = asyncio.Event()
        self._ready = loop.create_future()
        self.reader = FrameReader(ours, loop, self._frame, self._closed)
        self.sidecar.data_planes.add(self)
        log.info("proxy data path: process %d, to %s on the lean engine", self.proc.pid, proxy.upstream)

    def _closed(self) -> None:
        """The channel closed: the child exited, or is exiting (asked to, or not). Nothing more
        comes from it (what it sent is handled now); the process is reaped from the loop (never
        waited for on it: a child that lingers would stall every request of the sidecar), killed
        when it lingers."""
        self.handle_held()
        for waiter in self._syncs:  # nothing more comes from this child
            if not waiter.done():
                waiter.set_result(None)
        self._syncs.clear()
        loop = asyncio.get_running_loop()
        self._reap(self.proc, loop.time() + _LINGER_S, False)

    def _reap(self, proc: "subprocess.Popen[bytes] | None", deadline: float, killed: bool) -> None:
        loop = asyncio.get_running_loop()
        if proc is not None and proc.poll() is None:
            if not killed and loop.time() >= deadline:
                log.warning("proxy data path: process %d still running after its channel closed; killing it", proc.pid)
                proc.kill()
                killed = True
            loop.call_later(_REAP_POLL_S, self._reap, proc, deadline, killed)
            return
        self._exited_now(proc)

    def _exited_now(self, proc: "subprocess.Popen[bytes] | None") -> None:
        """The child is gone (reaped): what it tapped and never sent is counted, the start waits
        no more, and, unless stopping, a new one is started after the backoff."""
        try:
            self._count_lost()
        except Exception:  # noqa: BLE001 - a count is not worth the supervision (nor the shutdown's wait)
            log.exception("proxy data path: the taps lost with the process could not be counted")
        if self._exited is not None:
            self._exited.set()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(ChildProcessError(f"the proxy's data path process exited (code {proc and proc.returncode})"))
            self._ready.exception()  # retrieved: a respawned child that fails is only logged
        if self.stopping:
            self.sidecar.data_planes.discard(self)
            return
        loop = asyncio.get_running_loop()
        code = None if proc is None else proc.returncode
        if self._backoff_reset and loop.time() - self._started_at > _STABLE_S:
            self._backoff = _BACKOFF_MIN_S  # it came up and ran a while: this is a new failure
        self._backoff_reset = False
        self.restarts += 1
        self.sidecar.store.inc("monitor_proxy_process_restarts")
        log.error("proxy data path: process exited (code %s); starting it again in %.1f s", code, self._backoff)
        self._schedule_respawn(loop)

    def _count_lost(self) -> None:
        """The taps the child made and never sent (killed while collecting a batch), counted as
        refused: called once its channel is closed, every frame it wrote read."""
        tally, self.tally = self.tally, None
        if tally is None:
            return
        try:
            lost = tally.value - self.taps_received
        finally:
            tally.close()
        if lost > 0:
            self.sidecar.count_refused(ENDPOINT, "process_lost", lost)
            log.error("proxy data path: %d tapped exchanges were lost with the process (answered, never sent)", lost)

    def _schedule_respawn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._respawn = loop.call_later(self._backoff, self._respawn_now)
        self._backoff = min(_BACKOFF_MAX_S, self._backoff * 2)

    def _respawn_now(self) -> None:
        """The supervisor's restart: a process that cannot be started now (fork or exec refused:
        EAGAIN, ENOMEM, EMFILE...) is tried again after the backoff, never given up on (the
        port's connections wait in the kernel's backlog meanwhile)."""
        self._respawn = None
        if self.stopping:
            return
        loop = asyncio.get_running_loop()
        try:
            self.spawn()
        except OSError as err:
            self.failed_spawns += 1
            log.error("proxy data path: its process could not be started again (%s); trying again in %.1f s",
                      err, self._backoff)
            self._schedule_respawn(loop)
            return
        loop.call_later(READY_TIMEOUT_S, self._not_ready, self.proc)

    def _not_ready(self, proc: "subprocess.Popen[bytes] | None") -> None:
        """A child started again that is not accepting after :data:`READY_TIMEOUT_S` (stuck
        before it came up) is killed: its channel closes, and another is started after the
        backoff, as for any child that dies (at start, :meth:`ready` falls back instead)."""
        if proc is None or proc is not self.proc or self.stopping or proc.poll() is not None:
            return
        if self._ready is not None and not self._ready.done():
            log.error("proxy data path: process %d not accepting %.0f s after its start; killing it", proc.pid, READY_TIMEOUT_S)
            proc.kill()

    # -- what the child sends ----------------------------------------------------------------------
    def _frame(self, payload: bytes) -> None:
        try:
            message = marshal.loads(payload)
            kind = message[0]
        except (ValueError, EOFError, TypeError, IndexError):
            log.error("proxy data path: unreadable frame of %d bytes", len(payload))
            return
        if kind == BATCH:
            self._hold(message)
            return
        self.handle_held()  # the batches that came before any other message are handled before it
        if kind == HANDOVER:
            fd = None if self.reader is None else self.reader.take_fd()
            if fd is None:
                log.error("proxy data path: a connection was handed over without its socket")
            else:
                self._adopt(message[1], message[2], fd)
        elif kind == READY:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message[1])
            self._backoff_reset = True
        elif kind == SYNCED and self._syncs:
            waiter = self._syncs.pop(0)
            if not waiter.done():
                waiter.set_result(None)

    def _hold(self, message: tuple[Any, ...]) -> None:
        """A batch, handled with those arriving in the next :data:`HOLD_S` (see there), at once
        beyond :data:`HOLD_MAX_TAPS` exchanges held or without a channel's loop (tests feeding
        frames by hand)."""
        self._held.append(message)
        self._held_taps += len(message[1])
        if self.reader is None or self._held_taps >= HOLD_MAX_TAPS:
            self.handle_held()
        elif self._held_timer is None:
            self._held_timer = self.reader.loop.call_later(HOLD_S, self.handle_held)

    def handle_held(self) -> None:
        """Handle the batches held so far (each once: one that fails is logged, not retried)."""
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if not self._held:
            return
        held, self._held, self._held_taps = self._held, [], 0
        for message in held:
            try:
                self._batch(*message[1:])
            except Exception:  # noqa: BLE001 - one batch's failure is not the others'
                log.exception("proxy data path: a batch of %d exchanges could not be handled", len(message[1]))

    async def ready(self, timeout: float) -> None:
        """Wait for the child to be accepting; raises when it exits first or takes longer."""
        assert self._ready is not None, "spawn() first"
        await asyncio.wait_for(asyncio.shield(self._ready), timeout)

    def status(self) -> dict[str, Any]:
        running = self.proc is not None and self.proc.poll() is None
        return {"pid": self.proc.pid if running and self.proc is not None else None, "restarts": self.restarts}

    async def sync(self, timeout: float = 0.5) -> None:
        """Wait until the child has sent everything it answered before this call (at most
        ``timeout``: a child that is restarting has nothing to send)."""
        reader = self.reader
        if reader is None or reader.closed:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncs.append(waiter)
        try:
            reader.sock.send(SYNC)
        except OSError:
            self._syncs.remove(waiter)
            self.handle_held()
            return
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            pass
        self.handle_held()  # (the answer handled what came before it; a sync that timed out, what came)

    def _batch(self, answers: list[tuple[Any, ...]], counts: list[tuple[tuple[str, tuple[str, ...]], int]],
               requests: list[tuple[int, float]], dropped: int) -> None:
        self.taps_received += dropped + sum(1 for answer in answers if answer[4] is not None)
        proxy = self.listeners[0].proxy
        sink = _BatchSink(proxy)
        try:
            for (name, labels), n in counts:
                sink.count(name, labels, n)
            for status, seconds in requests:
                sink.request_time(status, seconds)
            if dropped:
                self.sidecar.count_refused(ENDPOINT, "tap_backlog", dropped, detail=_BACKLOG)
        except Exception:  # noqa: BLE001 - the metrics of one batch are not worth the proxy
            log.exception("proxy data path: a batch's metrics could not be recorded")
        taps = proxy.taps
        with proxy.batched():  # the batch's events enqueued together, as each would have been alone
            for name, status, upstream_seconds, request_seconds, tap in answers:
                try:
                    sink.record(taps.get(name), status, upstream_seconds, request_seconds, tap)
                except Exception:  # noqa: BLE001 - Proxy.tap counts its own failures; this is a last guard
                    log.exception("proxy data path: an answered exchange could not be recorded")
        try:
            sink.flush()
        except Exception:  # noqa: BLE001
            log.exception("proxy data path: a batch's metrics could not be recorded")

    def _adopt(self, index: int, prefix: bytes, fd: int) -> None:
        """A connection for the sidecar's own routes, with the bytes the child read from it."""
        loop = asyncio.get_running_loop()
        try:
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            factory = self.listeners[index].local_protocol
        except (OSError, IndexError):
            os.close(fd)
            return

        async def adopt() -> None:
            try:
                await loop.connect_accepted_socket(lambda: _Prefixed(factory(), prefix), sock)
            except Exception:  # noqa: BLE001
                log.exception("proxy data path: a handed-over connection could not be served")
                sock.close()

        task = loop.create_task(adopt())
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    # -- stopping ------------------------------------------------------------------------------------
    def stop_listening(self) -> None:
        """Ask the child to stop: it accepts no more, answers what is in flight, then exits."""
        if self.stopping:
            return
        self.stopping = True
        if self._respawn is not None:
            self._respawn.cancel()
            self._respawn = None
        for lst in self.listeners:
            lst.sock.close()  # the child's copy is the one that accepts; it closes it on SIGTERM
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def close_spawner(self) -> None:
        self._spawner.shutdown(wait=False)

    async def abandon(self) -> None:
        """Stop the child without waiting for anything (it never came up), keep the socket."""
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.reader is not None and not self.reader.closed:
            self.reader.close()
        if self._exited is not None:
            await self._exited.wait()  # reaped from the loop (it was killed)
        self.sidecar.data_planes.discard(self)

    def in_flight(self) -> int:
        """1 while the child still runs (it has requests in flight or a last batch to write)."""
        return 0 if self.reader is None or self.reader.closed else 1

    async def stop(self, timeout: float) -> None:
        self.stop_listening()
        if self._exited is not None and self.reader is not None and not self.reader.closed:
            try:
                await asyncio.wait_for(self._exited.wait(), timeout)
            except asyncio.TimeoutError:
                log.warning("proxy data path: still running %.1f s after SIGTERM; killing it", timeout)
                if self.proc is not None:
                    self.proc.kill()
                self.reader.close()
                await self._exited.wait()  # killed: reaped at the next poll
        elif self._exited is not None and not self._exited.is_set():
            # the channel closed before the process exited (its last batch written, its exit not
            # done yet): it is reaped (killed if it lingers) and what it never sent counted before
            # the sidecar's last drain and checkpoint
            await self._exited.wait()
        if self._adopting:
            await asyncio.gather(*self._adopting, return_exceptions=True)


class _BatchSink(SidecarSink):
    """:class:`SidecarSink` for one batch of the data path's process: its counters summed over
    the batch and added once each (:meth:`flush`), not once per exchange."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(proxy)
        self.counts: dict[tuple[str, tuple[str, ...]], int] = {}

    def count(self, name: str, labels: tuple[str, ...], n: int = 1) -> None:
        key = (name, labels)
        self.counts[key] = self.counts.get(key, 0) + n

    def flush(self) -> None:
        counts, self.counts = self.counts, {}
        for (name, labels), n in counts.items():
            super().count(name, labels, n)


def _default_paths() -> set[str]:
    """Where a fresh interpreter finds installed packages (site-packages): an installed package
    needs no PYTHONPATH, and putting site-packages there would put it before the standard library."""
    import site

    paths = set(site.getsitepackages()) if hasattr(site, "getsitepackages") else set()
    if site.ENABLE_USER_SITE:
        paths.add(site.getusersitepackages())
    return {os.path.abspath(p) for p in paths}


def _loop_kind() -> str:
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


class DataPlaneSite(LeanProxySite):
    """A TCP listener bound here whose connections a child process serves (see the module's
    docstring); with ``server.proxy.port`` both the sidecar's app and the proxy's app have one,
    each with its own child. When the child does not come up at start (it exits, or is not
    accepting within :data:`READY_TIMEOUT_S`), the proxy runs on this process's loop instead
    (:class:`LeanProxySite`), on the same socket, and the log says why."""

    def __init__(self, runner: web.BaseRunner, app: web.Application, host: str, port: int, *,
                 reuse_address: bool = True, shutdown_timeout: float = 20.0) -> None:
        super().__init__(runner, app, host, port, reuse_address=reuse_address, shutdown_timeout=shutdown_timeout)
        self.plane: DataPlane | None = None
        #: the requests' share of the sidecar's shutdown deadline: the child's, from its SIGTERM
        self._budget = request_budget(app[K.SIDECAR].settings.shutdown_timeout_s)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port} (proxy data path process)"

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None, "runner.setup() first"
        sock = listening_socket(self._host, self._port, self._backlog)
        if not self._reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        plane = DataPlane(self._app[K.SIDECAR], self._budget)
        plane.add(sock, self._app, server)
        try:
            plane.spawn()
            await plane.ready(READY_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError, ChildProcessError) as err:
            log.error("proxy data path: its process did not start (%s); the proxy runs on the sidecar's event loop",
                      err or type(err).__name__)
            await plane.abandon()
            plane.close_spawner()
            await self._listen(sock)
            return
        self.plane = plane
        self._server = _Bound(sock)
        nice = self._app[K.SIDECAR].settings.worker_nice
        if nice:
            niced = lower_process_priority(nice, spare=plane.spawner_tid)
            log.info("server.worker_nice: %d thread(s) of the sidecar niced to %d; the proxy's data path process keeps "
                     "its priority", niced, nice)

    def stop_listening(self) -> None:
        if self.plane is not None:
            self.plane.stop_listening()
        else:
            super().stop_listening()

    def in_flight(self) -> int:
        return self.plane.in_flight() if self.plane is not None else super().in_flight()

    async def stop(self) -> None:
        if self.plane is not None:
            await self.plane.stop(self._budget + 5.0)
            self.plane.close_spawner()
            await web.BaseSite.stop(self)
        else:
            await super().stop()


class _Bound:
    """The listening socket as aiohttp's runner reads a site's server (``sockets``, ``close``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.address = sock.getsockname()
        self.sockets = [_Name(self.address)]
        if sock.family == socket.AF_INET6 and self.address[0] == "::" and not sock.getsockopt(socket.IPPROTO_IPV6,
                                                                                               socket.IPV6_V6ONLY):
            # dual-stack on every interface: listed as asyncio lists its two sockets, IPv4 first
            # (the log, --ready-file)
            self.sockets.insert(0, _Name(("0.0.0.0", self.address[1])))
        self._sock = sock

    def close(self) -> None:
        self._sock.close()


@dataclass(frozen=True)
class _Name:
    address: Any

    def getsockname(self) -> Any:
        return self.address


def listening_socket(host: str | None, port: int, backlog: int) -> socket.socket:
    """The proxy's listening socket. An empty host is every interface of both families, as
    asyncio's ``create_server`` binds it (one dual-stack socket here, where asyncio opens one
    socket per family); an IPv6 literal is IPv6 only; a host name binds its first IPv4 address
    (asyncio would bind every address it resolves to)."""
    if not host and socket.has_dualstack_ipv6():
        return socket.create_server(("", port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True)
    return socket.create_server((host or "", port), family=socket.AF_INET6 if ":" in (host or "") else socket.AF_INET,
                                backlog=backlog)
