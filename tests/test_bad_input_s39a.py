"""Caller's objects whose conversions raise (session 39, helper a's fuzz of evil objects in every
field of observe(), feedback() and observe_error(), in process and through a ForwardingMonitor to a
real sidecar): each cost its call as an internal error, raised out of the caller's call something
other than the ValueError that names a mistake, or was counted under another reason than its kind
of bad value. Each test failed before its fix; each object raises from the dunders it names only,
RuntimeError (not TypeError or ValueError, which the readers catch)."""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.test_bad_input_s38l import _NoIteration

__all__: list[str] = []

CLASSES = ["n", "y", "z"]


class _NoEquality:
    """A value whose ``==`` and ``!=`` raise RuntimeError."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparison")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("no comparison")


def _monitor(config: dict[str, Any]) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _internal_errors(mon: Monitor) -> float:
    return sum(mon.store.value("monitor_internal_errors", {"stage": s}) or 0 for s in ("ingest", "pipeline", "cycle"))


def _zero_d(value: Any) -> np.ndarray:
    """A 0-d object array holding ``value`` (``np.array(v, dtype=object)`` of a scalar)."""
    z = np.empty((), dtype=object)
    z[()] = value
    return z


def test_a_label_output_in_a_0d_array_whose_comparison_raises_is_no_missing_value() -> None:
    """A labels model's answer given as a 0-d object array holding an object whose ``!=`` raises:
    the missing-value test (``events.is_missing``, ``v != v`` on numpy values) caught TypeError and
    ValueError only, so the call was lost as an internal error. Such a value is no missing value
    (as ``cell_values.nan_like`` reads it): the row is read (its answer names no class)."""
    with _monitor({"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}}) as mon:
        mon.observe([[1.0, 2.0], [3.0, 4.0]], [_zero_d(_NoEquality()), "y"])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_calls") == 1
        assert mon.store.value("monitor_predicted_class", {"class": "y"}) == 1


class _NoRepr:
    """A value whose ``repr()`` raises RuntimeError."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_a_refused_label_output_whose_repr_raises_is_refused_not_lost() -> None:
    """A labels model's answer that is several values (a list, an array) is refused
    (``output_shape``) with an example in the message; the example was the value's ``repr()``, so
    one holding an object whose repr raises lost the call as an internal error. The message quotes
    it as every other one does (``input_forms.short_repr``: its type when its repr raises)."""
    with _monitor({"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}}) as mon:
        mon.observe([[1.0, 2.0], [3.0, 4.0]], [[_NoRepr()], "y"])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_rows_rejected", {"reason": "output_shape"}) == 1
        assert mon.store.value("monitor_predicted_class", {"class": "y"}) == 1


class _NoArray:
    """A value whose ``__array__`` raises RuntimeError (numpy calls it on every value it meets)."""

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise RuntimeError("no array")


def test_a_value_whose_array_conversion_raises_among_list_rows_is_one_unreadable_value() -> None:
    """Numpy calls ``__array__`` on every value of the lists it converts, and passes on what it
    raises: list rows of a model with a categorical feature (converted to an object array) lost
    the call as an internal error, and a numeric model refused the whole call (wrong_type) for one
    such value; a labels model's answers so too (internal error). Such lists are now put in the
    array value by value (``cell_values.object_cells``): the value is unreadable in its row
    (numeric: counted wrong_type; categorical: read by its text), the rows monitored."""
    cat = _monitor({"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}],
                    "output": {"kind": "regression"}})
    num = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    labels = _monitor({"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}})
    try:
        cat.observe([[_NoArray(), "x"], [2.0, "y"]], [1.0, 2.0])
        cat.observe([[1.0, _NoArray()]], [1.0])
        num.observe([[_NoArray(), 1.0], [2.0, 3.0]], [1.0, 2.0])
        labels.observe([[1.0, 2.0], [3.0, 4.0]], [_NoArray(), "y"])
        labels.observe([[1.0, 2.0]], _NoArray())  # one answer, as numpy holds an object it cannot convert
        for mon in (cat, num, labels):
            mon.flush()
            assert _internal_errors(mon) == 0
        assert cat.store.value("monitor_predictions") == 3
        assert cat.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1
        assert num.store.value("monitor_predictions") == 2
        assert num.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1
        assert labels.store.value("monitor_calls") == 2
        assert labels.store.value("monitor_predicted_class", {"class": "y"}) == 1
    finally:
        for mon in (cat, num, labels):
            mon.close()


class _NoTime:
    """A ``timestamp=`` whose ``float()`` and ``repr()`` raise RuntimeError."""

    def __float__(self) -> float:
        raise RuntimeError("no number")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_a_timestamp_or_feedback_argument_that_cannot_be_read_is_a_mistake_said_not_a_crash(caplog) -> None:
    """A ``timestamp=`` whose conversion raises (not TypeError or ValueError) went up through
    ``observe`` as an internal error (monitor_events_dropped_total{reason="internal_error"}) and
    out of ``observe_error`` and ``feedback`` as it came; ids or labels whose iteration raises so
    too out of ``feedback``. A timestamp is now read as any that is no time (the call dropped and
    counted ``invalid_timestamp``, said once; a ValueError from feedback), ids and labels as a
    mistake in the call (a ValueError naming them and the fix); in a ForwardingMonitor alike."""
    import pytest

    from monitor.forwarding import ForwardingMonitor

    mon = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    fm = ForwardingMonitor("m", "unix:///nonexistent/fw.sock", start=False)
    try:
        for sink in (mon, fm):
            assert sink.observe([[1.0, 2.0]], [1.0], timestamp=_NoTime()) is False
            assert sink.observe_error("TimeoutError", timestamp=_NoTime()) is False
            assert sink.queue.counters()[0] == {"invalid_timestamp": 2}
            with pytest.raises(ValueError, match="timestamp must be Unix seconds"):
                sink.feedback("r1", 1.0, timestamp=_NoTime())
            with pytest.raises(ValueError, match="feedback: the request_ids could not be read"):
                sink.feedback(_NoIteration(), [1.0])
            with pytest.raises(ValueError, match="feedback: the labels could not be read"):
                sink.feedback(["r1"], _NoIteration())
        assert "timestamp=a _NoTime that cannot be printed" in caplog.text
    finally:
        mon.close()
        fm.close()


def test_a_forwarded_argument_that_cannot_be_read_is_dropped_and_counted_as_in_process(tmp_path) -> None:
    """A prediction's client, segment or request id whose iteration or ``str()`` raises: in
    process the rows are kept without it, counted in monitor_row_arguments_dropped_total; a
    forwarding worker's reading of it raised in its sender, which dropped the whole event as
    ``unserializable`` (the rows lost from every figure), and an error's client so too (in process
    never read). They are now sent as a per-row list of no values, which the sidecar counts as in
    process; an error's such client is left out. A segment given as bytes or NaN was sent as
    ``"b'eu'"`` or ``"nan"`` (in process ``eu`` and none): read as in process now."""
    from tests.sidecar_support import total
    from tests.test_bad_input_s38l import _NoText
    from tests.test_forwarded_parity_s38g import PROBS, forwarded, in_process

    rows, scores = np.zeros((2, 2)), [[0.2, 0.3, 0.5]] * 2
    calls = [("observe", (rows, scores), {argument: value})
             for argument in ("client", "segment", "request_id")
             for value in (_NoIteration(), [_NoText(), "x"], _NoText())]
    calls += [("observe_error", ("TimeoutError",), {"client": value}) for value in (_NoText(), _NoIteration())]
    calls += [("observe", (rows, scores), {"segment": value}) for value in (b"eu", float("nan"), [b"eu", float("nan")])]
    config = {**PROBS, "detectors": [{"kind": "segments"}]}
    expected = in_process(config, calls)
    assert expected[("monitor_row_arguments_dropped", (("argument", "client"),))] == 6, expected
    assert expected[("monitor_row_arguments_dropped", (("argument", "segment"),))] == 6, expected
    assert expected[("monitor_row_arguments_dropped", (("argument", "request_id"),))] == 2 + 1 + 2, expected
    assert expected[("monitor_predictions", ())] == 24, expected
    got, text = forwarded(config, calls, tmp_path)
    assert total(text, "monitor_intake_events_refused_total") == 0
    assert got == expected
    assert total(text, "monitor_segment_rows_in_window", segment="eu") == 3  # as in process: 2 rows + 1
    assert total(text, "monitor_segment_rows_in_window", segment="b'eu'") == total(text, "monitor_segment_rows_in_window",
                                                                                    segment="nan") == 0


def test_a_complex_number_in_a_0d_object_array_among_list_values_is_not_read_as_its_real_part() -> None:
    """A numpy complex number held in a 0-d object array (a value numpy leaves as it is among a
    list's values) was read as its real part, numpy's ComplexWarning on the user's stderr the only
    sign: in a list of outputs (a probability row read as summing to 1.5: refused as not
    normalised, a regression output kept as 1.0) and in list rows. The checks for complex numbers
    looked at a value's type and an array's dtype, not into an object array
    (``cell_values.holds_complex`` does): such outputs are refused as complex ones are, such an
    input value unreadable (counted wrong_type), the row monitored."""
    import warnings

    complex_0d = _zero_d(np.complex128(1 + 2j))
    probs = _monitor({"features": ["a", "b"], "output": {"kind": "probabilities", "classes": CLASSES}})
    reg = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    labels = _monitor({"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            probs.observe([[1.0, 2.0]], [[complex_0d, 0.5, 0.5]])
            reg.observe([[1.0, 2.0], [3.0, 4.0]], [complex_0d, 2.0])
            reg.observe([[complex_0d, 2.0], [3.0, 4.0]], [1.0, 2.0])
            labels.observe([[1.0, 2.0]], [complex_0d])
            for mon in (probs, reg, labels):
                mon.flush()
        assert not [w for w in caught if "complex" in str(w.message).lower()], [str(w.message) for w in caught]
        for mon in (probs, reg, labels):
            assert _internal_errors(mon) == 0
        assert probs.store.value("monitor_rows_rejected", {"reason": "non_numeric_output"}) == 1
        assert reg.store.value("monitor_rows_rejected", {"reason": "non_numeric_output"}) == 2
        assert reg.store.value("monitor_predictions") == 2
        assert reg.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1
        assert labels.store.value("monitor_rows_rejected", {"reason": "non_numeric_output"}) == 1
    finally:
        for mon in (probs, reg, labels):
            mon.close()


def test_a_label_whose_text_raises_costs_no_drain() -> None:
    """A label naming no class is said once with examples of such labels (their text); a label
    whose ``str()`` raises made that line raise, and the whole drain was lost as an internal error
    (monitor_internal_errors_total{stage="pipeline"}): every call and label in it, not only the
    bad one. The line quotes such a label by what it is now; the label is counted as one that
    names no class."""
    from tests.test_bad_input_s38l import _NoText

    with _monitor({"features": ["a", "b"], "output": {"kind": "probabilities", "classes": CLASSES}}) as mon:
        mon.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], request_id="r1")
        mon.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], request_id="r2")
        mon.feedback(["r1", "r2"], [_NoText(), "y"])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 2
        assert mon.store.value("monitor_feedback_labels", {"outcome": "joined"}) == 2


def test_a_latency_whose_repr_raises_is_said_by_what_it_is(caplog) -> None:
    """A ``latency_s`` that is no number of seconds is left out and said once with an example, its
    ``%r`` in the log line: for a caller's object whose repr raises, logging's formatting failed
    (a "--- Logging error ---" traceback on the user's stderr; under a handler that raises, as
    pytest's, the whole drain lost as an internal error). The line says it as the others do
    (``events.describe_value``)."""
    with _monitor({"features": ["a", "b"], "output": {"kind": "regression"}}) as mon:
        mon.observe([[1.0, 2.0]], [1.0], latency_s=_NoRepr())
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 1
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "latency_s"}) == 1
        assert "(e.g. a _NoRepr that cannot be printed)" in caplog.text


# -- the seeded fuzz of evil objects ---------------------------------------------------------------

#: The conversions an evil object's class raises from (each draw picks one to three of them).
_DUNDERS = ("__repr__", "__str__", "__iter__", "__eq__", "__len__", "__float__", "__array__", "__hash__", "__int__",
            "__index__", "__bool__", "__format__")
_EXCEPTIONS = (RuntimeError, KeyError, ZeroDivisionError, AttributeError, OSError)
_KINDS = {"probabilities": {"features": ["a", "b"], "output": {"kind": "probabilities", "classes": CLASSES}},
          "categorical": {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}],
                          "output": {"kind": "regression"}},
          "text": {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "text"}],
                   "output": {"kind": "labels", "classes": CLASSES}},
          "multilabel": {"features": ["a", "b"], "output": {"kind": "multilabel", "classes": CLASSES}}}
_ARGUMENTS = ("client", "segment", "request_id")


def _evil(rng: Any) -> Any:
    """An object whose class raises one of :data:`_EXCEPTIONS` from one to three of :data:`_DUNDERS`."""
    names = rng.sample(_DUNDERS, rng.randint(1, 3))
    error = rng.choice(_EXCEPTIONS)

    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise error("evil " + ",".join(names))
    space: dict[str, Any] = {name: raiser for name in names}
    if "__iter__" in names and "__len__" not in names:
        space["__len__"] = lambda self: 2
    if "__eq__" in names:
        space["__ne__"] = raiser
        space.setdefault("__hash__", object.__hash__)
    return type("Evil", (), space)()


def _evil_calls(seed: int, kind: str, n_calls: int) -> list[tuple[str, tuple[Any, ...], dict[str, Any], str]]:
    """Calls of observe(), feedback() and observe_error() with an evil object in one field each:
    a value of list rows, dict rows, an object array or a DataFrame, a row, the inputs, an output
    value, row or the outputs, a 0-d array holding one, a client, segment or request id (one for
    the call or one entry of a per-row list), the latency, the embedding, the timestamp, a
    feedback id or label (or their lists), an error's client, latency or timestamp."""
    import random

    rng = random.Random(seed)
    second = {"probabilities": lambda: rng.random(), "categorical": lambda: rng.choice(["u", "v", 1.5]),
              "text": lambda: rng.choice(["hi there", "x"]), "multilabel": lambda: rng.random()}[kind]
    names = _KINDS[kind]["features"]
    cols = [f if isinstance(f, str) else f["name"] for f in names]
    calls = []
    for i in range(n_calls):
        e, n, r = _evil(rng), rng.randint(1, 3), rng.random()
        rows = [[rng.uniform(-1, 1), second()] for _ in range(n)]
        outs: list[Any] = {"probabilities": [[0.2, 0.3, 0.5]] * n, "categorical": [rng.uniform(-1, 1) for _ in range(n)],
                           "text": [rng.choice(CLASSES) for _ in range(n)], "multilabel": [[0.9, 0.1, 0.6]] * n}[kind]
        j, col = rng.randrange(n), rng.randrange(2)
        if r < 0.7:
            field = rng.choice(["cell", "dict", "object_array", "frame", "row", "inputs", "output", "output_row", "outputs",
                                "output_0d", "argument", "argument_row", "latency_s", "embedding", "timestamp"])
            inputs, outputs, kwargs = rows, outs, {"request_id": f"r{i}" if n == 1 else [f"r{i}_{k}" for k in range(n)]}
            if field in ("cell", "dict", "object_array", "frame"):
                rows[j][col] = e
                inputs = {"cell": lambda: rows, "dict": lambda: [dict(zip(cols, row)) for row in rows],
                          "object_array": lambda: _object_rows(rows),
                          "frame": lambda: _frame(_object_rows(rows), cols)}[field]()
            elif field == "row":
                rows[j] = e
            elif field == "inputs":
                inputs = e
            elif field in ("output", "output_row", "output_0d"):
                outs = [list(o) if isinstance(o, list) else o for o in outs]
                if field == "output" and isinstance(outs[j], list):
                    outs[j][rng.randrange(3)] = e
                else:
                    outs[j] = _zero_d(e) if field == "output_0d" else e
                outputs = outs
            elif field == "outputs":
                outputs = e
            elif field == "argument":
                kwargs[rng.choice(_ARGUMENTS)] = e
            elif field == "argument_row":
                values: list[Any] = [f"v{i}_{k}" for k in range(n)]
                values[j] = e
                kwargs[rng.choice(_ARGUMENTS)] = values
            elif field == "embedding":
                kwargs["embedding"] = rng.choice([e, [[1.0, e]] * n])
            else:
                kwargs[field] = e
            calls.append(("observe", (inputs, outputs), kwargs, field))
        elif r < 0.85:
            field = rng.choice(["id", "label", "ids", "labels", "id_in_list", "label_in_list", "timestamp"])
            ids: list[Any] = [f"r{rng.randrange(max(i, 1))}", "zz"]
            labels: list[Any] = [[1, 0, 1]] * 2 if kind == "multilabel" else [1.0 if kind == "categorical" else "y"] * 2
            args: tuple[Any, ...] = {"id": (e, labels[0]), "label": (ids[0], e), "ids": (e, labels),
                                     "labels": (ids, e)}.get(field, (ids, labels))
            if field.endswith("_in_list"):
                (ids if field == "id_in_list" else labels)[0] = e
            calls.append(("feedback", args, {"timestamp": e} if field == "timestamp" else {}, "feedback " + field))
        else:
            field = rng.choice(["client", "latency_s", "timestamp"])
            calls.append(("observe_error", ("TimeoutError",), {field: e}, "error " + field))
    return calls


def _frame(cells: np.ndarray, columns: list[str]) -> Any:
    """A DataFrame of ``cells``: of object columns when pandas' inference of their dtypes raises
    (s40b's objects: pandas asks isinstance of every value, which runs an evil ``__class__``)."""
    import pandas as pd

    try:
        return pd.DataFrame(cells, columns=columns)
    except Exception:  # noqa: BLE001 - pandas' reading of the evil value
        return pd.DataFrame(cells, columns=columns, dtype=object)


def _object_rows(rows: list[list[Any]]) -> np.ndarray:
    out = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            out[i, j] = v
    return out


def _run_evil(target: Any, calls: list[tuple[str, tuple[Any, ...], dict[str, Any], str]]) -> list[tuple[str, str]]:
    """Make the calls; the fields of those that raised other than ValueError (a mistake said)."""
    raised = []
    for name, args, kwargs, field in calls:
        try:
            getattr(target, name)(*args, **kwargs)
        except ValueError:
            pass
        except Exception as err:  # noqa: BLE001 - what the fuzz looks for
            raised.append((field, type(err).__name__))
    return raised


def test_seeded_fuzz_of_evil_objects_in_every_field_costs_no_internal_error() -> None:
    """Evil objects in every field of observe(), feedback() and observe_error() (4 kinds x 3 seeds
    x 30 calls, about 1 s), in process: no internal error at any stage, no event dropped as one, no
    call raising other than a ValueError. Before this session's fixes these seeds lost calls as
    internal errors (ingest, and whole drains at the pipeline stage) and raised RuntimeError and
    others out of feedback() and observe_error()."""
    found = {}
    for kind, config in _KINDS.items():
        for seed in range(3):
            calls = _evil_calls(seed, kind, 30)
            mon = _monitor(config)
            try:
                raised = _run_evil(mon, calls)
                mon.flush()
                errors = _internal_errors(mon) + (mon.store.value("monitor_internal_errors", {"stage": "export"}) or 0)
                shed = mon.store.value("monitor_events_dropped", {"reason": "internal_error"}) or 0
                assert mon.store.value("monitor_calls") >= 10, (kind, seed)  # the calls were made, most of them read
            finally:
                mon.close()
            if errors or shed or raised:
                found[(kind, seed)] = (errors, shed, raised)
    assert found == {}


def test_seeded_fuzz_of_evil_arguments_gives_the_in_process_figures_forwarded(tmp_path) -> None:
    """The fuzz's calls with an evil client, segment, request id, feedback id or error argument, through
    a ForwardingMonitor to a real sidecar: the sidecar's figures are the in-process Monitor's (an
    evil value in the inputs, outputs, embedding or a label is one JSON cannot carry: the worker
    drops such an event whole, counted ``unserializable`` and said, as any such value)."""
    from tests.test_forwarded_parity_s38g import forwarded, in_process

    # (a timestamp that is no time is dropped in the worker, counted there: the parity helper
    # asserts that the worker dropped nothing; test_a_timestamp_or_feedback_... covers it)
    kept = ("argument", "argument_row", "feedback id", "feedback ids", "feedback id_in_list", "error client",
            "error latency_s")
    for kind in ("probabilities", "categorical"):
        calls = [c for c in _evil_calls(7, kind, 80) if c[3] in kept]
        assert len(calls) >= 20, len(calls)
        plain = [c[:3] for c in calls]
        expected = in_process(_KINDS[kind], [(n, a, k) for n, a, k in plain if _makes_no_mistake(n, a, k)])
        folder = tmp_path / kind
        folder.mkdir()
        got, _ = forwarded(_KINDS[kind], [(n, a, k) for n, a, k in plain if _makes_no_mistake(n, a, k)], folder)
        assert got == expected, kind


def _makes_no_mistake(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call is made without a ValueError (the parity run makes only those: a call that
    raises is the caller's, made the same on both sides, and ends the parity helper's run)."""
    from monitor.events import event_time, feedback_lists

    try:
        if name == "feedback":
            feedback_lists(*args)
            if "timestamp" in kwargs:
                event_time(kwargs["timestamp"])
    except ValueError:
        return False
    return True
