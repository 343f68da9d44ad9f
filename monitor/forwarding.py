"""Forwarding mode for multi-worker servers: decorators in N worker processes, one detector state.

gunicorn/uvicorn workers are separate processes; a :class:`~monitor.core.Monitor` in each would
see only its share of the traffic (a drift window per worker, a probing client split N ways). In
forwarding mode each worker holds a :class:`ForwardingMonitor` instead: the ``@watch`` hot path is
unchanged (one tuple appended to a bounded deque, never blocking), and a background thread sends
the events in batches to the local sidecar (``monitor serve`` with ``server.forward``) as
datagrams over a Unix socket (preferred: the kernel tells the sender when the sidecar is away or
its buffer is full) or UDP on loopback.

When the sidecar is away, slow or the datagram too large, events are dropped and counted by
reason, never retried into unbounded memory and never blocking the model. The cumulative drop
counts ride along in every datagram, so the sidecar exports them
(``monitor_forward_events_dropped_total``) once it hears from the worker again; each datagram
also carries a sequence number, so datagrams lost in transit are counted too, and a copy made on
the way is processed once (see ``monitor/server/forward.py``).

Those totals are cumulative per *session* (one ``sender`` id): a sidecar counts what a sender's
totals grew by since it last heard from it, and a sidecar that does not know the sender counts
them whole. A new sidecar (restarted: its counter starts again at zero) or one that forgot the
sender (silent for five minutes) would therefore count again what an earlier one had counted.
So the worker opens a new session, with totals counted from what it had reported, whenever the
receiver may be another one: after a send found no sidecar, when the Unix socket's file is not
the one the last datagram reached (a sidecar restarted while the worker was idle), and after
:data:`SESSION_IDLE_S` without a datagram. Over UDP a sidecar restarted while the worker was
idle cannot be told from the old one, so every datagram after a session's first also carries
``counted``: the totals its last datagram sent without error reported, which a sidecar had
counted if it got it. A sidecar that does not know the sender counts the totals from there, not
whole (a datagram lost on its way leaves its drops uncounted there, and the loss counted).

Wire format (one UTF-8 JSON object per datagram; ``counted`` absent when empty, as in a
session's first datagram, and from senders of earlier releases: then the totals count whole)::

    {"v": 1, "sender": "<host>:<pid>:<random>", "seq": 17, "model": "iris",
     "dropped": {"queue_full": 3}, "counted": {"queue_full": 2}, "kind": "probabilities",
     "events": [<event objects in the documented format>]}

``kind`` is the ``output_kind`` the worker was given (absent when none was): the sidecar refuses
the events of a model whose ``output.kind`` in its config is another, as they would be read as
that kind (a text worker's answers as scores, a ``reads_outputs=False`` worker's as missing).

A ``feedback()`` call's ids are sent as the in-process join reads them, an id that is no id (None,
NaN, empty text, over 1,024 characters) as null, its label kept: the sidecar's join counts such a
label ``invalid`` or ``unknown_id`` as an in-process Monitor's does (POST /v1/events refuses a null
id). Workers of earlier releases left those labels out and counted them in the datagram's
``unknown_ids``, which the sidecar still counts ``unknown_id``.

Each prediction's ``request_id`` is sent as the in-process join reads it (text: ``1.5`` is ``"1.5"``,
``True`` ``"True"``, bytes decoded; one per row for a list; None, NaN, empty text as none), an id
over 1,024 characters cut to 1,025 and one whose text cannot be taken as 1,025 ``?``: the sidecar,
whose intake refuses such an id, takes it from a worker, and the model's row builder counts the
rows it reads in ``monitor_row_arguments_dropped_total{argument="request_id"}``, as in process.
Workers of earlier releases left such ids out and counted the rows in the datagram's
``dropped_ids``, which the sidecar still counts.

Each prediction's ``client`` is sent as the in-process row builder reads it: one per row for a
per-row list (a list, an array, a Series; each entry's text, bytes decoded, a missing one null),
of whatever length, so that the sidecar's builder counts one of another length than the rows in
``monitor_row_arguments_dropped_total{argument="client"}``, as in process; a client over 256
characters as its digest, the key the probing detector tracks it by on either side. Its
``segment`` so too (each entry's text, bytes decoded, a missing one null). A client, segment or
request id whose values or text cannot be taken (a caller's object whose iteration or ``str()``
raises) is sent as an empty per-row list, which the sidecar's builder counts for the rows it
reads, as the in-process builder counts such an argument, with the error's name under
``unreadable`` (:class:`~monitor.events.UnreadableValues`), so that the sidecar's line says what
the in-process one says; said once in the worker's log.

This module imports only the standard library (numpy values are converted when present).
"""

from __future__ import annotations

import atexit
import errno
import functools
import json
import logging
import math
import numbers
import os
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.events import (ERROR, FEEDBACK, MAX_ID_CHARS, MAX_REQUEST_ID_CHARS, PREDICTION, CallerValueError,
                            UnreadableValues, caller_text, client_text, describe_value, error_event, event_time, feedback_lists,
                            id_key, is_missing, request_id_text, say_unreadable_timestamp, segment_text)
from monitor.once import Once
from monitor.queue import SHED_REASONS, EventQueue
from monitor.schema import OUTPUT_KINDS
from monitor.text_prefix import TextPrefix

log = logging.getLogger("monitor.forwarding")

__all__ = ["WIRE_VERSION", "ENV_TARGET", "FORWARD_DROP_REASONS", "ForwardingMonitor", "ForwardStats",
           "get_forwarding_monitor", "parse_target", "encode_event"]

#: Environment variable naming the sidecar to forward to (e.g. ``unix:///run/monitor/forward.sock``).
ENV_TARGET = "MONITOR_FORWARD"

WIRE_VERSION = 1
#: Every reason a forwarding worker reports dropped events under: its own queue's
#: (:data:`monitor.queue.SHED_REASONS`) and its sender's (nothing listens: ``sidecar_unavailable``;
#: the sidecar's socket full: ``socket_full``; an event larger than a datagram: ``too_large``;
#: another send error: ``send_error``; not sent before shutdown: ``shutdown_timeout``; not JSON:
#: ``unserializable``; a failure of the sender: ``internal_error``). The sidecar exports each at 0
#: (``monitor_forward_events_dropped_total``) once it listens for workers, so that their first
#: drops are an increase MonitorForwardingDrops sees; a test keeps this list complete.
FORWARD_DROP_REASONS: tuple[str, ...] = SHED_REASONS + tuple(
    r for r in ("sidecar_unavailable", "socket_full", "too_large", "send_error", "shutdown_timeout", "unserializable",
                "internal_error") if r not in SHED_REASONS)
#: Largest datagram sent: UDP on loopback carries at most 65,507 bytes; a Unix datagram socket
#: more, but the receiver's buffer is shared, so batches are kept small either way.
UDP_MAX = 65_000
UNIX_MAX = 200_000
#: Datagrams one event's JSON may be cut into at most (an event larger is dropped as
#: ``too_large``): some 6 MB of JSON over ``unix://``, 2 MB over UDP, held by the sidecar until
#: its last part comes (``server.forward.receive_buffer_bytes`` bounds them all).
MAX_FRAGMENTS = 64
#: Seconds without a datagram after which the next one opens a new session: the sidecar forgets
#: a sender it has not heard from for 300 s (``monitor/server/forward.py``), and would count the
#: totals of a sender it does not know in full, a second time.
SESSION_IDLE_S = 240.0


def parse_target(target: str) -> tuple[str, Any]:
    """``unix:///path/to.sock`` (or a bare path) -> ("unix", path); ``udp://host:port`` -> ("udp", (host, port))."""
    if target.startswith("udp://"):
        host, _, port = target[6:].rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"forwarding target {target!r}: write udp://127.0.0.1:9109")
        return "udp", (host.strip("[]"), int(port))
    if target.startswith("unix://"):
        path = target[7:]
    elif target.startswith("/") or target.startswith("."):
        path = target
    else:
        raise ValueError(f"forwarding target {target!r}: write unix:///run/monitor/forward.sock or udp://127.0.0.1:9109")
    if not path:
        raise ValueError("forwarding target: the Unix socket path is empty")
    return "unix", path


def _default(obj: Any) -> Any:
    """JSON for what predict functions pass around: numpy arrays and scalars, DataFrames, bytes
    (decoded as UTF-8, an invalid byte as U+FFFD, as the in-process readers decode every bytes
    value: a text answer or cell, a class label, a category, a numeric cell read as its text).
    Why bytes: a text model answering bytes (``response.content``), or a stream of bytes chunks
    with a chunk of another type, was dropped whole in the worker as ``unserializable``."""
    kind = type(obj)  # not isinstance: it runs a caller's object's __class__
    if issubclass(kind, (bytes, bytearray)):
        return (bytes.decode if issubclass(kind, bytes) else bytearray.decode)(obj, "utf-8", "replace")
    # a caller's object whose attribute lookup raises has no such attribute (as the in-process
    # readers read it: the careful encoding then decides); its conversion raising is its own error
    if _has(obj, "tolist"):
        try:
            times = obj.dtype.kind in "mM" and kind.__module__ == "numpy"  # the kind first: the cheaper look
        except Exception:  # noqa: BLE001 - no dtype (array.array), or a caller's object's own lookup
            times = False
        if times:
            # numpy's times: tolist() writes a [ns] unit's as integers of nanoseconds, which a numeric
            # feature would read as numbers a billion times too large (in process: seconds); the
            # careful encoding decides, by the field (encode_event), off the plain path
            raise TypeError(f"a numpy {obj.dtype} value is encoded carefully")
        convert = obj.tolist
    elif kind.__name__ == "DataFrame" and _has(obj, "to_dict"):
        convert = functools.partial(_frame_records, obj)
    elif _has(obj, "item"):
        convert = obj.item
    else:
        raise TypeError(f"a {kind.__name__} cannot be forwarded as JSON")
    try:
        value = convert()
    except Exception as err:  # noqa: BLE001 - the caller's object's own conversion (tolist, to_dict, item)
        raise CallerValueError(err) from err
    if type(value) is kind:  # numpy's longdouble and clongdouble: json would call this again, to RecursionError
        raise TypeError(f"a numpy {kind.__name__} value is encoded carefully")
    return value


def _frame_records(frame: Any) -> list[dict[Any, Any]]:
    """A DataFrame's rows as objects keyed by its column labels' ``str()``, as the in-process
    readers name a frame's columns (a feature, a class): JSON writes a label ``True`` as the key
    ``true`` and ``None`` as ``null``, where in process they are ``True`` and ``None``."""
    if not all(type(c) is str for c in frame.columns):
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    return frame.to_dict(orient="records")


def _has(obj: Any, name: str) -> bool:
    """``hasattr(obj, name)``, False for a caller's object whose attribute lookup raises anything."""
    try:
        return hasattr(obj, name)
    except Exception:  # noqa: BLE001 - the caller's object's own lookup
        return False


def _latency(value: Any) -> Any:
    """A call's ``latency_s`` as the in-process pipeline reads it
    (:func:`monitor.pipeline.latency_seconds`: a duration is its seconds, True 1.0, text NaN), so
    that JSON can write it. One the pipeline leaves out (NaN, -1, infinite: written as JSON writes
    them) is taken by the sidecar without it, counted in
    ``monitor_row_arguments_dropped_total{argument="latency_s"}`` as in process. Why: the sidecar
    refused such an event whole (``bad_latency``), its rows lost from every figure, and a
    ``timedelta``, which JSON cannot write, lost it in the worker as ``unserializable``."""
    kind = type(value)
    if kind is float or (kind is int and -_INT_BOUND < value < _INT_BOUND):  # the usual: written as it is
        return value
    if issubclass(kind, float):  # numpy's float64 (a float): its value, without importing the pipeline
        return float.__float__(value)  # (by type, float's own: a caller's __class__ or __float__ may raise)
    if kind.__module__ == "numpy" and kind.__name__.startswith(("float", "int", "uint")):  # numpy's other numbers
        return _latency(value.item())
    from monitor.pipeline import latency_seconds  # another value (numpy's, a duration, text): this rare path only

    return latency_seconds(value)


def encode_event(event: tuple[Any, ...], unreadable: Callable[[str, str], None] | None = None,
                 output_kind: str | None = None) -> str:
    """One queued event tuple as a JSON object in the documented event format; a prediction's
    client or segment whose values or text cannot be taken is sent as
    :class:`~monitor.events.UnreadableValues` (so is a request id, by :func:`_sendable_request_id`),
    said to ``unreadable(argument, why)`` when given (see :func:`_argument`). ``output_kind`` (the
    worker's, when it was given one): outputs holding values JSON cannot write are sent as that
    kind reads them (:func:`_outputs_as`); without it such outputs raise TypeError."""
    kind = event[0]
    if kind == PREDICTION:
        _, ts, inputs, outputs, latency, client, rid, segment, embedding = event
        obj: dict[str, Any] = {"timestamp": ts, "inputs": inputs, "outputs": outputs}
        if type(outputs) is TextPrefix:  # a long streamed answer: its first characters, and its length beside them
            obj["outputs_length"] = outputs.length
        if latency is not None:
            obj["latency_s"] = _latency(latency)
        # an argument that could not be read (UnreadableValues): the empty list says its rows have
        # none; "unreadable", why (the sidecar's line says it as in process). Looked for only where
        # the argument is given: nothing on a call without them
        if client is not None:
            client = _argument(_sendable_client, client, "client", unreadable)
            if client is not None:
                obj["client"] = client
                if type(client) is UnreadableValues:
                    obj.setdefault("unreadable", {})["client"] = client.error
        if rid is not None:
            obj["request_id"] = rid
            if type(rid) is UnreadableValues:
                obj.setdefault("unreadable", {})["request_id"] = rid.error
        if segment is not None:  # one per call, or one per row (a list the sidecar reads as such)
            segment = _argument(_sendable_segment, segment, "segment", unreadable)
            if segment is not None:
                obj["segment"] = segment
                if type(segment) is UnreadableValues:
                    obj.setdefault("unreadable", {})["segment"] = segment.error
        if embedding is not None:
            obj["embedding"] = embedding
    elif kind == ERROR:
        _, ts, exc, latency, client = event
        obj = {"type": "error", "timestamp": ts, "exception": exc}
        if latency is not None:
            obj["latency_s"] = _latency(latency)
        try:  # one per call (an error has no rows); a list is left out, as no error reads it
            client = None if client is None or _per_row(client) is not None else _client_key(client)
        except CallerValueError:  # a caller's object whose iteration or str() raises: left out, as in process,
            client = None  # where an error's client is never read (it lost the event as unserializable)
        if client is not None:
            obj["client"] = client
    elif kind == FEEDBACK:  # (FEEDBACK, ts, ids, labels)
        ts, ids, labels = event[1:4]
        obj = {"type": "feedback", "timestamp": ts, "request_ids": list(ids), "labels": list(labels)}
    else:
        raise ValueError(f"unknown event kind {kind!r}")
    # NaN (a missing feature) is written as Python's json writes it; the sidecar reads it back
    try:
        return _dumps(obj)
    except (TypeError, CallerValueError):  # a value JSON cannot write (or whose own code raised in json's
        pass  # hands: a dict subclass's items()), or numpy's times: the careful encoding, this rare path only
    for key, encode in _CAREFUL.items():
        if key in obj:
            if key == "labels" and output_kind is not None:  # read as the model's kind reads them
                encode = lambda value, where: _label(value, where, output_kind)  # noqa: E731
            obj[key] = _careful(obj[key], key, encode, whole=key == "inputs")
    if kind == PREDICTION:
        obj["outputs"] = _outputs_as(obj["outputs"], output_kind)
    return _dumps(obj)


#: What writing an event as JSON raises for the caller's values (:func:`_dumps`): a value JSON
#: cannot write or a key that is no text (TypeError), a container holding itself (ValueError),
#: one nested too deep (RecursionError), the caller's object's own error. Counted
#: ``unserializable``; anything else is an error of the worker's own (``internal_error``).
UNSERIALIZABLE = (TypeError, ValueError, RecursionError, CallerValueError)


def _dumps(obj: Any) -> str:
    """``json.dumps`` of an event object (or of its outputs), what the caller's values raise in it
    (json's encoder runs a dict subclass's own ``items()``) as
    :class:`~monitor.events.CallerValueError`; an error raised in this module's own code
    (:func:`_default`) goes on as it is."""
    try:
        return json.dumps(obj, default=_default, separators=(",", ":"))
    except UNSERIALIZABLE:
        raise
    except Exception as err:  # noqa: BLE001 - told apart below
        tb = err.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and tb.tb_frame.f_globals is globals():  # (not by file name: a wheel's may differ)
            raise  # raised by this module's own code: a bug, counted as the sender's internal_error
        raise CallerValueError(err) from err


def _careful(value: Any, where: str, encode: Callable[[Any, str], Any], whole: bool = False) -> Any:
    """``value`` (a field of an event, ``where``) with each value JSON cannot write replaced by
    ``encode(value, where)``: what the sidecar's reader of that field reads as the in-process
    reader reads the value itself, or TypeError (naming the field and the type) when no JSON value
    is read so. Containers are walked; what :func:`_default` converts (arrays, DataFrames, bytes)
    is converted first, but numpy's times, whose ``tolist()`` is a ``datetime`` or an integer of
    their unit, are encoded as they are, and an array of them is TypeError (in process such an
    array is read by its place: as the rows, its values as ``datetime``s of its unit, or as one
    cell, the array's text). ``whole``: ``value`` is the whole field, which is not encoded itself
    (inputs that are one such value are refused in process as rows of no shape, where their text
    would be read as a row of text)."""
    kind = type(value)  # not isinstance: it runs a caller's object's __class__, which may raise
    if value is None or issubclass(kind, (str, int, float)):  # JSON writes these (and their subclasses) as they are
        return value
    if issubclass(kind, dict):  # a subclass by dict's own storage, as the in-process readers read it (own_dict)
        return {k: _careful(v, where, encode) for k, v in dict.items(value)}
    if issubclass(kind, (list, tuple)):
        return [_careful(v, where, encode) for v in value]
    try:
        times = kind.__module__ == "numpy" and getattr(getattr(value, "dtype", None), "kind", None) in ("m", "M")
    except Exception:  # noqa: BLE001 - the caller's object's own attribute lookup: no dtype, as in process
        times = False
    if times and where != "inputs":
        # outside the inputs, read in process by a float64 cast (the embedding, a score) or as the
        # value (a label): a [ns] unit's integers, as the plain encoding sends them, are read alike
        plain = value.tolist()
        if _plain_ints(plain):
            return plain
    if times and getattr(value, "ndim", 0):  # read in process as the array's values, or its text: by its place
        raise _no_parity(value, where, "is an array of numpy's times (read in process by its place and unit)")
    try:
        converted = None if times else _default(value)
    except TypeError:
        converted = None
    if converted is None:
        if whole:
            raise _no_parity(value, where, "is the whole field, not a row or a value in one")
        return encode(value, where)
    return _careful(converted, where, encode)


def _plain_ints(value: Any) -> bool:
    """Whether ``value`` (numpy's times' ``tolist()``) is integers and nulls only, in lists."""
    if isinstance(value, list):
        return all(_plain_ints(v) for v in value)
    return value is None or type(value) is int


def _no_parity(value: Any, where: str, why: str) -> TypeError:
    return TypeError(f"{where}: a {type(value).__module__}.{type(value).__qualname__} value, which {why}")


def _same_number(a: float | None, b: float | None) -> bool:
    """Whether two readings are the same number: equal, both none, both NaN, or within four units in
    the last place (numpy's datetime64 with a fraction of a second is read one rounding off its
    text: 1704164645.1230001 and 1704164645.123)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    return a != a and b != b or math.isclose(a, b, rel_tol=4 * sys.float_info.epsilon, abs_tol=0.0)


def _input_cell(value: Any, where: str) -> Any:
    """A cell of the inputs that JSON cannot write, as its text, when the sidecar's readers read
    that text as the in-process readers read the value: a numeric feature's
    (:func:`monitor.cell_values.cell_number`: the same number, or none, counted ``wrong_type``)
    and a categorical or text feature's (:func:`~monitor.cell_values.category_text`: its text).
    So a ``set``, a complex number, a ``Decimal``, a date, a ``datetime`` or pandas ``Timestamp``
    (ISO text, read as its seconds), a ``UUID``, an ``Enum`` member, a ``Period``, an object's
    text. A duration (``timedelta``, ``Timedelta``, ``timedelta64``), a ``Fraction`` (a number
    to a numeric feature, ``1/2`` to a categorical one) has no such text: TypeError."""
    try:
        from monitor.cell_values import category_text, cell_number
    except ImportError:  # numpy absent from the worker: no reader to check by
        raise _no_parity(value, where, "cannot be checked without numpy") from None
    try:
        text = caller_text(value)
    except CallerValueError as err:  # the caller's object's own error (the readers below are the monitor's)
        raise _no_parity(value, where, f"raised {err.error} as it was read") from None
    if not (_same_number(cell_number(value), cell_number(text)) and category_text(value) == category_text(text)):
        raise _no_parity(value, where, "a numeric feature reads as a number and a categorical one as other text")
    return text


#: The output kinds whose feedback labels name classes (:meth:`monitor.outputs.ClassIndex.lookup`).
_CLASSIFIERS = frozenset({"probabilities", "logits", "labels"})


def _label(value: Any, where: str, kind: str | None = None) -> Any:
    """A feedback label JSON cannot write as the sidecar's join reads it as the in-process join
    reads the label (:func:`~monitor.events.read_label`: a regression model's value, a
    classifier's class, looked up by :func:`_class_key`; a label that is no list is no multi-label
    truth either way): null when neither can take it (a ``set``, a complex number, numpy's
    ``timedelta64``: ``invalid`` for every kind, as null is); else the first of its float, the
    text its class is named by and its ``str()`` that both read alike (a ``Decimal`` ``1`` as
    ``"1"``, a class name, not ``1.0``, which names the class of index 1; numpy's ``datetime64``
    as its ``datetime``'s text, as the lookup reads it; a date, a ``UUID``, an ``Enum`` member,
    an object as their text). With the worker's output ``kind``, the first that kind reads alike
    (a ``Fraction`` ``1/2`` is the class ``1/2`` but the value 0.5). Without it, when none is read
    alike by both, the first a regression model reads alike and a classifier takes or refuses
    alike (its class may be named otherwise: a ``Fraction``, an object with ``__float__``, for a
    classifier); else TypeError."""
    from monitor.events import read_label

    def read(v: Any, regression: bool) -> tuple[Any, bool]:
        try:
            label, problem = read_label(v, regression)
            if problem is not None:
                return None, False
            return (label if regression else _class_key(label)), True
        except Exception:  # noqa: BLE001 - the join counts a label whose conversions raise invalid
            return None, False

    reg, cls = read(value, True), read(value, False)
    if not reg[1] and not cls[1]:
        return None
    candidates = _label_candidates(value)
    if kind in _CLASSIFIERS or kind == "regression":
        regression = kind == "regression"
        for sent in candidates:
            if read(sent, regression) == (reg if regression else cls):
                return sent
    for sent in candidates:
        if read(sent, True) == reg and read(sent, False) == cls:
            return sent
    if kind not in _CLASSIFIERS and kind != "regression":
        for sent in candidates:
            if read(sent, True) == reg and read(sent, False)[1] == cls[1]:
                return sent
    raise _no_parity(value, where, "the label join reads as no JSON value")


def _class_key(label: Any) -> tuple[str, bool]:
    """How :meth:`monitor.outputs.ClassIndex.lookup` reads a label (:func:`monitor.outputs.class_key`):
    the text it names the class by, and whether it is an integer (then the class of that index when
    no class is so named)."""
    from monitor.outputs import class_key  # numpy: this careful path only

    name, kind, _ = class_key(label)
    return name, issubclass(kind, int) and not issubclass(kind, bool)


def _label_candidates(value: Any) -> list[Any]:
    """What :func:`_label` may send for ``value``: its float when it is a real number, the text its
    class is named by (:func:`_class_key`), its text."""
    out: list[Any] = []
    if not issubclass(type(value), complex) and hasattr(type(value), "__float__") and type(value).__module__ != "numpy":
        try:
            out.append(float(value))
        except Exception:  # noqa: BLE001 - the caller's object's own error
            pass
    for text in (lambda: _class_key(value)[0], lambda: str(value)):
        try:
            out.append(text())
        except Exception:  # noqa: BLE001 - the caller's object's own error
            pass
    return out


def _number_or_none(value: Any, where: str) -> Any:
    """A value JSON cannot write where the in-process reader takes numbers by ``float()`` (the
    embedding, :func:`monitor.cell_values.real_numbers`): its float (a ``Decimal``, a
    ``Fraction``), or, for one that has none (a date, a ``set``, an object) or a complex number
    (refused with its values in process), text that no reader takes as a number, so that the
    sidecar leaves the row's values out as in process. numpy's times: TypeError (a float64 cast
    reads an array of them by its unit, numbers beside them as durations)."""
    if type(value).__module__ == "numpy" and getattr(getattr(value, "dtype", None), "kind", None) in ("m", "M"):
        raise _no_parity(value, where, "is one of numpy's times (read in process by its unit and its neighbours)")
    if not issubclass(type(value), complex):  # by type: isinstance runs a caller's object's __class__
        try:
            return float(value)
        except Exception:  # noqa: BLE001 - no number (TypeError, ValueError) or the caller's object's own error
            pass
    return f"<{type(value).__name__}: no number>"


class _NeedsOutputKind(TypeError):
    """Outputs holding a value JSON cannot write, sent by a worker not told its model's output kind."""


def _output_value(value: Any, where: str) -> Any:
    """A value of the outputs JSON cannot write, the worker not told the output kind:
    :class:`_NeedsOutputKind`, naming the field and the type. Each output kind reads such a value
    its own way (in process a ``Decimal`` is a score or a value by its float but a class named by
    its text to ``labels``, a date a class name to ``labels`` and refused by the others)."""
    raise _NeedsOutputKind(f"{where}: a {type(value).__module__}.{type(value).__qualname__} value, which the model's "
                          "output kind reads its own way (the worker was not told it: output_kind)")


#: The output kinds whose outputs are read as numbers (:func:`monitor.ingest.score_values`).
_NUMERIC_OUTPUTS = frozenset({"probabilities", "logits", "regression", "multilabel"})


def _outputs_as(outputs: Any, kind: str | None) -> Any:
    """A prediction's outputs holding a value JSON cannot write (after ``json.dumps`` raised), as
    the in-process reader of ``kind`` reads them, so that the sidecar's figures are the in-process
    ones: the numeric kinds' as the float64 array they are read as (:func:`_scores_as`), a
    ``labels`` model's each value as the class the in-process lookup names (:func:`_class_name`),
    a ``text`` model's each such value as a value that is no text (:func:`_no_text`: the call is
    refused as in process). Without a kind: :class:`_NeedsOutputKind` (:func:`_output_value`).
    Outputs JSON writes (the event's other fields raised) are sent as the plain encoding sends them."""
    try:
        _dumps(outputs)  # what the caller's values raise in it (not TypeError): the event dropped, unserializable
        return outputs
    except CallerValueError:
        raise
    except TypeError:
        pass
    if kind in _NUMERIC_OUTPUTS:
        return _scores_as(outputs, kind)
    encode = {"labels": _class_name, "text": _no_text}.get(kind or "", _output_value)
    return _careful(outputs, "outputs", encode)


def _scores_as(outputs: Any, kind: str) -> Any:
    """The outputs of a numeric output kind as the in-process reader reads them
    (:func:`monitor.ingest.score_values`): the floats it reads (a ``Decimal``, a ``Fraction``, an
    object with ``__float__``, numpy's ``longdouble``; numpy's times as counts of their unit, read
    beside their neighbours as numpy reads them), written as nested lists of the same shape, which
    the sidecar reads as the same array. Outputs the reader refuses (a date, a ``UUID``, a complex
    number, text: the call's rows counted ``non_numeric_output`` or ``output_shape``) are sent with
    each value of no float as text of no number (NaN when that is what keeps the reason), checked
    to be refused for the same reason. A DataFrame (read in process by its columns' class names)
    or outputs refused otherwise raise TypeError."""
    try:
        from monitor.events import is_dataframe
        from monitor.ingest import score_values
        from monitor.input_forms import RowError
    except ImportError:  # numpy absent from the worker: no reader to read by
        raise _no_parity(outputs, "outputs", "cannot be read without numpy") from None
    if is_dataframe(outputs):
        raise _no_parity(outputs, "outputs", "is a DataFrame (read in process by its columns' class names)")
    try:
        return score_values(outputs, kind).tolist()
    except RowError as err:
        reason = err.reason
    for encode in (_refused_score, _refused_score_nan):
        try:
            sent = _careful(outputs, "outputs", encode)
            score_values(sent, kind)
        except RowError as err:
            if err.reason == reason:
                return sent
        except TypeError:  # an array of numpy's times among them
            break
    raise _no_parity(outputs, "outputs", f"is refused in process ({reason}) as no JSON value is")


def _refused_score(value: Any, where: str) -> Any:
    """A value JSON cannot write in outputs of a numeric kind that are refused: its float, text of
    no number for one of no float (:func:`_number_or_none`), NaN for numpy's times (the call is
    refused whatever they are read as)."""
    if type(value).__module__ == "numpy" and getattr(getattr(value, "dtype", None), "kind", None) in ("m", "M"):
        return math.nan
    return _number_or_none(value, where)


def _refused_score_nan(value: Any, where: str) -> Any:
    """:func:`_refused_score`, NaN where that gives text: outputs of rows of different lengths are
    refused as such (``output_shape``) unless they hold text, then as values of no number."""
    sent = _refused_score(value, where)
    return math.nan if isinstance(sent, str) else sent


def _class_name(value: Any, where: str) -> Any:
    """A value of a ``labels`` model's outputs JSON cannot write, as the in-process reader reads
    it (:func:`monitor.outputs.decode_outputs`, :meth:`~monitor.outputs.ClassIndex.lookup`): null
    for a missing one (pandas' NA and NaT: ``nan_output``), a mapping for a ``set`` (several
    values: ``output_shape``), else the text that names its class (a date, a ``Decimal``, a
    ``UUID``, an ``Enum`` member, an object; numpy's scalars by their value's text). A complex
    number (the call refused) and a value whose text cannot be taken (no class) are read as no
    JSON value is: TypeError."""
    from monitor.events import is_missing

    if is_missing(value):
        return None
    kind = type(value)  # by type: isinstance runs a caller's object's __class__
    if issubclass(kind, set):
        return {kind.__name__: "several values, not one label"}
    if issubclass(kind, numbers.Complex) and not issubclass(kind, numbers.Real):  # numpy's clongdouble too
        raise _no_parity(value, where, "refuses the call in process (a complex label), as no JSON value does")
    try:
        return _class_key(value)[0]
    except Exception:  # noqa: BLE001 - a caller's object whose str() raises
        raise _no_parity(value, where, "names no class in process (its text cannot be taken)") from None


def _no_text(value: Any, where: str) -> Any:
    """A value of a ``text`` model's outputs JSON cannot write: in process an answer that is not
    text refuses its call (``non_numeric_output``, :func:`monitor.ingest._answers`), as a mapping
    naming its type does at the sidecar."""
    return {type(value).__name__: "not text"}


#: The fields of an event whose values JSON cannot write are encoded (:func:`_careful`), and how
#: (a prediction's outputs by its output kind: :func:`_outputs_as`).
_CAREFUL: dict[str, Callable[[Any, str], Any]] = {"inputs": _input_cell, "labels": _label, "embedding": _number_or_none}


@dataclass
class ForwardStats:
    """What a forwarding worker did since it started."""

    events_sent: int = 0
    datagrams_sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


_LIVE: "weakref.WeakSet[ForwardingMonitor]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # a worker that exits flushes what it still holds
    for fm in list(_LIVE):
        try:
            fm.close(timeout=1.0)
        except Exception:  # noqa: BLE001
            pass


def _close_all_in_a_multiprocessing_child() -> None:
    """A ``multiprocessing`` child (fork or forkserver) ends with ``os._exit()`` once its target
    returns: atexit never runs there, and what its queue still held was lost uncounted (a short
    task: every event; 4 processes of 100 calls each delivered none). Its exit runs
    ``threading``'s shutdown hooks, where this closes the sinks as atexit would. Other processes
    are left to atexit, which runs after their non-daemon threads (still predicting) are done."""
    process = sys.modules.get("multiprocessing.process")
    if process is not None and process.parent_process() is not None:
        _close_all()


def _after_fork_in_child() -> None:
    for fm in list(_LIVE):
        fm._after_fork()


try:  # threading's own exit hooks, which multiprocessing's children run too (private, Python >= 3.9)
    threading._register_atexit(_close_all_in_a_multiprocessing_child)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):  # another Python, or imported while the interpreter exits
    pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _plain_ids(rid: Any) -> bool:
    """Whether a prediction's request id is sent as it is (the usual case, read without a copy):
    text of 1 to :data:`~monitor.events.MAX_REQUEST_ID_CHARS` characters, an integer of fewer
    digits than that, or a list of these."""
    return _plain_id(rid) or (type(rid) is list and all(map(_plain_id, rid)))


def _plain_id(rid: Any) -> bool:
    """One id :func:`_plain_ids` sends as it is."""
    kind = type(rid)
    return (kind is str and 0 < len(rid) <= MAX_REQUEST_ID_CHARS) or (kind is int and -_INT_BOUND < rid < _INT_BOUND)


#: Integers below this in size have fewer digits than a request id may have characters.
_INT_BOUND = 10 ** 100
#: The largest float64: an integer beyond it is refused by the sidecar with its whole event
#: (``number_too_large``, :func:`monitor.server.payloads.unsafe_json`).
_FLOAT_MAX = sys.float_info.max


def _sendable_label(label: Any) -> Any:
    """A label as the worker sends it: null for a missing one (pandas' NA, which JSON cannot
    write) and for one holding an integer beyond float64 (309 digits or more), which the sidecar
    refuses with the whole feedback event (``number_too_large``), where the in-process join counts
    that label alone ``invalid`` (past 256 bits no class; no float for a regression). The
    sidecar's join counts null ``invalid`` for every kind of model, as in process."""
    if is_missing(label):
        return None
    if type(label) is int and not -_FLOAT_MAX <= label <= _FLOAT_MAX:
        return None
    if type(label) is list and any(type(v) is int and not -_FLOAT_MAX <= v <= _FLOAT_MAX for v in label):
        return None
    return label


def _id_as_text(rid: Any) -> tuple[str | None, str | None]:
    """One request id as the in-process join reads it (:func:`~monitor.events.request_id_text`),
    and why it is no usable id when it is over :data:`~monitor.events.MAX_REQUEST_ID_CHARS`
    characters or its text cannot be taken (then the id is None), as
    :func:`monitor.row_arguments.row_ids` drops it; an id that is no id (None, NaN, empty text) is
    None without a reason, as in process (not counted)."""
    try:
        key = request_id_text(rid)
    except CallerValueError:  # str() refuses it (an int of over 4,300 digits) or raises its own error
        return None, f"that is a {type(rid).__name__} whose text cannot be taken"
    if key is not None and len(key) > MAX_REQUEST_ID_CHARS:
        return None, f"of {len(key):,} characters ({key[:40]!r}...), over the {MAX_REQUEST_ID_CHARS:,} a request id may have"
    return key, None


def _per_row(value: Any) -> list[Any] | None:
    """A prediction's request ids or clients, one per row, as the in-process row builder reads the
    argument (:func:`monitor.row_arguments.per_row_values`: a list, an array, a column vector, a
    Series), or None for one value for the call. Text, numbers and None are read here; another
    value is read by the row builder's reader, imported on this rare path (numpy is present for
    such a value; :class:`~monitor.events.CallerValueError` for one whose own code raises). Told
    by type: isinstance runs a caller's object's ``__class__``."""
    kind = type(value)
    if kind is list or kind is tuple:
        return list(value)
    if value is None or issubclass(kind, (str, bytes, bytearray, int, float)):
        return None
    from monitor.row_arguments import per_row_values

    return per_row_values(value)


def _client_key(client: Any) -> str | None:
    """One row's client as the in-process row reader reads it (:func:`~monitor.events.row_text`:
    bytes decoded, a missing value none, any other value its text), one over
    :data:`~monitor.events.MAX_ID_CHARS` characters as its digest (:func:`~monitor.events.id_key`),
    the key the probing detector tracks it by on either side."""
    text = client_text(client)
    return None if text is None else id_key(text)


def _sendable_client(client: Any) -> Any:
    """A prediction's ``client`` as the sidecar takes it: one per row for a per-row list (of
    whatever length: the sidecar's row builder counts one of another length than the rows in
    ``monitor_row_arguments_dropped_total{argument="client"}``, as in process), each read as in
    process (:func:`_client_key`, a missing one null), else the call's one client, None for none.
    Why: the worker wrote ``str(client)``, so a per-row list was one client named
    ``"['c1', 'c2']"``, one of another length went uncounted, and bytes were ``"b'c3'"``."""
    if type(client) is str:  # the usual: one client for the call
        return client if len(client) <= MAX_ID_CHARS else id_key(client)
    rows = _per_row(client)
    return _client_key(client) if rows is None else [_client_key(v) for v in rows]


def _argument(read: Callable[[Any], Any], value: Any, argument: str,
              unreadable: Callable[[str, str], None] | None) -> Any:
    """``read(value)``, or :class:`~monitor.events.UnreadableValues` when the caller's value raises
    anything on the way, said to ``unreadable`` (the argument, and why) when given. How such an
    argument is sent: a per-row list of no values, of another length than any call's rows, so that
    the sidecar's row builder counts the rows it reads in
    ``monitor_row_arguments_dropped_total{argument=...}``, as the in-process builder counts such an
    argument (:func:`monitor.row_arguments.row_clients` and its siblings), with the error's name.
    Why: reading it raised in the sender, which dropped the whole event as ``unserializable``: its
    rows were lost from every figure, where in process only the argument is."""
    try:
        return read(value)
    except CallerValueError as err:  # the caller's object's own error (an error of the reader's own goes on)
        if unreadable is not None:
            unreadable(argument, f"{err.error} reading its values or their text")
        return UnreadableValues(err.error)


def _sendable_segment(segment: Any) -> Any:
    """A prediction's ``segment`` as the in-process row builder reads it
    (:func:`monitor.row_arguments.row_segments`): one per row for a per-row list, each entry's
    text (:func:`~monitor.events.segment_text`: bytes decoded, a whole float the integer's text, a
    missing one null), else the call's
    one segment, None for a missing one. Why: the worker wrote ``str()`` of each, so that a
    segment given as bytes was ``"b'eu'"`` (in process ``eu``) and a NaN one the segment ``nan``
    (in process none, "unset")."""
    rows = _per_row(segment)
    if rows is None:
        return segment_text(segment)
    return [segment_text(v) for v in rows]


def _sendable_request_id(event: tuple[Any, ...]) -> tuple[tuple[Any, ...], str | None]:
    """A queued prediction with its ``request_id`` as the sidecar takes it, read as the
    in-process join reads it (see :func:`_id_as_text`; one per row for a per-row list), an id
    that is no usable id as :func:`_unusable_id` sends it; and why the first such one is no usable
    id. Why: the sidecar refused the whole event for one such id (``bad_request_id``: over 1,024
    characters, a non-integral float, a boolean, one entry of a list) and the worker dropped it
    whole for a bytes id (``unserializable``), so the rows were lost from every figure, where an
    in-process Monitor keeps them, only their id dropped; and then the worker counted the rows it
    guessed from the inputs as dropped ids, where in process only the rows read are (none of a
    call whose rows are refused)."""
    rid = event[6]
    try:
        rows = _per_row(rid)
    except CallerValueError as err:  # a caller's object whose iteration raises: see _argument
        return (event[:6] + (UnreadableValues(err.error),) + event[7:], f"whose values cannot be taken ({err.error} reading them)")
    if rows is None:
        key, why = _id_as_text(rid)
        return event[:6] + (key if why is None else _unusable_id(rid),) + event[7:], why
    ids: list[str | None] = []
    first = None
    for r in rows:
        key, why = _id_as_text(r)
        ids.append(key if why is None else _unusable_id(r))
        first = first or why
    return event[:6] + (ids,) + event[7:], first


def _unusable_id(rid: Any) -> str:
    """A prediction's id over :data:`~monitor.events.MAX_REQUEST_ID_CHARS` characters, cut to one
    more (its length is all the row builder reads), or one whose text cannot be taken, as the
    builder reads it (1,025 ``?``): the sidecar takes such an id from a worker, and the model's
    builder counts the rows it reads in ``monitor_row_arguments_dropped_total{argument="request_id"}``,
    as in process."""
    try:
        text = request_id_text(rid)
    except CallerValueError:  # as _id_as_text
        text = None
    return (text or "?" * (MAX_REQUEST_ID_CHARS + 1))[:MAX_REQUEST_ID_CHARS + 1]


def _error_text(err: BaseException) -> str:
    """An error as a log line quotes it: its type and message, at most 200 characters (a
    :class:`~monitor.events.CallerValueError` by the caller's error's type: that error's own
    ``__str__`` may raise)."""
    if type(err) is CallerValueError:
        return f"{err.error} raised by the caller's value"
    try:
        return f"{type(err).__name__}: {str(err)[:200]}"
    except Exception:  # noqa: BLE001 - a message holding the caller's object, whose str() raises
        return type(err).__name__


def _output_kind(kind: str | None, reads_outputs: bool) -> str | None:
    """``ForwardingMonitor``'s ``output_kind`` checked: one of the config's kinds, and not a kind
    whose outputs are read beside ``reads_outputs=False``; ``"none"`` when only that was said."""
    if kind is None:
        return None if reads_outputs else "none"
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"ForwardingMonitor(output_kind={kind!r}): not an output kind. Fix: the output.kind of the "
                         f"model in the sidecar's config, one of {', '.join(OUTPUT_KINDS)}")
    if not reads_outputs and kind != "none":
        raise ValueError(f"ForwardingMonitor(output_kind={kind!r}, reads_outputs=False): kind {kind} reads the "
                         "outputs. Fix: drop reads_outputs=False, or write output_kind='none'")
    return kind


class ForwardingMonitor:
    """A Monitor-like sink that forwards events to a local sidecar.

    It offers what the ``@watch`` decorator and callers use (``queue``, ``observe``,
    ``observe_error``, ``feedback``, ``watch``, ``flush``, ``close``), so
    ``monitor.watch(fn, monitor=ForwardingMonitor("iris", "unix:///run/monitor/forward.sock"))``
    works unchanged.

    Parameters
    ----------
    model
        The model name the sidecar files the events under.
    target
        ``unix:///path.sock`` or ``udp://127.0.0.1:9109``.
    capacity
        Events held in this process at most while the sender catches up (then shed, counted).
    batch_max
        Events per datagram at most (datagrams are also cut at ``max_datagram_bytes``).
    flush_interval_s
        How often the sender thread wakes up to send what is queued.
    sample_rate
        Fraction of calls forwarded (as in the Monitor).
    clock
        Source of event timestamps (the decorator reads it too).
    send_timeout_s
        How long the background sender waits for room in the sidecar's receive queue before it
        drops a datagram (``socket_full``). The model's thread never waits.
    reads_outputs
        False for a model the sidecar's config declares ``output.kind: none``: what the function
        returns is then not sent (None is), as the sidecar would not read it. Why: a text
        generator's or an object detector's answers that JSON cannot write (result objects,
        tensors) lost the whole event as ``unserializable``, inputs included, and large answers
        filled the datagrams.
    output_kind
        The ``output.kind`` the sidecar's config declares for the model, when the decorator must
        know it: ``"text"`` lets ``watch()`` take a generator function (a streamed answer,
        recorded when its stream ends, its text chunks joined), which it refuses for scores;
        ``"none"`` is ``reads_outputs=False``; outputs holding values JSON cannot write (a
        ``Decimal``, a date, numpy's times) are sent as that kind reads them in process (see
        :func:`_outputs_as`), where without it such a call is dropped (``unserializable``). None
        (the default) says nothing: the events are
        sent as they are and the sidecar reads them by its config. Why: with no config of its
        own, a forwarding worker's streaming LLM endpoint was refused at decoration, its fix
        naming a config this monitor cannot have. Sent with every datagram: a sidecar whose
        config declares another kind for the model refuses the events, counted
        (``reason="output_kind_mismatch"``) and logged naming both kinds.
    """

    def __init__(self, model: str = "default", target: str = "unix:///run/monitor/forward.sock", *,
                 capacity: int = 100_000, batch_max: int = 500, flush_interval_s: float = 0.05,
                 max_datagram_bytes: int | None = None, sample_rate: float = 1.0, seed: int | None = None,
                 clock: Callable[[], float] = time.time, send_timeout_s: float = 0.25, start: bool = True,
                 reads_outputs: bool = True, output_kind: str | None = None) -> None:
        self.model = model
        self.output_kind = _output_kind(output_kind, reads_outputs)
        self.reads_outputs = bool(reads_outputs) and self.output_kind != "none"
        self.target = target
        self.clock = clock
        self._reset_said()
        self.send_timeout_s = float(send_timeout_s)
        self.transport, self.address = parse_target(target)
        self.queue = EventQueue(capacity, sample_rate=sample_rate, seed=seed)
        self.batch_max = int(batch_max)
        self.flush_interval_s = float(flush_interval_s)
        self.max_datagram_bytes = int(max_datagram_bytes or (UDP_MAX if self.transport == "udp" else UNIX_MAX))
        self.closed = False
        self.sender_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = ForwardStats()
        self._seq = 0
        self._fragment_id = 0  # numbers the events sent in parts (see _send_fragments)
        self._dropped_local: dict[str, int] = {}
        self._reported: dict[str, int] = {}
        self._reset_session_state()
        #: Monotonic clock of the session's idle check (tests move it).
        self._now: Callable[[], float] = time.monotonic
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        #: Set when close() has waited its timeout: what is not sent yet is counted as dropped
        #: (``shutdown_timeout``) instead of being sent, so that the counters are whole when the
        #: process exits (a daemon thread dies with it, and what it held would go uncounted).
        self._give_up = False
        self._thread = threading.Thread(target=self._run, name=f"monitor-forward-{model}", daemon=True)
        self._pid = os.getpid()
        _LIVE.add(self)
        if start:
            self._thread.start()

    # -- the caller's side (same contract as Monitor) ----------------------------------------------
    def observe(self, inputs: Any, outputs: Any, *, client: str | None = None, request_id: Any = None,
                latency_s: float | None = None, segment: str | None = None, timestamp: float | None = None,
                embedding: Any = None) -> bool:
        try:
            queue = self.queue
            if queue.sample_rate < 1.0 and queue.skip_by_sampling():
                return False
            try:
                ts = self.clock() if timestamp is None else event_time(timestamp)  # a datetime, as Monitor takes
            except ValueError:
                queue.drop("invalid_timestamp")
                say_unreadable_timestamp(self._bad_timestamp_logged, self.model, "observe", timestamp)
                return False
            if not self.reads_outputs:
                outputs = None
            return queue.put((PREDICTION, ts, inputs, outputs, latency_s, client, request_id, segment, embedding))
        except Exception:  # noqa: BLE001
            self.queue.drop("internal_error")
            return False

    def observe_error(self, exception: BaseException | str, *, latency_s: float | None = None,
                      client: str | None = None, timestamp: float | None = None) -> bool:
        if self.queue.skip_by_sampling():  # a call, sampled as the others
            return False
        event = error_event(exception, latency_s, client, self.clock if timestamp is None else timestamp)
        if event is None:
            self.queue.drop("invalid_timestamp")
            say_unreadable_timestamp(self._bad_timestamp_logged, self.model, "observe_error", timestamp)
            return False
        return self.queue.put(event)

    def feedback(self, request_ids: Any, labels: Any, *, timestamp: float | None = None) -> bool:
        ids, labs = feedback_lists(request_ids, labels)
        try:
            ts = self.clock() if timestamp is None else event_time(timestamp)
        except ValueError as err:
            raise ValueError(f"feedback: {err}") from None
        parts = self._feedback_parts((FEEDBACK, ts) + self._sendable_ids(ids, labs))
        accepted = [self.queue.put(part) for part in parts]
        return all(accepted)

    def _sendable_ids(self, ids: list[Any], labels: list[Any]) -> tuple[list[Any], list[Any]]:
        """A feedback call's ids as the in-process join reads them (:func:`~monitor.events.request_id_text`:
        bytes decoded, ``5.0`` as ``"5"``), an id that is no id (None, NaN, pandas' NA,
        ``np.ma.masked``, empty text), is over :data:`~monitor.events.MAX_REQUEST_ID_CHARS`
        characters, or whose text cannot be taken as None (null), and its labels (a missing one,
        pandas' NA, which JSON cannot write, and one beyond float64 as null: :func:`_sendable_label`).
        The sidecar's join then counts each label as the in-process one does: ``invalid`` when the model cannot take it, whatever its id, else
        ``unknown_id`` for such an id. Why: the worker left such labels out and counted them all
        ``unknown_id`` (it cannot tell which labels the model takes), and before that the sidecar
        refused the whole call for one such id. The first is said here, where the id is known."""
        kept_ids: list[Any] = []
        example = None
        for rid in ids:
            key, why = _id_as_text(rid)
            kept_ids.append(key)
            if key is None and example is None:
                example = why or f"{describe_value(rid)}, read as no id (None, NaN, pandas' NA and NaT, numpy's masked and empty text are)"
        if example is not None and not self._no_id_said:
            self._no_id_said = True
            log.warning("model %r: a label came for request id %s, so it can join no prediction: such labels are "
                        "forwarded without their id and counted in the sidecar's "
                        "monitor_feedback_labels_total{outcome=\"unknown_id\"} (\"invalid\" when the model cannot take "
                        "the label), further ones without a log line. Fix: send each label with the request id its "
                        "prediction was made with (request_id= of watch/observe); a NaN id is what pandas holds for a "
                        "missing one: drop the labels of rows without an id", self.model, example)
        return kept_ids, [_sendable_label(label) for label in labels]

    def _sendable_request_id(self, event: tuple[Any, ...]) -> tuple[Any, ...]:
        """:func:`_sendable_request_id` of a queued prediction (in the sender thread: the model's
        thread only queues it), the first unusable id said once in this log, which alone knows it."""
        event, why = _sendable_request_id(event)
        if why is not None and not self._bad_id_said:
            self._bad_id_said = True
            log.warning("model %r: a prediction came with a request id %s: its rows are forwarded without it (they are "
                        "monitored; no label can join them) and counted in the sidecar's "
                        "monitor_row_arguments_dropped_total{argument=\"request_id\"}, further ones without a log "
                        "line. Fix: send the id the prediction is known by (a UUID, a key), not the request or its "
                        "text", self.model, why)
        return event

    def _argument_unreadable(self, argument: str, why: str) -> None:
        """A prediction's client or segment sent as :class:`~monitor.events.UnreadableValues`: said
        once per argument in this log, as the sidecar's says it for the rows it reads."""
        if self._unreadable_said.first(argument):
            log.warning("model %r: a prediction came with a %s that cannot be read (%s): its rows are forwarded without "
                        "it (they are monitored) and counted in the sidecar's "
                        "monitor_row_arguments_dropped_total{argument=\"%s\"}, further ones without a log line. Fix: "
                        "give the %s as text (one for the call, or a list of one per row)", self.model, argument, why,
                        argument, argument)

    def _feedback_parts(self, event: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """A feedback event whose JSON is larger than a datagram, as events of fewer labels each
        that fit: labels are independent, and a labelling job sending thousands at once (about
        200 kB of ids over ``unix://``, 65 kB over UDP) lost them all as ``too_large``."""
        kind, ts, ids, labels = event
        if len(ids) < 2:
            return [event]
        try:
            size = len(encode_event(event))
        except Exception:  # noqa: BLE001 - the sender counts it as unserializable, as any event
            return [event]
        if size + 200 <= self.max_datagram_bytes:
            return [event]
        half = len(ids) // 2
        return (self._feedback_parts((kind, ts, ids[:half], labels[:half]))
                + self._feedback_parts((kind, ts, ids[half:], labels[half:])))

    def watch(self, fn: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        from monitor.decorator import watch

        return watch(fn, monitor=self, **kwargs)

    # -- sending -----------------------------------------------------------------------------------
    def _socket(self) -> socket.socket:
        if self._sock is None or self._pid != os.getpid():  # a fork gets its own socket
            self._pid = os.getpid()
            if self.transport == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            else:
                family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.connect(self.address)  # connected: a closed port is reported (ECONNREFUSED)
            # the sender thread (never the model's thread) may wait this long for room in the
            # sidecar's receive queue before it drops the datagram and counts it as socket_full
            sock.settimeout(self.send_timeout_s)
            self._sock = sock
        return self._sock

    def _count_drop(self, reason: str, n: int) -> None:
        if n:
            self._dropped_local[reason] = self._dropped_local.get(reason, 0) + n

    def _drop_said(self, reason: str, n: int, what: str, fix: str) -> None:
        """Count ``n`` events dropped for ``reason``, the first drop of each reason said in the log
        with what happened and the fix (MonitorForwardingDrops' runbook sends on-call there)."""
        if reason not in self._dropped_local:
            log.warning("model %r: %s; such events are dropped and counted as %s, further ones without a log line. "
                        "Fix: %s", self.model, what, reason, fix)
        self._count_drop(reason, n)

    def _dropped_totals(self) -> dict[str, int]:
        queue_dropped, _ = self.queue.counters()
        out = dict(queue_dropped)
        for k, v in self._dropped_local.items():
            out[k] = out.get(k, 0) + v
        return out

    def _reset_said(self) -> None:
        """Nothing said yet in this process's log: the caller's mistakes said once per process
        (a forked worker says them in its own turn, as it does its drops; inherited, a worker
        forked after its parent had said one never said it, its own mistakes counted unexplained)."""
        self._bad_timestamp_logged = Once(max_keys=2)  # observe / observe_error, said once each
        self._no_id_said = False  # a feedback label for an id that is no id (see _sendable_ids), said once
        self._bad_id_said = False  # a prediction's request id left out (see _sendable_request_id), said once
        self._unreadable_said = Once(max_keys=2)  # a prediction's client or segment that cannot be read, said once each

    def _reset_session_state(self) -> None:
        """No datagram sent yet: what the receiving sidecar knows of this process starts here."""
        #: Drop totals that earlier sessions reported (subtracted from the totals sent now).
        self._baseline: dict[str, int] = {}
        #: When a datagram was last sent without error (``self._now()``), and to which socket file.
        self._last_sent: float | None = None
        self._peer: tuple[int, int, int] | None = None
        #: A send found no sidecar: the next one that succeeds reaches another process.
        self._peer_lost = False
        #: Events dropped as sidecar_unavailable when the current outage began (None: no outage),
        #: for the two log lines of an outage (see :meth:`_say_away`).
        self._away_since: int | None = None

    def _peer_file(self) -> tuple[int, int, int] | None:
        """The Unix socket file's identity (device, inode, modification time): a restarted sidecar
        binds a new file. None over UDP, or when there is no file (the send then fails)."""
        if self.transport != "unix":
            return None
        try:
            st = os.stat(self.address)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_mtime_ns

    def _new_session(self) -> None:
        """Start a new sender id: the receiver may be a sidecar that never heard of this one or
        forgot it, and counts a new sender's totals in full, so they restart from what the last
        datagram sent without error had reported."""
        self.sender_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._baseline = dict(self._reported)
        self._peer_lost = False

    def _session_totals(self, totals: dict[str, int]) -> dict[str, int]:
        """The drop totals of this session: what the process dropped (``totals``) since earlier
        sessions' reports."""
        base = self._baseline
        if not base:
            return totals
        return {k: v - base.get(k, 0) for k, v in totals.items() if v > base.get(k, 0)}

    def _fragment_size(self) -> int:
        """Characters of an event's JSON per fragment: the fragment travels as a JSON string, in
        which a quote or a backslash takes two (the JSON of an event is ASCII)."""
        return max(1, (self.max_datagram_bytes - 400) // 2)

    def _send_fragments(self, piece: str) -> bool:
        """Send one event's JSON cut into parts, a datagram each, which the sidecar joins once the
        last has come (:class:`monitor.server.forward.ForwardReceiver`): a batch call of thousands
        of rows was dropped whole as ``too_large``. False when it would take more than
        :data:`MAX_FRAGMENTS` (nothing sent); a part that cannot be sent drops the event under its
        reason, the rest unsent (the sidecar lets the parts it holds go after a while)."""
        size = self._fragment_size()
        n = -(-len(piece) // size)
        if n > MAX_FRAGMENTS:
            return False
        self._fragment_id += 1
        for i in range(n):
            if self._give_up:
                self._count_drop("shutdown_timeout", 1)
                return True
            part = {"id": self._fragment_id, "i": i, "n": n, "data": piece[i * size:(i + 1) * size]}
            if not self._send([], fragment=part):
                return True
        return True

    def _send(self, pieces: list[str], fragment: dict[str, Any] | None = None) -> bool:
        """Send ``pieces`` (events' JSON) in one datagram, or one ``fragment`` of an event's."""
        events = len(pieces) if fragment is None else 1  # what a failure drops
        sent = len(pieces) if fragment is None else int(fragment["i"] == fragment["n"] - 1)
        peer = self._peer_file()
        if self._seq and (self._peer_lost or (peer is not None and self._peer is not None and peer != self._peer)
                          or (self._last_sent is not None and self._now() - self._last_sent > SESSION_IDLE_S)):
            self._new_session()
        self._seq += 1
        totals = self._dropped_totals()
        fields: dict[str, Any] = {"v": WIRE_VERSION, "sender": self.sender_id, "seq": self._seq, "model": self.model,
                                  "dropped": self._session_totals(totals)}
        counted = self._session_totals(self._reported) if self._seq > 1 else {}
        if counted:
            fields["counted"] = counted
        if self.output_kind is not None:
            fields["kind"] = self.output_kind
        if fragment is not None:
            fields["fragment"] = fragment
        head = json.dumps(fields, separators=(",", ":"))
        payload = (head[:-1] + ',"events":[' + ",".join(pieces) + "]}").encode("utf-8")
        try:
            sock = self._socket()
            if self.transport == "unix":
                sock.sendto(payload, self.address)
            else:
                sock.send(payload)
                # a closed port answers with an ICMP error that the kernel reports on the *next*
                # send, which it then refuses: every other datagram would go nowhere uncounted. On
                # loopback the error is already pending when send returns; reading it clears it
                pending = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if pending:
                    raise OSError(pending, os.strerror(pending))  # ConnectionRefusedError for ECONNREFUSED
        except (FileNotFoundError, ConnectionRefusedError) as err:
            self._say_away(err)
            self._count_drop("sidecar_unavailable", events)
            self._peer_lost = True
            self._reset_socket()
            return False
        except (BlockingIOError, socket.timeout):
            self._count_drop("socket_full", events)
            return False
        except OSError as err:
            reason = "too_large" if err.errno == errno.EMSGSIZE else "send_error"
            fix = ("call the model on smaller batches, or send large batches to the sidecar with POST /v1/events"
                   if reason == "too_large" else "check the forwarding address and the sidecar's socket")
            self._drop_said(reason, events, f"sending {events} event(s) ({len(payload)} bytes) to the sidecar "
                                                 f"at {self.target} failed: {err}", fix)
            self._reset_socket()
            return False
        self.stats.events_sent += sent
        self.stats.datagrams_sent += 1
        self._reported = totals
        self._last_sent, self._peer = self._now(), peer
        if self._away_since is not None:
            log.info("forwarding to %s: the sidecar is reached again; %d event(s) dropped while it was away, counted in "
                     "monitor_forward_events_dropped_total{reason=\"sidecar_unavailable\"}", self.target,
                     self._dropped_local.get("sidecar_unavailable", 0) - self._away_since)
            self._away_since = None
        return True

    def _say_away(self, err: OSError) -> None:
        """Log the first send of an outage that finds no sidecar (one line per outage, and one
        when a send reaches it again): a worker pointed at another socket than the sidecar's drops
        every event, and the drop counts ride on datagrams that never arrive, so this line is
        the only place that says so."""
        if self._away_since is not None:
            return
        self._away_since = self._dropped_local.get("sidecar_unavailable", 0)
        key = "server.forward.unix" if self.transport == "unix" else "server.forward.udp"
        log.warning("forwarding to %s: no sidecar listens there (%s); events are dropped and counted as "
                    "sidecar_unavailable until one does (the model is not affected). Fix: start `monitor serve` with "
                    "%s: %s, or point %s (or ForwardingMonitor's target) at the socket of the running sidecar",
                    self.target, err.strerror or type(err).__name__, key,
                    self.address if self.transport == "unix" else "%s:%d" % self.address, ENV_TARGET)

    def _reset_socket(self) -> None:
        if self._sock is not None and self.transport == "udp":
            try:
                self._sock.close()
            finally:
                self._sock = None

    def send_pending(self) -> int:
        """Send everything queued now, in datagrams; returns the number of events handled."""
        handled = 0
        with self._send_lock:
            while True:
                events = self.queue.drain(self.batch_max)
                if not events:
                    break
                handled += len(events)
                if self._give_up:
                    self._count_drop("shutdown_timeout", len(events))
                    continue
                done = [0]  # events of this drain sent or counted as dropped so far
                try:
                    self._send_events(events, done)
                except Exception:  # noqa: BLE001 - what this drain still held is counted, never lost unseen
                    if "internal_error" not in self._dropped_local:
                        log.exception("model %r: forwarding failed; the events it held are dropped and counted as "
                                      "internal_error, further ones without a log line", self.model)
                    self._count_drop("internal_error", len(events) - done[0])
            if not handled and self._dropped_totals() != self._reported:
                self._send([])  # report new drop counts even when nothing else flows
        return handled

    def _send_events(self, events: list[Any], done: list[int]) -> None:
        """Encode ``events`` into datagrams and send them, adding to ``done[0]`` each event sent or
        counted as dropped (so that a failure half-way counts only the rest)."""
        pieces: list[str] = []
        size = 200
        for ev in events:
            try:
                if ev[0] == PREDICTION and ev[6] is not None and not _plain_ids(ev[6]):
                    ev = self._sendable_request_id(ev)
                piece = encode_event(ev, self._argument_unreadable, self.output_kind)
            except UNSERIALIZABLE as err:  # the caller's values, this event only (another error: send_pending's)
                fix = ("give ForwardingMonitor(output_kind=...) the model's output.kind, as the sidecar's config declares "
                       "it: outputs holding values JSON cannot write are then sent as that kind reads them; or make the "
                       "outputs plain numbers or text" if isinstance(err, _NeedsOutputKind) else
                       "make the inputs and outputs plain rows (lists, numpy arrays, DataFrames), e.g. "
                       "watch(..., inputs=lambda req: req.instances, outputs=lambda answer: "
                       "answer['probabilities']) for a request object or a dict")
                self._drop_said("unserializable", 1, f"an event could not be written as JSON to forward it "
                                f"({_error_text(err)})", fix)
                done[0] += 1
                continue
            if len(piece) + 200 > self.max_datagram_bytes:
                if pieces:  # in order: what was gathered before it goes first
                    if self._give_up:
                        break
                    self._send(pieces)
                    done[0] += len(pieces)
                    pieces, size = [], 200
                if self._give_up:
                    break
                if not self._send_fragments(piece):
                    try:
                        rows = f"{len(ev[2])} rows, " if ev[0] == PREDICTION else ""
                    except TypeError:
                        rows = ""
                    self._drop_said("too_large", 1, f"an event ({rows}{len(piece)} bytes as JSON) is larger than "
                                    f"{MAX_FRAGMENTS} forwarding datagrams ({self.max_datagram_bytes} bytes each over "
                                    f"{self.transport})", "call the model on smaller batches, or send large batches to "
                                    "the sidecar with POST /v1/events")
                done[0] += 1
                continue
            if size + len(piece) + 1 > self.max_datagram_bytes and pieces:
                if self._give_up:
                    break
                self._send(pieces)
                done[0] += len(pieces)
                pieces, size = [], 200
            pieces.append(piece)
            size += len(piece) + 1
        if self._give_up:
            self._count_drop("shutdown_timeout", len(events) - done[0])
            done[0] = len(events)
        elif pieces:
            self._send(pieces)
            done[0] += len(pieces)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.queue.wait(self.flush_interval_s)
            try:
                self.send_pending()
            except Exception:  # noqa: BLE001 - the sender thread must survive anything (send_pending counts its events)
                log.debug("forwarding sender step failed", exc_info=True)
        self.send_pending()

    def _after_fork(self) -> None:
        """In a forked worker (gunicorn --preload): a fresh queue, socket and sender thread (started
        at the child's first event); the parent's queued events stay the parent's."""
        q = self.queue  # kept in place: decorators hold references to its deque
        q.after_fork()  # the parent's events (and their bytes) were not inherited; fresh lock
        q._dropped, q._sampled_out = {}, 0
        self._send_lock = threading.Lock()
        self._sock = None
        self._pid = os.getpid()
        self.sender_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = ForwardStats()
        self._seq = 0
        self._dropped_local, self._reported = {}, {}
        self._reset_session_state()
        self._reset_said()
        self._give_up = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"monitor-forward-{self.model}", daemon=True)
        if not self.closed:
            # started when this process first forwards an event: a child that never does (a
            # multiprocessing pool's worker, a DataLoader's) runs no thread
            q.on_first_event = self._start_after_fork

    def _start_after_fork(self) -> None:
        if not self.closed:
            self._thread.start()

    def flush(self, timeout: float | None = None) -> None:
        """Send what is queued now (synchronously)."""
        self.send_pending()

    def counters(self) -> ForwardStats:
        return ForwardStats(self.stats.events_sent, self.stats.datagrams_sent, self._dropped_totals())

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, waiting ``timeout`` seconds at most; what is still unsent then is
        counted as dropped (``shutdown_timeout``), so that :meth:`counters` are whole when the
        process exits."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        self.queue.wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():  # still sending: count the rest instead (one datagram may finish)
                before = self._dropped_local.get("shutdown_timeout", 0)
                self._give_up = True
                self._thread.join(self.send_timeout_s + 5.0)
                log.warning("model %r: close() waited %.1f s for the forwarding sender; %d event(s) not sent are "
                            "dropped, counted as shutdown_timeout in this process's counters (the sidecar does not "
                            "hear of them). Fix: close(timeout=...) longer, or a less loaded host", self.model, timeout,
                            self._dropped_local.get("shutdown_timeout", 0) - before)
        else:
            self.send_pending()
        self.queue.closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "ForwardingMonitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ForwardingMonitor(model={self.model!r}, target={self.target!r})"


_SHARED: dict[tuple[str, str], ForwardingMonitor] = {}
_SHARED_LOCK = threading.Lock()


def get_forwarding_monitor(model: str = "default", target: str | None = None, **kwargs: Any) -> ForwardingMonitor | None:
    """The process-wide forwarding sink of ``model`` (created on first use), for
    ``watch(..., forward_to=...)``-style wiring: ``target`` defaults to ``$MONITOR_FORWARD``;
    returns None when neither is set (then the caller uses an in-process Monitor)."""
    target = target or os.environ.get(ENV_TARGET)
    if not target:
        return None
    with _SHARED_LOCK:
        fm = _SHARED.get((model, target))
        if fm is None or fm.closed:
            fm = _SHARED[(model, target)] = ForwardingMonitor(model, target, **kwargs)
        return fm
