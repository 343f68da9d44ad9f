"""The sidecar's end of forwarding mode: datagrams from :class:`monitor.forwarding.ForwardingMonitor`
in other processes (gunicorn/uvicorn workers) over a Unix datagram socket and/or UDP on loopback.

Each datagram is validated like ``POST /v1/events``, per event, as a worker's
(``parse_event(forwarded=True)``): a datagram has no one to answer, so bad events are counted and
the good ones kept, and what an in-process Monitor takes and counts its own way goes on to the
model's pipeline to be counted so, where ``POST /v1/events`` refuses the event with a 400 that
tells its sender: a feedback id that is no id (a worker sends it as null; the join counts its label
``unknown_id``, or ``invalid``), a label the model cannot take (``invalid``), a prediction's id over
1,024 characters (cut to 1,025 by the worker; the row builder counts it in
``monitor_row_arguments_dropped_total{argument="request_id"}``), a latency the pipeline leaves out,
a timestamp that is a number but no time (its rows counted ``invalid_timestamp``) and null
outputs; a worker's prediction may also carry a long streamed answer's ``outputs_length`` and the
per-row arguments it could not read (``unreadable``), which ``POST /v1/events`` does not take
(:func:`monitor.events.parse_event`). A worker of an earlier release left such ids out and said how many in the
datagram's header (``unknown_ids``, ``dropped_ids``), counted here as in process.
Workers report their cumulative drop counts
and a sequence number; the receiver turns those into ``monitor_forward_events_dropped_total`` and
``monitor_forward_datagrams_lost_total``.

Each datagram's events are processed once: the receiver keeps, per sender, the highest sequence
number heard and the numbers skipped below it for :data:`REORDER_S` seconds. A datagram that fills
such a gap (reordered on the way, as UDP between hosts may) is processed; one whose number was
processed already (a copy) or was counted lost already (later than that) is discarded and counted
(``monitor_forward_datagrams_discarded_total``). A gap still open after :data:`REORDER_S` is
counted in ``monitor_forward_datagrams_lost_total``. Sender ids are per session
(``host:pid:random``, a new one for every process and session), so a number heard again is a
copy, never a sender that started again under the same id.

Drops are counted per sender as what its totals grew by since the newest datagram heard from it,
so the counter only grows. A sender one of whose totals goes down counted that reason from zero
again (kept at the old one, its new drops went uncounted until they passed it). A sender this sidecar does not
know is counted from the totals its datagram says were ``counted`` already (those of the last
datagram it sent without error, which the sidecar before this one, or this one before it forgot
the sender, had counted), whole when it says none: :class:`monitor.forwarding.ForwardingMonitor`
also opens a new sender id, its totals counted from what it had reported, whenever it can tell
that the receiver may be another sidecar, so that no drop is counted twice across restarts.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.events import FEEDBACK, PREDICTION, EventFormatError, check_for_model, parse_event
from monitor.forwarding import FORWARD_DROP_REASONS, MAX_FRAGMENTS, WIRE_VERSION
from monitor.server.errors import IntakeError
from monitor.server.intake import known_model
from monitor.server.jsonbody import loads
from monitor.server.payloads import UNSAFE_JSON_MESSAGES, unsafe_json
from monitor.server.settings import ForwardSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from monitor.core import Monitor
    from monitor.server.sidecar import Sidecar

__all__ = ["ForwardReceiver"]

log = logging.getLogger("monitor.server")
ENDPOINT = "forward"
_SENDER_TTL = 300.0
#: Senders tracked at most. Beyond it the least recently heard from is forgotten, even within
#: ``_SENDER_TTL``: the ids come from the datagrams, so a flood of fresh ids must not grow the table.
_MAX_SENDERS = 10_000
#: Drop reasons tracked per sender (a worker reports a handful; the names come from the datagram).
_MAX_REASONS = 16
#: Seconds a datagram may arrive after a later one of its sender and still be processed; a gap in
#: the sequence still open then is counted lost. Reordering on a network lasts milliseconds; a
#: datagram later than this was counted lost, and is discarded so that nothing counts twice.
REORDER_S = 5.0
#: Gaps tracked per sender at most (the newest ones): a jump of the sequence beyond it counts the
#: older numbers lost at once, so that a datagram's number cannot grow the table.
_MAX_GAPS = 64
#: Sequence numbers tracked (gaps, and numbers below a sender's first datagram processed late)
#: over all senders at most, some 7 MB: with many senders each keeps fewer (at least
#: :data:`_MIN_GAPS`), so that a flood of sender ids with gaps cannot hold 10,000 x 64 of them.
_GAP_BUDGET = 100_000
_MIN_GAPS = 4
#: Largest sequence number or drop total read: integers beyond it are not exact as the floats
#: the counters hold (and one of 10**400 does not convert at all).
_MAX_INT = 2**53


_NOT_JSON = ("the datagram is not UTF-8 JSON; only monitor.forwarding.ForwardingMonitor writes to this socket "
             "(server.forward.unix / udp): check what else sends to it")


def _bad_datagram(msg: object) -> str:
    """Why a JSON datagram is not one of :class:`ForwardingMonitor`'s, with the fix. A wire version
    other than this sidecar's is the likely one (workers and sidecar from different releases):
    every datagram of those workers is refused, so the log must say so."""
    if not isinstance(msg, dict):
        return f"the datagram is a JSON {type(msg).__name__}, not a forwarding message; only ForwardingMonitor writes here"
    if msg.get("v") != WIRE_VERSION:
        return (f"wire version v={str(msg.get('v'))[:20]}, this sidecar reads {WIRE_VERSION}: run the same "
                "model-monitor version in the workers (ForwardingMonitor) and in the sidecar")
    return "the datagram's 'events' is not a list; only ForwardingMonitor writes here"


def _kind_mismatch(kind: str, mon: "Monitor") -> str:
    """Why a worker's events are refused when its ``ForwardingMonitor(output_kind=...)`` is not
    the model's ``output.kind``: read as the config's kind they would be mis-scored (a text
    answer as scores, the absent answers of ``reads_outputs=False`` as missing outputs)."""
    said = f"output_kind={kind[:40]!r}" + (" (reads_outputs=False)" if kind == "none" else "")
    want = mon.config.output.kind
    return (f"the worker's ForwardingMonitor({said}) is not the output.kind: {want} that the sidecar's config declares "
            f"for model {mon.model!r}, so its events cannot be read as the config says. Fix: make them agree: "
            f"ForwardingMonitor(..., output_kind={want!r}) in the worker, or output.kind: {kind[:40]} in the config")


class _Sender:
    """What the receiver knows of one sender session.

    ``gaps`` maps each number skipped between the first datagram heard and ``seq`` (at most
    :data:`_MAX_GAPS`) to when the skip was seen. Numbers below the first one heard were sent
    before this sidecar knew the sender (to another sidecar, or delayed on the way): one of them
    arriving within :data:`REORDER_S` of the first is processed (``early`` holds those already
    processed), and none is ever counted lost here. ``low`` is the oldest datagram heard and
    ``low_counted`` the drop totals its ``counted`` said an earlier receiver had counted: an older
    datagram arriving late lowers that mark, and the drops between the two are counted then
    (they rode on that datagram only, and nobody else counted them).
    """

    __slots__ = ("seq", "dropped", "seen", "gaps", "first_seq", "first_at", "early", "low", "low_counted")

    def __init__(self) -> None:
        self.seq = 0
        self.dropped: dict[str, int] = {}
        self.seen = 0.0
        self.gaps: dict[int, float] = {}
        self.first_seq = 0
        self.first_at = 0.0
        self.early: set[int] = set()
        self.low = 0
        self.low_counted: dict[str, int] = {}


@dataclass
class _Parts:
    """The parts come so far of one event sent in parts (see ``ForwardReceiver._join_fragment``)."""

    expected: int
    first_seen: float
    size: int = 0  # characters held
    parts: dict[int, str] = field(default_factory=dict)
    #: the parts' header counts (``unknown_ids``, ``dropped_ids``), whichever part carried them
    counts: dict[str, int] = field(default_factory=dict)


#: header fields that count what the worker left out of the datagram's events (see :func:`_header_counts`)
_COUNT_FIELDS = ("unknown_ids", "dropped_ids")


def _header_counts(msg: dict[str, Any]) -> dict[str, int]:
    """The datagram's counts of labels and ids the worker left out (positive integers only)."""
    out: dict[str, int] = {}
    for name in _COUNT_FIELDS:
        v = msg.get(name)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            out[name] = v
    return out


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: "ForwardReceiver", transport_name: str) -> None:
        self.receiver = receiver
        self.name = transport_name

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.receiver.receive(data, self.name)

    def error_received(self, exc: Exception) -> None:  # pragma: no cover - kernel-level
        log.warning("forwarding socket error: %s", exc)


class ForwardReceiver:
    """The sidecar's forwarding sockets and the per-sender accounting of what arrives on them
    (``clock``: the monotonic clock of the senders' table and of :data:`REORDER_S`)."""

    def __init__(self, sidecar: "Sidecar", settings: ForwardSettings, clock: "Callable[[], float]" = time.monotonic) -> None:
        self.sidecar = sidecar
        self.settings = settings
        self._clock = clock
        self._transports: list[asyncio.BaseTransport] = []
        #: sockets bound and not read yet (between binding and :meth:`_open`), and those read
        self._bound: list[tuple[socket.socket, str]] = []
        self._reading: list[tuple[socket.socket, str]] = []
        #: datagrams read while the models load, processed once they are loaded (None: processed
        #: as they come), and their bytes (at most ``settings.receive_buffer_bytes``)
        self._held: list[tuple[bytes, str]] | None = None
        self._held_bytes = 0
        self._overflowed = False
        self._senders: dict[str, _Sender] = {}
        #: parts of events sent in parts, by (sender, event id), oldest first; and the characters
        #: held in all
        self._fragments: dict[tuple[str, int], _Parts] = {}
        self._fragment_bytes = 0
        self._unix_path: str | None = None
        self._last_gauge = 0.0
        # what the workers may report, and this receiver's own failures, at 0 from the start: a
        # first report is then an increase the rules see, not a series born at its first value
        sidecar.store.zero("monitor_forward_events_dropped", [(reason,) for reason in FORWARD_DROP_REASONS])
        sidecar.store.zero("monitor_internal_errors", [("forward",)])

    async def start(self, loaded: "asyncio.Future[Any] | None" = None) -> None:
        """Bind and read the sockets now (a socket path or port in use stops the start at once),
        and hold what arrives until ``loaded`` (the models' loading) is done: processed before,
        every event would be refused as ``not_ready``, and a forwarding worker, who gets no
        answer, cannot retry. Why not leave them in the kernel: a Unix datagram socket queues
        ``net.unix.max_dgram_qlen`` datagrams (10 by default, and in every new network namespace,
        i.e. every pod) whatever its receive buffer, and each worker's send buffer holds about
        200 KB of unread ones: a few seconds of loading under traffic made the workers drop most
        events as ``socket_full``. So they are read into memory, up to
        ``server.forward.receive_buffer_bytes``; one beyond that is not held, and counted lost by
        its sender's sequence number once a later one is processed."""
        if self.settings.unix:
            path = self.settings.unix
            try:
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    if _bound(path):  # unlinking it cut a running sidecar off from its workers
                        raise OSError(errno.EADDRINUSE, f"{path} (server.forward.unix) is bound by another running "
                                                        "process, e.g. a sidecar of the same config; stop that one "
                                                        "or give this one a socket path of its own")
                    os.unlink(path)  # a stale socket from a previous run
            except FileNotFoundError:
                pass
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.settings.receive_buffer_bytes)
            sock.bind(path)
            os.chmod(path, 0o660)
            self._unix_path = path
            self._bound.append((sock, "unix"))
        if self.settings.udp:
            host, _, port = self.settings.udp.rpartition(":")
            host = host.strip("[]")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.settings.receive_buffer_bytes)
            try:
                sock.bind((host, int(port)))
            except OSError as err:
                sock.close()
                raise OSError(err.errno, f"{self.settings.udp} (server.forward.udp): {err.strerror or err}") from err
            if not _is_loopback(host):
                log.warning("server.forward.udp listens on %s: the datagrams carry no token, so anyone who can reach "
                            "this address can write events for every model; keep it on 127.0.0.1 or ::1, or use "
                            "server.forward.unix (file permissions) between processes of one pod", self.settings.udp)
            self._bound.append((sock, "udp"))
        if loaded is not None and not loaded.done():
            self._held = []
            loaded.add_done_callback(lambda _f: self._release())
        await self._open()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        while self._bound:
            sock, name = self._bound.pop(0)
            transport, _ = await loop.create_datagram_endpoint(lambda name=name: _Protocol(self, name), sock=sock)
            self._transports.append(transport)
            self._reading.append((sock, name))

    @property
    def udp_address(self) -> tuple[str, int] | None:
        socks = [t.get_extra_info("socket") for t in self._transports] + [sock for sock, _ in self._bound]
        for sock in socks:
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                return sock.getsockname()[:2]
        return None

    def _release(self) -> None:
        """The models are loaded: process the datagrams held meanwhile, in the order they came."""
        held, self._held, self._held_bytes = self._held or [], None, 0
        for data, transport in held:
            try:
                self.receive(data, transport)
            except Exception:  # noqa: BLE001 - one datagram's failure must not lose the others
                log.exception("forwarding: a datagram held while the models loaded could not be processed")
                self.sidecar.store.inc("monitor_internal_errors", labels=("forward",))

    def close(self) -> None:
        """Stop listening, and process what the workers sent before that: the socket file goes
        first (a worker's next send finds no sidecar, and counts its events as
        ``sidecar_unavailable``), then the datagrams the kernel still queues are read and
        processed (call this while the sidecar still accepts events), then the sockets close.
        Closed with them, those datagrams were lost uncounted: their worker had sent them, and
        the next sidecar hears the worker under a new session, with no gap in its numbers."""
        if self._unix_path:
            try:
                os.unlink(self._unix_path)
            except OSError:
                pass
            self._unix_path = None
        for sock, name in self._reading:
            self._drain(sock, name)
        self._reading.clear()
        self._held = None  # closed before the models were loaded: never processed
        for sock, _ in self._bound:  # closed before they were read
            sock.close()
        self._bound.clear()
        for t in self._transports:
            t.close()
        self._transports.clear()

    def _drain(self, sock: socket.socket, name: str) -> None:
        """Process the datagrams queued in ``sock`` now, without waiting for more."""
        for _ in range(100_000):  # bounded: senders that keep sending to a UDP port are not waited for
            try:
                data = sock.recv(1 << 18, socket.MSG_DONTWAIT)
            except OSError:  # BlockingIOError: nothing left; or the socket is closed already
                return
            try:
                self.receive(data, name)
            except Exception:  # noqa: BLE001 - the shutdown goes on
                log.exception("forwarding: a datagram read at shutdown could not be processed")
                self.sidecar.store.inc("monitor_internal_errors", labels=("forward",))

    # -- one datagram --------------------------------------------------------------------------------
    def receive(self, data: bytes, transport: str) -> None:
        held = self._held
        if held is not None:  # the models are loading (see start)
            if self._held_bytes + len(data) <= self.settings.receive_buffer_bytes:
                held.append((data, transport))
                self._held_bytes += len(data)
            elif not self._overflowed:
                self._overflowed = True
                log.warning("forwarding: the models are still loading and %d bytes of datagrams wait for them "
                            "(server.forward.receive_buffer_bytes); further ones are not held, counted in "
                            "monitor_forward_datagrams_lost_total once their senders are heard from again. Fix: "
                            "raise server.forward.receive_buffer_bytes", self._held_bytes)
            return
        sidecar = self.sidecar
        # no one reads an answer here: the first refusal of each reason is logged with its cause
        try:
            msg = loads(data)  # json.loads's value and errors, by orjson where it agrees
        except (ValueError, UnicodeDecodeError, RecursionError):
            sidecar.count_refused(ENDPOINT, "bad_json", detail=_NOT_JSON)
            return
        if not isinstance(msg, dict) or msg.get("v") != WIRE_VERSION or not isinstance(msg.get("events"), list):
            sidecar.count_refused(ENDPOINT, "bad_datagram", detail=_bad_datagram(msg))
            return
        try:
            process = self._account(msg)
        except Exception:  # noqa: BLE001 - the sender table's bookkeeping must never stop the events
            log.exception("forwarding: a datagram's sequence accounting failed; its events are processed")
            sidecar.store.inc("monitor_internal_errors", labels=("forward",))
            process = True
        if not process:
            return
        events = msg["events"]
        fragment = msg.get("fragment")
        counts = _header_counts(msg)
        if fragment is not None:  # one part of an event too large for a datagram
            joined = self._join_fragment(msg.get("sender"), fragment, counts)
            if joined is None:
                return
            try:
                data, events = joined, [loads(joined)]
            except (ValueError, UnicodeDecodeError, RecursionError):
                sidecar.count_refused(ENDPOINT, "bad_json", detail="an event joined from its parts is not JSON; only "
                                      "ForwardingMonitor writes here")
                return
        if not events:
            return
        default_model = msg.get("model") if isinstance(msg.get("model"), str) else None
        kind = msg.get("kind") if isinstance(msg.get("kind"), str) else None
        now = time.time()
        items: list[tuple[Monitor, tuple[Any, ...]]] = []
        check = unsafe_json(data, events) is not None
        for obj in events:
            unsafe = unsafe_json(data, obj) if check else None
            if unsafe is not None:
                sidecar.count_refused(ENDPOINT, unsafe, mon=known_model(sidecar, obj, default_model),
                                      detail=f"an event {UNSAFE_JSON_MESSAGES[unsafe]}")
                continue
            taken = self._take(obj, now, default_model, kind)
            if taken is not None:
                items.append(taken)
        if not items:
            return
        try:
            # no one to answer 429 to: what does not fit is shed inside the queue, and counted there
            sidecar.enqueue(items, ENDPOINT, admit=False)
        except IntakeError as err:
            sidecar.count_refused(ENDPOINT, err.reason, len(items))
            return
        if counts.get("unknown_ids"):
            _count_no_id(next((m for m, event in items if event[0] == FEEDBACK), None), counts["unknown_ids"])
        if counts.get("dropped_ids"):
            _count_dropped_ids(items, counts["dropped_ids"])
        counts: dict[Monitor, int] = {}
        for mon, _ in items:
            counts[mon] = counts.get(mon, 0) + 1
        for mon, n in counts.items():
            mon.store.inc("monitor_forward_events_received", n, labels=(transport,))

    def _join_fragment(self, sender: Any, fragment: Any, counts: dict[str, int] | None = None) -> bytes | None:
        """Keep one part of an event sent in parts (:meth:`ForwardingMonitor._send_fragments`);
        the event's JSON once its last part has come, else None. ``counts``: the part's header
        counts (:func:`_header_counts`) in; once the event is complete, all its parts' out (the
        worker sends them with the last part, which need not be the last to arrive). Parts wait at most
        :data:`REORDER_S` for the others (a part lost on the way is a datagram counted lost, one
        the worker could not send is a drop it counts), and all parts waiting hold at most
        ``server.forward.receive_buffer_bytes``: past it the oldest event's parts are let go,
        counted as refused (``incomplete``)."""
        f = fragment if isinstance(fragment, dict) else {}
        i, n, fid, part = f.get("i"), f.get("n"), f.get("id"), f.get("data")
        if not (isinstance(i, int) and isinstance(n, int) and isinstance(fid, int) and isinstance(part, str)
                and not isinstance(fid, bool) and 1 <= n <= MAX_FRAGMENTS and 0 <= i < n):
            self.sidecar.count_refused(ENDPOINT, "bad_datagram", detail="a datagram's fragment is not one "
                                       "ForwardingMonitor writes (id, i < n <= %d, data)" % MAX_FRAGMENTS)
            return None
        now = self._clock()
        held = self._fragments
        while held:  # oldest first: insertion order
            key0 = next(iter(held))
            if now - held[key0].first_seen <= REORDER_S:
                break
            self._fragment_bytes -= held.pop(key0).size
        key = (str(sender)[:200], fid)
        entry = held.get(key)
        if entry is None or entry.expected != n:
            if entry is not None:
                self._fragment_bytes -= entry.size
            entry = held[key] = _Parts(n, now)
        parts = entry.parts
        if i not in parts:
            parts[i] = part
            entry.size += len(part)
            self._fragment_bytes += len(part)
            for name, v in (counts or {}).items():
                entry.counts[name] = entry.counts.get(name, 0) + v
        while self._fragment_bytes > self.settings.receive_buffer_bytes and len(held) > 1:
            oldest = next(iter(held))
            if oldest == key:
                break
            self._fragment_bytes -= held.pop(oldest).size
            self.sidecar.count_refused(ENDPOINT, "incomplete", detail=(
                "the parts of events sent in parts waiting for their last part passed "
                "server.forward.receive_buffer_bytes: the oldest is let go. Fix: raise "
                "server.forward.receive_buffer_bytes, or call the model on smaller batches"))
        if len(parts) < n:
            return None
        del held[key]
        self._fragment_bytes -= entry.size
        if counts is not None:
            counts.clear()
            counts.update(entry.counts)
        return "".join(parts[j] for j in range(n)).encode("utf-8")

    def _account(self, msg: dict[str, Any]) -> bool:
        """Count a datagram's drops and gaps; whether its events are to be processed (False: its
        number was processed already, or counted lost already)."""
        sender_id = msg.get("sender")
        if not isinstance(sender_id, str) or len(sender_id) > 200:
            return True
        senders = self._senders
        s = senders.pop(sender_id, None)  # put back at the end: the table's order is recency
        now = self._clock()
        if s is None:
            if len(senders) >= _MAX_SENDERS:
                self._forget(now, expire_gaps=False)  # a flood of new ids must not walk every gap each time
            while len(senders) >= _MAX_SENDERS:
                self._count_lost(len(senders.pop(next(iter(senders))).gaps))  # the least recently heard from
            senders[sender_id] = s = _Sender()
            s.dropped = _totals(msg.get("counted"))  # what an earlier receiver counted: the mark to count from
            self.sidecar.store.set("monitor_forward_senders", len(senders))  # a new worker shows at once
        else:
            senders[sender_id] = s
        s.seen = now
        seq = msg.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= _MAX_INT:
            return True  # no sequence (not a ForwardingMonitor's datagram): processed, its totals not counted
        self._expire(s, now)
        if seq <= s.seq:
            return self._late(s, seq, msg, now)
        if not s.seq:
            s.first_seq = s.low = seq
            s.first_at = now
            s.low_counted = dict(s.dropped)
        else:
            cap = self._gap_cap()
            skipped = seq - s.seq - 1
            for n in range(max(s.seq + 1, seq - cap), seq):
                s.gaps[n] = now
            lost = max(skipped - cap, 0)
            if len(s.gaps) > cap:  # numbers (and times) ascend in insertion order: the oldest come first
                for n in list(s.gaps)[:len(s.gaps) - cap]:
                    del s.gaps[n]
                    lost += 1
            self._count_lost(lost)
        s.seq = seq
        self._count_drops(s, _totals(msg.get("dropped")))
        if now - self._last_gauge > 5.0:
            self._forget(now, expire_gaps=False)  # the housekeeping's sweep closes the gaps, every second
        return True

    def _late(self, s: _Sender, seq: int, msg: dict[str, Any], now: float) -> bool:
        """A datagram numbered at or below the newest one heard: processed when it fills a gap (its
        drop totals are older than those counted already), discarded when its number was processed
        or counted lost already."""
        if seq in s.gaps:
            del s.gaps[seq]
            return True
        if seq < s.first_seq and seq not in s.early and seq >= s.first_seq - _MAX_GAPS and now - s.first_at <= REORDER_S \
                and len(s.early) < self._gap_cap():
            s.early.add(seq)
            if seq < s.low:
                counted = _totals(msg.get("counted"))
                for reason, mark in s.low_counted.items():
                    if mark > counted.get(reason, 0):
                        self.sidecar.store.inc("monitor_forward_events_dropped", mark - counted.get(reason, 0), labels=(reason,))
                s.low, s.low_counted = seq, counted
            return True
        self.sidecar.store.inc("monitor_forward_datagrams_discarded")
        return False

    def _count_drops(self, s: _Sender, totals: dict[str, int]) -> None:
        """Count what a sender's drop totals grew by since its newest datagram before this one."""
        store = self.sidecar.store
        for reason, total in totals.items():
            if reason not in s.dropped and len(s.dropped) >= _MAX_REASONS:
                continue
            last = s.dropped.get(reason, 0)
            # a total that went down restarted from zero: all of it is new. Kept either way, so the
            # next growth is counted from it (a lower total left the old one in place, and drops
            # went uncounted until the new total passed it)
            delta = total - last if total >= last else total
            if delta:
                store.inc("monitor_forward_events_dropped", delta, labels=(reason,))
            s.dropped[reason] = total

    def _gap_cap(self) -> int:
        """Sequence numbers each sender may track now (see :data:`_GAP_BUDGET`)."""
        return max(_MIN_GAPS, min(_MAX_GAPS, _GAP_BUDGET // max(len(self._senders), 1)))

    def _expire(self, s: _Sender, now: float) -> None:
        """Count the sender's gaps older than :data:`REORDER_S` lost. The gaps' times ascend in
        insertion order, so the old ones are found from the front, without reading the others."""
        if s.early and now - s.first_at > REORDER_S:
            s.early = set()
        lost = 0
        for n, t in s.gaps.items():
            if now - t <= REORDER_S:
                break
            lost += 1
        if lost:
            for n in list(s.gaps)[:lost]:
                del s.gaps[n]
            self._count_lost(lost)

    def _count_lost(self, n: int) -> None:
        if n:
            self.sidecar.store.inc("monitor_forward_datagrams_lost", n)

    def _take(self, obj: Any, now: float, default_model: str | None, kind: str | None) -> "tuple[Monitor, tuple[Any, ...]] | None":
        """One event of a datagram, parsed as a forwarding worker's (``parse_event(forwarded=True)``:
        what an in-process Monitor takes and counts its own way, a bad latency, ids that are no
        id, labels the model cannot take, null outputs, goes on to the model's pipeline to be
        counted so), with its model; or None when refused (counted, and its first refusal of each
        reason logged: a forwarding worker gets no answer, and a misnamed model,
        ``ForwardingMonitor("irsi")``, would show only as a counter)."""
        sidecar = self.sidecar
        try:
            parsed = parse_event(obj, now, forwarded=True)
            mon = sidecar.resolve(parsed.model if parsed.model is not None else default_model)
            if kind is not None and kind != mon.config.output.kind:
                sidecar.count_refused(ENDPOINT, "output_kind_mismatch", mon=mon, detail=_kind_mismatch(kind, mon))
                return None
            check_for_model(parsed, mon.config.output.kind, mon.config.output.classes)
        except EventFormatError as err:
            sidecar.count_refused(ENDPOINT, err.reason, mon=known_model(sidecar, obj, default_model), detail=str(err))
            return None
        except IntakeError as err:
            sidecar.count_refused(ENDPOINT, err.reason, detail=str(err) + (
                ". Fix: name a served model in the worker's ForwardingMonitor(model=...) or in the event"
                if err.reason in ("unknown_model", "missing_model") else ""))
            return None
        return mon, parsed.event

    def sweep(self, now: float | None = None) -> None:
        """Forget the workers not heard from for five minutes, count the gaps older than
        :data:`REORDER_S` lost, and set ``monitor_forward_senders`` (the sidecar's housekeeping
        calls this every second). Why not only on arrival: when every worker has gone quiet or
        away no datagram comes to update the gauge, and it would show the last count for ever."""
        self._forget(self._clock() if now is None else now)

    def _forget(self, now: float, expire_gaps: bool = True) -> None:
        cutoff = now - _SENDER_TTL
        for key in [k for k, v in self._senders.items() if v.seen < cutoff]:
            self._count_lost(len(self._senders.pop(key).gaps))
        if expire_gaps:
            for s in self._senders.values():
                if s.gaps or s.early:
                    self._expire(s, now)
        self._last_gauge = now
        self.sidecar.store.set("monitor_forward_senders", len(self._senders))


def _count_no_id(mon: "Monitor | None", n: int) -> None:
    """Count the labels a worker of an earlier release left out of the datagram's feedback event
    for ids that are no id (``unknown_ids``: None, NaN, empty text, over 1,024 characters; the
    worker's log names one; this release's workers send such ids as null, which the model's join
    counts), as an in-process Monitor counts them: ``unknown_id``, or ``invalid`` for a model
    whose outputs are no scores (every label is). Counted once the datagram's feedback event is
    taken, under its model (``mon``)."""
    if mon is not None:
        outcome = "unknown_id" if mon.config.output.scored else "invalid"
        mon.store.inc("monitor_feedback_labels", min(n, 2 ** 31), labels=(outcome,))


def _count_dropped_ids(items: "list[tuple[Monitor, tuple[Any, ...]]]", n: int) -> None:
    """Count the rows a worker of an earlier release forwarded without their request id (``dropped_ids``: an id over
    1,024 characters or whose text cannot be taken, which the intake refuses with the whole
    event; the worker's log names one), as an in-process Monitor counts them:
    ``monitor_row_arguments_dropped_total{argument="request_id"}``, once the datagram's
    predictions are taken, under their model."""
    mon = next((m for m, event in items if event[0] == PREDICTION), None)
    if mon is not None:
        mon.store.inc("monitor_row_arguments_dropped", min(n, 2 ** 31), labels=("request_id",))


def _totals(value: object) -> dict[str, int]:
    """A datagram's drop totals by reason: non-negative integers under names cut to 40
    characters, at most :data:`_MAX_REASONS` of them (names and counts come from the datagram)."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, int] = {}
    for reason, total in value.items():
        if isinstance(reason, str) and isinstance(total, int) and not isinstance(total, bool) and 0 <= total <= _MAX_INT:
            if len(out) >= _MAX_REASONS and reason[:40] not in out:
                continue
            out[reason[:40]] = total
    return out


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bound(path: str) -> bool:
    """Whether a process is bound to the datagram socket at ``path`` (a stale file left by a run
    that died refuses the connection)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()
