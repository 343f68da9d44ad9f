"""Alert delivery: Alertmanager API v2, a generic webhook in Alertmanager's format, and the log.

The rule evaluator hands finished notifications (:class:`OutgoingAlert`) to a :class:`Notifier`,
which queues them and returns immediately: evaluation never waits on the network. Each sink has
its own queue and background thread, as Prometheus sends to each Alertmanager on its own (a sink
that is down delays no other), draining it in batches of at most 64 alerts (Prometheus's batch
size) and retrying failures with exponential backoff (not a 4xx answer, which a retry would only
repeat; the receiver's answer is logged). When a queue is full the oldest alerts are
dropped in favour of newer ones, as Prometheus's notifier does; every outcome is counted per sink
(:class:`NotifierStats`) so the agent can export delivery health as metrics.

Why ``urllib.request`` and threads rather than aiohttp: delivery is a few small POSTs per
evaluation interval, the agent's evaluator is synchronous and may run inside a host application
that owns (or lacks) an event loop, and dedicated threads with blocking stdlib calls cannot
interfere with anyone's loop. aiohttp stays the sidecar's server stack.

Payloads are Prometheus's: ``labels``, ``annotations``, ``startsAt`` (when the alert fired),
``endsAt`` (resolution time, or ``valid_until`` = last send + 4 x max(resend delay, interval) for
firing alerts, so Alertmanager expires alerts of a dead agent) and ``generatorURL``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

__all__ = [
    "OutgoingAlert",
    "without_credentials",
    "AlertSink",
    "AlertmanagerSink",
    "WebhookSink",
    "LogSink",
    "Notifier",
    "NotifierStats",
    "DeliveryError",
    "alertmanager_fingerprint",
    "format_rfc3339_ms",
    "MAX_BATCH_SIZE",
]

MAX_BATCH_SIZE = 64
#: While a receiver keeps failing, its failed attempts are said in the log at most this often.
OUTAGE_LOG_EVERY_S = 300.0
_USER_AGENT = "model-monitor"
_GO_ZERO_TIME = "0001-01-01T00:00:00.000Z"

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """One delivery attempt to one sink failed (network error or non-2xx status).

    ``retryable`` is False for a 4xx answer but 408 and 429: the receiver refused what it was sent
    (Alertmanager: an invalid label set, after storing the batch's valid alerts), and the same
    batch sent again gets the same answer."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def format_rfc3339_ms(t: float | None) -> str:
    """Format Unix seconds as Alertmanager's ``strfmt.DateTime`` (RFC 3339, milliseconds, UTC);
    ``None`` becomes Go's zero time, which Alertmanager reads as "not set"."""
    if t is None:
        return _GO_ZERO_TIME
    ms = int(round(t * 1000))
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def alertmanager_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's alert fingerprint (FNV-1a 64 over sorted names and values, 0xff separated),
    as 16 hex digits: the ``fingerprint`` field of its webhook payload."""
    h = 0xCBF29CE484222325
    prime = 0x100000001B3
    mask = 0xFFFFFFFFFFFFFFFF
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in part:
                h ^= byte
                h = (h * prime) & mask
    return f"{h:016x}"


@dataclass(frozen=True)
class OutgoingAlert:
    """One alert notification as Prometheus sends it.

    Attributes
    ----------
    labels, annotations : mapping
        External labels are already applied (the evaluator adds those the alert lacks).
    starts_at : float or None
        When the alert fired (``fired_at``).
    ends_at : float or None
        ``resolved_at`` for a resolved alert, else ``valid_until``.
    generator_url : str
        Link to the expression (``<external_url>/graph?g0.expr=...&g0.tab=1``).
    resolved : bool
        Whether this notification reports a resolution.
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float | None
    ends_at: float | None
    generator_url: str = ""
    resolved: bool = False

    def to_alertmanager(self) -> dict[str, Any]:
        """The ``PostableAlert`` JSON object of Alertmanager's API v2."""
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": format_rfc3339_ms(self.starts_at),
            "endsAt": format_rfc3339_ms(self.ends_at),
            "generatorURL": self.generator_url,
        }

    def to_webhook_alert(self) -> dict[str, Any]:
        """One element of ``alerts`` in Alertmanager's webhook payload."""
        return {
            "status": "resolved" if self.resolved else "firing",
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": format_rfc3339_ms(self.starts_at),
            "endsAt": format_rfc3339_ms(self.ends_at if self.resolved else None),
            "generatorURL": self.generator_url,
            "fingerprint": alertmanager_fingerprint(self.labels),
        }


class AlertSink(Protocol):
    """Something that delivers a batch of alerts, raising :class:`DeliveryError` on failure."""

    name: str

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None: ...


def without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part: what a request, a log line or a label may show."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if "@" in parts.netloc else url


def _credentials(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its ``user:password@`` part, and the basic-auth header that part says.

    ``urllib`` neither sends URL credentials nor strips them: ``http://user:pass@am:9093`` (the
    only way ``rules.alertmanager`` names an Alertmanager behind basic auth) was looked up as the
    host ``user:pass@am`` and failed at every send, with the password in each logged error."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return without_credentials(url), {"Authorization": f"Basic {token}"}


def _post_json(url: str, payload: Any, timeout_s: float, headers: Mapping[str, str]) -> None:
    body = json.dumps(payload).encode("utf-8")
    url, auth = _credentials(url)  # errors below name the URL without its password
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("User-Agent", _USER_AGENT)
    for k, v in {**auth, **headers}.items():  # an Authorization header given wins over the URL's
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - configured URL
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        try:  # what the receiver says is wrong (Alertmanager: 'invalid label set: invalid name "..."')
            said = e.read(300).decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            said = ""
        raise DeliveryError(f"{url}: bad response status {e.code} {e.reason}" + (f": {said}" if said else ""),
                            retryable=not (400 <= e.code < 500) or e.code in (408, 429)) from None
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise DeliveryError(f"{url}: {reason}") from None
    if status // 100 != 2:
        raise DeliveryError(f"{url}: bad response status {status}")


@dataclass
class AlertmanagerSink:
    """POST to Alertmanager's ``/api/v2/alerts``.

    Parameters
    ----------
    url : str
        Alertmanager's base URL (``http://host:9093``); the API path is appended unless the URL
        already ends with it.
    timeout_s : float
        Per-request timeout (Prometheus's default is 10 s).
    headers : mapping
        Extra HTTP headers (e.g. ``Authorization``).
    """

    url: str
    timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = "alertmanager"

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        _post_json(self.endpoint, [a.to_alertmanager() for a in alerts], self.timeout_s, self.headers)


@dataclass
class WebhookSink:
    """POST Alertmanager's webhook payload (``version: "4"``) to any URL, without an Alertmanager.

    Alerts of a batch are grouped by ``alertname`` (one request per group), like an Alertmanager
    route with ``group_by: [alertname]``. What the receiver is sent is what an Alertmanager would
    send it: an alert that starts firing or resolves, and a still-firing one again every
    ``repeat_interval_s`` (Alertmanager's default ``repeat_interval``, 4 h). The evaluator re-sends
    every firing alert each resend delay and every resolved one for 15 minutes, which Alertmanager
    absorbs; posted as they came, a chat or paging relay behind the webhook said one firing alert
    every minute and its resolution a dozen times. A post that fails is not remembered, so the
    evaluator's next re-send of the alert delivers it. What was posted, and when, is kept across
    restarts (:meth:`state_dict`, in the monitor's checkpoint), as an Alertmanager keeps its
    notification log: without it every restart posted each still-firing alert again.
    """

    url: str
    receiver: str = "monitor"
    external_url: str = ""
    timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = "webhook"
    repeat_interval_s: float = 4 * 3600.0
    #: monotonic seconds, for ``repeat_interval_s`` (tests pass their own)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _delivered: "_Delivered" = field(default_factory=lambda: _Delivered(), repr=False)

    def payloads(self, alerts: Sequence[OutgoingAlert]) -> list[dict[str, Any]]:
        """The webhook bodies for a batch (one per alert name)."""
        groups: dict[str, list[OutgoingAlert]] = {}
        for a in alerts:
            groups.setdefault(a.labels.get("alertname", ""), []).append(a)
        out = []
        for name, members in groups.items():
            common_labels = _common(a.labels for a in members)
            common_ann = _common(a.annotations for a in members)
            firing = any(not a.resolved for a in members)
            out.append({
                "version": "4",
                "groupKey": "{}:{alertname=" + json.dumps(name) + "}",
                "truncatedAlerts": 0,
                "status": "firing" if firing else "resolved",
                "receiver": self.receiver,
                "groupLabels": {"alertname": name},
                "commonLabels": common_labels,
                "commonAnnotations": common_ann,
                "externalURL": self.external_url,
                "alerts": [a.to_webhook_alert() for a in members],
            })
        return out

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        now = self.clock()
        latest: dict[str, OutgoingAlert] = {}  # a batch may hold several sends of one alert: the newest
        for a in alerts:
            key = alertmanager_fingerprint(a.labels)
            latest.pop(key, None)
            latest[key] = a
        news = [a for a in latest.values()
                if self._delivered.is_news(a.to_webhook_alert(), now, self.repeat_interval_s)]
        for body in self.payloads(news):
            _post_json(self.url, body, self.timeout_s, self.headers)
            for item in body["alerts"]:
                self._delivered.remember(item, now)

    def state_dict(self) -> dict[str, Any]:
        """What was posted: ``{"delivered": [[fingerprint, status, startsAt, age_s], ...]}``."""
        return {"delivered": self._delivered.state_dict(self.clock())}

    def load_state_dict(self, state: Mapping[str, Any], elapsed_s: float = 0.0) -> None:
        """Restore :meth:`state_dict`; ``elapsed_s`` (the time since it was taken) ages every post."""
        self._delivered.load_state_dict(state.get("delivered") or [], self.clock(), elapsed_s)


def _common(maps: Any) -> dict[str, str]:
    it = iter(maps)
    first = next(it, None)
    if first is None:
        return {}
    common = dict(first)
    for m in it:
        for k in list(common):
            if m.get(k) != common[k]:
                del common[k]
    return common


@dataclass
class LogSink:
    """Write each alert transition as one JSON line to a logger (``monitor.alerts`` by default):
    an alert that starts firing (a new ``startsAt``) or resolves. Re-sends of an alert in the same
    state (every resend delay while it fires, for a while after it resolved, and the burst of
    them when the rules catch up on event time after a restart) go to Alertmanager, which expects
    them, but not to the log: ``rules.log`` is documented as "every alert transition", and it
    wrote the same firing alert once a minute, four times in 0.2 s after a restart."""

    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("monitor.alerts"))
    level: int = logging.WARNING
    name: str = "log"
    _said: "_Delivered" = field(default_factory=lambda: _Delivered(), repr=False)

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        for a in alerts:
            body = a.to_webhook_alert()
            if not self._said.is_news(body, 0.0, math.inf):
                continue
            self._said.remember(body, 0.0)
            self.logger.log(self.level, "alert %s", json.dumps(body, sort_keys=True))

    def state_dict(self) -> dict[str, Any]:
        """What was logged (see :meth:`WebhookSink.state_dict`): a restart does not log a
        still-firing alert as a transition again."""
        return {"delivered": self._said.state_dict(0.0)}

    def load_state_dict(self, state: Mapping[str, Any], elapsed_s: float = 0.0) -> None:
        """Restore :meth:`state_dict` (times do not matter here: a state is logged once)."""
        self._said.load_state_dict(state.get("delivered") or [], 0.0, elapsed_s)


@dataclass
class _Delivered:
    """The state (status, ``startsAt``) last delivered of each alert, by fingerprint, and when:
    what tells an alert's transition (it fired, fired anew, resolved) from the evaluator's re-send
    of it in the same state. Bounded: the least recently delivered are forgotten first."""

    max_remembered: int = 10_000
    _states: "OrderedDict[str, tuple[tuple[str, str], float]]" = field(default_factory=OrderedDict)
    #: a checkpoint reads the states while a delivery thread writes them
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def is_news(self, body: Mapping[str, Any], now: float, repeat_s: float) -> bool:
        """Whether ``body`` (a webhook alert) is a transition, or a firing alert last delivered
        ``repeat_s`` or more before ``now``."""
        with self._lock:
            said = self._states.get(body["fingerprint"])
        if said is None or said[0] != (body["status"], body["startsAt"]):
            return True
        return body["status"] == "firing" and now - said[1] >= repeat_s

    def remember(self, body: Mapping[str, Any], now: float) -> None:
        """Record ``body`` as delivered at ``now``."""
        self._put(body["fingerprint"], (body["status"], body["startsAt"]), now)

    def _put(self, key: str, said: tuple[str, str], at: float) -> None:
        with self._lock:
            self._states.pop(key, None)
            self._states[key] = (said, at)
            while len(self._states) > self.max_remembered:
                self._states.popitem(last=False)

    def state_dict(self, now: float) -> list[list[Any]]:
        """``[fingerprint, status, startsAt, seconds since delivered]`` of each, oldest first:
        ages, not clock readings, since a monotonic clock restarts with the process."""
        with self._lock:
            items = list(self._states.items())
        return [[key, said[0], said[1], max(now - at, 0.0)] for key, (said, at) in items]

    def load_state_dict(self, items: Sequence[Sequence[Any]], now: float, elapsed_s: float = 0.0) -> None:
        """Restore :meth:`state_dict` taken ``elapsed_s`` ago, with ``now`` read from this
        sink's clock. Raises ``ValueError`` on an entry that is not four fields."""
        for item in items:
            if len(item) != 4:
                raise ValueError(f"a delivered alert is [fingerprint, status, startsAt, age], not {item!r}")
            key, status, starts, age = item
            self._put(str(key), (str(status), str(starts)), now - float(age) - max(float(elapsed_s), 0.0))


@dataclass
class NotifierStats:
    """Delivery counters (alerts, not requests), cumulative since start.

    Attributes
    ----------
    sent : int
        Alerts delivered, counted once per sink.
    failed : int
        Alerts given up on after all retries, once per sink.
    dropped : int
        Alerts dropped because a sink's queue was full (oldest first), once per sink.
    errors : int
        Failed delivery attempts (including ones retried successfully later).
    queued : int
        Alerts waiting now, once per sink that has yet to deliver them.
    """

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    errors: int = 0
    queued: int = 0


def _keyed(sinks: Sequence[AlertSink]) -> list[tuple[str, AlertSink]]:
    """``(kind URL #n, sink)`` of each sink: the same receiver found again in another list of sinks
    (a restart's, a reload's); ``#n`` tells apart a receiver listed twice."""
    seen: dict[str, int] = {}
    out = []
    for sink in sinks:
        base = f"{getattr(sink, 'name', type(sink).__name__)} {getattr(sink, 'url', '')}"
        n = seen[base] = seen.get(base, -1) + 1
        out.append((f"{base} #{n}", sink))
    return out


@dataclass
class _Lane:
    """One sink's own queue, counters and delivery thread (see :class:`Notifier`)."""

    sink: AlertSink
    queue: deque[OutgoingAlert] = field(default_factory=deque)
    stats: NotifierStats = field(default_factory=NotifierStats)
    busy: bool = False
    thread: threading.Thread | None = None
    #: taken out by :meth:`Notifier.reconfigure`: its thread ends after the batch in hand
    retired: bool = False
    #: failed attempts since the last delivery, and those of them not said in the log yet; when
    #: the last was said (monotonic seconds): see :meth:`Notifier._record_error`
    failing: int = 0
    unsaid: int = 0
    said_at: float = -math.inf

    @property
    def name(self) -> str:
        return str(getattr(self.sink, "name", type(self.sink).__name__))


class Notifier:
    """Queues + background threads delivering alert batches to sinks, with retries.

    Each sink has its own queue and thread (a *lane*), as Prometheus sends to each Alertmanager
    independently: a sink that is down or hangs (timeouts, retries with backoff: about a minute
    per batch with the defaults) delays only its own deliveries. With one shared thread, an
    unreachable first Alertmanager held every batch back from the healthy second one and from the
    log, a minute per batch and growing, past the alerts' ``endsAt``.

    Parameters
    ----------
    sinks : sequence of AlertSink
        Where to deliver (Alertmanager, webhook, log...). Every alert goes to every sink.
    queue_capacity : int
        Maximum queued alerts per sink; beyond it the oldest are dropped and counted.
    max_retries : int
        Retries per batch and sink after the first failed attempt.
    backoff_initial_s, backoff_max_s : float
        Exponential backoff between retries (doubling from the initial delay, capped).
    """

    def __init__(self, sinks: Sequence[AlertSink], *, queue_capacity: int = 10_000,
                 max_retries: int = 4, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 max_batch_size: int = MAX_BATCH_SIZE) -> None:
        if queue_capacity <= 0:
            raise ValueError(f"queue_capacity must be > 0, got {queue_capacity!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        self.sinks = list(sinks)
        self.queue_capacity = int(queue_capacity)
        self.max_retries = int(max_retries)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.max_batch_size = int(max_batch_size)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._closed_drops = 0  # alerts handed in after close (no lane takes them)
        self.last_error: str | None = None
        #: Monotonic clock of the outage log's reminders (tests move it).
        self._now: Callable[[], float] = time.monotonic
        self._lanes = [_Lane(sink) for sink in self.sinks]
        #: lanes taken out by :meth:`reconfigure`, whose counts stay in the totals (counters never go back)
        self._retired: list[_Lane] = []
        self._started = 0
        self._start_lanes()

    def _start_lanes(self, lanes: Sequence[_Lane] | None = None) -> None:
        for lane in self._lanes if lanes is None else lanes:
            lane.thread = threading.Thread(target=self._run, args=(lane,),
                                           name=f"monitor-notifier-{self._started}-{lane.name}", daemon=True)
            self._started += 1
            lane.thread.start()

    def reconfigure(self, sinks: Sequence[AlertSink]) -> None:
        """Deliver to ``sinks`` from now on (a reload of ``rules.alertmanager``, ``rules.webhook``,
        ``rules.log``), as Prometheus's reload applies its ``alerting:`` section. A sink of the same
        kind and URL as one already here keeps its lane: its queue, counters and what it remembers
        having delivered (a webhook does not post a still-firing alert again); only a webhook's
        ``external_url`` is taken from the new one. A sink no longer listed stops after the batch
        it is delivering, the alerts still queued for it dropped and counted (``dropped``); its
        counts stay in :meth:`stats_by_sink`, so that the totals exported never go back."""
        old = dict(zip((key for key, _ in self._keyed_sinks()), self._lanes))
        lanes: list[_Lane] = []
        fresh: list[_Lane] = []
        for key, sink in _keyed(sinks):
            lane = old.pop(key, None)
            if lane is None:
                lane = _Lane(sink)
                fresh.append(lane)
            elif hasattr(lane.sink, "external_url"):
                lane.sink.external_url = getattr(sink, "external_url", "")  # type: ignore[attr-defined]
            lanes.append(lane)
        with self._cond:
            for lane in old.values():
                lane.retired = True
                lane.stats.dropped += len(lane.queue)
                lane.queue.clear()
                self._retired.append(lane)
            self._lanes = lanes
            self.sinks = [lane.sink for lane in lanes]
            self._cond.notify_all()
        if not self._stop.is_set():
            self._start_lanes(fresh)

    # ------------------------------------------------------------------ producer side
    def send(self, alerts: Sequence[OutgoingAlert]) -> None:
        """Queue alerts for delivery to every sink and return immediately (never blocks on the
        network)."""
        if not alerts:
            return
        with self._cond:
            if self._stop.is_set():
                self._closed_drops += len(alerts)
                return
            alerts = list(alerts)
            for lane in self._lanes:
                batch = alerts
                over = len(batch) - self.queue_capacity
                if over > 0:
                    batch = batch[over:]
                    lane.stats.dropped += over
                over = len(lane.queue) + len(batch) - self.queue_capacity
                for _ in range(max(over, 0)):
                    lane.queue.popleft()
                if over > 0:
                    lane.stats.dropped += over
                lane.queue.extend(batch)
            self._cond.notify_all()

    @property
    def stats(self) -> NotifierStats:
        """A snapshot of the counters, summed over sinks (see :meth:`stats_by_sink`)."""
        total = NotifierStats()
        for _, s in self.stats_by_sink():
            for k in ("sent", "failed", "dropped", "errors", "queued"):
                setattr(total, k, getattr(total, k) + getattr(s, k))
        with self._cond:
            total.dropped += self._closed_drops
        return total

    def stats_by_sink(self) -> list[tuple[str, NotifierStats]]:
        """``(sink name, counters)`` of each sink, in the order given: which receiver fails."""
        with self._cond:
            out = []
            for lane in self._lanes + self._retired:
                s = NotifierStats(**lane.stats.__dict__)
                s.queued = len(lane.queue)
                out.append((lane.name, s))
            return out

    def state_dict(self) -> dict[str, Any]:
        """What the sinks that remember their deliveries (webhook, log) delivered, so that a
        restarted agent does not deliver a still-firing alert to them again (JSON-plain)."""
        sinks = []
        for key, sink in self._keyed_sinks():
            save = getattr(sink, "state_dict", None)
            if callable(save):
                sinks.append({"sink": key, **save()})
        return {"version": 1, "saved_at": time.time(), "sinks": sinks}

    def load_state_dict(self, state: Mapping[str, Any]) -> int:
        """Restore :meth:`state_dict` into the sinks of the same kind and URL (a sink added or
        removed since leaves the others matched); returns how many sinks were restored.
        Raises ``ValueError`` on a state of another version or shape."""
        if state.get("version") != 1:
            raise ValueError(f"unsupported notifier state version {state.get('version')!r} (expected 1)")
        saved_at = state.get("saved_at")
        elapsed = time.time() - float(saved_at) if isinstance(saved_at, (int, float)) else 0.0
        saved = {str(s.get("sink")): s for s in state.get("sinks") or []}
        restored = 0
        for key, sink in self._keyed_sinks():
            load = getattr(sink, "load_state_dict", None)
            if key in saved and callable(load):
                load(saved[key], max(elapsed, 0.0))
                restored += 1
        return restored

    def _keyed_sinks(self) -> list[tuple[str, AlertSink]]:
        """``(kind URL #n, sink)`` of each sink: what a restart with the same config finds again."""
        return _keyed([lane.sink for lane in self._lanes])

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued so far was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while any(lane.queue or lane.busy for lane in self._lanes + self._retired):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def after_fork(self, *, start: bool = True) -> None:
        """In a forked child: the alerts queued are the parent's to deliver; new delivery threads
        (the parent's do not run in the child, whose alerts would wait for good)."""
        self._cond = threading.Condition()
        for lane in self._lanes + self._retired:
            lane.queue.clear()
            lane.busy = False
            lane.thread = None
        if start and not self._stop.is_set():
            self._start_lanes()

    def start_after_fork(self) -> None:
        """Start the delivery threads that :meth:`after_fork` left unstarted (``start=False``)."""
        if not self._stop.is_set() and any(lane.thread is None for lane in self._lanes):
            self._start_lanes()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the threads (pending retries are abandoned and counted as failed)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes + self._retired:
            if lane.thread is not None:
                lane.thread.join(max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ worker side
    def _run(self, lane: _Lane) -> None:
        while True:
            with self._cond:
                while not lane.queue and not self._stop.is_set() and not lane.retired:
                    self._cond.wait()
                if (self._stop.is_set() or lane.retired) and not lane.queue:
                    return
                n = min(self.max_batch_size, len(lane.queue))
                batch = [lane.queue.popleft() for _ in range(n)]
                lane.busy = True
            try:
                self._deliver_with_retries(lane, batch)
            finally:
                with self._cond:
                    lane.busy = False
                    self._cond.notify_all()

    def _deliver_with_retries(self, lane: _Lane, batch: list[OutgoingAlert]) -> None:
        delay = self.backoff_initial_s
        for attempt in range(self.max_retries + 1):
            try:
                lane.sink.deliver(batch)
            except DeliveryError as e:
                self._record_error(lane, e, attempt)
                if not e.retryable:  # refused: sent again, the same batch gets the same answer
                    break
            except Exception as e:  # a sink bug must not kill the delivery thread
                self._record_error(lane, e, attempt)
            else:
                with self._cond:
                    lane.stats.sent += len(batch)
                    failed, lane.failing, lane.unsaid, lane.said_at = lane.failing, 0, 0, -math.inf
                if failed:
                    log.info("alert delivery to %s works again, after %d failed attempt(s)", lane.name, failed)
                return
            if attempt == self.max_retries or lane.retired or self._stop.wait(delay) or lane.retired:
                break
            delay = min(delay * 2, self.backoff_max_s)
        with self._cond:
            lane.stats.failed += len(batch)

    def _record_error(self, lane: _Lane, e: Exception, attempt: int) -> None:
        """Count a failed attempt; say it in the log when it is the first since the last delivery
        (or a refusal, which retrying cannot mend), else at most every :data:`OUTAGE_LOG_EVERY_S`
        with the number of failures since. Why: an Alertmanager down for an hour logged every
        attempt of every batch (10 lines in 15 s), which buries the rest of the log; the alerts not
        delivered are counted in ``monitor_notifications_total{outcome="failed"}``
        (MonitorAlertDeliveryFailing)."""
        now = self._now()
        refused = isinstance(e, DeliveryError) and not e.retryable
        with self._cond:
            lane.stats.errors += 1
            self.last_error = f"{lane.name}: {e}"
            lane.failing += 1
            say = refused or lane.failing == 1 or now - lane.said_at >= OUTAGE_LOG_EVERY_S
            since, lane.unsaid = (lane.unsaid, 0) if say else (0, lane.unsaid + 1)
            if say:
                lane.said_at = now
        if say:
            log.warning("alert delivery to %s failed (attempt %d/%d): %s%s%s", lane.name, attempt + 1, self.max_retries + 1,
                        e, "; not retried: the receiver refused the alerts (fix what it says, or the URL)" if refused else "",
                        f"; {since} more failed attempt(s) since the last line" if since else
                        "" if lane.failing > 1 else
                        f"; while it fails, this is said at most every {OUTAGE_LOG_EVERY_S:.0f} s (alerts not delivered are "
                        "counted in monitor_notifications_total{outcome=\"failed\"})")
