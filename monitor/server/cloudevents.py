"""CloudEvents intake: KServe's and Seldon's inference loggers, with zero code on the model side.

Both loggers send each inference as two binary-mode CloudEvents (``ce-*`` headers, the payload
as the body): the request (``org.kubeflow.serving.inference.request`` /
``io.seldon.serving.inference.request``) and the response (``...inference.response``). KServe's
two halves share their ``ce-id`` (the request's id); Seldon Core's executor gives every event a
fresh ``ce-id`` and carries the prediction's id (its ``puid``) in the ``ce-requestid`` extension,
so halves are joined, and the prediction is known, by ``ce-requestid`` when the event has one and
by ``ce-id`` otherwise. They may
arrive in either order, from different connections. The :class:`Joiner` holds the first half in
a bounded, time-limited table until its other half arrives; halves that wait longer than
``server.cloudevents.pending_ttl`` (or are pushed out when ``max_pending`` halves or
``max_pending_bytes`` of their bodies are held, or are
still waiting at shutdown) are counted in ``monitor_cloudevents_unmatched_total``.

``ce-inferenceservicename`` selects the model (the only one when a single model is served).
The client (``server.client_header``) and the segment of every row (``server.segment_header``)
are those request headers' values as KServe's logger copies them into ``ce-metadata`` (its
``metadataHeaders``); an event without the segment header's value has no segment (``unset``).
An OIP v2 response's scores are read from the output tensor ``server.proxy.oip_output`` names, as
the proxy reads them (the first tensor when it names none), Triton's classification results too,
and so are TF Serving's named outputs (KServe's TensorFlow runtime) and its ``:classify`` and
``:regress`` bodies (``examples``, ``results``: :mod:`monitor.server.tfexamples`), as the proxy
reads them.
Seldon's feedback events (``io.seldon.serving.feedback``) become delayed labels, joined to the
prediction by ``response.meta.puid``. Structured mode (``application/cloudevents+json``) is
accepted too.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from monitor.events import FEEDBACK, PREDICTION, EventFormatError, id_key, parse_timestamp
from monitor.multilabel_truth import TruthError, read_truth
from monitor.once import Once
from monitor.server.errors import IntakeError
from monitor.server.jsonbody import loads
from monitor.server.limits import read_body
from monitor.server.payloads import (UNSAFE_JSON_MESSAGES, PayloadError, classification_outputs, decode_inputs,
                                     decode_outputs, decode_seldon_feedback, unsafe_json)
from monitor.server.proxy import Proxy, decoded_header
from monitor.server.tfexamples import decode_examples, decode_results, is_examples, is_results, results_verb
from monitor.server import keys as K

if TYPE_CHECKING:
    from monitor.core import Monitor
    from monitor.server.sidecar import Sidecar

__all__ = ["REQUEST_TYPES", "RESPONSE_TYPES", "FEEDBACK_TYPES", "CloudEvent", "Joiner", "read_cloudevent", "handle_cloudevent"]

REQUEST_TYPES = frozenset({"org.kubeflow.serving.inference.request", "io.seldon.serving.inference.request"})
RESPONSE_TYPES = frozenset({"org.kubeflow.serving.inference.response", "io.seldon.serving.inference.response"})
FEEDBACK_TYPES = frozenset({"io.seldon.serving.feedback", "org.kubeflow.serving.feedback"})
ENDPOINT = "cloudevents"

log = logging.getLogger("monitor.server")


@dataclass
class CloudEvent:
    """The attributes the sidecar reads (binary or structured mode) and the decoded data."""

    id: str
    type: str
    source: str
    time: str | None
    attributes: dict[str, str]
    data: Any


@dataclass(slots=True)  # slots: its memory is sys.getsizeof's, as bodiless() counts it
class _Half:
    part: str  # "request" or "response"
    monitor: "Monitor"
    received: float  # monotonic, for the time limit
    ts: float  # event time (ce-time of the request when present)
    payload: Any  # decoded inputs (request) or outputs (response)
    rows: int | None
    client: str | None
    size: int = 0  # bytes held (see held_bytes: at least the body's), for the joiner's byte budget
    segment: str | None = None  # server.segment_header's value in ce-metadata


class Joiner:
    """Bounded table of request/response halves waiting for each other, keyed by (model, ce-id).

    Parameters
    ----------
    max_pending
        Halves held at most; the oldest is pushed out (counted ``overflow``) beyond it.
    ttl_s
        Seconds a half waits for its other half before it is counted ``timeout``.
    max_bytes
        Bytes held at most (the sum of the halves' ``size``: their decoded payloads' memory,
        at least their bodies', see :func:`held_bytes`); the oldest are pushed out beyond it, as
        for ``max_pending``. A half larger than this on its own is given up (``overflow``)
        without pushing out the others.

    The requests of models whose outputs are not read (``output.kind: none``), recorded at once,
    wait here too for their responses (:meth:`record`), so that a response is known for one when
    it comes: held in the same bounds (kept apart, they were up to ``max_pending`` more entries
    whose memory no gauge showed). Being recorded already, they are the first pushed out, and
    neither their timeout nor their overflow is counted unmatched: a logger sending requests
    alone (KServe ``logger.mode: request``) is a setup of its own for such a model.
    """

    def __init__(self, max_pending: int, ttl_s: float, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_pending = int(max_pending)
        self.ttl_s = float(ttl_s)
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._pending: OrderedDict[tuple[str, str], _Half] = OrderedDict()
        self._recorded: OrderedDict[tuple[str, str], _Half] = OrderedDict()

    def _pop(self, key: tuple[str, str]) -> _Half:
        half = self._pending.pop(key)
        self.bytes -= half.size
        return half

    def __len__(self) -> int:
        return len(self._pending) + len(self._recorded)

    def _over(self) -> bool:
        return len(self._pending) + len(self._recorded) > self.max_pending or self.bytes > self.max_bytes

    def _shrink(self) -> list[tuple[_Half, str]]:
        """Push out the oldest entries beyond the bounds, recorded requests first (nothing is lost
        with those but the knowledge that their response is not an orphan); the halves given up."""
        given_up: list[tuple[_Half, str]] = []
        while self._recorded and self._over():
            self.bytes -= self._recorded.popitem(last=False)[1].size
        while self._pending and self._over():
            given_up.append((self._pop(next(iter(self._pending))), "overflow"))
        return given_up

    def record(self, key: tuple[str, str], half: _Half) -> list[tuple[_Half, str]]:
        """Hold a request recorded already (``output.kind: none``) until its response comes or
        its time is up; returns the halves given up to make room."""
        old = self._recorded.pop(key, None)
        if old is not None:  # the same request again (a retry): its newest arrival counts
            self.bytes -= old.size
        self._recorded[key] = half
        self.bytes += half.size
        return self._shrink()

    def take_recorded(self, key: tuple[str, str]) -> bool:
        """Whether a request recorded under ``key`` was waiting for this response (taken out)."""
        half = self._recorded.pop(key, None)
        if half is None:
            return False
        self.bytes -= half.size
        return True

    def offer(self, key: tuple[str, str], half: _Half) -> tuple[_Half | None, list[tuple[_Half, str]]]:
        """Add one half. Returns ``(other half or None, halves given up as (half, reason))``."""
        given_up: list[tuple[_Half, str]] = []
        other = self._pending.get(key)
        if other is not None:
            self._pop(key)
            if other.part != half.part:
                return other, given_up
            given_up.append((other, "duplicate"))  # the same half twice (a retry): keep the newest
        if half.size > self.max_bytes:
            # it could never be held: given up alone. Pushed in first, it pushed every held half
            # out before itself, which a decoded max_body_bytes instances body can do since
            # halves count their decoded memory (10 MB of JSON lists hold some 66 MB, over the
            # default 64 MB): each such request emptied the table of every other model's halves
            given_up.append((half, "overflow"))
            return None, given_up
        self._pending[key] = half
        self.bytes += half.size
        given_up.extend(self._shrink())
        return None, given_up

    def expire(self, now_monotonic: float) -> list[tuple[_Half, str]]:
        """Give up on halves older than the time limit (oldest first; insertion order is age order)."""
        out: list[tuple[_Half, str]] = []
        cutoff = now_monotonic - self.ttl_s
        while self._recorded and next(iter(self._recorded.values())).received <= cutoff:
            self.bytes -= self._recorded.popitem(last=False)[1].size
        while self._pending:
            key, half = next(iter(self._pending.items()))
            if half.received > cutoff:
                break
            out.append((self._pop(key), "timeout"))
        return out

    def claim(self, key: tuple[str, str]) -> _Half | None:
        """Take the half held under ``key`` out of the table (None when none is held)."""
        return self._pop(key) if key in self._pending else None

    def drain(self) -> list[tuple[_Half, str]]:
        out = [(h, "shutdown") for h in self._pending.values()]
        self._pending.clear()
        self._recorded.clear()
        self.bytes = 0
        return out


def _attributes_binary(request: web.Request) -> dict[str, str]:
    """The ``ce-*`` headers, read as the proxy reads its headers (UTF-8, else Latin-1): a
    Latin-1 ``ce-id`` was an undecodable request id that no feedback could name."""
    return {k[3:].lower(): decoded_header(v) for k, v in request.headers.items() if k.lower().startswith("ce-")}


def read_cloudevent(headers_attrs: dict[str, str], content_type: str, body: bytes) -> CloudEvent:
    """Validate a CloudEvent (binary mode: ``ce-*`` attributes; structured mode: a JSON envelope)."""
    attrs = dict(headers_attrs)
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/cloudevents-batch+json":
        raise IntakeError(400, "Content-Type", "batched CloudEvents are not read; send each event on its own, in binary "
                                               "mode (ce-* headers) or structured mode (application/cloudevents+json)",
                          "unsupported_payload")
    if ctype == "application/cloudevents+json":
        try:
            env = loads(body)  # json.loads's value and errors, by orjson where it agrees
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise IntakeError(400, "body", "a structured CloudEvent must be a JSON object", "bad_json") from None
        if not isinstance(env, dict):
            raise IntakeError(400, "body", "a structured CloudEvent must be a JSON object", "bad_json")
        data = env.get("data")
        if data is None and env.get("data_base64") is not None:
            # the spec's form for data that is not JSON text: here it must still hold a JSON payload
            try:
                body = base64.b64decode(str(env["data_base64"]), validate=True)
                data = loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise IntakeError(400, "data_base64", "must be the base64 of a JSON inference payload", "bad_json") from None
        if data is None:
            raise IntakeError(400, "data", "is required: the inference request or response (or data_base64)", "missing_data")
        if not isinstance(data, dict):
            # a payload sent as a JSON string ("data": "{...}") was refused as "body: must be a JSON object"
            raise IntakeError(400, "data", f"must be the inference payload as a JSON object, got {type(data).__name__}; "
                                           "put the object itself under data, not its text", "not_an_object")
        attrs = {k: str(v) for k, v in env.items() if k not in ("data", "data_base64") and isinstance(v, (str, int, float))}
        prefix = ""
    else:
        prefix = "ce-"
        data = None
        if body.strip():
            try:
                data = loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise IntakeError(400, "body", "the event data must be JSON (content-type application/json)", "bad_json") from None
    unsafe = unsafe_json(body, data)
    if unsafe is not None:
        raise IntakeError(400, "body", UNSAFE_JSON_MESSAGES[unsafe], unsafe)
    spec = attrs.get("specversion")
    if spec is None:
        raise IntakeError(400, f"{prefix}specversion", "is required: this is not a CloudEvent (send ce-specversion: 1.0)",
                          "not_a_cloudevent")
    if spec != "1.0":
        raise IntakeError(400, f"{prefix}specversion", f"CloudEvents {spec!r} is not supported; send 1.0", "bad_specversion")
    for name in ("id", "type", "source"):
        if not attrs.get(name):
            raise IntakeError(400, f"{prefix}{name}", "is required by the CloudEvents spec", f"missing_ce_{name}")
    if len(attrs["id"]) > 256:
        raise IntakeError(400, f"{prefix}id", "is longer than 256 characters", "bad_ce_id")
    if len(attrs.get("requestid") or "") > 256:
        raise IntakeError(400, f"{prefix}requestid", "is longer than 256 characters", "bad_ce_id")
    return CloudEvent(attrs["id"], attrs["type"], attrs["source"], attrs.get("time"), attrs, data)


def _client(event: CloudEvent, header: str | None) -> str | None:
    """The client identity from KServe's ``ce-metadata`` (request headers the logger was told to
    copy, ``metadataHeaders``), when a client header is configured: a long one as its digest, as
    the event intake keeps it."""
    value = _metadata(event, header)
    return None if value is None else id_key(value)


def _segment(event: CloudEvent, header: str | None) -> str | None:
    """The segment of the event's rows from ``ce-metadata``, when a segment header is configured:
    read as the proxy reads the header (:meth:`~monitor.server.proxy.Proxy.header_segment`)."""
    return Proxy.header_segment(_metadata(event, header))


def _metadata(event: CloudEvent, header: str | None) -> str | None:
    """The value of request header ``header`` in KServe's ``ce-metadata`` (a JSON object of header
    names, matched without regard to case, to lists of values: the first), or None."""
    if not header:
        return None
    raw = event.attributes.get("metadata")
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(meta, dict):
        return None
    want = header.lower()
    for k, v in meta.items():
        if str(k).lower() == want:
            if isinstance(v, list):
                v = v[0] if v else None
            return None if v is None else str(v)
    return None


class CloudEventsIntake:
    """Turns CloudEvents into monitor events, joining requests and responses."""

    def __init__(self, sidecar: "Sidecar") -> None:
        self.sidecar = sidecar
        cfg = sidecar.settings.cloudevents
        self.joiner = Joiner(cfg.max_pending, cfg.pending_ttl_s, cfg.max_pending_bytes)
        self._said_unmatched = Once(max_keys=64)

    def _give_up(self, halves: list[tuple[_Half, str]]) -> None:
        for half, reason in halves:
            half.monitor.store.inc("monitor_cloudevents_unmatched", labels=(half.part, reason))
            if reason == "timeout":
                self._say_unmatched(half)
        self._gauge()

    def _say_unmatched(self, half: _Half) -> None:
        """Log, once per model and part, that a half's other half never came: nothing else told a
        user whose logger sends one part alone (KServe ``logger.mode: response``) why the model
        had no predictions."""
        model = half.monitor.model
        if not self._said_unmatched.first((model, half.part)):
            return
        other = "request" if half.part == "response" else "response"
        needs = ("the request (it holds the inputs)" if not half.monitor.config.output.reads_outputs else
                 "both the request (inputs) and the response (outputs)")
        log.warning("cloudevents: model %r: a %s came without its %s within server.cloudevents.pending_ttl; counted in "
                    "monitor_cloudevents_unmatched_total{part=\"%s\", reason=\"timeout\"}, further ones without a log line. "
                    "The monitor needs %s. Fix: set the inference logger to send it (KServe logger.mode: all%s)",
                    model, half.part, other, half.part, needs,
                    " or request" if not half.monitor.config.output.reads_outputs else "")

    def _gauge(self) -> None:
        self.sidecar.store.set("monitor_cloudevents_pending", len(self.joiner))
        self.sidecar.store.set("monitor_cloudevents_pending_bytes", self.joiner.bytes)

    def sweep(self) -> None:
        """Count halves that waited too long (called every second by the housekeeping task)."""
        self._give_up(self.joiner.expire(time.monotonic()))

    def close(self) -> None:
        self._give_up(self.joiner.drain())

    def accept(self, event: CloudEvent, size: int = 0) -> str:
        """Process one validated CloudEvent (``size``: the bytes of the body it came in); returns
        ``pending`` or ``accepted``."""
        mon = self.sidecar.resolve(event.attributes.get("inferenceservicename") or None, field="ce-inferenceservicename")
        try:
            return self._accept(event, size, mon)
        except IntakeError as err:
            if err.monitor is None:
                err.monitor = mon  # counted under the model the event was for
            raise

    def _accept(self, event: CloudEvent, size: int, mon: "Monitor") -> str:
        sidecar = self.sidecar
        now = time.time()
        try:
            ts = parse_timestamp(event.time, now)
        except EventFormatError:
            raise IntakeError(400, "ce-time", f"cannot read {event.time!r}; use RFC 3339", "bad_timestamp") from None
        if event.type in FEEDBACK_TYPES:
            try:
                puid, labels = decode_seldon_feedback(event.data, multilabel=mon.config.output.is_multilabel)
            except PayloadError as err:
                raise IntakeError(400, err.field, err.message, err.reason) from None
            rid = puid or event.attributes.get("requestid")
            if not rid:
                raise IntakeError(400, "response.meta.puid", "is needed to join the feedback to its prediction", "missing_feedback")
            if mon.config.output.is_multilabel:
                _check_truth_rows(labels, mon.config.output.classes)
            ids = [rid] if len(labels) == 1 else [f"{rid}/{i}" for i in range(len(labels))]
            sidecar.enqueue([(mon, (FEEDBACK, ts, ids, labels))], ENDPOINT)
            return "accepted"
        if event.type in REQUEST_TYPES:
            part = "request"
        elif event.type in RESPONSE_TYPES:
            part = "response"
        else:
            raise IntakeError(400, "ce-type", f"{event.type[:100]!r} is not an inference request, response or feedback "
                                              "(KServe org.kubeflow.serving.inference.*, Seldon io.seldon.serving.*)", "bad_ce_type")
        try:
            out = mon.config.output
            if part == "request":
                # TF Serving's :classify/:regress, logged without their path, are told by their keys
                payload = (decode_examples(event.data) if is_examples(event.data) else
                           decode_inputs(event.data, one_feature=mon.one_feature))
                rows = _rows(payload)
            elif not out.reads_outputs:
                payload, rows = None, None  # output.kind: none: the answer is not read
            elif is_results(event.data):
                payload = decode_results(event.data, results_verb(event.data), out.kind, out.classes, mon)
                rows = None
            else:  # the scores' tensor as the proxy reads it (an MLServer answer may hold predict first)
                payload = decode_outputs(event.data, output_name=sidecar.settings.proxy.oip_output,
                                         kind=mon.config.output.kind)
                payload = classification_outputs(payload, mon.config.output.kind, mon.config.output.classes)
                rows = None
        except PayloadError as err:
            raise IntakeError(400, err.field, err.message, err.reason) from None
        if not mon.config.output.reads_outputs:
            return self._inputs_only(mon, event, part, ts, payload)
        held = held_bytes(payload, size)
        if held > 2 * size:
            payload, held = _compact(payload, held)
        settings = sidecar.settings
        half = _Half(part, mon, time.monotonic(), ts, payload, rows, _client(event, settings.client_header), held,
                     _segment(event, settings.segment_header))
        request_id = event.attributes.get("requestid") or event.id
        other, given_up = self.joiner.offer((mon.model, request_id), half)
        if given_up:
            self._give_up(given_up)
        if other is None:
            self._gauge()
            return "pending"
        req, resp = (half, other) if part == "request" else (other, half)
        outputs = resp.payload
        if req.rows == 1 and getattr(outputs, "ndim", 0) == 1 and outputs.shape[0] > 1:
            outputs = outputs.reshape(1, -1)  # OIP v2: a single row's vector came without its batch axis
        client = req.client or resp.client
        segment = req.segment or resp.segment
        event_tuple = (PREDICTION, req.ts, req.payload, outputs, None, client, request_id, segment, None)
        try:
            sidecar.enqueue([(mon, event_tuple)], ENDPOINT)
        except IntakeError:
            # the other half (answered 202 before) waits again: the retry this refusal's 429/503 asks
            # for joins it, else it is counted unmatched when its time is up, as any lone half
            # with its time reset: kept at its first arrival it would sit behind younger halves
            # (the joiner's expiry reads insertion order as age) and could time out before the retry
            _, given_up = self.joiner.offer((mon.model, request_id), replace(other, received=time.monotonic()))
            if given_up:
                self._give_up(given_up)
            raise
        finally:
            self._gauge()
        return "accepted"


    def _inputs_only(self, mon: "Monitor", event: CloudEvent, part: str, ts: float, payload: Any) -> str:
        """An inference event of a model whose outputs are not monitored (``output.kind: none``):
        its request is the prediction, enqueued at once without waiting for the response, which
        is not read. A response still waits (without its body) for its request, within the
        joiner's bounds: one whose request never comes is counted unmatched, as for any kind. A
        logger sending responses alone (KServe ``logger.mode: response``) was answered 202 and
        recorded nothing, with no count nor word of it; a logger sending requests alone (``mode:
        request``) records every call, with nothing counted."""
        request_id = event.attributes.get("requestid") or event.id
        key = (mon.model, request_id)
        if part == "response":
            if self.joiner.take_recorded(key):
                self._gauge()
                return "accepted"
            _, given_up = self.joiner.offer(key, bodiless(part, mon, ts, key))
            if given_up:
                self._give_up(given_up)
            self._gauge()
            return "pending"
        settings = self.sidecar.settings
        client, segment = _client(event, settings.client_header), _segment(event, settings.segment_header)
        self.sidecar.enqueue([(mon, (PREDICTION, ts, payload, None, None, client, request_id, segment, None))], ENDPOINT)
        if self.joiner.claim(key) is None:
            self._give_up(self.joiner.record(key, bodiless(part, mon, ts, key)))  # sets the gauges
        else:
            self._gauge()
        return "accepted"


#: nesting levels :func:`held_bytes` walks (an image batch is rows x height x width x channels)
_HELD_DEPTH = 6


#: Bytes an entry of the joiner's tables takes beyond its key and value: its hash table slot and
#: index and its order link (about 100 measured on CPython 3.11, up to some 140 as the table grows)
_TABLE_ENTRY_BYTES = 160


def bodiless(part: str, mon: "Monitor", ts: float, key: tuple[str, str]) -> _Half:
    """A half held without a payload (``output.kind: none``: a response waiting for its request,
    a request recorded already waiting for its response), its ``size`` the memory it holds: its
    table entry, its key with the request id (up to 256 characters, held by the key alone once
    the event is gone), the half and its two times. A fixed 256 bytes was counted, under the some
    330 to 600 they take, and nothing for the recorded requests: ``max_pending_bytes`` bounded
    less than it said."""
    half = _Half(part, mon, time.monotonic(), ts, None, None, None)
    half.size = (_TABLE_ENTRY_BYTES + sys.getsizeof(key) + sys.getsizeof(key[1]) + sys.getsizeof(half)
                 + 2 * sys.getsizeof(0.0))
    return half


def held_bytes(payload: Any, body_size: int) -> int:
    """Memory a decoded half holds while it waits, for the joiner's ``max_pending_bytes``: at
    least its body's bytes. A KServe v1 ``instances`` half is held as Python lists, whose floats
    and pointers take about ten times their JSON text (a 3 MB body held 28 MB): counted by body
    bytes, ``max_pending_bytes`` let the table grow to ten times its bound. Lists are estimated
    from three of their items (rows of one shape, as model inputs are), so the estimate costs a
    few calls per level, not a walk of every value."""
    return max(int(body_size), _object_bytes(payload, _HELD_DEPTH))


def _compact(payload: Any, held: int) -> tuple[Any, int]:
    """Rows of numbers held as Python lists (KServe v1 ``instances``), as one float array: about a
    tenth of the memory, so that a request of several MB can wait for its answer within
    ``max_pending_bytes`` (held as lists, a 6.5 MB body took all of the default 64 MB and was given
    up). Only all-number rectangular rows: text, mixed or ragged rows are kept as sent, since
    converting them could change how a value is read (a category "1" as the number 1)."""
    import numpy as np

    try:
        arr = np.asarray(payload)
    except (ValueError, TypeError):  # ragged rows
        return payload, held
    if arr.ndim < 2 or arr.dtype.kind not in "fiu":
        return payload, held
    arr = arr.astype(np.float64, copy=False)
    return arr, max(int(arr.nbytes), 0) + 128


def _object_bytes(obj: Any, depth: int) -> int:
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes + 128  # an array: its buffer and header
    size = sys.getsizeof(obj, 64)
    if depth <= 0:
        return size
    if isinstance(obj, (list, tuple)) and obj:
        picks = {0, len(obj) // 2, len(obj) - 1}
        per_item = sum(_object_bytes(obj[i], depth - 1) for i in picks) / len(picks)
        return size + int(per_item * len(obj))
    if isinstance(obj, dict):
        return size + sum(sys.getsizeof(k, 64) + _object_bytes(v, depth - 1) for k, v in obj.items())
    return size


def _rows(inputs: Any) -> int | None:
    if hasattr(inputs, "shape"):
        return int(inputs.shape[0]) if len(inputs.shape) else 1
    if isinstance(inputs, list):
        return len(inputs)
    return None


async def handle_cloudevent(request: web.Request) -> web.Response:
    """``POST /v1/cloudevents`` (and ``POST /`` when the proxy does not own the root path)."""
    sidecar: Sidecar = request.app[K.SIDECAR]
    intake: CloudEventsIntake = request.app[K.CLOUDEVENTS]
    if not sidecar.accepting:
        raise IntakeError(503, "events", "the sidecar is shutting down", "shutting_down", headers={"Retry-After": "1"})
    # a refusal raises IntakeError: the middleware answers, counts it and logs the first of each reason
    body = await read_body(request, sidecar.settings.max_body_bytes, sidecar.settings.client_body_timeout_s)
    event = read_cloudevent(_attributes_binary(request), request.headers.get("Content-Type", ""), body)
    outcome = intake.accept(event, len(body))
    return web.json_response({"status": outcome, "id": event.id}, status=202)


def _check_truth_rows(rows: list[Any], classes: tuple[str, ...]) -> None:
    """Refuse a multi-label model's feedback whose ``truth`` rows it cannot take (a single class, a
    vector of another length than ``output.classes``, names no label has), naming the row."""
    for i, row in enumerate(rows):
        try:
            read_truth(row, classes, len(classes) or None)
        except TruthError as err:
            raise IntakeError(400, f"truth.data row {i}", str(err), "bad_label") from None
