"""Bad input found by an in-process fuzz of ``observe`` (session 38): each test failed before its
fix. The standard: a clear, counted refusal or an unreadable value, never an internal error, a
warning on the user's stderr, or a complex number read as its real part."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.cell_values import cell_number, float_rows

__all__: list[str] = []


class _NoFloat:
    """A caller's value whose ``float()`` raises something other than TypeError / ValueError (as
    some array and tensor types do)."""

    def __float__(self) -> float:
        raise RuntimeError("cannot be a float")

    def __repr__(self) -> str:
        return "_NoFloat()"


def _monitor() -> Monitor:
    return Monitor(model="m", config={"features": ["a", "b"], "output": {"kind": "regression"}},
                   registry=CollectorRegistry(), start_worker=False, live=False)


def _internal_errors(mon: Monitor) -> float:
    return sum(mon.store.value("monitor_internal_errors", {"stage": s}) or 0 for s in ("ingest", "pipeline", "cycle"))


def test_a_value_whose_float_raises_is_unreadable_not_an_internal_error() -> None:
    """``float(v)`` raising a RuntimeError lost the call as an internal error (``stage="ingest"``);
    the value is now no number, as text that is none: the row kept, the value counted wrong_type."""
    assert cell_number(_NoFloat()) is None
    mon = _monitor()
    try:
        mon.observe({"a": _NoFloat(), "b": 1.0}, [0.5])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 1
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1
    finally:
        mon.close()


def test_outputs_as_a_dataframe_of_complex_numbers_are_refused_not_read_as_real_parts() -> None:
    """A DataFrame with a complex column (no ``.dtype``: one per column) was cast to float64, its
    imaginary parts dropped with numpy's ComplexWarning the only word of it; refused now as
    complex arrays are (``non_numeric_output``), the message naming the DataFrame."""
    mon = _monitor()
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            mon.observe(np.zeros((2, 2)), pd.DataFrame({"y": [1 + 1j, 2]}))
            mon.observe(np.zeros((2, 2)), pd.DataFrame({"y": [1.0, 2.0]}))  # real ones are read
            mon.flush()
        assert not [w for w in said if "complex" in str(w.message).lower()], [str(w.message) for w in said]
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_rows_rejected", {"reason": "non_numeric_output"}) == 2
        assert mon.store.value("monitor_predictions") == 2
    finally:
        mon.close()


def test_a_zero_dimensional_complex_array_in_a_list_row_is_read_one_by_one() -> None:
    """``float_rows`` told complex values among a list row by their types, and a 0-d complex array
    (a row's value numpy did not unpack) is an ndarray: beside a missing value the row was cast to
    float64, the real part kept with a ComplexWarning. Such rows are now read value by value (the
    value unreadable)."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert float_rows([[np.array(1j), None]]) is None
        assert float_rows([[np.array(1.5), None]]).tolist()[0][0] == 1.5  # real 0-d arrays are numbers
    assert not said, [str(w.message) for w in said]


def test_a_partial_dataframe_of_class_columns_is_named_without_double_quotes(caplog) -> None:
    """The refusal of outputs given as a DataFrame of some of the classes' columns quoted the
    listed names twice (``columns "'virginica', 'setosa'"``: the repr of a joined list of reprs)."""
    import logging

    mon = Monitor(model="m", config={"features": ["a"], "output": {"kind": "probabilities",
                                                                   "classes": ["setosa", "versicolor", "virginica"]}},
                  registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe(np.zeros((2, 1)), pd.DataFrame({"virginica": [0.5, 0.2], "setosa": [0.5, 0.8]}))
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "DataFrame of the columns" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in caplog.records]
        assert "the columns 'virginica', 'setosa', named as some of the classes ('setosa', 'versicolor', 'virginica')" \
            in said[0], said[0]
        assert mon.store.value("monitor_rows_rejected", {"reason": "output_shape"}) == 2
    finally:
        mon.close()


def test_a_bad_exception_name_is_refused_with_what_came_and_a_fix() -> None:
    """``exception: must be the exception type name`` said neither what came nor how to write it
    (s38i's note)."""
    from monitor.events import EventFormatError, parse_event

    for value, got in (("", "got empty text"), (5, "got a number"), (None, "got null")):
        try:
            parse_event({"type": "error", "exception": value}, 0.0)
        except EventFormatError as err:
            assert err.field == "exception" and got in str(err) and 'Fix: send the name of the error\'s type, e.g. "exception": "TimeoutError"' in str(err), str(err)
        else:
            raise AssertionError(f"{value!r} was taken")


def test_a_request_id_whose_text_cannot_be_taken_is_said_as_such(caplog) -> None:
    """Such an id (an integer past str()'s 4,300 digits) was said as 'a request id of 1,025
    characters ('????...')', the placeholder it is read as (s38l's note)."""
    import logging

    mon = _monitor()
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe(np.zeros((2, 2)), [0.5, 0.7], request_id=10**5000)
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "request_id:" in r.getMessage()]
        assert len(said) == 1 and "whose text cannot be taken" in said[0] and "????" not in said[0], said
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "request_id"}) == 2
    finally:
        mon.close()
