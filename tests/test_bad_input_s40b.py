"""Caller's objects outside session 39's fuzz of evil objects (session 40, helper b): values whose
``__class__`` or ``__getattribute__`` raises (proxies, lazy objects: ``isinstance`` reads
``__class__`` when the type is not the one asked for, so it raises what they raise), str and dict
subclasses whose methods raise, ``__len__`` that is no size, ``__eq__`` whose answer has no truth,
object arrays holding them; in observe(), feedback(), observe_error() and through watch(), in
process and forwarded. Each test failed before its fix; each object raises RuntimeError (not
TypeError or ValueError, which the readers catch)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.events import ERROR
from monitor.forwarding import ForwardingMonitor
from tests.test_bad_input_s39a import _object_rows, _zero_d

__all__: list[str] = []

CLASSES = ["n", "y", "z"]
PROBS = {"features": ["a", "b"], "output": {"kind": "probabilities", "classes": CLASSES}}


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("evil")


class _NoClass:
    """A value whose ``__class__`` raises (a lazy proxy whose setup fails): ``isinstance(v, T)``
    raises for every ``T`` but its own type."""

    __class__ = property(_raise)  # type: ignore[assignment]


class _NoAttributes:
    """A value whose ``__getattribute__`` raises for every name (``__class__`` included)."""

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name}")


class _HostileStr(str):
    """Text whose methods raise (a str subclass overriding them): ``isinstance(v, str)`` holds."""


for _name in ("__str__", "__repr__", "__getitem__", "__iter__", "__len__", "__bool__", "__hash__", "__eq__", "__ne__",
              "__contains__", "__format__", "strip", "lower", "encode", "startswith", "rpartition", "isdigit", "split",
              "replace", "__float__", "__int__", "__add__", "__mod__", "__lt__"):
    setattr(_HostileStr, _name, _raise)


def _monitor(config: dict[str, Any] = PROBS) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _internal_errors(mon: Monitor) -> float:
    return sum(mon.store.value("monitor_internal_errors", {"stage": s}) or 0
               for s in ("ingest", "pipeline", "cycle", "export", "clock"))


#: Each evil value's maker and the exception name observe_error() reads it as.
_EVILS = {"no_class": (_NoClass, "_NoClass"), "no_attributes": (_NoAttributes, "_NoAttributes"),
          "hostile_str": (lambda: _HostileStr("1.5"), "1.5")}


@pytest.mark.parametrize("case", sorted(_EVILS))
def test_a_call_argument_whose_class_cannot_be_read_raises_nothing_out_of_the_call(case: str) -> None:
    """``observe_error(exception)``, a ``timestamp=`` and feedback ids or labels whose
    ``__class__`` raises, or text whose methods raise: ``error_event`` read the exception with
    ``isinstance`` and cut it with the subclass's own slicing, ``event_time`` asked
    ``isinstance(timestamp, bool)`` before its guard, ``feedback``'s ``_one_value`` asked
    ``isinstance(x, (str, bytes))`` and the forwarding worker's ``is_missing`` (a label)
    ``isinstance(v, float)``: each raised out of the caller's call (RuntimeError), and observe()'s
    timestamp was dropped as the monitor's ``internal_error``. Now an exception is its type's name
    or its text, a timestamp none is no time (``invalid_timestamp``; feedback: a ValueError), an id
    or label one value; in a ForwardingMonitor alike."""
    evil, name = _EVILS[case]
    mon = _monitor()
    fm = ForwardingMonitor("m", "unix:///nonexistent/fw.sock", start=False)
    try:
        for sink in (mon, fm):
            assert sink.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], timestamp=evil()) is False
            assert sink.observe_error("TimeoutError", timestamp=evil()) is False
            assert sink.queue.counters()[0] == {"invalid_timestamp": 2}
            assert sink.observe_error(evil()) is True
            with pytest.raises(ValueError, match="timestamp must be Unix seconds"):
                sink.feedback("r1", "y", timestamp=evil())
            sink.feedback(evil(), "y")
            sink.feedback("r1", evil())
            sink.feedback(["r1", "r2"], ["y", evil()])
            sink.feedback(["r1", evil()], ["y", "n"])
            names = [e[2] for e in sink.queue.items if e[0] == ERROR]
            assert names == [name], names
    finally:
        mon.close()
        fm.close()


@pytest.mark.parametrize("case", sorted(_EVILS))
def test_a_feedback_id_label_or_latency_whose_class_cannot_be_read_costs_no_drain(case: str) -> None:
    """A feedback id whose ``__class__`` raises (the join's log example, ``_untaken_id``, asked
    ``isinstance(rid, int)``), a label of a str subclass whose ``len()`` raises (``_held_class``
    measured it for a prediction not come yet), a ``latency_s`` whose ``__class__`` raises
    (``latency_seconds``' isinstance): each lost the whole drain as a pipeline internal error,
    every call and label in it. Now the id is read by its text (it finds no prediction), the label
    as its text (the class it names), the latency is left out (counted)."""
    evil, _ = _EVILS[case]
    with _monitor() as mon:
        mon.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], request_id="r1")
        mon.feedback(evil(), "y")
        mon.feedback(["r2", evil()], ["y", "n"])
        mon.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], latency_s=evil())
        mon.feedback(["r1", "r3"], [_HostileStr("y"), _HostileStr("n")])  # r3: held for a prediction to come
        mon.flush()
        mon.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], request_id="r3")
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_calls") == 3
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "latency_s"}) == 1
        assert mon.store.value("monitor_feedback_labels", {"outcome": "joined"}) == 2


MIXED = {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}, {"name": "c", "kind": "text"}],
         "output": {"kind": "regression"}}


@pytest.mark.parametrize("case", ["no_class", "no_attributes"])
@pytest.mark.parametrize("form", ["lists", "dicts", "object_array", "zero_d"])
def test_an_input_value_whose_class_cannot_be_read_is_one_unreadable_value(case: str, form: str) -> None:
    """An input value whose ``__class__`` raises, in a numeric, a categorical or a text column:
    the readers told its kind by ``isinstance`` (cell_number, holds_complex, temporal_seconds,
    nan_like, text_value, the unreadable-value line) or ``v.__class__`` (float_text), each of which
    ran the caller's ``__class__``: the call was lost as an ingest internal error. Now they tell it
    by ``type(v)``: the numeric value is unreadable (counted wrong_type, its row monitored), the
    categorical and text ones read by their text."""
    evil, _ = _EVILS[case]
    rows = [[evil(), "u", "hello there"], [1.0, evil(), "hi"], [2.0, "v", evil()], [3.0, "u", "fine"]]
    inputs: Any = {"lists": rows, "dicts": [dict(zip("abc", r)) for r in rows],
                   "object_array": _object_rows(rows),
                   "zero_d": [[v if type(v) in (float, str) else _zero_d(v) for v in r] for r in rows]}[form]
    with _monitor(MIXED) as mon:
        mon.observe(inputs, [0.1, 0.2, 0.3, 0.4])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 4
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1


def test_text_of_a_str_subclass_whose_methods_raise_is_read_as_its_text() -> None:
    """Text of a str subclass overriding its methods (here raising) in a numeric, categorical or
    text column: cell_number stripped it with its own ``strip()`` and read it with its own
    ``float()``, text_value and category_text took its own ``str()``; the call was lost as an
    ingest internal error (a numeric one) or its value unreadable. Such text is read by str's own
    methods now, as the text it holds: ``"1.5"`` is 1.5, the category ``u``, the text ``hello``."""
    rows = [[_HostileStr("1.5"), _HostileStr("u"), _HostileStr("hello there")], [2.0, "u", "hello there"]]
    with _monitor(MIXED) as mon:
        mon.observe(rows, [0.1, 0.2])
        mon.observe([dict(zip("abc", r)) for r in rows], [0.1, 0.2])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 4
        assert not mon.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"})
        assert not mon.store.value("monitor_data_invalid_rows", {"feature": "b", "reason": "wrong_type"})


@pytest.mark.parametrize("case", ["no_class", "no_attributes"])
def test_inputs_outputs_or_an_embedding_whose_class_cannot_be_read_are_refused_not_lost(case: str) -> None:
    """Whole inputs, outputs or an embedding whose ``__class__`` raises, or such a value as a row,
    a dict row or a labels model's answer: the event's first look (``_event_as_numpy``: is any part
    a tensor or a masked array?), ``named_columns``, the dict-rows test, the output decoder's "is
    this label several values?" and ``ClassIndex.lookup``, and the refusal's example
    (``_text_example``) asked ``isinstance``: the call was lost as an ingest internal error. They ask
    ``type(v)`` now: such inputs are refused as rows of no shape (counted), the outputs refused,
    the embedding dropped (counted), a row or an answer read as one value."""
    evil, _ = _EVILS[case]
    rows = [[1.0, 2.0], [3.0, 4.0]]
    labels = {"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}}
    with _monitor() as mon, _monitor(labels) as lab:
        mon.observe(evil(), [[0.2, 0.3, 0.5]])
        mon.observe(rows, evil())
        mon.observe(rows, [[0.2, 0.3, 0.5]] * 2, embedding=evil())
        mon.observe([[1.0, 2.0], evil()], [[0.2, 0.3, 0.5]] * 2)
        mon.observe([{"a": 1.0, "b": 2.0}, evil()], [[0.2, 0.3, 0.5]] * 2)
        mon.observe([[1.0, 2.0], [3.0, 4.0]], [[0.2, 0.3, 0.5], evil()])
        lab.observe(rows, [evil(), "y"])
        for m in (mon, lab):
            m.flush()
            assert _internal_errors(m) == 0
        assert mon.store.value("monitor_calls") == 6
        assert sum(mon.store.value("monitor_rows_rejected", {"reason": r}) or 0 for r in ("wrong_type", "wrong_shape")) >= 1
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "embedding"}) == 2
        assert lab.store.value("monitor_predicted_class", {"class": "y"}) == 1


class _HostileDict(dict):
    """A dict subclass whose ``keys``, ``items``, ``values``, ``get`` and iteration raise."""


for _name in ("keys", "items", "values", "get", "__iter__", "__getitem__", "__contains__", "__len__"):
    setattr(_HostileDict, _name, _raise)


def test_a_dict_row_of_a_subclass_whose_methods_raise_is_read_by_its_items() -> None:
    """Inputs given as a dict subclass overriding ``keys``/``items``/``values``/``get`` (here
    raising): as one row, a dict of columns, or a row among dict rows (first or later), the row
    reader called them (``inputs.values()``, ``row.keys()`` in the renamed-keys check, ``row.get``):
    the call was lost as an ingest internal error. A dict subclass is read by dict's own storage
    now (``own_dict``): the rows are monitored."""
    with _monitor() as mon:
        mon.observe(_HostileDict(a=1.0, b=2.0), [[0.2, 0.3, 0.5]])
        mon.observe(_HostileDict(a=[1.0, 3.0], b=[2.0, 4.0]), [[0.2, 0.3, 0.5]] * 2)
        mon.observe([_HostileDict(a=1.0, b=2.0), {"a": 3.0, "b": 4.0}], [[0.2, 0.3, 0.5]] * 2)
        mon.observe([{"a": 1.0, "b": 2.0}, _HostileDict(a=3.0, b=4.0)], [[0.2, 0.3, 0.5]] * 2)
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 7
        assert not mon.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "missing"})


def test_a_list_beside_other_values_holding_a_value_numpy_cannot_read_is_read_as_numpy_reads_it() -> None:
    """A labels model's answers ``[[x], "y"]`` where numpy's conversion raises on ``x`` (its
    ``__getattribute__`` raises: numpy looks up ``__array__`` on every value): object_cells' own
    reading, taken then, refused lists beside other values or of different lengths as parts of
    different shapes, so the whole call was refused (``output_shape``, 2 rows, and a line saying
    the outputs are parts of different shapes), where numpy's reading of the same answers with
    an ordinary object refuses the list alone. They are one value each now, as numpy holds them:
    the figures are those of the same call with an ordinary object."""
    labels = {"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}}
    figures = []
    for value in (object(), _NoAttributes()):
        with _monitor(labels) as lab:
            lab.observe([[1.0, 2.0], [3.0, 4.0]], [[value], "y"])
            lab.observe([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[value, "n"], ["z"], "y"])
            lab.flush()
            assert _internal_errors(lab) == 0
            figures.append((lab.store.value("monitor_rows_rejected", {"reason": "output_shape"}),
                            lab.store.value("monitor_predicted_class", {"class": "y"})))
    assert figures[1] == figures[0] == (3, 2), figures


@pytest.mark.parametrize("case", ["no_class", "no_attributes"])
def test_a_forwarded_latency_or_embedding_value_whose_class_cannot_be_read_keeps_its_rows(tmp_path, case: str) -> None:
    """A ``latency_s``, an embedding or one value of it whose ``__class__`` raises: in process the
    latency is left out and the embedding's rows dropped (each counted), the rows monitored; a
    forwarding worker's encoding asked ``isinstance`` (``_latency``, the careful encoding and
    ``_number_or_none``), so the whole event was dropped as ``unserializable``, its rows lost from
    every figure. Now read by type: the sidecar's figures are the in-process Monitor's."""
    from tests.test_forwarded_parity_s38g import forwarded, in_process

    evil, _ = _EVILS[case]
    rows, scores = [[1.0, 2.0], [3.0, 4.0]], [[0.2, 0.3, 0.5]] * 2
    calls = [("observe", (rows, scores), {"latency_s": evil()}),
             ("observe_error", ("TimeoutError",), {"latency_s": evil()}),
             ("observe", (rows, scores), {"embedding": [[1.0, evil()], [0.5, 0.5]]}),
             ("observe", (rows, scores), {"embedding": evil()})]
    expected = in_process(PROBS, calls)
    assert expected[("monitor_predictions", ())] == 6, expected
    got, _ = forwarded(PROBS, calls, tmp_path)
    assert got == expected


def _bug(module: Any, name: str, monkeypatch: Any) -> None:
    """Make ``module.name`` raise AttributeError as a bug of that module's own code would: the
    function is compiled as that module's file and runs in its globals, so that its frame is the
    module's."""
    import types

    code = compile("def bug(*args, **kwargs):\n    raise AttributeError('a bug of the monitor')\n", module.__file__, "exec")
    body = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    monkeypatch.setattr(module, name, types.FunctionType(body, module.__dict__, "bug"))


@pytest.mark.parametrize("where", ["client", "segment", "request_id", "error_client", "json"])
def test_a_bug_in_the_forwarding_workers_reading_is_its_internal_error_not_the_callers_value(monkeypatch, where: str) -> None:
    """The forwarding worker caught any exception around its whole reading of a client, segment or
    request id (``_argument``, ``_sendable_request_id``, ``_id_as_text``, an error event's client)
    and any exception writing an event as JSON: a bug of its own code there (here one raising
    AttributeError) was counted and said as the caller's value: "a prediction came with a client
    that cannot be read (AttributeError ...)" and the rows counted without it at the sidecar, an
    error's client left out silently, an event dropped ``unserializable``. Only the caller's value's
    own errors are caught so now (:class:`~monitor.events.CallerValueError`, raised around its
    ``str()``, its iteration, its conversions; json's errors about the values): the bug drops the
    event as the worker's ``internal_error`` (counted, logged with its traceback). The caller's own
    objects are still read as before (the tests above, s39a's and s39e's)."""
    from monitor import forwarding

    rows, scores = [[1.0, 2.0], [3.0, 4.0]], [[0.2, 0.3, 0.5]] * 2
    if where in ("client", "error_client"):
        _bug(forwarding, "_client_key", monkeypatch)
    elif where == "segment":
        _bug(forwarding, "segment_text", monkeypatch)
    elif where == "request_id":
        _bug(forwarding, "request_id_text", monkeypatch)
    else:
        _bug(forwarding, "_has", monkeypatch)
    said: list[tuple[str, str]] = []
    fm = ForwardingMonitor("m", "unix:///nonexistent/fw.sock", start=False)
    monkeypatch.setattr(fm, "_argument_unreadable", lambda argument, why: said.append((argument, why)))
    try:
        if where == "error_client":
            fm.observe_error("TimeoutError", client="c1")
        elif where == "json":
            fm.observe(rows, scores, embedding=[{1, 2}, {3}])  # a set: no JSON, so _default looks it over
        else:
            fm.observe(rows, scores, **{where: ["v1", "v2"] if where != "request_id" else [b"r1", b"r2"]})
        fm.flush()
        dropped = fm.counters().dropped
        dropped.pop("sidecar_unavailable", None)
        assert dropped == {"internal_error": 1}, dropped
        assert said == []
    finally:
        fm.close()


@pytest.mark.parametrize("argument", ["client", "segment", "request_id"])
def test_a_bug_in_the_row_readers_is_an_internal_error_not_the_callers_argument(monkeypatch, argument: str) -> None:
    """The in-process row readers (row_clients, row_segments, row_ids) caught any exception around
    their reading of a per-row argument as the caller's value that cannot be read: a bug of their
    own (here the text reader raising AttributeError) was counted in
    monitor_row_arguments_dropped_total and said as "could not be read (AttributeError reading its
    values or their text)". They catch the caller's value's own errors only now: the bug costs the
    call as the monitor's ingest internal error."""
    from monitor import row_arguments

    _bug(row_arguments, "client_text" if argument == "client" else "segment_text" if argument == "segment" else "request_id_text",
         monkeypatch)
    with _monitor() as mon:
        mon.observe([[1.0, 2.0], [3.0, 4.0]], [[0.2, 0.3, 0.5]] * 2, **{argument: [b"v1", b"v2"]})
        mon.flush()
        assert not mon.store.value("monitor_row_arguments_dropped", {"argument": argument})
        assert mon.store.value("monitor_internal_errors", {"stage": "ingest"}) == 1



@pytest.mark.parametrize("case", ["no_class", "no_attributes"])
def test_a_dataframe_holding_a_value_whose_class_cannot_be_read_is_read_cell_by_cell(case: str) -> None:
    """A DataFrame whose object column holds a value whose ``__class__`` raises: its rows were read
    by ``to_dict(orient="records")``, in which pandas asks ``isinstance`` of every value (to box
    numpy's scalars), so the call was lost as an ingest internal error. Its cells are read as they
    are when pandas' reading raises: the value unreadable (counted wrong_type), the rows monitored."""
    import pandas as pd

    evil, _ = _EVILS[case]
    frame = pd.DataFrame(_object_rows([[evil(), "u", "hello there"], [1.0, "v", "hi"]]), columns=["a", "b", "c"], dtype=object)
    with _monitor(MIXED) as mon:
        mon.observe(frame, [0.1, 0.2])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 2
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1


def test_a_forwarded_dict_subclass_whose_methods_raise_is_sent_by_its_items(tmp_path) -> None:
    """A dict subclass whose ``keys``/``items``... raise, as a dict row, a dict of columns or the
    embedding: json's encoder runs a dict subclass's own ``items()``, so the worker dropped the whole
    event as ``unserializable`` (found by this session's fuzz: an embedding), where in process the
    row is read by dict's own storage and the embedding dropped alone (counted). The careful
    encoding now takes it up (its error is the caller's value's) and walks a dict subclass by dict's
    own storage: the sidecar's figures are the in-process Monitor's."""
    from tests.test_forwarded_parity_s38g import forwarded, in_process

    scores = [[0.2, 0.3, 0.5]] * 2
    calls = [("observe", (_HostileDict(a=1.0, b=2.0), scores[:1]), {}),
             ("observe", (_HostileDict(a=[1.0, 3.0], b=[2.0, 4.0]), scores), {}),
             ("observe", ([{"a": 1.0, "b": 2.0}, _HostileDict(a=3.0, b=4.0)], scores), {}),
             ("observe", ([[1.0, 2.0], [3.0, 4.0]], scores), {"embedding": _HostileDict(a=1.0)})]
    expected = in_process(PROBS, calls)
    assert expected[("monitor_predictions", ())] == 7, expected
    got, _ = forwarded(PROBS, calls, tmp_path)
    assert got == expected


def test_an_embedding_or_output_given_as_text_of_a_str_subclass_is_read_as_that_text(tmp_path) -> None:
    """An embedding (or a regression output) given as text of a str subclass overriding its
    methods (``"1.5"``): in process numpy's float conversion ran the subclass's own ``__float__``
    (here raising), so the embedding was dropped and the output refused, where a forwarding worker
    sends the text and the sidecar reads ``"1.5"`` as 1.5 (found by this session's parity fuzz,
    text seed 25). ``real_numbers`` reads such text by str's own methods now: the same figures on
    both sides, and those of plain ``"1.5"``."""
    from tests.test_forwarded_parity_s38g import forwarded, in_process

    regression = {"features": ["a", "b"], "output": {"kind": "regression"}}
    calls = [("observe", ([[1.0, 2.0]], [0.5]), {"embedding": _HostileStr("1.5")}),
             ("observe", ([[1.0, 2.0]], _HostileStr("1.5")), {})]
    plain = [("observe", ([[1.0, 2.0]], [0.5]), {"embedding": "1.5"}), ("observe", ([[1.0, 2.0]], "1.5"), {})]
    expected = in_process(regression, plain)
    assert in_process(regression, calls) == expected
    assert forwarded(regression, calls, tmp_path)[0] == expected


@pytest.mark.parametrize("case", ["no_class", "no_attributes"])
def test_a_text_models_answer_whose_class_cannot_be_read_is_refused_not_lost(case: str) -> None:
    """A text model's answers (``output.kind: text``) given as an object whose ``__class__`` or
    ``__getattribute__`` raises, or as a list holding one: the answers' reader (``_answers``) told
    their form by ``isinstance`` and quoted a refused one's shape by ``hasattr``, so the call was lost
    as an ingest internal error. Told by type now: such answers are refused (non_numeric_output,
    counted), the calls' inputs monitored."""
    evil, _ = _EVILS[case]
    with _monitor({"features": ["a", "b"], "output": {"kind": "text"}}) as mon:
        mon.observe([[1.0, 2.0]], evil())
        mon.observe([[1.0, 2.0], [3.0, 4.0]], ["hello there", evil()])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_rows_rejected", {"reason": "non_numeric_output"}) == 3


def test_an_object_array_of_str_subclass_text_is_read_value_by_value() -> None:
    """Inputs given as numpy object arrays (one row per call, several calls in a drain) holding text
    of a str subclass overriding ``__float__`` (here raising): the drain's fast path cast them with
    ``np.array(..., float64)``, which runs the subclass's own ``__float__``, so the drain's
    conversion failed and each call was lost as an ingest internal error. Object arrays are read
    value by value now (the fast path is for numbers): ``"1.5"`` is read as 1.5."""
    row = _object_rows([[_HostileStr("1.5"), 2.0]])[0]
    with _monitor({"features": ["a", "b"], "output": {"kind": "none"}}) as mon:
        for _ in range(3):
            mon.observe(row, None)
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 3
        assert not mon.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"})

# -- the seeded fuzz of this session's evil objects -------------------------------------------------

_FUZZ_EXCEPTIONS = (RuntimeError, KeyError, ZeroDivisionError, AttributeError, OSError)
#: Names a ``__getattribute__`` that raises for some names picks from.
_LOOKED_UP = ("dtype", "shape", "ndim", "tolist", "item", "nbytes", "keys", "items", "values", "__class__", "__dict__",
              "__array_interface__", "__array_struct__", "__array__", "timestamp", "reshape", "to_numpy", "columns", "numpy",
              "decode", "__len__", "__iter__")
#: A str subclass's methods one of its draws overrides to raise.
_STR_METHODS = ("__str__", "__repr__", "__getitem__", "__iter__", "__len__", "__bool__", "__hash__", "__eq__", "__ne__",
                "__contains__", "__format__", "strip", "lower", "encode", "startswith", "rpartition", "isdigit", "split",
                "__float__", "__int__", "__add__", "__mod__", "__lt__")


def _evil40(rng: Any) -> Any:
    """One of this session's evil objects, its class raising one of :data:`_FUZZ_EXCEPTIONS`: its
    ``__class__``, its ``__getattribute__`` (for every name or some), a ``__len__`` that is 1.5,
    -1, 2**70 or raises (beside a working ``__iter__``), ``__bool__``/``__hash__``/``__index__``/
    ``__format__`` raising, ``__eq__`` answering a value whose truth raises, a str subclass whose
    methods (some) raise, a dict subclass whose ``keys``/``items``/``get``... raise; a quarter of
    them held in a 0-d or 1-d numpy object array."""
    error = rng.choice(_FUZZ_EXCEPTIONS)

    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise error("evil")

    kind = rng.choice(["class", "getattribute_all", "getattribute_some", "len", "dunder", "eq", "str", "dict"])
    if kind == "class":
        value: Any = type("NoClass", (), {"__class__": property(raiser)})()
    elif kind in ("getattribute_all", "getattribute_some"):
        names = set(rng.sample(_LOOKED_UP, rng.randint(1, 6))) if kind == "getattribute_some" else None

        def getattribute(self: Any, name: str) -> Any:
            if names is None or name in names:
                raise error(name)
            return object.__getattribute__(self, name)
        value = type("NoAttributes", (), {"__getattribute__": getattribute})()
    elif kind == "len":
        size = rng.choice([1.5, -1, 2 ** 70, None])
        value = type("OddSize", (), {"__len__": raiser if size is None else (lambda self: size),
                                     "__iter__": lambda self: iter([1.0, 2.0]), "__getitem__": lambda self, i: 1.0})()
    elif kind == "dunder":
        value = type("Dunder", (), {name: raiser for name in rng.sample(("__bool__", "__hash__", "__index__", "__int__",
                                                                          "__format__"), rng.randint(1, 3))})()
    elif kind == "eq":
        truthless = type("Truthless", (), {"__bool__": raiser})
        value = type("Eq", (), {"__eq__": lambda self, o: truthless(), "__ne__": lambda self, o: truthless(),
                                "__hash__": object.__hash__})()
    elif kind == "str":
        cls = type("HostileStr", (str,), {name: raiser for name in rng.sample(_STR_METHODS, rng.randint(1, 8))})
        value = cls(rng.choice(["1.5", "u", "y", "hello there", "", "r1"]))
    else:
        cls = type("HostileDict", (dict,), {name: raiser for name in rng.sample(("keys", "items", "values", "get", "__iter__",
                                                                                 "__getitem__", "__contains__", "__len__"),
                                                                                rng.randint(1, 4))})
        value = cls(a=rng.random(), b=rng.choice(["u", "v", 1.5]))
    held = rng.random()
    if held < 0.125:
        return _zero_d(value)
    if held < 0.25:
        return _object_rows([[value, value]])[0]
    return value


def _fuzz_calls(seed: int, kind: str, n: int) -> list[tuple[str, tuple[Any, ...], dict[str, Any], str]]:
    """s39a's calls of observe(), feedback() and observe_error(), one evil object in one field
    each (every field: cells, rows, inputs, outputs, arguments, latency, embedding, timestamp,
    feedback ids and labels, an error's exception, client, latency, timestamp), drawn by
    :func:`_evil40`."""
    import random

    import tests.test_bad_input_s39a as fuzz

    rng = random.Random(1000 + seed)
    original = fuzz._evil
    fuzz._evil = _evil40  # type: ignore[assignment]  # the draws of s39a's generator, this session's objects
    try:
        calls = fuzz._evil_calls(seed, kind, n)
    finally:
        fuzz._evil = original  # type: ignore[assignment]
    # and an error's exception itself (s39a's calls name it as text)
    calls += [("observe_error", (_evil40(rng),), {}, "error exception") for _ in range(3)]
    return calls


@pytest.mark.parametrize("kind", ["probabilities", "categorical", "text", "multilabel"])
def test_seeded_fuzz_of_this_sessions_evil_objects_costs_no_internal_error(kind: str) -> None:
    """This session's evil objects in every field (4 kinds x 4 seeds x 40 calls), in process and
    through a ForwardingMonitor's worker (encoded for a sidecar): no internal error at any stage,
    no event dropped as one, no call raising other than a ValueError. Before this session's fixes
    every seed lost calls and whole drains as internal errors and raised out of observe_error() and
    feedback()."""
    import logging

    import tests.test_bad_input_s39a as fuzz

    found = {}
    logging.disable(logging.WARNING)  # the lines the objects cause are said (and checked) elsewhere
    try:
        for seed in range(4):
            calls = _fuzz_calls(seed, kind, 40)
            mon = _monitor(fuzz._KINDS[kind])
            fm = ForwardingMonitor("m", "unix:///nonexistent/fw.sock", start=False)
            try:
                raised = fuzz._run_evil(mon, calls) + fuzz._run_evil(fm, calls)
                mon.flush()
                fm.flush()
                errors = _internal_errors(mon)
                shed = (mon.store.value("monitor_events_dropped", {"reason": "internal_error"}) or 0) + \
                    fm.counters().dropped.get("internal_error", 0)
                assert mon.store.value("monitor_calls") >= 10, (kind, seed)
            finally:
                mon.close()
                fm.close()
            if errors or shed or raised:
                found[seed] = (errors, shed, raised)
    finally:
        logging.disable(logging.NOTSET)
    assert found == {}


def test_seeded_fuzz_through_watch_returns_the_answer_and_passes_the_callers_exception() -> None:
    """watch() around functions answering this session's evil objects (as the answer, and the
    inputs, client, request id, segment read by extractors), and around one raising a caller's
    exception whose class is evil (its ``__class__``, ``__getattribute__``, ``__str__`` raising):
    the caller gets back the very answer and the very exception, in process and forwarding, and
    the monitor counts no internal error (2 seeds x 40 calls)."""
    import logging
    import random

    evil_exceptions = [type("E1", (Exception,), {"__class__": property(_raise)}),
                       type("E2", (Exception,), {"__getattribute__": lambda self, name: _raise()}),
                       type("E3", (Exception,), {"__str__": _raise, "__repr__": _raise})]
    logging.disable(logging.WARNING)
    try:
        for seed in range(2):
            rng = random.Random(seed)
            mon, fm = _monitor(), ForwardingMonitor("m", "unix:///nonexistent/fw.sock", start=False)
            try:
                for sink in (mon, fm):
                    for _ in range(40):
                        answer = _evil40(rng)

                        def predict(x: Any, client: Any = None, request_id: Any = None, segment: Any = None) -> Any:
                            return answer
                        plain = sink.watch(predict)
                        extracted = sink.watch(predict, client="client", request_id="request_id", segment="segment",
                                               embedding=lambda out: out)
                        assert plain(_evil40(rng)) is answer
                        assert extracted([[1.0, 2.0]], client=_evil40(rng), request_id=_evil40(rng),
                                         segment=_evil40(rng)) is answer
                        error = rng.choice(evil_exceptions)()

                        def broken(x: Any, client: Any = None) -> Any:
                            raise error
                        for wrapped in (sink.watch(broken), sink.watch(broken, client="client")):
                            with pytest.raises(Exception) as got:
                                wrapped([[1.0, 2.0]], client=_evil40(rng))
                            assert got.value is error
                mon.flush()
                fm.flush()
                assert _internal_errors(mon) == 0
                assert not mon.queue.counters()[0].get("internal_error")
                assert not fm.counters().dropped.get("internal_error")
                assert mon.store.value("monitor_calls") == 160  # 80 answers (some refused, counted) and 80 errors
                assert sum(mon.store.value("monitor_errors", {"exception": e}) or 0 for e in ("E1", "E2", "E3")) == 80
            finally:
                mon.close()
                fm.close()
    finally:
        logging.disable(logging.NOTSET)


def test_seeded_fuzz_of_this_sessions_evil_arguments_gives_the_in_process_figures_forwarded(tmp_path) -> None:
    """The fuzz's calls with an evil client, segment, request id, latency, embedding, feedback id,
    or error argument (the error's exception itself too), through a ForwardingMonitor to a real
    sidecar: the sidecar's figures are the in-process Monitor's, and the worker dropped nothing
    (3 kinds x 2 seeds). An evil value in the inputs, outputs or a label may be one JSON cannot
    carry (the worker drops such an event whole, counted ``unserializable``, as any such value)."""
    import tests.test_bad_input_s39a as fuzz
    from tests.test_forwarded_parity_s38g import forwarded, in_process

    kept = ("argument", "argument_row", "latency_s", "embedding", "feedback id", "feedback ids", "feedback id_in_list",
            "error client", "error latency_s", "error exception")
    for kind in ("probabilities", "categorical", "text"):
        for seed in range(2):
            calls = [c[:3] for c in _fuzz_calls(seed, kind, 60) if c[3] in kept and fuzz._makes_no_mistake(*c[:3])]
            assert len(calls) >= 15, len(calls)
            folder = tmp_path / f"{kind}{seed}"
            folder.mkdir()
            got, _ = forwarded(fuzz._KINDS[kind], calls, folder)
            assert got == in_process(fuzz._KINDS[kind], calls), (kind, seed)
