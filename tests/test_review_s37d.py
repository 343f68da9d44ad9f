"""Defects found reviewing session 37's bad-input changes (helper s37d): each test failed before
its fix. The standard: never a crash of the agent's worker, never a value silently read as
another, and a reference that was taken before is taken still."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.test_bad_input_s37a import _Rows  # a detector keeping the numeric rows it is given

__all__: list[str] = []


def _monitor(config: dict) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def test_a_nan_output_given_as_a_zero_dimensional_array_is_refused_not_an_internal_error() -> None:
    """A one-row call of a regression model whose output is a 0-d array (``np.array(nan)``, a
    0-d tensor, ``predict(x).squeeze()``): the nan_output message's lookup of the row as the call
    gave it took ``len()`` of it and raised, so the call was lost as ``internal_error`` (and
    MonitorInternalErrors paged) instead of being counted ``nan_output``."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    try:
        mon.observe([[1.0, 2.0]], np.array(np.nan))
        mon.observe([[1.0, 2.0]], np.array(1.0))
        mon.flush()
        value = mon.store.value
        assert value("monitor_rows_rejected", labels=("nan_output",)) == 1
        assert not value("monitor_internal_errors", labels=("ingest",))
        assert not value("monitor_rows_rejected", labels=("internal_error",))
        assert value("monitor_predictions") == 1
    finally:
        mon.close()


def test_whole_numbers_beside_a_numpy_duration_are_read_as_numbers_not_as_its_unit() -> None:
    """Rows given as lists holding whole numbers and a ``timedelta64`` (``[[7, np.timedelta64(2000,
    "ms")]]``): numpy, reading them without a dtype, makes the whole call ``timedelta64[ms]``, the
    7 a duration of 7 ms, so the feature ``a`` was read as 0.007 (live list rows, calls of one row
    stacked together, and the reference alike). The numbers are numbers, the durations seconds."""
    from monitor import Reference

    mon = _monitor({"features": ["a", "b"], "output": {"classes": ["n", "y"]}})
    rows = _Rows()
    mon.pipeline.detectors.append(rows)
    try:
        p = np.full((2, 2), 0.5)
        mon.observe([[7, np.timedelta64(2000, "ms")], [8, np.timedelta64(3, "s")]], p)
        mon.flush()
        mon.observe([7, np.timedelta64(2000, "ms")], p[:1])  # calls of one row: stacked in one go
        mon.observe([np.int64(8), np.timedelta64(1, "s")], p[:1])
        mon.flush()
        np.testing.assert_allclose(np.concatenate(rows.seen), [[7, 2], [8, 3], [7, 2], [8, 1]])
        assert not mon.store.value("monitor_data_invalid_rows", labels=("a", "wrong_type"))
    finally:
        mon.close()
    ref = Reference.from_arrays([[7, np.timedelta64(2000, "ms")], [8, np.timedelta64(3, "s")]], numeric_names=["a", "b"])
    np.testing.assert_allclose(ref.numeric, [[7, 2], [8, 3]])
    # durations alone keep the one conversion
    ref = Reference.from_arrays([[np.timedelta64(1, "s"), np.timedelta64(2000, "ms")]], numeric_names=["a", "b"])
    np.testing.assert_allclose(ref.numeric, [[1, 2]])


def test_a_reference_column_of_decimals_with_empty_text_is_taken_as_before() -> None:
    """``holds_numbers`` learnt (1dc6ee8) to pass over empty text as a gap for live schema
    learning, and did so for the reference's strict rule too: a reference DataFrame whose column
    of ``Decimal`` amounts held one empty text (a CSV's gap, SQL's '') was taken numeric and then
    refused whole ("could not convert string to float: ''"), where it was taken as categorical
    before. The reference's rule is as the commit said it stays: a text among the numbers, empty
    or not, makes the column categorical."""
    from decimal import Decimal

    import pandas as pd

    from monitor import Reference

    frame = pd.DataFrame({"a": [Decimal(i) for i in range(50)] + [""], "b": np.arange(51.0)})
    ref = Reference.from_arrays(frame)
    assert ref.numeric_names == ("b",) and ref.categorical_names == ("a",)
    numbers = pd.DataFrame({"a": [Decimal(i) for i in range(50)] + [None], "b": np.arange(51.0)})
    assert Reference.from_arrays(numbers).numeric_names == ("a", "b")  # gaps that are no text: numeric
