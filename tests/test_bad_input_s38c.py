"""Bad input found by a seeded in-process fuzz of ``observe`` / ``feedback`` over every output
kind (session 38, helper c): each test failed before its fix. The standard: a clear, counted
refusal or an unreadable value, never an internal error, a detector error, a warning on the
user's stderr, or a value misread."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.cell_values import category_text
from monitor.text import text_value

__all__: list[str] = []

_MIXED = {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}, {"name": "c", "kind": "text"}],
          "output": {"kind": "probabilities", "classes": ["n", "y"]}}


class _NoText:
    """A caller's object whose ``str()`` and ``repr()`` raise."""

    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


def _monitor(config: dict[str, Any]) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _internal_errors(mon: Monitor) -> float:
    return sum(mon.store.value("monitor_internal_errors", {"stage": s}) or 0 for s in ("ingest", "pipeline", "cycle"))


def _rejected(mon: Monitor, reason: str) -> float:
    return mon.store.value("monitor_rows_rejected", {"reason": reason}) or 0.0


def test_an_array_as_a_categorical_or_text_value_is_read_by_its_text() -> None:
    """A categorical or text feature's value given as an array (a dict row holding the tags of a
    request as a numpy array, a Series) lost the whole call as an internal error: the missing-value
    test ``v != v`` answered one value per element, whose truth raised ValueError. Such a value is
    now read by its text, as a list always was (a category of its own: an unseen category)."""
    assert category_text(np.array(["x", "y"])) == "['x' 'y']"
    assert category_text(pd.Series([1, 2])) == str(pd.Series([1, 2]))
    assert category_text(np.array([], dtype=object)) == "[]"
    assert category_text(np.array([np.nan])) is None  # one missing value, as before
    assert text_value(np.array(["some", "words"])) == "['some' 'words']"
    mon = _monitor(_MIXED)
    try:
        mon.observe({"a": 1.0, "b": np.array(["x", "y"]), "c": "some text here"}, [0.2, 0.8])
        mon.observe({"a": 1.0, "b": "x", "c": np.array(["some", "text"])}, [0.2, 0.8])
        mon.observe(pd.DataFrame({"a": [1.0], "b": [pd.Series([1, 2])], "c": ["t"]}), [[0.2, 0.8]])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 3
    finally:
        mon.close()


def test_parts_of_different_shapes_are_refused_as_shapes_not_lost() -> None:
    """Inputs of a model with a categorical feature given as a tuple of parts (a numeric block and
    a column of categories), and a labels model's predict returning ``(labels, probabilities)``:
    numpy's object conversion raised "could not broadcast" and the call was lost as an internal
    error. Refused now, wrong_shape and output_shape, the message naming the parts' shapes."""
    cat = _monitor({"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}],
                    "output": {"kind": "regression"}})
    labels = _monitor({"features": ["a", "b"], "output": {"kind": "labels"}})
    try:
        cat.observe((np.zeros((2, 1)), np.array(["x", "y"])), [1.0, 2.0])
        labels.observe(np.zeros((2, 2)), (np.array([0, 1]), np.array([[0.2, 0.8], [0.6, 0.4]])))
        cat.flush()
        labels.flush()
        assert _internal_errors(cat) == _internal_errors(labels) == 0
        assert _rejected(cat, "wrong_shape") == 2
        assert _rejected(labels, "output_shape") == 2
        assert cat.pipeline.builder.build([(0, 1.0, (np.zeros((2, 1)), np.array(["x", "y"])), [1.0, 2.0], None, None, None,
                                            None, None)]).details["wrong_shape"].startswith(
            "inputs are a tuple of 2 arrays (shapes (2, 1), (2,)), not rows of 2 features")
        said = labels.pipeline.builder.build([(0, 1.0, np.zeros((2, 2)), (np.array([0, 1]), np.zeros((2, 2))), None, None,
                                               None, None, None)]).details["output_shape"]
        assert "a tuple of 2 arrays (shapes (2,), (2, 2)), not one array of labels" in said and "result[0]" in said
    finally:
        cat.close()
        labels.close()


def test_outputs_as_a_0d_object_array_are_refused_naming_the_value() -> None:
    """Outputs given as a 0-d object array (``np.asarray`` of the dict a model returned): the
    refusal's example (``_text_example``) sliced it, IndexError, and the call was lost as an
    internal error (after "float() argument must be ... not 'dict'"). Refused now as
    non_numeric_output, the message quoting the dict."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    try:
        event = (0, 1.0, np.zeros((1, 2)), np.asarray({"prediction": 0.5}), None, None, None, None, None)
        said = mon.pipeline.builder.build([event]).details["non_numeric_output"]
        assert "{'prediction': 0.5}" in said
        mon.observe(np.zeros((1, 2)), np.asarray({"prediction": 0.5}))
        mon.observe(np.zeros((1, 2)), np.array(pd.Period("2020-01", "M")))
        mon.flush()
        assert _internal_errors(mon) == 0
        assert _rejected(mon, "non_numeric_output") == 2
    finally:
        mon.close()


def test_a_multilabel_truth_holding_arrays_is_an_invalid_label_not_a_lost_drain() -> None:
    """A multi-label ground truth whose entries are arrays (``[y[:, 0:1], y[:, 1:2]]``) passed the
    0/1-vector test (numpy objects with a number dtype) and ``float()`` of them raised TypeError
    out of the label join: the drain's feedback and every later chunk of it were lost as an
    internal error (stage pipeline), the call's good labels too. Such a label is now invalid (an
    entry that is no 0/1 number), counted, the other labels joined."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "multilabel", "classes": ["p", "q"]}})
    try:
        mon.observe(np.zeros((2, 2)), np.array([[0.9, 0.2], [0.1, 0.7]]), request_id=["r1", "r2"])
        mon.flush()
        mon.feedback(["r1", "r2"], [[np.array([1]), np.array([0])], [0, 1]])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_feedback_labels", {"outcome": "invalid"}) == 1
        assert mon.store.value("monitor_feedback_labels", {"outcome": "joined"}) == 1
        assert "holds ndarray" in mon.pipeline.joiner.invalid_example
        mon.feedback(["r2"], [_NoText()])  # the refusal's own words raised (str() of the label): invalid too
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_feedback_labels", {"outcome": "invalid"}) == 2
    finally:
        mon.close()


def test_a_dict_row_for_a_tensor_feature_is_refused_not_a_detector_error() -> None:
    """A model whose schema is a tensor feature (learned from images, shape (n, 3, 4, 4)) called
    with a dict row: the one-row dict fast path read it with no column at all while the batch named
    the tensor's descriptor columns, and data quality failed on it (monitor_detector_errors_total).
    The row is now refused, wrong_type, as the event-by-event path refuses a dict for a tensor."""
    mon = _monitor({"output": {"kind": "regression"}})
    try:
        mon.observe(np.random.default_rng(0).random((2, 3, 4, 4)), [1.0, 2.0])
        mon.flush()
        assert mon.pipeline.builder.schema.tensor_names == ("input",)
        mon.observe({"a": 1.0}, 0.5)
        mon.flush()
        assert mon.store.value("monitor_detector_errors", {"detector": "data_quality"}) == 0
        assert _internal_errors(mon) == 0
        assert _rejected(mon, "wrong_type") == 1
        assert mon.store.value("monitor_predictions") == 2
    finally:
        mon.close()


def _shown(script: str) -> tuple[dict[str, float], list[str]]:
    """Run ``script`` in a fresh interpreter with warnings shown (``-W always``), as a user's would
    be, after building ``mon`` (a regression model of features a, b): the figures it prints as
    ``name value`` lines, and the warnings on its stderr."""
    head = textwrap.dedent("""
        import numpy as np, pandas as pd
        from prometheus_client import CollectorRegistry
        from monitor import Monitor
        mon = Monitor(model="m", config={"features": ["a", "b"], "output": {"kind": "regression"}},
                      registry=CollectorRegistry(), start_worker=False, live=False)
        def show(name, value):
            print(name, float(value or 0))
    """)
    done = subprocess.run([sys.executable, "-W", "always", "-c", head + textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = {line.split()[0]: float(line.split()[1]) for line in done.stdout.splitlines() if line.strip()}
    return figures, [line for line in done.stderr.splitlines() if "Warning" in line]


def test_object_columns_and_text_rows_are_read_value_by_value_without_warnings() -> None:
    """Outputs given as a DataFrame or Series of Python objects were cast by pandas' own line:
    ``np.ma.masked`` among them put numpy's "converting a masked element to nan" on the user's
    stderr (the monitor's filter names its own lines), and a numpy complex number among them was
    read as its real part with a ComplexWarning the only sign. Rows given as lists of numbers and
    text (which numpy makes all text) were cast from the lists so that a numpy complex number
    there was read as its real part too. Now: the object array is cast (the masked one NaN, no
    warning), complex values refused (non_numeric_output) or unreadable (wrong_type) as in lists."""
    figures, warned = _shown("""
        mon.observe(np.zeros((2, 2)), pd.DataFrame({"p": [np.ma.masked, 0.5]}))
        mon.observe(np.zeros((2, 2)), pd.Series([np.ma.masked, 0.5], dtype=object))
        mon.observe(np.zeros((2, 2)), pd.DataFrame({"p": pd.Series([np.complex128(1j), 0.5], dtype=object)}))
        mon.observe([[1.0, np.complex64(1j)], [2.0, "1.5"]], [0.5, 0.6])
        mon.flush()
        show("internal", mon.store.value("monitor_internal_errors", {"stage": "ingest"}))
        show("nan_output", mon.store.value("monitor_rows_rejected", {"reason": "nan_output"}))
        show("non_numeric_output", mon.store.value("monitor_rows_rejected", {"reason": "non_numeric_output"}))
        show("wrong_type_b", mon.store.value("monitor_data_invalid_rows", {"feature": "b", "reason": "wrong_type"}))
        show("rows", mon.store.value("monitor_predictions"))
    """)
    assert warned == []
    assert figures["internal"] == 0
    assert figures["nan_output"] == 2  # the masked rows, read as missing
    assert figures["non_numeric_output"] == 2  # the complex one's call: not read as 0.0 and 0.5
    assert figures["wrong_type_b"] == 1  # the complex value among text: unreadable, its row kept
    assert figures["rows"] == 4  # 1 + 1 + 2 (the list rows, "1.5" read as 1.5)


def test_latencies_that_are_no_seconds_are_dropped_or_read_as_seconds() -> None:
    """``latency_s`` given as numpy's complex number was read as its real part with a
    ComplexWarning from the monitor's own line on the user's stderr; as numpy's ``timedelta64`` it
    was read as a count of its unit (5 ms was 5 s); an object whose ``float()`` raised a
    RuntimeError lost the whole drain (every call in it) as an internal error, stage pipeline. Now
    a duration is its seconds, and the others are no latency: dropped, counted in
    monitor_row_arguments_dropped_total{argument="latency_s"}, the calls' rows processed."""
    figures, warned = _shown("""
        class NoFloat:
            def __float__(self):
                raise RuntimeError("no float")
        import datetime
        mon.observe([[1.0, 2.0]], [0.5], latency_s=np.complex64(0.25 + 1j))
        mon.observe([[1.0, 2.0]], [0.5], latency_s=np.timedelta64(5, "ms"))
        mon.observe([[1.0, 2.0]], [0.5], latency_s=datetime.timedelta(milliseconds=20))
        mon.observe([[1.0, 2.0]], [0.5], latency_s=NoFloat())
        mon.observe([[1.0, 2.0]], [0.5], latency_s=0.5)
        mon.flush()
        show("internal", mon.store.value("monitor_internal_errors", {"stage": "pipeline"}))
        show("dropped", mon.store.value("monitor_row_arguments_dropped", {"argument": "latency_s"}))
        show("count", mon.store.value("monitor_latency_seconds").count)
        show("sum", mon.store.value("monitor_latency_seconds").sum)
        show("rows", mon.store.value("monitor_predictions"))
    """)
    assert warned == []
    assert figures["internal"] == 0
    assert figures["dropped"] == 2  # the complex one and the object
    assert figures["count"] == 3 and abs(figures["sum"] - 0.525) < 1e-12  # 5 ms + 20 ms + 0.5 s
    assert figures["rows"] == 5


def test_a_numpy_complex_regression_label_is_invalid_not_its_real_part() -> None:
    """A regression model's label given as numpy's complex number (``np.complex64(2 + 1j)``, which
    ``float()`` reads as its real part where Python's complex raises) was joined as 2.0, numpy's
    ComplexWarning from the monitor's line the only sign: it is no number now, invalid, as Python's
    complex was, in the join and in the intake's rule (``label_problem``)."""
    from monitor.events import label_problem

    assert label_problem(np.complex64(2 + 1j), regression=True).startswith("is complex64")
    figures, warned = _shown("""
        mon.observe(np.zeros((2, 2)), [1.0, 2.0], request_id=["r1", "r2"])
        mon.flush()
        mon.feedback(["r1", "r2"], [np.complex64(2 + 1j), np.float32(2.5)])
        mon.flush()
        show("invalid", mon.store.value("monitor_feedback_labels", {"outcome": "invalid"}))
        show("joined", mon.store.value("monitor_feedback_labels", {"outcome": "joined"}))
    """)
    assert warned == []
    assert figures["invalid"] == 1 and figures["joined"] == 1


class _NoFloat:
    """A caller's value whose ``float()`` raises a RuntimeError (as some tensor types do)."""

    def __float__(self) -> float:
        raise RuntimeError("cannot be a float")

    def __repr__(self) -> str:
        return "_NoFloat()"


def test_values_whose_float_or_repr_raise_are_refused_or_unreadable() -> None:
    """A caller's objects whose conversions raise: among the outputs of one-row calls (list of
    scores), ``float()`` raising a RuntimeError escaped the one-row fast path (which let
    TypeError / ValueError alone go by), and a value whose ``repr()`` raises, unreadable in a
    numeric feature, raised out of the message that quotes it: each call lost as an internal
    error. Now refused (non_numeric_output), and the row kept with the value unreadable (wrong_type),
    the message naming its type."""
    scores = _monitor({"features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["n", "y"]}})
    rows = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    try:
        for _ in range(2):
            scores.observe([1.0, 2.0], [_NoFloat(), 0.5])
            rows.observe([[_NoText(), 1.0]], [0.5])
        scores.flush()
        rows.flush()
        assert _internal_errors(scores) == _internal_errors(rows) == 0
        assert _rejected(scores, "non_numeric_output") == 2
        assert rows.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 2
        assert "a _NoText that cannot be printed" in rows.pipeline.builder.unreadable_values
    finally:
        scores.close()
        rows.close()


def test_ragged_outputs_are_refused_without_warnings() -> None:
    """Outputs in rows of different lengths were read twice, without a dtype (which raised) and
    then cast to float64, which raised alike but only after reading what it could: a numpy
    complex number there warned from the monitor's line, a Series holding np.ma.masked from
    pandas' line, on the user's stderr. Refused now at the first reading (output_shape), silently."""
    figures, warned = _shown("""
        mon.observe(np.zeros((2, 2)), [[np.complex64(1j)], [1.0, 2.0]])
        mon.observe(np.zeros((2, 2)), [pd.Series([np.ma.masked, 0.5], dtype=object), [0.5]])
        mon.flush()
        show("output_shape", mon.store.value("monitor_rows_rejected", {"reason": "output_shape"}))
    """)
    assert warned == []
    assert figures["output_shape"] == 4


#: A seeded fuzz of observe() and feedback() with values a caller could pass (numpy arrays of any
#: dtype, masked arrays, DataFrames and Series of mixed columns, pandas' NA, datetimes, Decimal,
#: bytes, nested lists, dict rows, dicts of columns), over every output kind: run in a fresh
#: interpreter with warnings shown (-W always), it prints the monitor's internal and detector
#: errors and every warning raised while one of the monitor's frames is on the stack.
FUZZ = textwrap.dedent('''
    import datetime, decimal, fractions, random, sys, traceback, warnings
    import numpy as np, pandas as pd
    from prometheus_client import CollectorRegistry
    from monitor import Monitor, Reference
    from monitor.pipeline import detector_label

    said = []
    def show(message, category, filename, lineno, file=None, line=None):
        stack = [f for f in traceback.extract_stack()[:-1] if "/monitor/" in f.filename]
        if stack:
            said.append(f"{category.__name__}: {message} at {filename}:{lineno} (from {stack[-1].filename}:{stack[-1].lineno})")
    warnings.showwarning = show

    SCALARS = [0, 1, -1, 2**70, 0.5, float("nan"), float("inf"), -0.0, 1e308, True, None, "", "x", "1.5", "nan", b"ab", b"\\xff",
               decimal.Decimal("1.1"), decimal.Decimal("NaN"), fractions.Fraction(1, 3), 1 + 2j, np.float32(1.5), np.int8(-3),
               np.uint64(2**63), np.bool_(True), np.str_("s"), np.datetime64("2020-01-01"), np.timedelta64(5, "s"),
               np.complex64(1j), datetime.datetime(2020, 1, 1), datetime.date(2020, 1, 2), datetime.timedelta(seconds=3),
               pd.NA, pd.NaT, pd.Timestamp("2021-01-01"), np.ma.masked, [1, 2], {"a": 1}, np.array([1.0, 2.0]), "y", "n", 0.3]
    DTYPES = ["f8", "f4", "f2", "i8", "u1", "?", "O", "U3", "c16", "M8[s]", "m8[ms]", "S2"]

    def values(rng):
        def scalar():
            return rng.choice(SCALARS)
        def column(n):
            pick = rng.random()
            if pick < 0.4:
                return [scalar() for _ in range(n)]
            if pick < 0.6:
                return pd.array([rng.choice([1, 0, None]) for _ in range(n)], dtype=rng.choice(["Int64", "Float64", "boolean"]))
            if pick < 0.7:
                return pd.Categorical([rng.choice(["a", "b", None]) for _ in range(n)])
            if pick < 0.8:
                return pd.to_datetime([rng.choice(["2020-01-01", None]) for _ in range(n)], utc=rng.random() < 0.5)
            return np.random.default_rng(rng.randint(0, 99)).normal(size=n)
        def array():
            arr = np.zeros(tuple(rng.randint(0, 3) for _ in range(rng.randint(0, 3))), dtype=rng.choice(DTYPES))
            if arr.dtype.kind == "O":
                for i in range(arr.size):
                    arr.flat[i] = scalar()
            return arr
        def value(depth=0):
            pick = rng.random()
            if depth > 1 or pick < 0.25:
                return scalar()
            if pick < 0.45:
                return [[scalar() for _ in range(rng.randint(0, 3))] if rng.random() < 0.6 else scalar()
                        for _ in range(rng.randint(0, 3))]
            if pick < 0.55:
                return {rng.choice(["a", "b", "c", "z"]): scalar() for _ in range(rng.randint(0, 3))}
            if pick < 0.6:
                n = rng.randint(0, 3)
                return {k: column(n) for k in rng.sample(["a", "b", "c"], rng.randint(1, 3))}
            if pick < 0.75:
                return array()
            if pick < 0.9:
                n = rng.randint(0, 3)
                return pd.DataFrame({k: column(n) for k in rng.sample(["a", "b", "c", "y", "n"], rng.randint(1, 3))})
            if pick < 0.95:
                data = np.zeros((rng.randint(1, 3), 2), dtype=rng.choice(["f8", "O", "i8", "M8[s]", "U2"]))
                mask = np.zeros(data.shape, dtype=bool)
                mask.flat[0] = True
                return np.ma.masked_array(data, mask=mask)
            return pd.Series([scalar() for _ in range(rng.randint(0, 3))], dtype=object)
        return value

    rs = np.random.default_rng(0)
    X = rs.normal(size=(200, 2))
    p = 1 / (1 + np.exp(-X[:, 0]))
    reference = Reference.from_arrays(X, numeric_names=["a", "b"], scores=np.c_[1 - p, p], classes=["n", "y"],
                                      labels=(rs.random(200) < p).astype(int))
    CONFIGS = [
        ({"features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["n", "y"]}}, None),
        ({"features": ["a", "b"], "output": {"kind": "regression"}}, None),
        ({"features": ["a", "b"], "output": {"kind": "labels"}}, None),
        ({"features": ["a", "b"], "output": {"kind": "multilabel", "classes": ["p", "q"]}}, None),
        ({"output": {"kind": "logits"}}, None),
        ({"features": ["a", "b"], "output": {"kind": "probabilities", "samples_axis": True}}, None),
        ({"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}, {"name": "c", "kind": "text"}],
          "output": {"kind": "probabilities", "classes": ["n", "y"]}}, None),
        ({"output": {"kind": "probabilities", "classes": ["n", "y"]}}, reference),
        ({"output": {"kind": "regression", "quantiles": [0.1, 0.5, 0.9]}}, None),
    ]
    errors = 0.0
    for seed in map(int, sys.argv[1:]):
        for k, (config, ref) in enumerate(CONFIGS):
            rng = random.Random(seed * 100 + k)
            value = values(rng)
            mon = Monitor(model="m", config=config, reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
            for _ in range(CALLS):
                extra = {name: value(1) for name, share in (("request_id", 0.3), ("client", 0.2), ("segment", 0.2),
                                                            ("latency_s", 0.1)) if rng.random() < share}
                mon.observe(value(), value(), **extra)
                if rng.random() < 0.3:
                    try:
                        mon.feedback(value(1), value(1))
                    except (TypeError, ValueError):
                        pass  # a mistake in the call itself (ids and labels of different lengths), said to the caller
                if rng.random() < 0.7:
                    mon.flush()
            mon.flush()
            for name, labels in (("monitor_internal_errors", ("ingest", "pipeline", "cycle", "export", "rules", "clock")),
                                 ("monitor_detector_errors", [detector_label(d) for d in mon.pipeline.detectors])):
                for label in labels:
                    found = mon.store.value(name, {"stage" if name == "monitor_internal_errors" else "detector": label}) or 0.0
                    if found:
                        print(f"{name}{{{label}}} {found} config {k} seed {seed}")
                    errors += found
            mon.close()
    print("errors", errors)
    print("\\n".join(sorted(set(said))) or "no warnings")
''')


def test_seeded_fuzz_of_realistic_values_gives_no_internal_error_and_no_warning() -> None:
    """The fuzz above (4 seeds, 9 configurations, 40 calls each, some 4 s). Before this session's
    fixes these seeds gave 4 internal errors, a detector error (data quality, on a dict row for a
    learned tensor feature) and warnings from pandas' and the monitor's lines (np.ma.masked and
    numpy's complex numbers among objects, complex latencies); seeds 0 to 60 give none now."""
    done = subprocess.run([sys.executable, "-W", "always", "-c", "CALLS = 40\n" + FUZZ, "5", "6", "11", "15"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "errors 0.0" in done.stdout, done.stdout
    assert done.stdout.rstrip().endswith("no warnings"), done.stdout
