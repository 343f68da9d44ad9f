"""The forwarded parse (``parse_event(forwarded=True)``, session 39) against an in-process Monitor:
seeded differential runs of odd labels (None, NaN, objects, nested lists, lists for a single-label
model, multi-label truth of the wrong width, text for regression, labels for models of
``output.kind: none`` and ``text``), odd request ids and latencies, and streamed text answers
(long ones kept as :class:`~monitor.text_prefix.TextPrefix`, closed early, raising, async), made
through a ForwardingMonitor to a real sidecar (helper s39d's extension of
tests/test_forwarded_parity_s38g.py).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import math
import random
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitor.text_prefix import MAX_TEXT_CHARS
from tests.sidecar_support import total
from tests.test_forwarded_parity_s38g import CLASSES, KINDS, Call, _inputs, _outputs, forwarded, in_process

__all__: list[str] = []

#: Labels any caller may pass, of every JSON form and then some: each counted by the model's join
#: (joined, waiting, ``invalid``, ``unknown_id``) as in process, never refused whole on the way.
ODD_LABELS: list[Any] = [None, math.nan, {"a": 1}, {}, [[1, [2]]], [0, 1], [], "", "z" * 2000, True, False, -0.0,
                         1e300, -1, 2 ** 300, 2 ** 64, "2.5", "x", 1, 1.0, 2, [1, 0], [1, 0, 1, 0], [0, 1, 1],
                         ["n", "y"], ["q"], [math.nan, 0, 1], [True, False, True], np.float32("nan"), np.int64(1),
                         np.array([1, 0, 1]), np.float64(2.0), [[0, 1, 1]], [1.5, 0, 0], "y" * 300, "\u00e9t\u00e9"]
#: Request ids of every form, feedback's and predictions'.
ODD_IDS: list[Any] = ["nope", None, math.nan, "", 17, 17.0, 1e20, -5, b"r0", "x" * 1100, "x" * 1024, 2 ** 70, np.int64(3),
                      np.str_("r1"), True, "\u00e9"]
ODD_LATENCIES: list[Any] = [None, 0.0, -0.0, 1e308, -1e-9, math.nan, math.inf, -math.inf, "fast", "0.5", 3, 2 ** 70,
                            True, False, np.float32(0.25), np.nan, datetime.timedelta(seconds=-1),
                            datetime.timedelta(milliseconds=7), np.timedelta64(5, "ms"), np.timedelta64("NaT"), [0.1]]


def _stream_chunks(rng: random.Random) -> list[Any]:
    """A streamed answer's chunks: text or UTF-8 bytes of lengths around and past the cap, cut
    anywhere (a character split across chunks), now and then a chunk of another type."""
    length = rng.choice([0, 3, MAX_TEXT_CHARS - 1, MAX_TEXT_CHARS, MAX_TEXT_CHARS + 1, rng.randrange(3 * MAX_TEXT_CHARS)])
    text = "".join(rng.choices("ab c\n\u00e9\u5b57\U0001f600 .7", k=length))
    data: Any = text.encode("utf-8") if rng.random() < 0.4 else text
    chunks, at = [], 0
    while at < len(data):
        step = rng.choice([1, 2, 3, rng.randrange(1, 500), rng.randrange(1, 2 * MAX_TEXT_CHARS)])
        chunks.append(data[at:at + step])
        at += step
    if chunks and rng.random() < 0.1:
        chunks.insert(rng.randrange(len(chunks)), rng.choice([{"usage": 3}, "s" if isinstance(data, bytes) else 7]))
    return chunks


def draw_calls(seed: int, kind: str, n_calls: int = 30) -> list[Call]:
    """Predictions (some streamed, for the kinds that stream) and feedback with odd ids, labels
    and latencies."""
    rng = random.Random(seed)
    calls: list[Call] = []
    ids: list[Any] = []
    streams = kind in ("text", "none")
    for i in range(n_calls):
        r = rng.random()
        if r < 0.45 or not ids:
            x, n = _inputs(rng, rng.randint(1, 3))
            rid = rng.choice([f"r{i}"] * 4 + ODD_IDS)
            if isinstance(rid, str) and rid == f"r{i}":
                ids += [rid] if n == 1 else [f"{rid}/{j}" for j in range(n)]
            elif rng.random() < 0.5:
                ids.append(rid)
            calls.append(("observe", (x, _outputs(rng, kind, n)),
                          {"request_id": rid, "latency_s": rng.choice(ODD_LATENCIES)}))
        elif r < 0.65 and streams:
            rid = rng.choice([f"s{i}", None, "x" * 1100])
            mode = rng.choice(["full", "full", "close", "raise", "async"])
            calls.append(("stream", (_stream_chunks(rng), mode, rng.randrange(1, 6)), {"request_id": rid}))
        elif r < 0.8:
            calls.append(("observe_error", (rng.choice(["E", "TimeoutError"]),), {"latency_s": rng.choice(ODD_LATENCIES)}))
        else:
            k = rng.randint(1, 4)
            fids = [rng.choice(ids) if rng.random() < 0.6 else rng.choice(ODD_IDS) for _ in range(k)]
            labels = [rng.choice(ODD_LABELS + (CLASSES if kind in ("probabilities", "labels") else [])) for _ in range(k)]
            calls.append(("feedback", (fids[0], labels[0]) if k == 1 else (fids, labels), {}))
    return calls


def _described(seen: list[Any]) -> list[list[str]]:
    """The numbers of every row the detectors saw (the text descriptors of a text model's answers
    among them), rows in order, each as its repr (NaN compares)."""
    out = []
    for b in seen:
        num = getattr(b, "numeric", None)
        if num is not None and getattr(b, "numeric_names", None) is not None:
            out += [[repr(v) for v in row] for row in np.asarray(num).tolist()]
    return out


def both(config: dict[str, Any], calls: list[Call], folder: Path) -> tuple[tuple[dict, list], tuple[dict, list], str]:
    """(figures, rows seen) in process, the same forwarded to a sidecar, and the sidecar's exposition."""
    seen: list[Any] = []
    expected = in_process(config, calls, seen)
    got_seen: list[Any] = []
    got, text = forwarded(config, calls, folder, got_seen)
    return (expected, _described(seen)), (got, _described(got_seen)), text


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_odd_labels_ids_latencies_and_streams_forwarded_give_the_in_process_figures(tmp_path, kind: str) -> None:
    """Seeded odd calls of each output kind: the sidecar's figures and the rows its detectors see
    are the in-process Monitor's, and nothing is refused on the way."""
    for seed in range(3):
        calls = draw_calls(39_000 + 100 * seed + len(kind), kind)
        folder = tmp_path / str(seed)
        folder.mkdir()
        expected, got, text = both(KINDS[kind], calls, folder)
        assert expected[0][("monitor_calls", ())] >= 10, expected
        assert total(text, "monitor_intake_events_refused_total") == 0, seed
        assert got == expected, seed


def test_a_text_answer_given_as_bytes_is_forwarded_as_in_process(tmp_path) -> None:
    """A text model's answer as bytes (``response.content``), one or one per row, and a stream of
    bytes chunks with a chunk of another type (its answer the list of chunks) are read in process
    as their text, decoded as UTF-8 (an invalid byte as U+FFFD); the worker dropped each such call
    whole as ``unserializable`` (JSON has no bytes), lost from every figure of the sidecar."""
    text = {**KINDS["text"]}
    calls: list[Call] = [("observe", ([[1.0, 2.0]], b"Rain on the roof."), {}),
                         ("observe", ([[1.0, 2.0], [3.0, 4.0]], [b"caf\xc3\xa9", b"bad \xff byte"]), {}),
                         ("observe", ([[1.0, 2.0]], [bytearray(b"one")]), {}),
                         ("stream", ([b"caf\xc3", b"\xa9 ", 7], "full", 0), {"request_id": "s"}),
                         ("stream", ([b"ab", {"usage": 3}], "full", 0), {"request_id": "t"})]
    expected, got, exposition = both(text, calls, tmp_path)
    assert expected[0][("monitor_predictions", ())] == 4, expected
    assert total(exposition, "monitor_intake_events_refused_total") == 0
    assert got == expected


# -- values JSON cannot write (helper s39f) ---------------------------------------------------------

class _Shown:
    def __str__(self) -> str:
        return "shown-7"


class _Colour(enum.Enum):
    RED = 1


#: Values JSON cannot write, each read by the in-process readers its own way (a number, a time's
#: seconds, a category's text, an unreadable cell, a label's text or ``invalid``).
ODD_VALUES: dict[str, Any] = {
    "set": {1, 2}, "complex": complex(0.5, 1), "Decimal": decimal.Decimal("0.5"), "date": datetime.date(2024, 1, 2),
    "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5, 250_000), "aware": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
    "UUID": uuid.UUID(int=12345), "object": object(), "Shown": _Shown(), "datetime64": np.datetime64("2024-01-02T03:04:05", "s"),
    "datetime64[ms]": np.datetime64("2024-01-02T03:04:05.5", "ms"), "Timestamp": pd.Timestamp("2024-01-02 03:04:05"),
    "Period": pd.Period("2024-01", "M"), "Enum": _Colour.RED}
#: Values whose reading depends on the feature's kind (a number of seconds to a numeric feature,
#: other text to a categorical one): the worker, which does not know the kinds, still drops their calls.
NO_PARITY_INPUTS: dict[str, Any] = {"Fraction": fractions.Fraction(1, 2), "timedelta": datetime.timedelta(seconds=1.5),
                                    "timedelta64": np.timedelta64(1500, "ms"), "Timedelta": pd.Timedelta(seconds=1.5)}
MIXED = {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}, {"name": "c", "kind": "text"}],
         "output": {"kind": "probabilities", "classes": CLASSES}}


def _row(**cells: Any) -> list[dict[str, Any]]:
    return [{"a": 1.5, "b": "eu", "c": "hello there", **cells}]


def test_input_values_json_cannot_write_are_forwarded_as_in_process(tmp_path) -> None:
    """A set, a complex number, a Decimal, a date or datetime (naive or with a zone, numpy's,
    pandas'), a UUID, a Period, an Enum member, an object in a numeric, categorical or text feature
    (and a DataFrame's column of times): in process one cell each, read as a number, a time's
    seconds, a category's text or unreadable (``wrong_type``); the worker dropped each call whole
    as ``unserializable``. Sent as their text, which the sidecar's readers read alike."""
    calls: list[Call] = [("observe", (_row(**{f: v}), [[0.2, 0.3, 0.5]]), {}) for v in ODD_VALUES.values() for f in "abc"]
    calls.append(("observe", (pd.DataFrame({"a": pd.to_datetime(["2024-01-02", "2024-03-04"]), "b": ["x", "y"], "c": ["t u", "v w"]}),
                              [[0.2, 0.3, 0.5]] * 2), {}))
    expected, got, exposition = both(MIXED, calls, tmp_path)
    assert expected[0][("monitor_predictions", ())] == 3 * len(ODD_VALUES) + 2, expected
    assert expected[0][("monitor_data_invalid_rows", (("feature", "a"), ("reason", "wrong_type")))] == 7, expected
    assert total(exposition, "monitor_intake_events_refused_total") == 0
    assert got == expected


def test_input_values_read_otherwise_by_each_feature_kind_are_still_dropped_and_named(tmp_path, caplog) -> None:
    """A duration or a Fraction is a number to a numeric feature and other text to a categorical
    one: no JSON value is read as both, so the worker still drops the call, counted, and its log
    names the field and the value's type. So too inputs that are one such value, not rows."""
    import logging

    from monitor.forwarding import ForwardingMonitor, encode_event
    from monitor.events import PREDICTION

    for name, v in NO_PARITY_INPUTS.items():
        with pytest.raises(TypeError, match=f"inputs: a .*{type(v).__name__} value"):
            encode_event((PREDICTION, 1.0, _row(a=v), [[0.2, 0.3, 0.5]], None, None, None, None, None))
    # an array of numpy's times: in process its values as datetimes of its unit (the rows) or its text (a cell)
    with pytest.raises(TypeError, match="inputs: .* an array of numpy's times"):
        encode_event((PREDICTION, 1.0, np.array([["2024-01-02T03:04:05.5"] * 3], dtype="datetime64[ms]"), [[0.2, 0.3, 0.5]],
                      None, None, None, None, None))
    for v in ODD_VALUES.values():  # the inputs one such value: refused in process as rows of no shape, not a row of its text
        with pytest.raises(TypeError, match="inputs: .* the whole field"):
            encode_event((PREDICTION, 1.0, v, [[0.2, 0.3, 0.5]], None, None, None, None, None))
    fm = ForwardingMonitor("m", f"unix://{tmp_path / 'none.sock'}", start=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.forwarding"):
            fm.observe(_row(b=datetime.timedelta(seconds=2)), [[0.2, 0.3, 0.5]])
            fm.flush()
        assert fm.counters().dropped.get("unserializable") == 1
        assert "inputs: a datetime.timedelta value" in caplog.text
    finally:
        fm.close()


@pytest.mark.parametrize("kind", ["probabilities", "labels", "regression", "multilabel"])
def test_labels_json_cannot_write_are_forwarded_as_in_process(tmp_path, kind: str) -> None:
    """Feedback labels JSON cannot write: in process each is read by the join (a class name looked
    up by its text, a regression value's float, ``invalid``: a set, a complex number, a duration
    for a classifier); the worker dropped the whole feedback call as ``unserializable``, its other
    labels lost with it. Sent as null (``invalid`` for every kind), a float or the text, each as
    the join reads the label itself."""
    odd = {**ODD_VALUES, "Fraction": fractions.Fraction(1, 2), "timedelta": datetime.timedelta(seconds=1.5),
           "timedelta64": np.timedelta64(1500, "ms"), "Timedelta": pd.Timedelta(seconds=1.5), "one": decimal.Decimal("1")}
    ids = [f"r{i}" for i in range(len(odd))]
    outputs = {"probabilities": [[0.2, 0.3, 0.5]], "labels": ["y"], "regression": [1.0], "multilabel": [[0.2, 0.9, 0.1]]}[kind]
    calls: list[Call] = [("observe", (np.zeros((len(ids), 2)), outputs * len(ids)), {"request_id": ids}),
                         ("feedback", (ids, list(odd.values())), {}), ("feedback", ("r0", "y"), {})]
    expected, got, exposition = both(KINDS[kind], calls, tmp_path)
    assert sum(v for (name, _), v in expected[0].items() if name == "monitor_feedback_labels") == len(ids) + 1, expected
    assert total(exposition, "monitor_intake_events_refused_total") == 0
    assert got == expected


def test_embedding_values_json_cannot_write_are_forwarded_as_in_process(tmp_path) -> None:
    """An embedding holding a value JSON cannot write: in process a Decimal or Fraction is its
    float, and a value of no float (a date, a set, a complex number, an object) leaves the row's
    embedding out, counted in ``monitor_row_arguments_dropped_total{argument="embedding"}``; the
    worker dropped the whole call as ``unserializable``."""
    odd = {**ODD_VALUES, "Fraction": fractions.Fraction(1, 2)}
    odd = {k: v for k, v in odd.items() if not isinstance(v, np.datetime64)}  # numpy's times: still dropped (README)
    calls: list[Call] = [("observe", ([[1.0, 2.0]], [[0.2, 0.3, 0.5]]), {"embedding": [[v, 0.5]]}) for v in odd.values()]
    seen: list[Any] = []
    expected = in_process(KINDS["probabilities"], calls, seen)
    got_seen: list[Any] = []
    got, exposition = forwarded(KINDS["probabilities"], calls, tmp_path, got_seen)
    assert expected[("monitor_row_arguments_dropped", (("argument", "embedding"),))] == len(odd) - 2, expected
    assert total(exposition, "monitor_intake_events_refused_total") == 0
    assert got == expected
    embeddings = [[repr(v) for v in row] for s in (seen, got_seen) for b in s if getattr(b, "embedding", None) is not None
                  for row in np.asarray(b.embedding).tolist()]
    assert embeddings[:len(embeddings) // 2] == embeddings[len(embeddings) // 2:] and embeddings


def test_output_values_json_cannot_write_are_dropped_naming_the_field_and_type() -> None:
    """Outputs holding a value JSON cannot write are still dropped (each output kind reads it its
    own way, which the worker does not know), the log naming the field and the value's type where
    it named the type alone."""
    from monitor.events import PREDICTION
    from monitor.forwarding import encode_event

    for v in (decimal.Decimal("0.5"), datetime.date(2024, 1, 2), fractions.Fraction(1, 2), uuid.UUID(int=1), {1}, object()):
        with pytest.raises(TypeError, match=f"outputs: a .*{type(v).__name__} value"):
            encode_event((PREDICTION, 1.0, [[1.0, 2.0]], [v], None, None, None, None, None))
