"""Bad input, follow-ups of session 37's reviews (helper s37e): each test failed before its fix.
The standard: a clear error naming the field and the fix, counted when refused, never a crash of
the agent, a figure poisoned, a warning on the user's stderr or a value silently read as another."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference

__all__: list[str] = []


def _monitor(config: dict, reference: Reference | None = None) -> Monitor:
    return Monitor(model="m", config=config, reference=reference, registry=CollectorRegistry(), start_worker=False,
                   live=False)


@pytest.mark.parametrize("given", [
    [[np.complex128(1 + 2j), np.complex128(0.5)]],              # a one-row call's rows of numpy complex scalars
    [np.complex64(1 + 2j), 0.5],                                 # a flat list, one beside a real number
    [np.array([1 + 2j, 0.5])],                                   # an array of complex dtype in a list
    np.array([[np.complex128(1 + 2j), 0.5]], dtype=object),      # an object array holding one
], ids=["rows_of_scalars", "flat_list", "complex_array_in_list", "object_array"])
def test_a_live_embedding_of_complex_values_in_a_list_is_dropped_not_read_as_real_parts(
        given: object, caplog: pytest.LogCaptureFixture) -> None:
    """An embedding given as a list of numpy complex values was cast to float64 (their real parts,
    numpy's ComplexWarning on stderr the only word of it) and compared, where an array of complex
    dtype was dropped. It is now dropped the same way: the row is kept without it, counted in
    monitor_row_arguments_dropped_total{argument="embedding"} and said once."""
    mon = _monitor({"features": ["a"], "output": {"kind": "regression"}})
    try:
        with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="monitor"):
            warnings.simplefilter("error")  # numpy's ComplexWarning is an exception here
            mon.observe([[1.0]], [0.5], embedding=given)
            mon.observe([[2.0]], [0.5], embedding=[[0.1, 0.2]])  # a real one beside it is read
            mon.flush()
        value = mon.store.value
        assert value("monitor_row_arguments_dropped", {"argument": "embedding"}) == 1
        assert value("monitor_predictions") == 2  # the row itself is kept
        said = " ".join(r.getMessage() for r in caplog.records)
        assert "embedding for 1 row(s) cannot be read as numbers" in said and "complex numbers (" in said, said
    finally:
        mon.close()


@pytest.mark.parametrize("argument", ["embedding", "scores", "numeric"])
@pytest.mark.parametrize("form", ["list", "object_array"])
def test_reference_complex_values_in_a_list_are_refused_as_an_array_of_them_is(argument: str, form: str) -> None:
    """``Reference.from_arrays`` refused an array of complex dtype for ``numeric``, ``scores`` and
    ``embedding``, but a list of numpy complex values (or an object array of them) was read as its
    real parts. Each is now the same ValueError naming the argument and the fix."""
    rng = np.random.default_rng(37)
    given: dict[str, object] = {"numeric": rng.normal(size=(50, 2))}
    rows = [[np.complex128(v) for v in r] for r in rng.normal(size=(50, 2))]
    rows[7][1] = np.complex128(0.3 + 1j)
    given[argument] = rows if form == "list" else np.array(rows, dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=rf"reference {argument} are complex numbers \(.* of them\).*Fix:"):
            Reference.from_arrays(**given)
    # real numbers in the same forms are read as before
    given[argument] = [[float(v.real) for v in r] for r in rows]
    ref = Reference.from_arrays(**given)
    assert np.asarray(getattr(ref, argument), dtype=float).shape == (50, 2)


def test_a_masked_constant_in_a_dict_row_is_missing_silently(recwarn: pytest.WarningsRecorder) -> None:
    """``np.ma.masked`` placed as a value in a dict row (``{"a": masked_array[i]}``) was read as NaN
    by ``float()``, which printed numpy's UserWarning ("converting a masked element to nan") on
    the user's stderr; under a categorical feature it was the category "--". It is now missing in
    both, counted as such, and nothing reaches the warnings machinery: configured features, a
    learned schema and a dict of columns alike."""
    masked = np.ma.masked
    mon = _monitor({"features": ["a", {"name": "c", "kind": "categorical"}], "output": {"kind": "regression"}})
    learned = _monitor({"output": {"kind": "regression"}})
    try:
        mon.observe([{"a": masked, "c": "x"}, {"a": 2.0, "c": masked}], [0.1, 0.2])
        mon.observe({"a": [masked, 1.0], "c": ["x", "y"]}, [0.1, 0.2])
        mon.flush()
        learned.observe([{"a": masked, "b": 1.0}, {"a": 2.0, "b": 1.0}], [0.1, 0.2])
        learned.flush()
        invalid = mon.store.value
        assert invalid("monitor_data_invalid_rows", {"feature": "a", "reason": "missing"}) == 2
        assert invalid("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 0
        assert invalid("monitor_data_invalid_rows", {"feature": "c", "reason": "missing"}) == 1
        assert invalid("monitor_predictions") == 4
        assert learned.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "missing"}) == 1
        assert not [w for w in recwarn.list if "masked" in str(w.message)], [str(w.message) for w in recwarn.list]
    finally:
        mon.close()
        learned.close()


_REGRESSION = {"output": {"kind": "regression"}, "features": ["a"],
               "detectors": [{"kind": "regression", "min_rows": 5, "min_labels": 5}, "output_drift"]}


def _regression_reference(rows: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(37)
    x = rng.normal(size=(rows, 1))
    pred = x[:, 0] + 1.0
    return x, pred, pred + rng.normal(scale=0.5, size=rows)


@pytest.mark.parametrize("form", ["single", "column", "interval", "quantiles"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "minus_inf"])
def test_a_regression_reference_prediction_that_is_nan_or_infinite_is_refused_in_every_form(form: str, bad: float) -> None:
    """A NaN (or infinite) prediction in a regression reference of one value per row was left out
    of the detectors' figures without a word, while the same value in a (value, lower, upper) or
    quantile row was refused at start, as live traffic refuses it (nan_output). A single value is
    now refused alike, naming reference.path, the scores, the row and the fix (drop the rows)."""
    from monitor.config import ConfigError

    x, pred, y = _regression_reference()
    config = dict(_REGRESSION)
    if form == "quantiles":
        config["output"] = {"kind": "regression", "quantiles": [0.1, 0.5, 0.9]}
    scores = {"single": pred.copy(), "column": pred[:, None].copy(), "interval": np.c_[pred, pred - 1, pred + 1],
              "quantiles": np.c_[pred - 1, pred, pred + 1]}[form]
    scores[12, ...] = bad
    with pytest.raises(ConfigError) as info:
        _monitor(config, Reference.from_arrays(x, numeric_names=["a"], scores=scores, labels=y)).close()
    message = str(info.value)
    assert "reference.path" in message and "reference's scores" in message and "row 12" in message, message
    assert "nan_output" in message and "Fix:" in message, message
    # a missing target (label) is still left out of the reference's MAE, not refused
    labels = y.copy()
    labels[12] = np.nan
    mon = _monitor(_REGRESSION, Reference.from_arrays(x, numeric_names=["a"], scores=pred, labels=labels))
    try:
        det = next(d for d in mon.pipeline.detectors if d.kind == "regression")
        assert det._ref_mae == pytest.approx(np.abs(np.delete(pred - y, 12)).mean())
    finally:
        mon.close()


@pytest.mark.parametrize("form", ["interval_nan", "interval_reversed", "quantiles_infinite_median"])
def test_a_regression_reference_of_which_every_row_is_refused_is_refused_at_start(
        form: str, recwarn: pytest.WarningsRecorder) -> None:
    """A (value, lower, upper) or quantile reference whose rows would all be refused live passed
    the guard that refuses some refused rows (``decoded.valid.any()``): the detectors started on
    it. All NaN: no reference prediction (numpy's "Mean of empty slice" on stderr, and a log line
    saying the reference had no labels); all reversed, or an infinite median column, read as
    predictions (the median then read off another column: prediction drift at p 3e-20 on the
    reference's own rows). It is now refused at start under reference.path with the fix."""
    from monitor.config import ConfigError

    x, pred, y = _regression_reference()
    config = dict(_REGRESSION)
    if form == "interval_nan":
        scores = np.c_[np.full_like(pred, np.nan), pred - 1, pred + 1]
    elif form == "interval_reversed":
        scores = np.c_[pred, pred + 1, pred - 1]
    else:
        config["output"] = {"kind": "regression", "quantiles": [0.1, 0.5, 0.9]}
        scores = np.c_[pred - 1, np.full_like(pred, np.inf), pred + 1]
    with pytest.raises(ConfigError) as info:
        _monitor(config, Reference.from_arrays(x, numeric_names=["a"], scores=scores, labels=y)).close()
    message = str(info.value)
    assert "reference.path" in message and "every one of the reference's 400 rows" in message, message
    assert ("reversed_interval" if form == "interval_reversed" else "nan_output") in message, message
    assert "Fix:" in message and "scores=" in message and "output_columns" in message, message
    assert not [w for w in recwarn.list if "empty slice" in str(w.message)]
    # the same reference with its rows right starts as before
    good = np.c_[pred, pred - 1, pred + 1] if form != "quantiles_infinite_median" else np.c_[pred - 1, pred, pred + 1]
    _monitor(config, Reference.from_arrays(x, numeric_names=["a"], scores=good, labels=y)).close()


def test_feedback_for_a_missing_request_id_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """A feedback id that stands for none (NaN, pandas' missing id; None; pandas' NA) counted its
    label unknown_id, but nothing said why, where an over-long id or one whose text cannot be taken
    is said once (e5873e5). It is now said once, with the fix, further ones counted alone; the
    labels with ids beside them join as before."""
    import pandas as pd

    mon = _monitor({"features": ["a"], "output": {"kind": "regression"}})
    try:
        mon.observe([[1.0], [2.0]], [0.1, 0.2], request_id=["r1", "r2"])
        mon.flush()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback([np.nan, None, pd.NA, "r1"], [1.0, 2.0, 3.0, 0.5])
            mon.flush()
            mon.feedback([float("nan")], [1.0])
            mon.flush()
        outcome = lambda name: mon.store.value("monitor_feedback_labels", {"outcome": name})  # noqa: E731
        assert outcome("unknown_id") == 4 and outcome("joined") == 1
        said = [r.getMessage() for r in caplog.records if "read as no id" in r.getMessage()]
        assert len(said) == 1, said
        assert "request id nan" in said[0] and "Fix:" in said[0] and 'outcome="unknown_id"' in said[0], said
    finally:
        mon.close()
