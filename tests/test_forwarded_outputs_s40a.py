"""Outputs holding values JSON cannot write, forwarded by a worker told its model's output kind
(helper s40a, after s39f's inputs, labels and embeddings): seeded differential runs, in process
against a ForwardingMonitor through a real sidecar socket, of each output kind's outputs holding
a ``Decimal``, a ``Fraction``, a date, numpy's times and ``longdouble``, a ``UUID``, an ``Enum``
member, a set, pandas' NA and NaT, an object."""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import logging
import random
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.sidecar_support import total
from tests.test_forwarded_parity_s38g import CLASSES, KINDS, Call, forwarded, in_process

__all__: list[str] = []

ALL_KINDS = {**KINDS, "logits": {**KINDS["probabilities"], "output": {"kind": "logits", "classes": CLASSES}}}


class _Colour(enum.Enum):
    RED = 1


class _Shown:
    def __str__(self) -> str:
        return "shown-7"


class _Float:
    """An object a float64 cast reads by its ``__float__``, a class name by its text."""

    def __float__(self) -> float:
        return 0.25

    def __str__(self) -> str:
        return "a quarter"


#: Values JSON cannot write, each read by each output kind its own way in process: a score or a
#: value by its float (or refusing the call's rows, ``non_numeric_output``), a class named by its
#: text (``nan_output`` for a missing one, ``output_shape`` for several values), an answer that
#: is not text (refusing the call).
ODD_OUTPUTS: dict[str, Any] = {
    "Decimal": decimal.Decimal("0.2"), "Decimal1": decimal.Decimal("1"), "DecimalNaN": decimal.Decimal("NaN"),
    "Decimal1e400": decimal.Decimal("1e400"), "Fraction": fractions.Fraction(1, 5), "date": datetime.date(2024, 1, 2),
    "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5), "Timestamp": pd.Timestamp("2024-01-02 03:04:05"),
    "datetime64[s]": np.datetime64("2024-01-02T03:04:05", "s"), "datetime64[D]": np.datetime64("2024-01-02", "D"),
    "timedelta": datetime.timedelta(seconds=1.5), "timedelta64[ms]": np.timedelta64(1500, "ms"),
    "Timedelta": pd.Timedelta(seconds=1.5), "NaT": pd.NaT, "NA": pd.NA, "UUID": uuid.UUID(int=12345),
    "Enum": _Colour.RED, "set": {1, 2}, "complex": complex(0.5, 1), "complex64": np.complex64(0.5), "object": object(),
    "Shown": _Shown(), "__float__": _Float(), "Period": pd.Period("2024-01", "M"), "longdouble": np.longdouble(0.2),
}
#: Refuse a labels model's call in process (a complex class name), as no JSON value does: still dropped.
NO_PARITY = {"labels": ("complex", "complex64")}


def _good(rng: random.Random, kind: str, n: int) -> list[Any]:
    """Good outputs of ``kind`` for ``n`` rows, as lists."""
    def scores() -> list[float]:
        p = [rng.random() + 0.01 for _ in range(3)]
        return [v / sum(p) for v in p]
    return {"probabilities": lambda: [scores() for _ in range(n)],
            "logits": lambda: [[rng.uniform(-3, 3) for _ in range(3)] for _ in range(n)],
            "regression": lambda: [rng.uniform(-5, 5) for _ in range(n)],
            "multilabel": lambda: [[rng.random() for _ in range(3)] for _ in range(n)],
            "labels": lambda: [rng.choice(CLASSES + [0, 2]) for _ in range(n)],
            "text": lambda: [rng.choice(["hello world", "ok", ""]) for _ in range(n)]}[kind]()


def _with_odd(rng: random.Random, outputs: list[Any], kind: str) -> Any:
    """``outputs`` with one or two of their values replaced by values JSON cannot write, and now
    and then given as an object array or a tuple, or (one row) as the value alone."""
    odd = [k for k in ODD_OUTPUTS if k not in NO_PARITY.get(kind, ())]
    for _ in range(rng.choice([1, 1, 2])):
        i = rng.randrange(len(outputs))
        if isinstance(outputs[i], list):
            outputs[i] = list(outputs[i])
            outputs[i][rng.randrange(len(outputs[i]))] = ODD_OUTPUTS[rng.choice(odd)]
        else:
            outputs[i] = ODD_OUTPUTS[rng.choice(odd)]
    form = rng.random()
    if form < 0.2:
        holder = np.empty(len(outputs), dtype=object)
        holder[:] = outputs
        return holder if not isinstance(outputs[0], list) else np.array(outputs, dtype=object)
    if form < 0.3:
        return tuple(outputs)
    if form < 0.4 and len(outputs) == 1 and not isinstance(outputs[0], list):
        return outputs[0]
    return outputs


def draw_calls(seed: int, kind: str, n_calls: int = 24) -> list[Call]:
    """Calls of one to three rows, most of whose outputs hold values JSON cannot write, with
    request ids and feedback, so that the labelled figures read the rows too."""
    rng = random.Random(seed)
    calls: list[Call] = []
    for i in range(n_calls):
        n = rng.randint(1, 3)
        x = [[rng.uniform(-3, 3), rng.uniform(-3, 3)] for _ in range(n)]
        outputs = _good(rng, kind, n)
        if rng.random() < 0.8:
            outputs = _with_odd(rng, outputs, kind)
        ids = [f"r{i}_{j}" for j in range(n)]
        calls.append(("observe", (x, outputs), {"request_id": ids}))
        if rng.random() < 0.5 and kind != "text":
            label = {"regression": 1.0, "multilabel": [0, 1, 0]}.get(kind, rng.choice(CLASSES))
            calls.append(("feedback", (ids[0], label), {}))
    return calls


def _outputs_seen(seen: list[Any]) -> list[Any]:
    """What the detectors saw of the outputs, batch by batch: each row's predicted class (by name),
    scores (reprs: NaN compares) and regression values."""
    out = []
    for b in seen:
        classes = getattr(b, "classes", ())
        predicted = getattr(b, "predicted", None)
        scores = getattr(b, "scores", None)
        out.append(([classes[i] if 0 <= i < len(classes) else i for i in predicted.tolist()] if predicted is not None else None,
                    [repr(v) for v in np.asarray(scores).ravel().tolist()] if scores is not None else None))
    return out


@pytest.mark.parametrize("kind", sorted(ALL_KINDS.keys() - {"none"}))
def test_outputs_json_cannot_write_forwarded_by_a_worker_told_the_kind_give_the_in_process_figures(tmp_path, kind: str) -> None:
    """In process each output kind reads such a value its own way (a Decimal a score by its float,
    a class named ``0.2``, an answer refused; a date refused by the scores, a class to ``labels``);
    the worker dropped each such call whole as ``unserializable``, lost from every figure of the
    sidecar. Told the kind, it sends the outputs as that kind reads them: the sidecar's figures,
    and the outputs its detectors see, are the in-process ones, nothing dropped or refused."""
    for seed in range(3):
        calls = draw_calls(40_000 + 100 * seed + len(kind), kind)
        seen: list[Any] = []
        expected = in_process(ALL_KINDS[kind], calls, seen)
        assert expected[("monitor_calls", ())] >= 20, expected
        folder = tmp_path / str(seed)
        folder.mkdir()
        got_seen: list[Any] = []
        got, exposition = forwarded(ALL_KINDS[kind], calls, folder, got_seen, told_kind=True)
        assert total(exposition, "monitor_intake_events_refused_total") == 0, seed
        assert got == expected, seed
        assert _outputs_seen(got_seen) == _outputs_seen(seen), seed


def test_each_value_in_each_kind_is_read_as_in_process(tmp_path) -> None:
    """Every value of :data:`ODD_OUTPUTS` in every kind, one call each (the first row's output; a
    good row beside it): the figures are the in-process ones, which read some of them (a score, a
    class) and refuse the call of others, by the same reason."""
    rng = random.Random(7)
    for kind in sorted(ALL_KINDS.keys() - {"none"}):
        calls: list[Call] = []
        for name, v in ODD_OUTPUTS.items():
            if name in NO_PARITY.get(kind, ()):
                continue
            outputs = _good(rng, kind, 2)
            outputs[0] = [v] + outputs[0][1:] if isinstance(outputs[0], list) else v
            calls.append(("observe", ([[1.0, 2.0], [3.0, 4.0]], outputs), {}))
        expected = in_process(ALL_KINDS[kind], calls)
        read = expected.get(("monitor_predictions", ()), 0)
        refused = sum(v for (name, _), v in expected.items() if name == "monitor_rows_rejected")
        assert refused and read + refused == 2 * len(calls), (kind, expected)
        assert read or kind == "text", (kind, expected)  # a text model's answer that is not text refuses its call
        folder = tmp_path / kind
        folder.mkdir()
        got, exposition = forwarded(ALL_KINDS[kind], calls, folder, told_kind=True)
        assert total(exposition, "monitor_intake_events_refused_total") == 0, kind
        assert got == expected, kind


def test_outputs_no_json_value_is_read_as_are_still_dropped_and_without_the_kind_the_fix_says_give_it(caplog) -> None:
    """A labels model's complex answer refuses its call in process, as no JSON value does: still
    dropped, named. A worker not told its kind still drops outputs holding such values, and its
    log line's fix now says to give it the kind (it said to make the outputs plain rows)."""
    from monitor.events import PREDICTION
    from monitor.forwarding import ForwardingMonitor, encode_event

    for v in (complex(0.5, 1), np.complex64(0.5)):
        with pytest.raises(TypeError, match="outputs: a .*complex"):
            encode_event((PREDICTION, 1.0, [[1.0, 2.0]], [v], None, None, None, None, None), output_kind="labels")
    for kind in ("probabilities", "regression"):  # a DataFrame of scores: read in process by its columns' class names
        with pytest.raises(TypeError, match="outputs: .*DataFrame"):
            encode_event((PREDICTION, 1.0, [[1.0, 2.0]], pd.DataFrame({"y": [decimal.Decimal("0.5")]}), None, None, None,
                          None, None), output_kind=kind)
    fm = ForwardingMonitor("m", "unix:///nonexistent/fw.sock", start=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.forwarding"):
            fm.observe([[1.0, 2.0]], [[decimal.Decimal("0.2"), 0.3, 0.5]])
            fm.flush()
        assert fm.counters().dropped.get("unserializable") == 1
        assert "outputs: a decimal.Decimal value" in caplog.text
        assert "Fix: give ForwardingMonitor(output_kind=...)" in caplog.text
    finally:
        fm.close()


def test_the_plain_encoding_is_unchanged_for_outputs_json_writes() -> None:
    """Outputs JSON writes are sent as before when another field took the careful path (an input
    cell of a date): an integer array of a probabilities model's outputs is still integers (read
    in process, and at the sidecar, as labels given for probabilities), not the floats its scores
    would be read as."""
    import json

    from monitor.events import PREDICTION
    from monitor.forwarding import encode_event

    sent = json.loads(encode_event((PREDICTION, 1.0, [[datetime.date(2024, 1, 2), 2.0]], np.array([1, 0]), None, None,
                                    None, None, None), output_kind="probabilities"))
    assert sent["outputs"] == [1, 0] and all(type(v) is int for v in sent["outputs"])
    assert sent["inputs"] == [["2024-01-02", 2.0]]


# -- a str-mixin Enum member (class Tier(str, Enum)) ------------------------------------------------

class _Tier(str, enum.Enum):
    GOLD = "gold"
    Y = "y"


def _seen_whole(seen: list[Any]) -> Any:
    """A spy's keeping of everything the detectors see of a batch's values: its categorical cells,
    its text features' descriptors among the numbers, predicted classes, clients, segments, and
    each labelled batch's labels (classes by name)."""
    def update(self: Any, b: Any) -> None:
        seen.append(("rows", np.asarray(b.categorical).tolist(), [repr(v) for v in np.asarray(b.numeric).ravel().tolist()],
                     None if b.predicted is None else [b.classes[i] if i >= 0 else None for i in b.predicted.tolist()],
                     None if b.client is None else [None if c is None else (type(c).__name__, str.__str__(c)) for c in b.client.tolist()],
                     None if b.segment is None else [None if c is None else (type(c).__name__, str.__str__(c)) for c in b.segment.tolist()]))

    def update_labels(self: Any, lb: Any) -> None:
        labels = np.asarray(lb.label).tolist()
        seen.append(("labels", [lb.classes[int(i)] if 0 <= i < len(lb.classes) else i for i in labels] if lb.classes else labels))

    return type("Spy", (), {"kind": "spy", "update": update, "update_labels": update_labels,
                            "__getattr__": lambda self, n: (lambda *a, **k: None)})()


def test_a_str_enum_member_is_read_by_its_value_in_process_as_forwarded(tmp_path, monkeypatch) -> None:
    """A member of ``class Tier(str, Enum)`` (a FastAPI or pydantic model's field) is text: JSON
    writes its value (``gold``), which the sidecar read, while in process each reader took its
    ``str()`` (``Tier.GOLD``): a categorical or text feature's value, a labels model's class and a
    feedback label's class were another at the sidecar (``Tier.Y`` was class ``Tier.Y``, unknown
    to a model of classes n, y, z, in process, and ``y`` forwarded). In process it is now read as
    the text it is, as JSON writes it: the same classes, categories and texts on both sides."""
    import tests.test_forwarded_parity_s38g as harness

    monkeypatch.setattr(harness, "spy", lambda mon, seen: mon.pipeline.detectors.append(_seen_whole(seen)))
    mixed = {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"},
                          {"name": "c", "kind": "text"}]}
    rng = random.Random(40)
    for kind in ("labels", "probabilities", "text"):
        calls: list[Call] = []
        for i in range(12):
            row = {"a": rng.uniform(0, 1), "b": rng.choice([_Tier.GOLD, "gold", _Tier.Y]), "c": rng.choice([_Tier.GOLD, "a b c"])}
            outputs = {"labels": [rng.choice([_Tier.Y, _Tier.GOLD, "y", "n"])], "probabilities": [[0.2, 0.3, 0.5]],
                       "text": [rng.choice([_Tier.GOLD, "fine"])]}[kind]
            calls.append(("observe", ([row], outputs), {"request_id": f"r{i}", "client": rng.choice([_Tier.GOLD, "gold"]),
                                                         "segment": rng.choice([_Tier.Y, "y"])}))
            if kind != "text":
                calls.append(("feedback", (f"r{i}", rng.choice([_Tier.Y, _Tier.GOLD, "y"])), {}))
        config = {**mixed, "output": {"kind": kind, **({"classes": CLASSES} if kind != "text" else {})}}
        seen: list[Any] = []
        expected = in_process(config, calls, seen)
        assert expected[("monitor_predictions", ())] == 12, expected
        folder = tmp_path / kind
        folder.mkdir()
        got_seen: list[Any] = []
        got, exposition = forwarded(config, calls, folder, got_seen)
        assert total(exposition, "monitor_intake_events_refused_total") == 0, kind
        assert got == expected, kind
        assert got_seen == seen, kind
        assert "Tier.GOLD" not in repr(seen) and "Tier.Y" not in repr(seen), kind


# -- feedback labels JSON cannot write: the class each is named by ----------------------------------

#: Feedback labels JSON cannot write whose class a classifier names otherwise than by their float
#: or their str() (a Decimal 1 is the class named "1", not the class of index 1; numpy's datetime64
#: is named by its datetime's text), and multi-label truths holding them.
ODD_LABELS: dict[str, Any] = {
    "Decimal1": decimal.Decimal("1"), "Decimal2": decimal.Decimal("2"), "Decimal0.5": decimal.Decimal("0.5"),
    "Fraction2": fractions.Fraction(2, 1), "Fraction1/2": fractions.Fraction(1, 2),
    "datetime64[s]": np.datetime64("2024-01-02T03:04:05", "s"), "datetime64[us]": np.datetime64("2024-01-02T03:04:05", "us"),
    "datetime64[D]": np.datetime64("2024-01-02", "D"), "datetime64[ns]": np.datetime64("2024-01-02T03:04:05", "ns"),
    "Timestamp": pd.Timestamp("2024-01-02 03:04:05"), "date": datetime.date(2024, 1, 2), "UUID": uuid.UUID(int=5),
    "Enum": _Colour.RED, "Shown": _Shown(), "__float__": _Float(), "longdouble": np.longdouble(1.0),
    "truth of Decimals": [decimal.Decimal("1"), decimal.Decimal("0"), decimal.Decimal("1")],
    "truth with a Fraction": [fractions.Fraction(1), 0, 1]}
#: A classifier names these by their text, a regression model reads their float: a worker not told
#: its kind sends the float (the class then named "0.5", "0.25" where in process "1/2", "a quarter").
UNTOLD_CLASS_OTHERWISE = ("Fraction1/2", "__float__")


def _labelled_spy(seen: list[Any]) -> Any:
    """A detector that keeps each labelled batch's labels (classes by name, regression values, truths)."""
    def update_labels(self: Any, lb: Any) -> None:
        labels = np.asarray(lb.label).tolist()
        if lb.classes and np.asarray(lb.label).ndim == 1:
            labels = [lb.classes[int(i)] if 0 <= i < len(lb.classes) else i for i in labels]
        seen.append(labels)

    return type("Spy", (), {"kind": "spy", "update": lambda self, b: None, "update_labels": update_labels,
                            "__getattr__": lambda self, n: (lambda *a, **k: None)})()


@pytest.mark.parametrize("kind", ["probabilities", "labels", "regression", "multilabel"])
def test_feedback_labels_json_cannot_write_join_the_class_they_join_in_process(tmp_path, monkeypatch, kind: str) -> None:
    """The careful encoding sent such a label as the first of its float and its ``str()`` that the
    join took or refused alike, the class's name unchecked: a Decimal ``1`` was sent as 1.0, the
    class of index 1 (``y``) at the sidecar, the unknown class ``1`` in process; numpy's
    datetime64 of a unit other than ns as ``2024-01-02T03:04:05``, in process the class
    ``2024-01-02 03:04:05``; a multi-label truth of Decimals as floats, joined at the sidecar and
    ``invalid`` in process. Now the labels the detectors see are the in-process ones (seeded, told
    the kind or not: untold, a Fraction's or an object's class may still be named by its float)."""
    import tests.test_forwarded_parity_s38g as harness

    monkeypatch.setattr(harness, "spy", lambda mon, seen: mon.pipeline.detectors.append(_labelled_spy(seen)))
    outputs = {"probabilities": [[0.2, 0.3, 0.5]], "labels": ["y"], "regression": [1.0], "multilabel": [[0.2, 0.9, 0.1]]}[kind]
    for seed in range(3):
        rng = random.Random(40_100 + seed)
        for told in (False, True):
            names = [k for k in ODD_LABELS if told or kind == "regression" or k not in UNTOLD_CLASS_OTHERWISE]
            calls: list[Call] = []
            for i in range(16):
                calls.append(("observe", ([[1.0, 2.0]], outputs), {"request_id": f"r{i}"}))
                calls.append(("feedback", ([f"r{i}", "nope"], [ODD_LABELS[rng.choice(names)], rng.choice(CLASSES)]), {}))
            seen: list[Any] = []
            expected = in_process(ALL_KINDS[kind], calls, seen)
            folder = tmp_path / f"{seed}{told}"
            folder.mkdir()
            got_seen: list[Any] = []
            got, exposition = forwarded(ALL_KINDS[kind], calls, folder, got_seen, told_kind=told)
            assert total(exposition, "monitor_intake_events_refused_total") == 0, (seed, told)
            assert got == expected, (seed, told)
            assert got_seen == seen, (seed, told)
