"""``POST /v1/events`` and ``POST /v1/feedback``: the documented JSON event format over HTTP.

A body is one event object, a JSON array of events, or NDJSON (one event per line; chosen by a
``application/x-ndjson``/``application/jsonl`` content type, or detected when the body is not a
single JSON document). ``?model=NAME`` names the model of events that do not say it.

Batches are all or nothing: every event is validated first; one malformed event answers 400 with
the index, the field and the fix for each problem (up to 20), and nothing is enqueued, so the
client can fix and resend the batch without creating duplicates.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from monitor.events import (MAX_ID_CHARS, MAX_LABEL_CHARS, MAX_REQUEST_ID_CHARS, PREDICTION, EventFormatError, check_for_model,
                            id_key, parse_event)
from monitor.server.errors import IntakeError
from monitor.server.jsonbody import NOT_DECODED, loads, try_loads_lines
from monitor.server.limits import read_body
from monitor.server.payloads import UNSAFE_JSON_MESSAGES, unsafe_json
from monitor.server import keys as K

if TYPE_CHECKING:
    from monitor.core import Monitor
    from monitor.server.sidecar import Sidecar

__all__ = ["decode_events", "parse_fast", "parse_fast_batch", "parse_batch", "known_model", "handle_events", "handle_feedback",
           "MAX_REPORTED_ERRORS"]

MAX_REPORTED_ERRORS = 20
_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
                 "application/json-seq", "text/plain")


def _ndjson(body: bytes) -> list[Any]:
    """The values of a body sent as lines (an NDJSON or text content type). A line that is an
    array of events is read as those events, and a body that is one JSON document over several
    lines (an indented event or array) as that document: ``fetch()`` labels a string body
    ``text/plain`` and loggers label batches NDJSON whatever their framing, and both were
    refused whole (``must be a JSON object, got list``; ``line 1 is not valid JSON``)."""
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    if not lines:
        raise _empty_body()
    try:  # fast path: the whole batch as one array (one C call instead of one per line)
        joined = b"[" + b",".join(lines) + b"]"
        out = try_loads_lines(joined, body, lines)  # orjson's value where it is json's
        if out is NOT_DECODED:
            out = json.loads(joined)
        if len(out) == len(lines):
            if any(type(v) is list for v in out):
                out = [e for v in out for e in (v if type(v) is list else (v,))]
            return out
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    if len(lines) > 1:  # one document over several lines
        try:
            whole = loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            pass
        else:
            return whole if isinstance(whole, list) else [whole]
    for i, ln in enumerate(lines):  # slow path: find the offending line for the error
        try:
            json.loads(ln)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            if _too_many_digits(err):
                raise IntakeError(400, f"line {i + 1}", UNSAFE_JSON_MESSAGES["number_too_large"], "number_too_large",
                                  events=len(lines)) from None
            raise IntakeError(400, f"line {i + 1}", f"is not valid JSON ({_json_msg(err)}; it starts with {_start(ln)}); "
                                                    "send one JSON object per line", "bad_json", events=len(lines)) from None
    raise IntakeError(400, "body", "lines do not form one event each; send one JSON object per line", "bad_json", events=len(lines))


def _empty_body() -> IntakeError:
    """The 400 of a body with nothing in it: counted as one refused payload (it has no event to
    count, and a client posting empty bodies must show in the refused counter all the same)."""
    return IntakeError(400, "body", "is empty; send one event, a JSON array or NDJSON lines", "empty_body")


def _too_many_digits(err: Exception) -> bool:
    """json's refusal of an integer of more than 4,300 digits (``sys.get_int_max_str_digits``),
    far past any float's range: it was answered "is not UTF-8 JSON"."""
    return type(err) is ValueError and "integer string conversion" in str(err)


def _not_json(err: ValueError) -> IntakeError:
    """The 400 of a body ``json`` refused with a ValueError that is no JSONDecodeError."""
    if _too_many_digits(err):
        return IntakeError(400, "body", UNSAFE_JSON_MESSAGES["number_too_large"], "number_too_large")
    return IntakeError(400, "body", f"is not valid JSON ({_json_msg(err)})", "bad_json")


#: How a body's content is named when it is no JSON, and the fix: an event is a JSON object.
_JSON_FIX = ("Fix: send one event as a JSON object (a JSON array of events, or NDJSON lines, for several), "
             "e.g. curl --json '{\"inputs\": [[5.1, 3.5]], \"outputs\": [[0.9, 0.1]]}' URL, or requests.post(URL, json=event)")
_FORM_KEY = re.compile(rb"[A-Za-z0-9_.\-\[\]%]+=")


def _start(body: bytes) -> str:
    """The first characters of a body or line, as a message quotes them."""
    text = body.lstrip()[:30].decode("utf-8", "replace")
    return repr(text) + ("..." if len(body.lstrip()) > 30 else "")


def _not_json_text(body: bytes, ctype: str, reason: str) -> str:
    """The 400's words for a body that is no JSON, naming what it is when that can be told (XML
    or HTML, a URL-encoded form) and what it starts with: "is not valid JSON (Expecting value at
    line 1 column 1)" named nothing a sender could act on."""
    head = body.lstrip()[:1]
    if head == b"<":
        what = f"is XML or HTML ({_start(body)}), not JSON"
    elif ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded" or (
            head not in (b"{", b"[", b'"') and _FORM_KEY.match(body.lstrip()) is not None):
        what = (f"is a URL-encoded form ({_start(body)}: curl -d key=value, requests' data=), not JSON")
    else:
        return f"is not valid JSON ({reason}; it starts with {_start(body)}). {_JSON_FIX}"
    return f"{what}. {_JSON_FIX}"


def _json_msg(err: Exception) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err).split(":")[0][:80] if isinstance(err, ValueError) else "not UTF-8"


def decode_events(body: bytes, content_type: str) -> list[Any]:
    """Decoded JSON values of a body (not yet validated as events)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype.startswith("multipart/"):  # a file sent as a form: its envelope is not JSON, and saying so names no fix
        raise IntakeError(400, "body", "is a multipart form upload (curl -F, requests' files=), which is not read; send the "
                                       "file as the body itself: curl --data-binary @events.ndjson -H 'Content-Type: "
                                       "application/x-ndjson'", "bad_json")
    if ctype in _NDJSON_TYPES:
        if ctype == "application/json-seq":  # RFC 7464: each record starts with the record separator
            body = body.replace(b"\x1e", b"\n")
        return _ndjson(body)
    if not body.strip():
        raise _empty_body()
    try:
        value = loads(body)  # json.loads's value and errors, by orjson where it agrees
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # several documents: NDJSON without the content type
            return _ndjson(body)
        raise IntakeError(400, "body", _not_json_text(body, ctype, f"{err.msg} at line {err.lineno} column {err.colno}"),
                          "bad_json") from None
    except UnicodeDecodeError:
        raise IntakeError(400, "body", "is not UTF-8 JSON", "bad_json") from None
    except ValueError as err:
        raise _not_json(err) from None
    except RecursionError:  # not a ValueError: json.loads gives up on arrays/objects nested thousands deep
        raise IntakeError(400, "body", "is nested too deeply to be an event; send flat event objects", "bad_json") from None
    if isinstance(value, list):
        return value
    return [value]


_FAST_KEYS = frozenset({"model", "timestamp", "inputs", "outputs", "client", "request_id", "segment", "latency_s", "embedding"})


def parse_fast(obj: Any, now: float) -> tuple[str | None, tuple[Any, ...]] | None:
    """The common prediction event, validated without the general parser: ``(model, tuple)``
    exactly as :func:`monitor.events.parse_event` would return it, or None to fall back to it
    (anything unusual: another type, string timestamps, an error of any kind). Intake spends
    most of its time here, so the checks are the cheapest that give the same verdicts (inlined
    type tests, no helper calls); a property test holds the two parsers to identical results."""
    if type(obj) is not dict or not obj.keys() <= _FAST_KEYS:  # "type" is not a fast key
        return None
    get = obj.get
    inputs = get("inputs", _MISSING)
    outputs = get("outputs", _MISSING)
    if inputs is _MISSING or outputs is _MISSING or outputs is None or inputs is None:  # null: the general parser tells
        return None
    model = get("model")
    client = get("client")
    segment = get("segment")
    if model is not None:
        if type(model) is int:
            model = str(model)
        elif type(model) is not str:
            return None
    if client is not None:
        if type(client) is int:
            client = str(client)
        elif type(client) is not str:  # a list of one per row: the general parser reads it
            return None
        if len(client) > MAX_ID_CHARS:  # kept as its digest, as parse_event keeps it
            client = id_key(client)
    if segment is not None:
        if type(segment) is int:
            segment = str(segment)
        elif type(segment) is not str:
            return None
        segment = segment[:MAX_LABEL_CHARS]
    ts = get("timestamp")
    if ts is None:
        ts = now
    elif type(ts) is float or type(ts) is int:
        if not 0 <= ts < _INF:
            return None
        ts = float(ts)
    else:
        return None
    latency = get("latency_s")
    if latency is not None and not ((type(latency) is float or type(latency) is int) and 0 <= latency < _INF):
        return None
    request_id = get("request_id")
    if request_id is not None and (type(request_id) is not str or len(request_id) > MAX_REQUEST_ID_CHARS) \
            and type(request_id) is not int and not _plain_id_list(request_id):
        return None  # the general parser refuses a request id too long, naming it
    return model, (PREDICTION, ts, inputs, outputs, latency, client, request_id, segment, get("embedding"))


def _plain_id_list(value: Any) -> bool:
    """A list of request ids that parse_event keeps as they are (strings, integers, None):
    booleans, which it refuses, floats, which it turns into integers (17.0 joins 17), and ids
    too long, which it refuses, are left to it."""
    return type(value) is list and all(type(v) is str and len(v) <= MAX_REQUEST_ID_CHARS or type(v) is int or v is None
                                       for v in value)


_INF = float("inf")
_ID_OR_NONE = {str, int, type(None)}
_MISSING = object()
_NONE = type(None)
_STR = {str}
#: column types the batch parser passes through unchanged: labels, optional numbers
_STR_OR_NONE = frozenset({str, _NONE})
_NUMBER_OR_NONE = frozenset({float, int, _NONE})


def parse_fast_batch(values: list[Any], now: float) -> tuple[list[str | None] | None, list[tuple[Any, ...]]] | None:
    """:func:`parse_fast` of a whole batch whose events all carry the same fields, a column at a
    time: ``(models, events)`` with ``models`` None when no event names one, else the per-event
    model as :func:`parse_fast` gives it; None when any event is not such a prediction (the
    caller then parses event by event, and reports each failure with its index).

    Why: an NDJSON batch from one producer repeats the same fields in every line. Checked and
    extracted per column (a list comprehension and a set of types per field, no per-event call),
    a batch costs about a third of the per-event parser, whose results it reproduces exactly (a
    property test holds the two to identical results).
    """
    n = len(values)
    if not n or set(map(type, values)) != {dict}:
        return None
    first = values[0]
    keys = first.keys()
    nk = len(keys)
    if not keys <= _FAST_KEYS or "inputs" not in keys or "outputs" not in keys or set(map(len, values)) != {nk}:
        return None
    try:  # same count of keys, and every key of the first: the same keys
        cols = {k: [o[k] for o in values] for k in keys}
    except KeyError:
        return None
    if None in cols["outputs"] or None in cols["inputs"]:  # null outputs (refused unless not read) or inputs (refused)
        return None
    absent = [None] * n
    models = cols.get("model")
    if models is not None:
        models = _labels(models, None)
        if models is None:
            return None
        if set(models) == {None}:
            models = None
    client = _labels(cols["client"], MAX_ID_CHARS, id_key) if "client" in keys else absent
    segment = _labels(cols["segment"], MAX_LABEL_CHARS) if "segment" in keys else absent
    if client is None or segment is None:
        return None
    ts = cols.get("timestamp")
    if ts is None:
        ts = [now] * n
    else:
        kinds = set(map(type, ts))
        if not kinds <= _NUMBER_OR_NONE:
            return None
        try:
            ts = [now if t is None else float(t) for t in ts] if kinds != {float} else ts
        except OverflowError:  # an integer past float range: the per-event parser says what happens
            return None
        if not all(0 <= t < _INF for t in ts):
            return None
    latency = cols.get("latency_s", absent)
    if latency is not absent:
        if not set(map(type, latency)) <= _NUMBER_OR_NONE or not all(v is None or 0 <= v < _INF for v in latency):
            return None
    request_ids = cols.get("request_id", absent)
    if request_ids is not absent:
        kinds = set(map(type, request_ids))
        if not kinds <= _ID_OR_NONE and not (kinds <= _ID_OR_NONE | {list} and all(
                type(v) is not list or _plain_id_list(v) for v in request_ids)):
            return None
        if str in kinds and max(len(v) for v in request_ids if type(v) is str) > MAX_REQUEST_ID_CHARS:
            return None  # refused by the per-event parser, naming it
    events = list(zip([PREDICTION] * n, ts, cols["inputs"], cols["outputs"], latency, client,
                      request_ids, segment, cols.get("embedding", absent)))
    return models, events


def _labels(col: list[Any], limit: int | None, shorten: Callable[[str], str] | None = None) -> list[str | None] | None:
    """A column of optional labels as :func:`parse_fast` reads each (integers become strings,
    cut to ``limit`` characters, or when ``shorten`` is given, those longer given to it: a
    client's digest), or None when one is of another type (a list of one per row included)."""
    kinds = set(map(type, col))
    if not kinds <= _STR_OR_NONE:
        if not kinds <= _STR_OR_NONE | {int}:
            return None
        col = [str(v) if type(v) is int else v for v in col]
    if limit is None:
        return col
    if max(map(len, col)) > limit if kinds == _STR else any(v is not None and len(v) > limit for v in col):
        col = [v if v is None else v[:limit] if shorten is None else shorten(v) for v in col]
    return col


def parse_batch(sidecar: "Sidecar", values: list[Any], *, default_model: str | None, endpoint: str,
                force_type: str | None = None) -> list[tuple["Monitor", tuple[Any, ...]]]:
    """Validate every event; raise one 400 listing the problems (nothing enqueued) or return
    ``(monitor, event tuple)`` pairs."""
    limit = sidecar.settings.max_batch_events
    if len(values) > limit:
        raise IntakeError(413, "events", f"{len(values)} events in one request is over the limit of {limit}; "
                                         "split the batch or raise server.max_batch_events", "too_many_events", events=len(values))
    now = time.time()
    out: list[tuple[Monitor, tuple[Any, ...]]] = []
    errors: list[dict[str, Any]] = []
    first: IntakeError | None = None
    #: refused events by (their model when it is known, reason): counted under that model, so that
    #: its share of the model's own traffic is what MonitorIntakeRefused weighs
    reasons: dict[tuple[Monitor | None, str], int] = {}
    monitors: dict[str | None, Monitor] = {}
    if force_type is None:
        batch = parse_fast_batch(values, now)
        if batch is not None:
            names, events = batch
            try:
                if names is None:
                    mon = sidecar.resolve(default_model)
                    return [(mon, e) for e in events]
                for name in set(names):
                    key = name if name is not None else default_model
                    if key not in monitors:
                        monitors[key] = sidecar.resolve(key)
                return [(monitors[name if name is not None else default_model], e) for name, e in zip(names, events)]
            except IntakeError:
                monitors.clear()  # reported with its index by the event-by-event path below
    for i, obj in enumerate(values):
        if force_type is None:
            fast = parse_fast(obj, now)
            if fast is not None:
                name = fast[0] if fast[0] is not None else default_model
                mon = monitors.get(name)
                if mon is None:
                    try:
                        mon = monitors[name] = sidecar.resolve(name)
                    except IntakeError:
                        fast = None  # reported with its index by the general path below
                if fast is not None:
                    out.append((mon, fast[1]))
                    continue
        try:
            if force_type is not None and isinstance(obj, dict):
                kind = obj.get("type", force_type)
                if kind != force_type:
                    raise EventFormatError("type", f"this endpoint takes {force_type} events, got {kind!r}", "wrong_endpoint")
                if "type" not in obj:
                    obj = {**obj, "type": force_type}
            parsed = parse_event(obj, now)
            mon = sidecar.resolve(parsed.model if parsed.model is not None else default_model)
            check_for_model(parsed, mon.config.output.kind, mon.config.output.classes)
            out.append((mon, parsed.event))
        except EventFormatError as err:
            key = (known_model(sidecar, obj, default_model), err.reason)
            reasons[key] = reasons.get(key, 0) + 1
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append({"index": i, "field": err.field, "error": str(err), "reason": err.reason})
            if first is None:
                first = IntakeError(400, err.field, f"event {i}: {err}", err.reason)
        except IntakeError as err:
            if err.status == 503:
                raise IntakeError(503, err.field, err.message, err.reason, events=len(values), headers=err.headers) from None
            reasons[(None, err.reason)] = reasons.get((None, err.reason), 0) + 1  # no model it names is served
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append({"index": i, "field": err.field, "error": err.message, "reason": err.reason})
            if first is None:
                first = IntakeError(err.status, err.field, f"event {i}: {err.message}", err.reason)
    if first is not None:
        for (mon, reason), n in reasons.items():
            sidecar.count_refused(endpoint, reason, n, mon=mon)
        valid: dict[Monitor, int] = {}
        for mon, _ in out:  # valid events refused with their batch
            valid[mon] = valid.get(mon, 0) + 1
        for mon, n in valid.items():
            sidecar.count_refused(endpoint, "batch_refused", n, mon=mon)
        first.details = errors
        first.events = 0  # already counted above, by reason
        raise first
    return out


def known_model(sidecar: "Sidecar", obj: Any, default_model: str | None) -> "Monitor | None":
    """The served model a malformed event is for (its ``model``, else ``?model=``, else the only
    one served), or None when that cannot be told."""
    name = obj.get("model") if isinstance(obj, dict) else None
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)
    try:
        return sidecar.resolve(name if isinstance(name, str) else default_model)
    except IntakeError:
        return None


async def _intake(request: web.Request, endpoint: str, force_type: str | None) -> web.Response:
    sidecar: Sidecar = request.app[K.SIDECAR]
    if not sidecar.accepting:
        raise IntakeError(503, "events", "the sidecar is shutting down; retry against another instance", "shutting_down",
                          headers={"Retry-After": "1"})
    ctype = request.headers.get("Content-Type", "application/json")
    if "Ce-Specversion" in request.headers or ctype.lower().startswith("application/cloudevents"):
        # an inference logger pointed at this URL: its payload is right, the URL is not (refused
        # event by event, the answer named the event format's fields as the thing to fix)
        raise IntakeError(400, "path", f"holds a CloudEvent (an inference logger's); post CloudEvents to /v1/cloudevents "
                                       f"(KServe's logger.url: http://HOST:PORT/v1/cloudevents), not to {request.path}",
                          "wrong_endpoint")
    body = await read_body(request, sidecar.settings.max_body_bytes, sidecar.settings.client_body_timeout_s)
    values = decode_events(body, ctype)
    unsafe = unsafe_json(body, values)
    if unsafe is not None:
        bad = next((i for i, v in enumerate(values) if unsafe_json(body, v) is not None), 0)
        raise IntakeError(400, f"event {bad}", UNSAFE_JSON_MESSAGES[unsafe], unsafe, events=len(values))
    model = request.query.get("model") or None  # ?model= left empty: as not given, not a model named ''
    items = parse_batch(sidecar, values, default_model=model, endpoint=endpoint, force_type=force_type)
    accepted = sidecar.enqueue(items, endpoint)
    return web.json_response({"status": "accepted", "accepted": accepted}, status=202)


async def handle_events(request: web.Request) -> web.Response:
    """``POST /v1/events``: predictions, errors and feedback in the documented event format."""
    return await _intake(request, "events", None)


async def handle_feedback(request: web.Request) -> web.Response:
    """``POST /v1/feedback``: delayed labels, ``{"request_ids": [...], "labels": [...]}`` (or one
    ``request_id``/``label``), one object, an array or NDJSON."""
    return await _intake(request, "feedback", "feedback")
