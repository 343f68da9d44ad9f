"""Bad input, follow-ups of session 36's review (session 37, helper s37b): each test failed before
its fix. The standard: a clear error naming the field and the fix, counted when refused, never a
crash of the agent, a figure poisoned or a value silently read as another."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor

__all__: list[str] = []

_P = [0.7, 0.2, 0.1]
_CLASSES = {"output": {"kind": "probabilities", "classes": ["x", "y", "z"]}}


def _monitor(config: dict) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _observe(mon: Monitor, form: str, values: list, other: list) -> None:
    """``values`` under key ``b`` (and ``other`` under ``a``) in one of the input forms a schema is learned from."""
    n = len(values)
    if form == "dict rows":
        mon.observe([{"a": a, "b": b} for a, b in zip(other, values)], [_P] * n)
    elif form == "calls of one dict row":
        for a, b in zip(other, values):
            mon.observe({"a": a, "b": b}, _P)
    elif form == "dict of columns":
        mon.observe({"a": other, "b": values}, [_P] * n)
    else:
        mon.observe(pd.DataFrame({"a": other, "b": values}), [_P] * n)
    mon.flush()


_FORMS = ["dict rows", "calls of one dict row", "dict of columns", "DataFrame"]


@pytest.mark.parametrize("form", _FORMS)
@pytest.mark.parametrize("first", ["N/A", "", None])
def test_a_learned_key_is_numeric_by_its_values_not_its_first_one(form: str, first: object,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A learned key's kind was its first value's: a numeric key whose first value was "N/A" (or
    empty text) became categorical for good, every amount a category of its own (a DataFrame's
    object column with one "N/A" anywhere too). It is now numeric when more of its values are
    numbers than text; the texts are counted wrong values, as for a configured numeric feature."""
    values = [first] + [float(i) for i in range(1, 20)] + ["N/A"]
    mon = _monitor(_CLASSES)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            _observe(mon, form, values, [1.0] * len(values))
        kinds = {f.name: f.kind for f in mon.pipeline.builder.schema.features}
        assert kinds == {"a": "numeric", "b": "numeric"}
        assert mon.store.value("monitor_predictions") == len(values)  # no row refused
        wrong = 2 if first == "N/A" else 1
        assert mon.store.value("monitor_data_invalid_rows", labels=("b", "wrong_type")) == wrong
        assert any("not numbers" in r.getMessage() and "'b'" in r.getMessage() for r in caplog.records)
    finally:
        mon.close()


@pytest.mark.parametrize("form", _FORMS)
def test_a_learned_key_of_mostly_text_stays_categorical(form: str) -> None:
    """The other way: a key whose values are mostly text is categorical even when its first one is
    a number (numbers under a categorical feature are read as their text, nothing lost)."""
    values = [3.0, "red", "blue", "red", "green", "blue", 4.0]
    mon = _monitor(_CLASSES)
    try:
        _observe(mon, form, values, [1.0] * len(values))
        kinds = {f.name: f.kind for f in mon.pipeline.builder.schema.features}
        assert kinds == {"a": "numeric", "b": "categorical"}
        assert mon.store.value("monitor_predictions") == len(values)
    finally:
        mon.close()


def _regression_figures(outputs: np.ndarray, config: dict | None = None) -> tuple[Monitor, dict[str, float]]:
    cfg = {"output": {"kind": "regression"}, "features": ["a"],
           "detectors": [{"kind": "regression", "min_labels": 5, "min_rows": 5, "interval_level": 0.9}]}
    cfg.update(config or {})
    mon = _monitor(cfg)
    n = len(outputs)
    ids = [f"r{i}" for i in range(n)]
    mon.observe(np.ones((n, 1)), outputs, request_id=ids)
    mon.flush()
    mon.feedback(ids, [1.5] * n)
    mon.flush()
    figures = {}
    for name in ("mae", "rmse", "bias", "prediction_mean", "rows_in_window", "labels_in_window"):
        figures[name] = mon.store.value(f"monitor_regression_{name}")
    figures["coverage"] = mon.store.value("monitor_interval_coverage_ratio")
    return mon, figures


@pytest.mark.parametrize("shape", ["values", "intervals", "quantiles"])
def test_regression_outputs_near_the_float_limit_are_refused_not_poisoning_the_window(
        shape: str, caplog: pytest.LogCaptureFixture) -> None:
    """A regression output of 1e300 made its squared error overflow (the window's RMSE absent), and
    one of -1e300 beside it cancelled it in the bias and the prediction mean (-0.4 and 0.8 for
    errors of 1e300). Labels are bounded at 1e150 (events.MAX_REGRESSION_LABEL); outputs now are
    too: such rows are refused as ``output_too_large`` (said once, with the fix), and MAE, RMSE,
    bias, the mean and the coverage are those of the other rows, exactly."""
    n = 20
    if shape == "values":
        outputs = np.full(n, 1.0)
        outputs[[0, 1]] = [1e300, -1e300]
        config = None
    elif shape == "intervals":  # (value, lower, upper): a bound of -1e300 is no bound either
        outputs = np.tile([1.0, 0.0, 2.0], (n, 1))
        outputs[0] = [1e300, 0.0, 1e301]
        outputs[1] = [1.0, -1e300, 2.0]
        config = None
    else:
        outputs = np.tile([0.0, 1.0, 2.0], (n, 1))
        outputs[0, 2] = 1e300
        outputs[1, 0] = -1e300
        config = {"output": {"kind": "regression", "quantiles": [0.05, 0.5, 0.95]}}
    outputs[2] = outputs[3] * 1e150 if shape == "values" else outputs[3]  # 1e150 itself is read
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon, got = _regression_figures(outputs, config)
    try:
        assert mon.store.value("monitor_rows_rejected", labels=("output_too_large",)) == 2
        said = [r.getMessage() for r in caplog.records if "output_too_large" in r.getMessage()]
        assert len(said) == 1 and "1e+300" in said[0] and "Fix:" in said[0], said
        assert got["rows_in_window"] == got["labels_in_window"] == n - 2
        kept = np.delete(np.asarray(outputs, dtype=float), [0, 1], axis=0)
        value = kept if kept.ndim == 1 else kept[:, 0] if shape == "intervals" else kept[:, 1]
        err = value - 1.5
        assert got["mae"] == pytest.approx(np.abs(err).mean())
        assert got["rmse"] == pytest.approx(np.sqrt((err ** 2).mean()))
        assert got["bias"] == pytest.approx(err.mean())
        assert got["prediction_mean"] == pytest.approx(value.mean())
        assert all(np.isfinite(v) for k, v in got.items() if k != "coverage")
        if shape != "values":
            assert got["coverage"] == 1.0  # 1.5 lies in (0, 2) in every kept row
    finally:
        mon.close()


_REG = {"output": {"kind": "regression"}, "features": ["a"]}
_TWO = {"output": {"kind": "probabilities", "classes": ["x", "y"]}, "features": ["a"]}


@pytest.mark.parametrize("config, outputs", [
    (_REG, [np.complex128(0.2), np.complex128(0.5), np.complex128(0.9)]),
    (_REG, [0.2, 0.5, np.complex128(0.9 + 1j)]),  # one among real numbers: its imaginary part was dropped
    (_REG, (np.complex64(0.2), np.complex64(0.5), np.complex64(0.9))),
    (_TWO, [[np.complex128(0.7), np.complex128(0.3)]] * 3),
    (_TWO, [np.array([0.7, 0.3], dtype=complex)] * 3),
], ids=["complex128 values", "one among floats", "tuple of complex64", "rows of complex128", "list of complex arrays"])
def test_a_list_of_complex_outputs_is_refused_as_a_complex_array_is(config: dict, outputs: object,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """An array of complex outputs was refused (non_numeric_output, with the fix), a list of numpy
    complex scalars (or of rows of them) was cast to its real parts, numpy's ComplexWarning the
    only word of it. It is now refused the same way, with the same reason."""
    said = complex_outputs_refused(config, outputs, caplog)
    assert "complex numbers" in said and "np.real(out)" in said, said


def complex_outputs_refused(config: dict, outputs: object, caplog: pytest.LogCaptureFixture) -> str:
    """Observe a call of three rows answered ``outputs`` (complex numbers) by a model of ``config``;
    check that the whole call is refused as non_numeric_output (no prediction, 3 rows counted) and
    said once; return that log line. (Also the labels model's test, tests/test_bad_input_s37c.py.)"""
    mon = _monitor(config)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe(np.ones((3, 1)), outputs)
            mon.flush()
        assert not mon.store.value("monitor_predictions")
        assert mon.store.value("monitor_rows_rejected", labels=("non_numeric_output",)) == 3
    finally:
        mon.close()
    said = [r.getMessage() for r in caplog.records if "non_numeric_output" in r.getMessage()]
    assert len(said) == 1, said
    return said[0]


@pytest.mark.parametrize("row", [[1.0], {"a": 1.0}], ids=["list row", "dict row"])
def test_calls_of_one_row_with_complex_outputs_are_refused_on_the_fast_path_too(row: object) -> None:
    """Calls of one row each are stacked in one go (JSON events, a decorated predict called per row):
    their lists of complex scores were cast there too. The real ones beside them are still read."""
    mon = _monitor(_TWO)
    try:
        for _ in range(5):
            mon.observe(row, [np.complex128(0.7), np.complex128(0.3)])
        mon.observe(row, [0.6, 0.4])
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", labels=("non_numeric_output",)) == 5
        assert mon.store.value("monitor_predictions") == 1
    finally:
        mon.close()


def test_feedback_for_a_request_id_too_long_to_be_kept_counts_unknown_id_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A prediction's request id over 1,024 characters is dropped from its rows (refused over
    HTTP), so a label for it can never join; feedback() in code held it as an early label for
    labels.early_wait all the same (monitor_labels_early), then counted it unknown_id. It is now
    counted unknown_id at once, said once with the fix. The rows of a call with an id of 1,024
    characters, <id>/0, <id>/1..., are longer than that and still join."""
    mon = _monitor({"output": {"kind": "probabilities", "classes": ["x", "y"]}, "features": ["a"]})
    longest = "k" * 1024
    try:
        mon.observe([[1.0], [2.0], [3.0]], [[0.6, 0.4]] * 3, request_id=longest)
        mon.flush()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback([f"{longest}/1", "x" * 1025, "y" * 5000], [1, 0, 1])
            mon.feedback(["z" * 2000], [0])
            mon.feedback(["not-yet"], [1])  # an id that may still come: waits, as before
            mon.flush()
        labels = lambda outcome: mon.store.value("monitor_feedback_labels", labels=(outcome,))  # noqa: E731
        assert labels("joined") == 1
        assert labels("unknown_id") == 3
        assert mon.store.value("monitor_labels_early") == 1
        said = [r.getMessage() for r in caplog.records if "a label came for a request id" in r.getMessage()]
        assert len(said) == 1 and "1,025 characters" in said[0] and "Fix:" in said[0] and "unknown_id" in said[0], said
    finally:
        mon.close()


def test_reference_rows_holding_times_among_numbers_read_them_as_seconds() -> None:
    """Reference rows given as lists (or an object array) with a duration or a point in time
    among the numbers: float() read a numpy time scalar as a count of its unit (2,000 ms as 2000,
    a date as days) and refused Python's timedelta with a fix about text columns. They are now
    seconds (since 1970 UTC for points in time), as live rows of them are read."""
    import datetime

    from monitor import Reference

    numpy_only = [[1.0, np.timedelta64(2000, "ms")], [2.0, np.timedelta64(3, "s")]]
    assert Reference.from_arrays(numpy_only).numeric.tolist() == [[1.0, 2.0], [2.0, 3.0]]  # was 2000 and 3
    rows = [[1.0, np.timedelta64(2000, "ms")], [2.0, datetime.timedelta(minutes=1)], [3.0, None],
            [4.0, np.timedelta64("NaT")]]
    for given in (rows, np.array(rows, dtype=object)):
        got = Reference.from_arrays(given, numeric_names=["a", "wait"]).numeric
        assert got[:2].tolist() == [[1.0, 2.0], [2.0, 60.0]]
        assert np.isnan(got[2, 1]) and np.isnan(got[3, 1]) and got[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    times = [[1.0, np.datetime64("1970-01-02")], [2.0, datetime.datetime(1970, 1, 3, tzinfo=datetime.timezone.utc)]]
    assert Reference.from_arrays(times).numeric.tolist() == [[1.0, 86400.0], [2.0, 172800.0]]
    # rows of plain numbers (and gaps) and rows with text read as before
    assert np.isnan(Reference.from_arrays([[1.0, None], [2.0, 3]]).numeric[0, 1])
    with pytest.raises(ValueError, match="could not convert string to float: 'a'"):
        Reference.from_arrays([[1.0, "a"], [2.0, "b"]])
