"""The per-row arguments of a call (client, segment, request id, embedding), one value per row.

A call gives each argument once for all its rows or once per row; these readers spread them over
the rows the builder read (:class:`monitor.ingest.BatchBuilder`), cut identifiers to their bounds,
and drop (counted in ``monitor_row_arguments_dropped_total``, said once) what cannot be used,
keeping the row: losing a client or an id loses only what needs it, where refusing the row would
lose its inputs and outputs from every other figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.cell_values import ComplexValues, complex_form, real_numbers
from monitor.events import (MAX_LABEL_CHARS, MAX_REQUEST_ID_CHARS, PREDICTION, CallerValueError, UnreadableValues, client_text,
                            id_key, is_dataframe,
                            request_id_text, segment_text)

if TYPE_CHECKING:
    from monitor.ingest import BuildResult

__all__ = ["ANONYMOUS", "ARGUMENT_DROPPED_MESSAGES", "per_row_values", "refused_ids", "refused_row_ids", "row_segments", "row_clients",
           "row_ids", "row_embeddings"]


_SCALAR_SEGMENT = frozenset({str, type(None)})
_TEXT = {str}


def per_row_values(v: Any) -> list[Any] | None:
    """The values of a per-row argument (a list, an array, a pandas Series or Categorical: any
    sized, iterable value that is not text), None for one value for the whole call. A caller's
    object whose iteration or attribute lookup raises other than TypeError raises
    :class:`~monitor.events.CallerValueError` (the row readers drop the argument:
    :func:`_unreadable_argument`). Told by type: isinstance runs a caller's object's ``__class__``."""
    kind = type(v)
    if kind is list or kind is tuple:
        return list(v)
    if issubclass(kind, np.ndarray):
        if v.ndim == 2 and v.shape[1] == 1:
            # a column vector (df[["request_id"]].values), as feedback() reads its labels: each row's
            # value was a one-element list, its id the text "['r-17']" that no label joined, silently
            v = v[:, 0]
        return None if v.ndim == 0 else v.tolist()
    if v is None or issubclass(kind, (str, bytes, bytearray, dict, set, frozenset)):
        return None
    try:  # the caller's value's own code: a list subclass's iteration, a proxy's attributes
        if is_dataframe(v) and len(v.columns) == 1:  # df[["segment"]]: its column, not its column's name
            return v.iloc[:, 0].tolist()
        if issubclass(kind, (list, tuple)) or (hasattr(v, "__len__") and hasattr(v, "__iter__")):
            return list(v)
    except TypeError:
        return None
    except Exception as err:  # noqa: BLE001 - the caller's value's own error, said as its own
        raise CallerValueError(err) from err
    return None


def row_segments(events: list[tuple[Any, ...]], counts: np.ndarray, result: BuildResult) -> np.ndarray:
    """Per-row segments: one value for the call's rows, or (a list, an array, a pandas Series) one
    per row, as request ids may be. A list of another length gives the call's rows no segment
    (said once)."""
    segs = [ev[7] for ev in events]
    # one short segment name per call, the usual case (C-level scans)
    if set(map(type, segs)) <= _SCALAR_SEGMENT and max(map(len, filter(None, segs)), default=0) <= MAX_LABEL_CHARS:
        return np.repeat(np.array(segs, dtype=object), counts)
    out = np.empty(int(counts.sum()), dtype=object)
    pos = 0
    for seg, c in zip(segs, counts.tolist()):
        if type(seg) is UnreadableValues:  # a forwarding worker's that it could not read
            _unreadable_argument(result, "segment", c, seg.error)
            pos += c
            continue
        try:
            rows = per_row_values(seg)
            if rows is not None:
                if len(rows) == c:
                    plain = set(map(type, rows)) == _TEXT and max(map(len, rows)) <= MAX_LABEL_CHARS  # the usual case
                    out[pos:pos + c] = rows if plain else [segment_text(v) for v in rows]
                else:
                    result.drop_argument("segment", len(rows), c)
            else:
                out[pos:pos + c] = segment_text(seg)
        except CallerValueError as err:  # a caller's object whose iteration or str() raises: its rows have none
            _unreadable_argument(result, "segment", c, err.error)
        pos += c
    return out


#: The client of rows whose call gave none (the probing detector's single client without ids).
ANONYMOUS = "anonymous"


def _client_text(v: Any) -> str:
    """One row's client id as text (bytes decoded, as request ids and segments are read), never
    cut: the probing detector tracks long ids by digest, and a cut would merge two of them. A
    missing value or empty text is no client: :data:`ANONYMOUS`."""
    return client_text(v) or ANONYMOUS


def row_clients(events: list[tuple[Any, ...]], counts: np.ndarray, result: BuildResult) -> np.ndarray:
    """Per-row client ids: one for the call's rows (none, or empty text: ``anonymous``), or (a list, an array, a
    pandas Series) one per row, as a batching server that scores several callers' requests in one
    call gives them. A list of another length gives the call's rows the anonymous client (said
    once, counted).

    Why: the ids went into ``np.array(..., dtype=object)`` as they came; a list there made the
    array two-dimensional or ragged, so that the batch's client column was longer than its rows
    (the rows of one caller and of the calls after it read other callers' ids) or held lists, which
    the probing detector could not look up (its whole batch lost, every caller's rows in it).
    Empty text (an unset header, key or CSV field) is no client, as None is: it was a client
    named "", tracked beside ``anonymous``, so that keyless callers were two clients."""
    clients = [ev[5] for ev in events]
    if set(map(type, clients)) <= _SCALAR_SEGMENT:  # one id (or none) per call, the usual case
        return np.repeat(np.array([c or ANONYMOUS for c in clients] + [None], dtype=object)[:-1], counts)
    out = np.empty(int(counts.sum()), dtype=object)
    pos = 0
    for c, n in zip(clients, counts.tolist()):
        if type(c) is UnreadableValues:  # a forwarding worker's that it could not read
            _unreadable_argument(result, "client", n, c.error)
            out[pos:pos + n] = ANONYMOUS
            pos += n
            continue
        try:
            rows = per_row_values(c)
            if rows is None:
                out[pos:pos + n] = _client_text(c)
            elif len(rows) == n:
                out[pos:pos + n] = [_client_text(v) for v in rows]
            else:
                result.drop_argument("client", len(rows), n)
                out[pos:pos + n] = ANONYMOUS
        except CallerValueError as err:  # a caller's object whose iteration or str() raises: anonymous rows
            _unreadable_argument(result, "client", n, err.error)
            out[pos:pos + n] = ANONYMOUS
        pos += n
    return out


def _unreadable_argument(result: BuildResult, argument: str, rows: int, error: str) -> None:
    """A call's ``argument`` that could not be read (a caller's object whose iteration or ``str()``
    raised ``error``, here or in a forwarding worker: :class:`~monitor.events.UnreadableValues`;
    the call was lost as an internal error): its ``rows`` are counted without it, as a per-row list
    of another length is, and the first such value is said."""
    result.arguments_dropped[argument] = result.arguments_dropped.get(argument, 0) + rows
    result.details.setdefault(f"argument:{argument}", f"a call's {argument} for {rows} row(s) could not be read "
                                                      f"({error} reading its values or their text)")


#: What a per-row list of the wrong length costs the call's rows, and the fix (the pipeline logs
#: it the first time, and counts the rows in monitor_row_arguments_dropped_total).
ARGUMENT_DROPPED_MESSAGES = {
    "request_id": "so its rows have no request id and feedback for them cannot join "
                  "(monitor_feedback_labels_total{outcome=\"unknown_id\"}). Fix: one id per row, or a single id for the "
                  f"call (its rows become <id>/0, <id>/1, ...), each of at most {MAX_REQUEST_ID_CHARS:,} characters",
    "segment": "so its rows have no segment (counted as \"unset\"). Fix: one segment per row, or a single segment "
               "for the call",
    "client": "so its rows count as the \"anonymous\" client of the probing detector. Fix: one client per row, or a "
              "single client for the call",
    "reserved_key": "so their values are not monitored (the derived feature's columns are, under those names). Fix: "
                    "rename the key in the rows (e.g. output_in for output, review_length for review.length beside the "
                    "text feature review), or, for a generative model's answer sent among the inputs, give it as the "
                    "call's outputs",
    "embedding": "so its rows have no embedding (the embedding drift detector, pca_drift with space: embedding, "
                 "leaves them out, counted in monitor_drift_rows_unread_total{detector=\"pca_drift_embedding\"}; the "
                 "probing detector with space: embedding skips them, counted in "
                 "monitor_probing_queries_total{outcome=\"no_embedding\"}). Fix: give the embedding as numbers, one row "
                 "of the same length per input row, as long as the other calls' (a list of lists or a 2-D array), or "
                 "one flat list for a one-row call",
}


def row_ids(events: list[tuple[Any, ...]], counts: np.ndarray, result: BuildResult) -> np.ndarray:
    """Per-row request ids: a list gives one per row; a scalar id on a batch call becomes
    ``"<id>/<row>"`` (documented) so that feedback can address single rows. An id longer than
    :data:`~monitor.events.MAX_REQUEST_ID_CHARS` (or whose text cannot be taken: an integer of
    thousands of digits, which failed the worker's whole drain) leaves its rows without one,
    counted as a dropped argument: the rows are kept, only their join is lost, which no real id
    needs (one of a megabyte on a call of 2,000 rows held 2 GB as ``<id>/<row>``)."""
    rids = [ev[6] for ev in events]
    if len(counts) == int(counts.sum()) and {type(r) for r in rids} <= {str, type(None)}:
        if "" in rids:  # empty text is no id (request_id_text), not one id shared by every such call
            rids = [rid or None for rid in rids]
        out = np.array(rids + [None], dtype=object)[:-1]  # the None keeps a 1-D object array
        if max(map(len, filter(None, rids)), default=0) > MAX_REQUEST_ID_CHARS:
            for i, rid in enumerate(rids):
                if rid is not None and _id_too_long(rid, 1, result):
                    out[i] = None
        return out
    out = np.empty(int(counts.sum()), dtype=object)
    pos = 0
    for ev, c in zip(events, counts.tolist()):
        if type(ev[6]) is UnreadableValues:  # a forwarding worker's that it could not read
            _unreadable_argument(result, "request_id", c, ev[6].error)
            pos += c
            continue
        try:
            rows = per_row_values(ev[6])
        except CallerValueError as err:  # a caller's object whose iteration raises: its rows have none
            _unreadable_argument(result, "request_id", c, err.error)
            pos += c
            continue
        if rows is not None:
            if len(rows) == c:
                ids = rows if set(map(type, rows)) == _TEXT and "" not in rows else [_id_text(r) for r in rows]
                if max(map(len, filter(None, ids)), default=0) > MAX_REQUEST_ID_CHARS:
                    ids = [None if rid is not None and _id_too_long(rid, 1, result) else rid for rid in ids]
                out[pos:pos + c] = ids
            else:
                result.drop_argument("request_id", len(rows), c)
        else:
            rid = _id_text(ev[6])
            if rid is None or _id_too_long(rid, c, result):
                pass
            elif c == 1:
                out[pos] = rid
            else:
                out[pos:pos + c] = [f"{rid}/{i}" for i in range(c)]
        pos += c
    return out


def refused_ids(events: list[tuple[Any, ...]]) -> list[tuple[str, bool]]:
    """The request ids of prediction events refused whole (``monitor_rows_rejected_total``: a wrong
    shape, unreadable inputs, a timestamp refused...), as the label join keys them
    (:meth:`monitor.labels.LabelJoiner.refuse`), each with whether it is a call's one id (its rows,
    when several, are ``<id>/<row>``) rather than one row's (a per-row list). Ids no prediction
    keeps (none, over :data:`~monitor.events.MAX_REQUEST_ID_CHARS`, unreadable) are left out; never
    raises (a caller's object's iteration may): an event whose ids cannot be read gives none."""
    out: list[tuple[str, bool]] = []
    for ev in events:
        if len(ev) < 7 or ev[0] != PREDICTION or ev[6] is None or type(ev[6]) is UnreadableValues:
            continue
        try:
            rows = per_row_values(ev[6])
            texts = [_id_text(ev[6])] if rows is None else [_id_text(r) for r in rows]
        except Exception:  # noqa: BLE001 - the caller's value's own error: its ids are dropped from kept rows too
            continue
        out.extend((id_key(t), rows is None) for t in texts if t is not None and len(t) <= MAX_REQUEST_ID_CHARS)
    return out


def refused_row_ids(ids: np.ndarray) -> list[tuple[str, bool]]:
    """The request ids of rows refused one by one (their outputs: ``nan_output``,
    ``probability_out_of_range``...), as :func:`row_ids` gave them, as :func:`refused_ids` gives ids."""
    return [(id_key(k if k.__class__ is str else str(k)), False) for k in ids.tolist() if k is not None]


def _id_text(v: Any) -> str | None:
    """One request id as text (:func:`~monitor.events.request_id_text`); an id whose text cannot
    be taken (``str()`` refuses an integer of more than 4,300 digits) is read as too long."""
    try:
        return request_id_text(v)
    except CallerValueError:  # a caller's object whose str() fails, an int past str()'s limit
        return _UNTAKEN_ID


#: How a request id whose text cannot be taken is read: too long to be an id (a forwarding worker
#: sends such an id so, :func:`monitor.forwarding._unusable_id`), said as what it is.
_UNTAKEN_ID = "?" * (MAX_REQUEST_ID_CHARS + 1)


def _id_too_long(rid: str, rows: int, result: BuildResult) -> bool:
    """Whether ``rid`` is longer than a request id may be; if so its ``rows`` are counted as
    without their id, and the first such id is said."""
    if len(rid) <= MAX_REQUEST_ID_CHARS:
        return False
    result.arguments_dropped["request_id"] = result.arguments_dropped.get("request_id", 0) + rows
    if rid == _UNTAKEN_ID:
        said = ("a call gave a request id whose text cannot be taken (str() raised, or an integer of more than 4,300 "
                "digits): give each row an id of text or a short integer")
    else:
        said = (f"a call gave a request id of {len(rid):,} characters ({rid[:40]!r}...), more than the "
                f"{MAX_REQUEST_ID_CHARS:,} a request id may have (does request_id= name the request rather than its id?)")
    result.details.setdefault("argument:request_id", said)
    return True


def row_embeddings(events: list[tuple[Any, ...]], counts: np.ndarray, result: BuildResult) -> np.ndarray | None:
    """The batch's embeddings, one row of numbers per input row (NaN rows for the calls that gave
    none or none usable), or None when no call gave a usable one.

    An embedding that cannot be read as numbers in as many rows as its call's inputs (text, an
    object, ragged rows, a size that is not a whole number of values per row), or whose rows are
    not as long as the drain's others (the width most rows have), is the caller's mistake, not the
    worker's: its rows are processed without it and counted in
    ``monitor_row_arguments_dropped_total{argument="embedding"}``. It raised here before, so that
    the event's prediction was lost as an internal error and MonitorInternalErrors paged. One call
    without a usable embedding used to take the whole drain's away (up to ``batch_max`` rows of
    other calls, unprobed); the probing detector now skips only its rows and counts them."""
    if all(ev[8] is None for ev in events):
        return None
    parts: list[np.ndarray | None] = []
    for ev, c in zip(events, counts.tolist()):
        e = ev[8]
        a = None
        if e is not None:
            try:
                a = real_numbers(e)
                if a.size == 0 or a.size % c:
                    raise ValueError(f"{a.size} values")
                a = a.reshape(c, -1)
            except ComplexValues:
                # an array of them, or a list holding them (numpy's complex scalars, which a float64
                # cast read as their real parts, numpy's ComplexWarning the only word of it)
                a = None
                _embedding_dropped(result, c, f"a call's embedding for {c} row(s) cannot be read as numbers, one row "
                                              f"each (complex numbers ({complex_form(e)}): give real ones)")
            except (TypeError, ValueError) as err:
                a = None
                _embedding_dropped(result, c, f"a call's embedding for {c} row(s) cannot be read as numbers, one row "
                                              f"each ({str(err)[:80]})")
            except Exception as err:  # noqa: BLE001 - a caller's object whose __float__ raises (RuntimeError...): lost the call
                a = None
                _embedding_dropped(result, c, f"a call's embedding for {c} row(s) cannot be read as numbers, one row "
                                              f"each ({type(err).__name__} converting its values)")
        parts.append(a)
    widths: dict[int, int] = {}
    for a in parts:
        if a is not None:
            widths[a.shape[1]] = widths.get(a.shape[1], 0) + a.shape[0]
    if not widths:
        return None
    width = max(widths, key=lambda w: widths[w])  # the most rows' (ties: the first call's)
    out = np.full((int(counts.sum()), width), np.nan)
    pos = 0
    for a, c in zip(parts, counts.tolist()):
        if a is not None:
            if a.shape[1] == width:
                out[pos:pos + c] = a
            else:
                _embedding_dropped(result, c, f"a call's embedding has {a.shape[1]} values per row, the other calls' "
                                              f"{width}")
        pos += c
    return out


def _embedding_dropped(result: BuildResult, rows: int, detail: str) -> None:
    result.arguments_dropped["embedding"] = result.arguments_dropped.get("embedding", 0) + rows
    result.details.setdefault("argument:embedding", detail)
