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
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}})
    try:
        mon.observe([[1.0, 2.0], [3.0, 4.0]], [_zero_d(_NoEquality()), "y"])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_calls") == 1
        assert mon.store.value("monitor_predicted_class", {"class": "y"}) == 1
    finally:
        mon.close()


class _NoRepr:
    """A value whose ``repr()`` raises RuntimeError."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_a_refused_label_output_whose_repr_raises_is_refused_not_lost() -> None:
    """A labels model's answer that is several values (a list, an array) is refused
    (``output_shape``) with an example in the message; the example was the value's ``repr()``, so
    one holding an object whose repr raises lost the call as an internal error. The message quotes
    it as every other one does (``input_forms.short_repr``: its type when its repr raises)."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "labels", "classes": CLASSES}})
    try:
        mon.observe([[1.0, 2.0], [3.0, 4.0]], [[_NoRepr()], "y"])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_rows_rejected", {"reason": "output_shape"}) == 1
        assert mon.store.value("monitor_predicted_class", {"class": "y"}) == 1
    finally:
        mon.close()


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

    mon = _monitor({"features": ["a", "b"], "output": {"kind": "probabilities", "classes": CLASSES}})
    try:
        mon.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], request_id="r1")
        mon.observe([[1.0, 2.0]], [[0.2, 0.3, 0.5]], request_id="r2")
        mon.feedback(["r1", "r2"], [_NoText(), "y"])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 2
        assert mon.store.value("monitor_feedback_labels", {"outcome": "joined"}) == 2
    finally:
        mon.close()


def test_a_latency_whose_repr_raises_is_said_by_what_it_is(caplog) -> None:
    """A ``latency_s`` that is no number of seconds is left out and said once with an example, its
    ``%r`` in the log line: for a caller's object whose repr raises, logging's formatting failed
    (a "--- Logging error ---" traceback on the user's stderr; under a handler that raises, as
    pytest's, the whole drain lost as an internal error). The line says it as the others do
    (``events.describe_value``)."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    try:
        mon.observe([[1.0, 2.0]], [1.0], latency_s=_NoRepr())
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 1
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "latency_s"}) == 1
        assert "(e.g. a _NoRepr that cannot be printed)" in caplog.text
    finally:
        mon.close()
