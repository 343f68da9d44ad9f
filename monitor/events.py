"""Raw events as the caller enqueues them, and their documented JSON form.

On the hot path an event is a plain tuple (the cheapest thing Python can build): the worker
converts them to columnar batches. The same events, written as JSON lines, are the format of
``monitor replay`` logs and of the sidecar's ``POST /v1/events``:

``{"type": "prediction", "model": "iris", "timestamp": 1700000000.0, "inputs": [[...]],
"outputs": [[...]], "client": "key-1", "request_id": "r1", "segment": "eu", "latency_s": 0.004}``

``{"type": "feedback", "model": "iris", "timestamp": 1700000100.0, "request_ids": ["r1"],
"labels": ["setosa"]}``

``{"type": "error", "model": "iris", "timestamp": ..., "exception": "ValueError", "latency_s": 0.001}``

``type`` defaults to ``prediction``; ``model`` may be omitted when one model is served; inputs
are a row (list or object of feature name to value) or a list of rows; ``timestamp`` is Unix
seconds (or an RFC 3339 string) and defaults to the time of receipt. ``client`` and ``segment``
are one value for the event's rows or a list of one per row (null: the row has none), as
``observe`` takes them (a segment may be a finite number too, read as in process: ``3.0`` is ``"3"``). ``segment`` is cut to :data:`MAX_LABEL_CHARS` characters (a segment is a
metric label; the monitor keeps one per remembered prediction); a ``client`` over
:data:`MAX_ID_CHARS` characters is kept as its digest (:func:`id_key`), the key the probing
detector tracks such a client by in code as well: bounded in length, and never two clients made
one, as a cut would make two long tokens that share their first characters.
"""

from __future__ import annotations

import logging
import math
import numbers
import struct
from hashlib import blake2b
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.multilabel_truth import FORMS, TruthError, read_truth

if TYPE_CHECKING:
    from monitor.once import Once

__all__ = [
    "UnreadableValues",
    "value_text",
    "PREDICTION",
    "ERROR",
    "FEEDBACK",
    "EventFormatError",
    "MAX_LABEL_CHARS",
    "MAX_REQUEST_ID_CHARS",
    "MAX_ID_CHARS",
    "id_key",
    "MAX_EXCEPTION_CHARS",
    "request_id_text",
    "json_kind",
    "row_text",
    "segment_text",
    "whole_number_text",
    "float_text",
    "float32_text",
    "ParsedEvent",
    "parse_event",
    "check_feedback_labels",
    "check_for_model",
    "label_problem",
    "LABEL_FIX",
    "read_label",
    "describe_value",
    "client_text",
    "caller_text",
    "CallerValueError",
    "decimal_digits",
    "MAX_LABEL_BITS",
    "MAX_REGRESSION_LABEL",
    "parse_timestamp",
    "feedback_lists",
    "error_event",
    "is_missing",
    "is_dataframe",
    "say_unreadable_timestamp",
]

# Tuple layouts (index 0 is the kind):
#   (PREDICTION, ts, inputs, outputs, latency_s, client, request_id, segment, embedding)
#   (ERROR, ts, exception_type_name, latency_s, client)
#   (FEEDBACK, ts, request_ids, labels)
PREDICTION = 0
ERROR = 1
FEEDBACK = 2

#: Characters of a ``segment`` kept (a client is not cut, whether from the event format,
#: ``observe``, the proxy's client header or CloudEvents: kept as a digest past :data:`MAX_ID_CHARS`).
MAX_LABEL_CHARS = 200

#: Characters a request id may have: ids are UUIDs, keys, hashes (tens of characters; a composite
#: key a few hundred). A longer one is no id but the request itself or another value sent by
#: mistake, and one id for a call of many rows becomes ``<id>/<row>`` for each row: an id of a
#: megabyte on a call of 2,000 rows held 2 GB in the worker. Over HTTP it is refused; in code the
#: row is kept without it, counted (``monitor_row_arguments_dropped_total{argument="request_id"}``).
MAX_REQUEST_ID_CHARS = 1024

#: Request ids and client ids up to this length are kept as they are; longer ones as a
#: 65-character digest (:func:`id_key`).
MAX_ID_CHARS = 256


def id_key(rid: str) -> str:
    """The key under which a request id is remembered and a client tracked: the id itself, or for
    an id longer than :data:`MAX_ID_CHARS` a digest of it (``#`` and 64 hex digits: 256 bits, so
    two ids never share one in practice; the ``#`` keeps it apart from the short ids that would
    not be digested). The digest of a digest is itself, so an id may be taken so more than once."""
    if len(rid) <= MAX_ID_CHARS:
        return rid
    return "#" + blake2b(rid.encode("utf-8", "surrogatepass"), digest_size=32).hexdigest()


#: Characters of an error's exception type name kept: it is the ``exception`` label of
#: ``monitor_errors_total`` (a type's name is tens of characters; a longer one is a message passed
#: where the name goes). Code, forwarding and the HTTP intake cut it alike.
MAX_EXCEPTION_CHARS = 100

#: Integers with more bits than this are no class (a class index, or a numeric class name, is far
#: shorter): such a label is invalid (``str()`` refuses past 4,300 digits).
MAX_LABEL_BITS = 256
#: The largest magnitude of a regression label: beyond about 1e154 its squared error is past
#: float64's range, and one such label made the window's RMSE infinite (absent) and its bias NaN
#: until it left the window. No measured quantity comes near (1e80 is the atoms of the universe).
MAX_REGRESSION_LABEL = 1e150

_KINDS = {"prediction": PREDICTION, "error": ERROR, "feedback": FEEDBACK}
#: What a forwarding worker's prediction may hold besides (:func:`parse_event`): the length of a
#: long streamed text answer whose first characters are its ``outputs`` (:func:`_text_prefix`),
#: and which of its per-row arguments the worker could not read (:class:`UnreadableValues`).
_FORWARDED_KEYS = {"outputs_length", "unreadable"}
_KEYS = {
    PREDICTION: {"type", "model", "timestamp", "inputs", "outputs", "client", "request_id", "segment", "latency_s", "embedding"},
    ERROR: {"type", "model", "timestamp", "exception", "latency_s", "client"},
    FEEDBACK: {"type", "model", "timestamp", "request_ids", "labels", "request_id", "label"},
}


def _one_value(x: Any) -> bool:
    """Whether a feedback argument is one value (a str, a number, a numpy scalar), not a sequence;
    a caller's object whose ``__getattr__`` or ``__class__`` raises is one (its error went up out of
    ``feedback``: ``isinstance`` reads ``__class__`` when the type is not the one asked for)."""
    try:
        return isinstance(x, (str, bytes)) or not hasattr(x, "__iter__") or getattr(x, "ndim", 1) == 0
    except Exception:  # noqa: BLE001 - the caller's object's own attribute lookup
        return True


def event_time(timestamp: Any) -> float:
    """Unix seconds from what a caller passed as ``timestamp=``: a number, or a ``datetime``
    (aware; a naive one is local time, as ``datetime.timestamp`` reads it); a ValueError naming
    the fix otherwise, also for a caller's object whose conversion raises anything else (it went
    up through ``observe`` as an internal error, and out of ``feedback`` and ``observe_error``), or
    whose ``__class__`` raises (``isinstance`` reads it: a proxy, a lazy object)."""
    if type(timestamp) is bool:  # bool has no subclasses; isinstance would run a proxy's __class__
        raise ValueError("timestamp must be Unix seconds (a number) or a datetime, not a boolean")
    try:
        if hasattr(timestamp, "timestamp") and callable(timestamp.timestamp):
            return float(timestamp.timestamp())
        return float(timestamp)
    except Exception:  # noqa: BLE001 - TypeError, ValueError, or the caller's object's own error
        raise ValueError(f"timestamp must be Unix seconds (a number) or a datetime, got {describe_value(timestamp)[:40]}") from None


def say_unreadable_timestamp(said: "Once", model: str, call: str, timestamp: Any) -> None:
    """Log, the first time for ``call`` (``observe``, ``observe_error``), that a caller's
    ``timestamp=`` is not a time and the call was dropped (the caller counts it in
    ``monitor_events_dropped_total{reason="invalid_timestamp"}``). One line per process and call,
    not per event: the same bad argument comes with every call. ``ForwardingMonitor`` and
    ``observe_error`` dropped such calls with no line at all, only ``Monitor.observe`` said it."""
    if said.first(call):
        logging.getLogger("monitor").warning(
            "model %r: %s(timestamp=%.40s) is not a time: the call is not recorded (counted in "
            "monitor_events_dropped_total{reason=\"invalid_timestamp\"}), further ones without a log line. Fix: pass "
            "Unix seconds or a datetime", model, call, describe_value(timestamp))


def error_event(exception: BaseException | str, latency_s: float | None, client: str | None,
                when: Any) -> tuple[Any, ...] | None:
    """The queue tuple of a call where the model raised, at ``when`` (a ``timestamp=`` as a
    caller passes it, or a clock to read), or None when that is not a time. An empty type name is
    ``Exception``, as an event that names none is: the label ``exception=""`` is no label to
    Prometheus (and a forwarding worker's such event was refused, ``bad_exception``). Text is read
    by its type and str's own methods (``isinstance`` runs a caller's object's ``__class__``, and a
    str subclass may override the slicing and truth that cut it: each raised out of the call)."""
    if issubclass(type(exception), str):
        name = str.__str__(exception)[:MAX_EXCEPTION_CHARS] or "Exception"  # type: ignore[arg-type]
    else:
        name = type(exception).__name__[:MAX_EXCEPTION_CHARS] or "Exception"
    try:
        ts = when() if callable(when) else event_time(when)
    except ValueError:
        return None
    return (ERROR, ts, name, latency_s, client)


def is_dataframe(obj: Any) -> bool:
    """A pandas DataFrame, told without importing pandas."""
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns") and hasattr(obj, "to_numpy")


def _frame_column(x: Any, what: str) -> Any:
    """A pandas DataFrame given to ``feedback``: its one column's values (``df[["label"]]``, as a
    column vector ``(n, 1)`` is read). Why: a DataFrame has no ``reshape`` or ``tolist``, so a
    one-column one raised AttributeError from inside the monitor, and iterating one gives its
    column names, which were taken as the ids or labels when they happened to be as many. One of
    several columns is a ValueError naming the fix."""
    if not is_dataframe(x):
        return x
    if len(x.columns) != 1:
        raise ValueError(f"feedback: {what} is a DataFrame of {len(x.columns)} columns "
                         f"({', '.join(map(str, list(x.columns)[:5]))}); give its one column of {what}, e.g. df[\"label\"]")
    return x.iloc[:, 0].to_numpy()


def _column_values(x: Any) -> Any:
    """A column vector ``(n, 1)`` (``y.reshape(-1, 1)``, ``df[["request_id"]].values``) as its
    ``n`` values, anything else as given. Why: ids and labels are read alike; a column of ids was
    iterated as one-element arrays whose text (``"[17]"``) no prediction's id is, so every label
    of such a call counted as ``unknown_id`` while the same column of labels joined. A caller's
    object whose ``__getattr__`` raises is as given (its error went up out of ``feedback``)."""
    try:
        column = getattr(x, "ndim", 1) == 2 and getattr(x, "shape", (0, 0))[1] == 1 and hasattr(x, "reshape")
    except Exception:  # noqa: BLE001 - the caller's object's own attribute lookup
        return x
    return x.reshape(-1) if column else x


def feedback_lists(request_ids: Any, labels: Any) -> tuple[list[Any], list[Any]]:
    """The ids and labels of a ``feedback(request_ids, labels)`` call as two lists of one length.

    One id (a str or int, a numpy scalar taken from an array, or None, which is counted as an
    unknown id) goes with one label; a sequence of ids with as many labels, else a ValueError
    naming the fix (a programming mistake, not a late or missing label)."""
    request_ids = _column_values(_frame_column(request_ids, "request_ids"))
    labels = _column_values(_frame_column(labels, "labels"))
    if _one_value(request_ids):
        request_ids, labels = [request_ids], [labels]
    ids = _feedback_values(request_ids, "request_ids")
    if _one_value(labels):  # "fraud" is one label, not five
        if len(ids) != 1:
            raise ValueError(f"feedback: {len(ids)} request_ids but one label ({describe_value(labels)[:40]}); give a list "
                             "of one label per id")
        labels = [labels]
    labs = _feedback_values(labels, "labels")
    if len(ids) != len(labs):
        raise ValueError(f"feedback: {len(ids)} request_ids but {len(labs)} labels; give one label per id")
    return ids, labs


def _feedback_values(values: Any, what: str) -> list[Any]:
    """The values of a ``feedback`` argument given as a sequence (labels as ``tolist()`` gives
    them); a ValueError naming it and the fix when they cannot be taken (a caller's object whose
    iteration raises: the error went up out of ``feedback`` as it came)."""
    try:
        return list(values.tolist() if what == "labels" and hasattr(values, "tolist") else values)
    except Exception as err:  # noqa: BLE001 - the caller's object's own error
        raise ValueError(f"feedback: the {what} could not be read ({type(err).__name__} taking the values of a "
                         f"{type(values).__name__}); give a list (or an array, a Series) of {what}, one per "
                         f"{'request id' if what == 'labels' else 'label'}") from None


class EventFormatError(ValueError):
    """An event in JSON form is malformed. ``field`` names the offending key, ``reason`` is a
    short machine-readable reason used as a counter label."""

    def __init__(self, field: str, message: str, reason: str = "malformed") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ParsedEvent:
    model: str | None
    event: tuple[Any, ...]
    #: A feedback event's labels were sent as ``labels`` (a list), not as one ``label``: how a
    #: refusal names the field (``labels[3]`` or ``label``).
    many_labels: bool = True
    #: A prediction event sent without ``outputs``, or with ``"outputs": null``: accepted for a
    #: model of ``output.kind: none`` only, which :func:`check_for_model` tells once the model is known.
    outputs_missing: bool = False
    #: ``outputs`` was sent, as null (a predict that returned nothing): said so when refused.
    outputs_null: bool = False
    #: Parsed as a forwarding worker's event (:func:`parse_event`): what the model's pipeline
    #: counts its own way is not refused by :func:`check_for_model`.
    forwarded: bool = False


def parse_timestamp(value: Any, default: float, forwarded: bool = False) -> float:
    """Unix seconds from a number or an RFC 3339 string; ``default`` when absent. ``forwarded``
    (:func:`parse_event`): a number is taken as it is, as a caller's ``timestamp=`` is in code
    (the pipeline counts a NaN or infinite one's rows ``invalid_timestamp``)."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise EventFormatError("timestamp", "must be Unix seconds or an RFC 3339 string, not a boolean", "bad_timestamp")
    if isinstance(value, (int, float)):
        ts = float(value)
    elif isinstance(value, str):
        from datetime import datetime

        try:
            # RFC 3339 allows a lower-case t and z
            parsed = datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
        except ValueError:
            raise EventFormatError("timestamp", f"cannot read {value[:40]!r}; use Unix seconds or RFC 3339", "bad_timestamp") from None
        if parsed.tzinfo is None:  # read in the agent's own time zone, it would move with the host's
            raise EventFormatError("timestamp", f"{value[:40]!r} has no UTC offset; write it as RFC 3339 does, e.g. "
                                                "2024-01-01T00:00:00Z or +02:00", "bad_timestamp")
        ts = parsed.timestamp()
    else:
        raise EventFormatError("timestamp", f"must be a number or a string, got {json_kind(value)}", "bad_timestamp")
    if (not math.isfinite(ts) or ts < 0) and not (forwarded and not isinstance(value, str)):
        raise EventFormatError("timestamp", f"must be finite and non-negative, got {value!r}", "bad_timestamp")
    return ts


def _opt_str(obj: dict[str, Any], key: str, cut: int | None = None) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return str(v)[:cut]
    raise EventFormatError(key, f"must be a string, got {json_kind(v)}", f"bad_{key}")


_ID_FIX = "a string or an integer (one per row as a list)"


def _json_id(value: Any, field: str, long_kept: bool = False) -> str | int:
    """A request id read from JSON: a string, or an integer (an integral float such as 17.0, as
    a pandas column with a missing value writes 17, is that integer, so that it joins 17). A whole
    float at or above 2**53 is read as :func:`float_text` reads it in Python (``"1e+20"``), not as
    one of the integers it may stand for: a prediction sent over HTTP then joins the label of the
    same float id given to ``feedback`` in Python, and the other way round. ``long_kept``: an id
    over :data:`MAX_REQUEST_ID_CHARS` is kept, for the model's readers to drop and count (a
    forwarded event's, :func:`parse_event`)."""
    if isinstance(value, str):
        if len(value) > MAX_REQUEST_ID_CHARS and not long_kept:
            raise EventFormatError(field, f"is {len(value):,} characters long ({value[:40]!r}...); a request id has at "
                                          f"most {MAX_REQUEST_ID_CHARS:,}. Fix: send the id the prediction is known by "
                                          "(a UUID, a key), not the request or its text", "bad_request_id")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value) if abs(value) < 2.0 ** 53 else (float_text(value) or repr(value))
    raise EventFormatError(field, f"must be {_ID_FIX}, got {json_kind(value)}", "bad_request_id")


def json_kind(value: Any) -> str:
    """How a JSON value is named in an error: its JSON type (``null``, ``a string``, not Python's
    ``NoneType``, ``str``), and the value when it is short."""
    kind = {bool: "a boolean", dict: "an object", list: "a list", type(None): "null", float: "a number", int: "a number",
            str: "a string"}.get(type(value), type(value).__name__)
    return f"{kind} ({value!r:.30})" if isinstance(value, (bool, float)) else kind


def _prediction_ids(value: Any, forwarded: bool = False) -> Any:
    """A prediction's ``request_id``, one or one per row (null: the row has none); ``forwarded``
    keeps an id over :data:`MAX_REQUEST_ID_CHARS`, which the row builder drops and counts."""
    if value is None:
        return None
    if isinstance(value, list):
        return [None if v is None else _json_id(v, f"request_id[{i}]", forwarded) for i, v in enumerate(value)]
    return _json_id(value, "request_id", forwarded)


def decimal_digits(v: int) -> int:
    """The number of decimal digits of ``v`` (its sign aside), which ``len(str(v))`` cannot give
    past 4,300 digits (``str()`` refuses them)."""
    v = abs(v)
    digits = int(max(v.bit_length() - 1, 0) * math.log10(2)) + 1  # 2**(b-1) <= v: this many, or one more
    return digits + 1 if 10 ** digits <= v else digits


def describe_value(v: Any) -> str:
    """A caller's value as a log line quotes it: its repr, at most 60 characters, or its type when
    printing it raises (the value is the caller's: its ``__repr__`` may fail)."""
    try:
        return repr(v)[:60]
    except Exception:  # noqa: BLE001
        return f"a {type(v).__name__} that cannot be printed"


def is_missing(v: Any) -> bool:
    """A value that stands for "none" in the caller's data (None, NaN: a float column's gap,
    pandas' NA and NaT, numpy's ``np.ma.masked``: a masked array's element): a segment or request
    id given so is unset, not the text ``nan`` (or ``--``, the masked element's text, which a
    label sent for the id ``"--"`` joined), a label given so names no class."""
    if v is None:
        return True
    kind = type(v)  # not isinstance: it runs a caller's object's __class__ (a proxy's may raise)
    if issubclass(kind, float) or (kind.__module__ == "numpy" and getattr(v, "ndim", None) == 0):
        try:
            return bool(v != v)
        except Exception:  # noqa: BLE001 - several answers, or a caller's object (in a 0-d array) whose != raises
            return False  # anything: no missing value, as nan_like reads it (the call was lost as internal_error)
    return kind.__name__ in _MISSING_TYPES


#: The types whose values stand for none, by name (pandas and numpy not imported on the caller's
#: path): pandas' NA and NaT, and numpy's ``np.ma.masked`` (a 0-d masked array, module
#: ``numpy.ma.core``), as :func:`monitor.cell_values.nan_like` reads it among input values.
_MISSING_TYPES = frozenset({"NAType", "NaTType", "MaskedConstant"})


def value_text(v: Any) -> str:
    """``str(v)``, but text's own characters for a ``str`` instance: a member of a str-mixin
    ``Enum`` (``class Tier(str, Enum)``, a FastAPI or pydantic model's field) is the text of its
    value (``gold``), as JSON writes it and as it compares (``Tier.GOLD == "gold"``), not its
    ``str()`` (``Tier.GOLD``). Why: every reader of text (a category, a text feature or answer, a
    class name, a client, a segment, a request id) read such a member as ``Tier.GOLD`` in process,
    and as ``gold`` where it came as JSON (forwarded, POST /v1/events): another category or class
    on each side. May raise for an object whose ``str()`` raises."""
    return str.__str__(v) if issubclass(type(v), str) else str(v)  # by type: isinstance runs v's __class__


class CallerValueError(Exception):
    """A caller's value raised while it was read (its ``str()``, its iteration, an attribute
    lookup), with ``error``, the name of what it raised. Raised around the caller's own code only
    (:func:`caller_text`, :func:`monitor.row_arguments.per_row_values`), so that a reader catching it
    takes the value as unreadable (counted as the caller's), and an error of the monitor's own
    code goes on to be counted as the monitor's internal error. Why: the row readers and a
    forwarding worker caught any exception around their whole reading as "cannot be read", so
    that a bug of theirs would have been counted and said as the caller's value."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(type(error).__name__)  # not str(error): a caller's exception's own __str__ may raise
        self.error = type(error).__name__


def caller_text(v: Any) -> str:
    """``str(v)`` as plain text (a ``__str__`` may return a str subclass, whose methods are its
    own); :class:`CallerValueError` for what that raises (the value's ``__str__``; ``str()``
    refuses an integer of over 4,300 digits)."""
    try:
        text = str(v)
        return text if type(text) is str else str.__str__(text)
    except Exception as err:  # noqa: BLE001 - the caller's value's own code (or str()'s digit limit)
        raise CallerValueError(err) from err


def row_text(v: Any, limit: int | None = None) -> str | None:
    """One row's segment or request id as text: missing values are none, bytes are decoded
    (``b"eu"`` is ``eu``, not ``b'eu'``), a str subclass is its text (by str's own methods),
    segments are cut as the HTTP intakes cut them. The same on both sides of a label join: a
    prediction's id and its label's id read alike. :class:`CallerValueError` when another
    value's text cannot be taken. Told by type: isinstance runs a caller's object's ``__class__``."""
    if is_missing(v):
        return None
    kind = type(v)
    if kind is str:
        text = v
    elif issubclass(kind, (bytes, bytearray)):
        text = (bytes.decode if issubclass(kind, bytes) else bytearray.decode)(v, "utf-8", "replace")
    else:
        text = str.__str__(v) if issubclass(kind, str) else caller_text(v)
    return text if limit is None else text[:limit]


def client_text(v: Any) -> str | None:
    """One row's client as text, as :func:`row_text` reads it (never cut: a long one is tracked by
    its digest, :func:`id_key`), an integer too long for ``str()`` (past 4,300 digits, which
    raised out of the row builder and lost the call) as its hex: one client, as any other id."""
    try:
        return row_text(v)
    except CallerValueError:
        if issubclass(type(v), int):
            return hex(v)
        raise


def request_id_text(v: Any) -> str | None:
    """One row's request id as text, as :func:`row_text` reads it, except that a float reads as
    :func:`float_text` writes it: ids pass through pandas columns with a missing value (a column
    of ints becomes float64), so a prediction's id ``5.0`` and its label's id ``5`` are the same
    call (they never joined), and a float32 id reads alike boxed to a Python float or not. Empty
    text (a CSV's gap, an unset header or field) is no id, as None is: every prediction given it
    was held under ``""``, and a label for ``""`` joined whichever came last."""
    text = float_text(v)
    return (row_text(v) or None) if text is None else text


def segment_text(v: Any) -> str | None:
    """One row's segment as text, as :func:`row_text` reads it (cut to :data:`MAX_LABEL_CHARS`),
    except that a float reads as :func:`float_text` writes it, as request ids and categorical
    values do: segments are told apart by their text, and a column of integer segments with one
    missing value passes through pandas as float64, so ``3.0`` was a segment of its own beside
    the integer's ``3``."""
    text = float_text(v)
    return row_text(v, MAX_LABEL_CHARS) if text is None else text[:MAX_LABEL_CHARS]


def whole_number_text(v: Any) -> str | None:
    """The integer's text for a float (Python's or numpy's) holding a finite whole number under
    2**53 (``7.0`` is ``"7"``, ``-0.0`` is ``"0"``), else None: how request ids and categorical
    values read numbers. A column of integers passes through float64 as soon as one of its values
    is missing (pandas), so the same code arrives as ``7`` from one source and ``7.0`` from
    another; above 2**53 a float no longer holds every integer, so it is left to its own text
    (:func:`float_text`)."""
    kind = type(v)  # not v.__class__: a caller's object's may raise
    if kind is float or kind.__name__ in _FLOAT_TYPES:
        f = float(v)
        if f.is_integer() and abs(f) < 2.0 ** 53:
            return str(int(f))
    return None


def float_text(v: Any) -> str | None:
    """A float's text (Python's or numpy's; None for NaN, a gap, and for any other value), one
    per value whichever way it came: a whole number under 2**53 is the integer's text (see
    :func:`whole_number_text`); a value float32 holds exactly is float32's shortest text, numpy's
    (``np.float32(1.1)`` and the Python float it boxes to, ``1.100000023841858``, are both
    ``"1.1"``); any other value float64's shortest text (``repr``: ``0.1`` is ``"0.1"``).

    Why: a float32 keeps its type as a numpy scalar (dict rows, object arrays) but becomes a
    Python float in ``DataFrame.to_dict``, ``ndarray.tolist``, pyarrow's ``to_pylist`` and a JSON
    encoder, and read as each one's own text the same category was two. The cost: a float64 that
    float32 holds exactly reads as that float32 (``1.100000023841858`` meets ``1.1``), which in
    practice only a value that went through float32 is (float32 holds one float64 in 2**29 near
    any value, and those have long texts unless float32's is as short). Whole numbers at or above
    2**53 stay floats (``"9007199254740994.0"``, ``"1.1529215e+18"`` for 2**60, which float32
    holds): such a float may stand for any of several integers, so it is never read as one of
    them; an integer code or id that large matches its float on neither side (keep it whole:
    pandas' nullable ``Int64``, or text)."""
    kind = type(v)  # not v.__class__: a caller's object's may raise (a proxy's: the call was lost)
    if kind is not float and kind.__name__ not in _FLOAT_TYPES:
        return None
    f = float(v)
    if f.is_integer() and abs(f) < 2.0 ** 53:
        return str(int(f))
    if f != f:
        return None
    text = float32_text(f)
    return repr(f) if text is None else text


def float32_text(f: float) -> str | None:
    """numpy's shortest text of ``f`` as a float32 (``"1.1"``, ``"1e+06"``: numpy, and so pandas'
    ``to_csv`` of a float32 column, writes a float32 of a million or more in exponent form) when
    float32 holds ``f`` exactly, else None (NaN included): what :func:`float_text` reads such a
    value as, and how :func:`monitor.cell_values.number_as_text` knows text a float32 wrote."""
    if abs(f) <= _FLOAT32_MAX and _FLOAT32.unpack(_FLOAT32.pack(f))[0] == f:  # float32 holds it
        global _np_float32
        if _np_float32 is None:  # numpy imported on first use, not on ``import monitor``'s path
            from numpy import float32 as _np_float32
        return str(_np_float32(f))
    return None


#: The largest finite float32 (struct's pack refuses larger values).
_FLOAT32_MAX = 3.4028234663852886e38
#: A float32's bytes: packed and unpacked, a float rounds to float32 (twice numpy's scalar's speed).
_FLOAT32 = struct.Struct("f")
#: numpy's float32 type once :func:`float32_text` first needs it (an import statement and lookup per
#: call were about 15% of its cost)
_np_float32: Any = None
#: numpy's float scalar types, by name (not imported on the caller's path)
_FLOAT_TYPES = frozenset({"float64", "float32", "float16", "longdouble"})


def _text_prefix(length: Any, outputs: Any) -> Any:
    """A forwarded long streamed text answer, sent as its first characters and their whole
    ``outputs_length``: a :class:`~monitor.text_prefix.TextPrefix`, which the text descriptors read
    as the whole answer. Why: the worker keeps only what the descriptors read of a streamed
    answer, and sent whole, one past some 6 MB of JSON was dropped as ``too_large``."""
    from monitor.text_prefix import MAX_TEXT_CHARS, TextPrefix

    if (type(length) is not int or not isinstance(outputs, str) or len(outputs) != MAX_TEXT_CHARS
            or not MAX_TEXT_CHARS < length <= 2 ** 53):
        raise EventFormatError("outputs_length", f"must be the length of a text answer of which 'outputs' holds the "
                                                 f"first {MAX_TEXT_CHARS:,} characters, got {str(length)[:40]!r}; only "
                                                 "ForwardingMonitor writes it", "bad_outputs_length")
    return TextPrefix(outputs, length)


class UnreadableValues(list):
    """A prediction's client, segment or request id whose values or text could not be taken (a
    caller's object whose iteration or ``str()`` raises) in a forwarding worker, as the sidecar's
    row builder gets it: a per-row list of no values, so that its rows are counted in
    ``monitor_row_arguments_dropped_total`` as in process, with ``error``, the name of what was
    raised, so that the line saying it is the in-process one (``a call's segment for 2 row(s) could
    not be read (RuntimeError reading its values or their text)``). Why: sent as an empty list, the
    sidecar said "a call gave 0 values for 2 rows", a list the caller never gave. On the wire: the
    empty list, and ``"unreadable": {"segment": "RuntimeError"}`` beside it (:func:`parse_event`)."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


#: The arguments a forwarded prediction may name under ``unreadable``, by their place in the event.
_UNREADABLE_FIELDS = {"client": 5, "request_id": 6, "segment": 7}


def _unreadable(value: Any, event: tuple[Any, ...]) -> tuple[Any, ...]:
    """A forwarded prediction's event with the arguments its worker could not read (``unreadable``:
    argument name to the name of the error) as :class:`UnreadableValues`."""
    if not isinstance(value, dict) or not value or not all(
            k in _UNREADABLE_FIELDS and isinstance(v, str) for k, v in value.items()):
        raise EventFormatError("unreadable", f"must name the per-row arguments a worker could not read ({', '.join(_UNREADABLE_FIELDS)}) "
                                             f"with the error's name, got {json_kind(value)}; only ForwardingMonitor writes it",
                               "bad_unreadable")
    fields = list(event)
    for argument, error in value.items():
        fields[_UNREADABLE_FIELDS[argument]] = UnreadableValues(error[:100])
    return tuple(fields)


def _per_row_labels(value: Any, field: str, read: Callable[[str], str], *, floats: bool = False) -> Any:
    """A ``segment`` or ``client``: one value for the event's rows, or a list of one per row (null:
    the row has none), as ``observe`` takes them; each a string or an integer, its text as
    ``read`` keeps it. A 400 names an entry of another type (``client[1]``). With ``floats`` (a
    segment) a finite number is taken too, as :func:`float_text` reads it in process (``3.0`` is
    ``"3"``): a JSON encoder writes a pandas column of integer segments with a gap as floats."""
    def one(v: Any, where: str) -> str:
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            return read(str(v))
        text = float_text(v) if floats and type(v) is float and math.isfinite(v) else None
        if text is None:
            kinds = "a string or a finite number" if floats else "a string"
            rest = " (or null: none for the row)" if where != field else ", or a list of one per row"
            raise EventFormatError(where, f"must be {kinds}{rest}, got {json_kind(v)}", f"bad_{field}")
        return read(text)

    if value is None:
        return None
    if isinstance(value, list):
        return [None if v is None else one(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return one(value, field)


def _segment_text(text: str) -> str:
    """A segment as kept: cut to :data:`MAX_LABEL_CHARS` characters (a segment is a metric label)."""
    return text[:MAX_LABEL_CHARS]


def _feedback_lists(obj: dict[str, Any], forwarded: bool = False) -> tuple[list[Any], list[Any]]:
    """The ids and labels of a JSON feedback event, each checked: an id is a string or an
    integer, a label one class name, index or value, or a flat list (a multi-label model's
    ground truth, checked against the model by :func:`check_feedback_labels`), not an object
    or null. ``forwarded`` (:func:`parse_event`): the lists' shape only; each id that is no id
    (null, empty, too long) and each label is left for the label join to count."""
    if "request_id" in obj and "request_ids" in obj:
        raise EventFormatError("request_ids", "give request_id (one) or request_ids (a list), not both", "bad_request_id")
    if "label" in obj and "labels" in obj:
        raise EventFormatError("labels", "give label (one) or labels (a list), not both", "bad_label")
    many = "request_ids" in obj
    if many and "label" in obj or not many and "labels" in obj and "request_id" in obj:
        field = "label" if many else "labels"
        raise EventFormatError(field, "request_id goes with label (one of each), request_ids with labels (two lists of "
                                      "one length)", "bad_label")
    id_field = "request_ids" if many else "request_id"
    label_key = "labels" if "labels" in obj else "label"
    ids, labels = obj.get(id_field), obj.get(label_key)
    if id_field not in obj or label_key not in obj:
        raise EventFormatError(id_field if id_field not in obj else label_key,
                               "feedback needs request_id and label (or request_ids and labels)", "missing_feedback")
    if ids is None or ids == "":  # sent, but null (or empty): named as sent, not as a missing key
        raise EventFormatError(id_field, f"is {'null' if ids is None else 'empty'}; give the id the prediction was sent with",
                               "bad_request_id")
    if labels is None:
        raise EventFormatError(label_key, "is null; a missing label is not sent (late and missing labels are normal)",
                               "bad_label")
    if many:
        if not isinstance(ids, list):
            raise EventFormatError("request_ids", f"must be a list of ids, got {json_kind(ids)}; for one id write request_id",
                                   "bad_request_id")
        if not isinstance(labels, list):
            raise EventFormatError("labels", f"must be a list of one label per request id, got {json_kind(labels)}", "bad_label")
        ids = [_feedback_id(v, f"request_ids[{i}]", forwarded) for i, v in enumerate(ids)]
    else:
        if isinstance(ids, list):
            raise EventFormatError("request_id", "is one id; for several write request_ids", "bad_request_id")
        ids, labels = [_json_id(ids, "request_id", forwarded)], [labels]
    if len(labels) != len(ids):
        raise EventFormatError("labels", f"needs one label per request id ({len(ids)})", "feedback_length")
    for i, label in enumerate(() if forwarded else labels):
        # a flat list is a multi-label model's ground truth: whether the model is one, the
        # caller that resolved it checks (check_feedback_labels)
        if label is None or isinstance(label, dict) or isinstance(label, list) and not all(
                isinstance(v, (str, int, float)) for v in label):
            raise EventFormatError(f"labels[{i}]" if many else "label",
                                   f"must be one class (a name or an index) or value, or for a multi-label model {FORMS}; "
                                   f"got {json_kind(label) if not isinstance(label, list) else 'an array holding ' + _inner_kinds(label)}",
                                   "bad_label")
    return ids, labels


def _feedback_id(value: Any, field: str, forwarded: bool = False) -> str | int | None:
    """A feedback event's request id (:func:`_json_id`); empty text is refused as null is: it
    names no prediction (a prediction's empty id is read as none), and accepted it counted its
    label unknown_id after labels.early_wait, unsaid. ``forwarded``: null, empty and too long
    are kept, as ``feedback()`` in process takes them (the join counts their labels)."""
    if forwarded and (value is None or value == "" or isinstance(value, str)):
        return value
    if value == "":
        raise EventFormatError(field, "is empty; give the id the prediction was sent with", "bad_request_id")
    return _json_id(value, field)


def _inner_kinds(values: list[Any]) -> str:
    return ", ".join(sorted({json_kind(v) for v in values if not isinstance(v, (str, int, float))}))


def check_for_model(parsed: ParsedEvent, kind: str | None, classes: Sequence[str]) -> None:
    """Refuse an event the model of output ``kind`` cannot take, naming the field and the fix:
    a prediction without ``outputs`` unless the model's outputs are not monitored (``kind:
    none``, or ``None`` when the model is not known), and labels it cannot take
    (:func:`check_feedback_labels`). A forwarded event's null outputs and labels are the model
    pipeline's to count (:func:`parse_event`)."""
    if parsed.outputs_null and parsed.forwarded:
        pass  # a worker's call that returned nothing: its pipeline counts the rows rows_mismatch, as in process
    elif parsed.outputs_null and kind != "none":
        # accepted (202) and then counted in the worker as rows_mismatch: an HTTP sender never learnt it
        raise EventFormatError("outputs", "is null: the model (or the outputs= extractor) returned nothing. Fix: send the "
                                          "model's outputs for the inputs, one per input row; only a model whose outputs "
                                          "are not monitored (output.kind: none) may send null", "missing_outputs")
    elif parsed.outputs_missing and kind != "none":
        raise EventFormatError("outputs", "is required (the model's output for the inputs); a model whose outputs are not "
                                          "monitored (output.kind: none) may leave it out", "missing_outputs")
    if kind is not None and not parsed.forwarded:  # a worker's labels: its join counts those it cannot take invalid
        check_feedback_labels(parsed, kind, classes)


#: Why a single-label model's label is unusable, as :func:`read_label` says it: one short code
#: each, worded for a sender by :func:`label_problem`.
_NO_NUMBER, _NAN, _INFINITE, _TOO_LARGE, _NONE, _NOT_ONE, _TOO_MANY_DIGITS, _COMPLEX = range(8)


#: Labels that are no complex number, told at once (:func:`read_label`)
_PLAIN_LABELS = frozenset({float, int, str, bool})


def read_label(label: Any, regression: bool) -> tuple[Any, int | None]:
    """One label of a single-label model as the label join keeps it, and why it is unusable (a
    code, None when it is usable): the one rule the HTTP intake refuses by and the join counts
    ``invalid`` by, whatever the caller sent (JSON's values, numpy's or pandas' scalars, any object).

    A regression label is its value as a finite float of at most :data:`MAX_REGRESSION_LABEL` in
    size (beyond it its squared error overflows). A class label is kept as given (names and indices
    are looked up against the model's classes later), unless it stands for none (None, NaN, pandas'
    NA, a masked element), is several values (a list, an array, a mapping: a multi-label model's
    truth), is infinite, or is an integer of more than :data:`MAX_LABEL_BITS` bits (no class index
    is that long, and ``str()`` refuses past 4,300 digits). Booleans are labels (True is class 1,
    or 1.0). Text of a str subclass is read as its text (str's own, not the subclass's methods,
    which the join ran: its ``len()`` or ``float()`` raising lost the whole drain). May raise for
    an object whose conversions raise; the join counts that invalid too.
    """
    if type(label) is not str and issubclass(type(label), str):  # not isinstance: a proxy's __class__ may raise
        return read_label(str.__str__(label), regression)
    if isinstance(label, float):  # Python's and numpy's float64 (the usual labels): no complex, no array
        if label != label:
            return None, _NAN
        if regression:
            return (float(label), None) if abs(label) <= MAX_REGRESSION_LABEL else (None, _TOO_LARGE)
        return (label, None) if math.isfinite(label) else (None, _INFINITE)
    if is_missing(label):  # before float(): np.ma.masked would warn, pandas' NA raise
        return None, _NAN if isinstance(label, numbers.Real) else _NONE  # numpy's float32 NaN too
    if type(label) not in _PLAIN_LABELS:
        if type(label).__name__ == "ndarray" and label.ndim == 0:
            return read_label(label.item(), regression)  # a 0-d array is its one value, read as that value
        if isinstance(label, (list, tuple, dict, set)) or getattr(label, "ndim", 0) != 0:
            return None, _NOT_ONE  # a masked array of one value too, as an array of one is
        if isinstance(label, numbers.Complex) and not isinstance(label, numbers.Real):
            # numpy's complex number: float() kept its real part, with a ComplexWarning
            return None, _NO_NUMBER if regression else _COMPLEX
    if regression:
        try:
            value = float(label)
        except (TypeError, ValueError, OverflowError):
            return None, _NO_NUMBER
        if value != value:
            return None, _NAN
        return (value, None) if abs(value) <= MAX_REGRESSION_LABEL else (None, _TOO_LARGE)
    if isinstance(label, numbers.Integral) and not isinstance(label, bool) and int(label).bit_length() > MAX_LABEL_BITS:
        return None, _TOO_MANY_DIGITS
    if isinstance(label, numbers.Real) and not math.isfinite(label):
        return None, _INFINITE
    return label, None


def label_problem(label: Any, regression: bool) -> str | None:
    """What makes one label of a single-label model unusable (:func:`read_label`'s rule), said for
    the sender, or None."""
    code = read_label(label, regression)[1]
    if code is None:
        return None
    if code == _NO_NUMBER:
        return (f"is {json_kind(label)} ({describe_value(label)[:40]}), which is no number; a regression model's label "
                "is the true value")
    if code == _TOO_LARGE:
        value = float(label)
        return (f"is {'infinite' if math.isinf(value) else f'{value:.3g}'}, beyond the largest regression label "
                f"({MAX_REGRESSION_LABEL:.0e}: its squared error would overflow)")
    if code in (_NAN, _NONE):
        what = "NaN" if code == _NAN else describe_value(label)
        return f"is {what}, which " + ("is no value" if regression else "names no class")
    if code == _INFINITE:
        return "is infinite, which names no class"
    if code == _COMPLEX:
        return f"is the complex number {describe_value(label)[:40]}, which names no class"
    if code == _TOO_MANY_DIGITS:
        return f"is an integer of {decimal_digits(int(label)):,} digits, which names no class"
    return (f"is {json_kind(label)}, several values: a single-label model's label is one class (a name or an index); "
            "a list is the ground truth of a multi-label model (output.kind: multilabel)")


#: The fix of a label :func:`label_problem` refuses.
LABEL_FIX = ("Fix: send the true class (a name from output.classes or a column index) or, for output.kind: regression, "
             "the true value as a finite number; a label not known yet is not sent (late and missing labels are normal)")


def check_feedback_labels(parsed: ParsedEvent, kind: str, classes: Sequence[str]) -> None:
    """Refuse a feedback event whose labels the model of output ``kind`` (and labels
    ``classes``, from ``output.classes``) cannot take, naming ``labels[i]`` and the fix: a list
    for a single-label model (a one-hot or multi-hot row: send the class), and for a multi-label
    one a single class, a vector of another length or names no column has (where ``classes``
    are configured; else the label join checks them against the model's columns)."""
    event = parsed.event
    if event[0] != FEEDBACK:
        return
    if kind in ("none", "text") and len(event[3]):
        # accepted with 202 and then counted invalid at the join: an HTTP sender learnt it from the log only
        raise EventFormatError("labels" if parsed.many_labels else "label",
                               f"cannot be compared with this model's outputs (output.kind: {kind}: "
                               f"{'not read' if kind == 'none' else 'generated text, watched through its descriptors'}); "
                               "labels are for scores, classes or values. Fix: stop sending labels for this model, or "
                               "set output.kind to what its outputs are", "bad_label")
    for i, label in enumerate(event[3]):
        field = f"labels[{i}]" if parsed.many_labels else "label"
        if kind == "multilabel":
            try:
                read_truth(label, classes, len(classes) or None)
            except TruthError as err:
                raise EventFormatError(field, str(err), "bad_label") from None
        elif isinstance(label, list):
            raise EventFormatError(field, "must be one class (a name or an index) or value, got array: a list is the "
                                          "ground truth of a multi-label model (output.kind: multilabel) only", "bad_label")
        else:
            # accepted with 202 and then counted invalid at the join: the sender learnt it from the log only
            problem = label_problem(label, kind == "regression")
            if problem is not None:
                raise EventFormatError(field, f"{problem}. {LABEL_FIX}", "bad_label")


def parse_event(obj: Any, now: float, *, forwarded: bool = False) -> ParsedEvent:
    """Validate one decoded JSON event and turn it into the queue's tuple form.

    ``forwarded``: the event is a :class:`~monitor.forwarding.ForwardingMonitor`'s call, which
    no one is told a refusal of (a datagram has no answer). What an in-process Monitor takes and
    counts its own way is then passed on to the model's pipeline, which counts it so, rather than
    refused with the whole event as ``POST /v1/events`` refuses it (a 400 tells that sender): a
    latency that is no finite, non-negative number of seconds (kept NaN: left out, counted in
    ``monitor_row_arguments_dropped_total{argument="latency_s"}``), a prediction's request id over
    :data:`MAX_REQUEST_ID_CHARS` (dropped from its rows and counted there), a timestamp that is
    a number but no time (NaN, infinite: its rows counted ``invalid_timestamp``; negative: taken),
    a feedback id that is no id (null, empty, too long: its label counted ``unknown_id``), any label (the join counts
    one the model cannot take ``invalid``: :func:`read_label`, the multi-label truth rule) and
    null outputs (:func:`check_for_model`). Why one parse with a mode: the sidecar took such
    events apart around this parse (labels one by one, the latency dropped, ids put aside), three
    patches each its own copy of the rule of what a model reads."""
    if not isinstance(obj, dict):
        raise EventFormatError("event", f"must be a JSON object, got {json_kind(obj)}", "not_an_object")
    kind_name = obj.get("type", "prediction")
    kind = _KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise EventFormatError("type", f"must be one of {', '.join(_KINDS)}, got {kind_name!r}", "bad_type")
    unknown = set(obj) - _KEYS[kind] - (_FORWARDED_KEYS if forwarded and kind == PREDICTION else set())
    if unknown:
        fix = "Fix: remove it, or name it as one of those"
        if kind == PREDICTION and "type" not in obj and unknown & {"label", "labels", "request_ids"}:
            fix = 'Fix: a label is a feedback event: add "type": "feedback", or post it to /v1/feedback'
        raise EventFormatError(sorted(unknown)[0], f"unknown key in a {kind_name} event; allowed: "
                                                   f"{', '.join(sorted(_KEYS[kind]))}. {fix}", "unknown_key")
    model = _opt_str(obj, "model")
    ts = parse_timestamp(obj.get("timestamp"), now, forwarded)
    latency = obj.get("latency_s")
    # finite: Infinity (or 1e400, which JSON reads as it) made the latency histogram's sum infinite for good
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float))
                                or not 0 <= latency < math.inf):
        if forwarded:
            latency = math.nan
        else:
            raise EventFormatError("latency_s", f"must be a finite, non-negative number of seconds, got {latency!r}",
                                   "bad_latency")
    if kind == PREDICTION:
        if "inputs" not in obj:
            raise EventFormatError("inputs", "is required (a row, or a list of rows)", "missing_inputs")
        if obj["inputs"] is None:  # accepted (202), then refused in the worker as "got shape ()": the sender never learnt it
            raise EventFormatError("inputs", "is null. Fix: send the rows the model was called with (a row, a list of "
                                             "rows, or objects of feature name to value)", "missing_inputs")
        # without outputs: refused once the model is known, unless its outputs are not monitored (check_for_model)
        # a client over MAX_ID_CHARS as its digest, the key the probing detector tracks it by in code too
        event = (PREDICTION, ts, obj["inputs"], obj.get("outputs"), latency,
                 _per_row_labels(obj.get("client"), "client", id_key), _prediction_ids(obj.get("request_id"), forwarded),
                 _per_row_labels(obj.get("segment"), "segment", _segment_text, floats=True), obj.get("embedding"))
        if forwarded and "unreadable" in obj:
            event = _unreadable(obj["unreadable"], event)
        if event[3] is None:
            return ParsedEvent(model, event, outputs_missing=True, outputs_null="outputs" in obj, forwarded=forwarded)
        if forwarded and "outputs_length" in obj:
            event = event[:3] + (_text_prefix(obj["outputs_length"], event[3]),) + event[4:]
    elif kind == ERROR:
        exc = obj.get("exception", "Exception")
        if not isinstance(exc, str) or not exc:
            raise EventFormatError("exception", f"must be the exception type name, got {'empty text' if exc == '' else json_kind(exc)}. Fix: send the "
                                                "name of the error's type, e.g. \"exception\": \"TimeoutError\"", "bad_exception")
        client = _opt_str(obj, "client")
        event = (ERROR, ts, exc[:MAX_EXCEPTION_CHARS], latency, None if client is None else id_key(client))
    else:
        ids, labels = _feedback_lists(obj, forwarded)
        return ParsedEvent(model, (FEEDBACK, ts, ids, labels), "request_ids" in obj, forwarded=forwarded)
    return ParsedEvent(model, event, forwarded=forwarded)
