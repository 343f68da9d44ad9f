"""Session 27 audit of regression intervals as an ML engineer sends them (issue 3, part 5).

Three-column regression outputs are read as ``(value, lower, upper)``. A model returning
``[lower, median, upper]`` (the order quantile models and most interval libraries print them in)
passed every check: its lower bound was read as the prediction, so MAE, RMSE, bias, drift and
coverage were measured on the wrong columns (MAE 1.61 for a model whose MAE is 0.81, coverage 42%
of a 90% interval) and nothing said so. And interval outputs without ``interval_level`` export
their coverage but never its gap, so RegressionIntervalTooNarrow could not fire, silently.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.linear_model import LinearRegression

from monitor import Monitor

T0 = 1_700_000_000.0
Z90 = 1.6448536269514722


def _model() -> tuple[LinearRegression, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (1400, 2))
    y = x @ np.array([2.0, -1.0]) + rng.normal(0.0, 1.0, 1400)
    return LinearRegression().fit(x[:1000], y[:1000]), x[1000:], y[1000:]


def _run(order: str, detector: dict, caplog: pytest.LogCaptureFixture,
         model: LinearRegression | None = None) -> tuple[Monitor, str]:
    lr, x, y = _model()
    lr = model or lr
    mon = Monitor(model="order", config={"output": {"kind": "regression"}, "detectors": [detector]},
                  registry=CollectorRegistry(), live=False, start_worker=False, clock=lambda: T0)

    @mon.watch(request_id="ids")
    def predict(rows: np.ndarray, ids: list[str]) -> np.ndarray:
        m = lr.predict(rows)
        cols = {"value": m, "lower": m - Z90, "upper": m + Z90, "minus": np.full_like(m, -Z90), "plus": np.full_like(m, Z90)}
        return np.stack([cols[c] for c in order.split(",")], axis=1)

    ids = [f"r{i}" for i in range(len(y))]
    with caplog.at_level(logging.WARNING, logger="monitor"):
        for i in range(0, len(y), 10):  # calls of 10 rows, one at a time as a server makes them
            predict(x[i:i + 10], ids=ids[i:i + 10])
        mon.flush()
        mon.feedback(ids, y.tolist())
        mon.flush()
    return mon, "\n".join(r.getMessage() for r in caplog.records)


def test_lower_median_upper_read_as_value_lower_upper_is_said_with_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    mon, logged = _run("lower,value,upper", {"kind": "regression", "interval_level": 0.9}, caplog)
    try:
        assert "(lower, value, upper)" in logged and "output.quantiles" in logged, logged
        assert re.search(r"outside its own interval in (\d+) of \1 rows", logged), logged  # every row
        assert logged.count("outside its own interval") == 1  # once, not at every batch
    finally:
        mon.close()


def test_bounds_given_as_offsets_are_said_too(caplog: pytest.LogCaptureFixture) -> None:
    """(value, -1.645, +1.645): the half-widths sent for the bounds. The targets (about 0 +- 2.3) put
    the value outside [-1.645, 1.645] in about half the rows; shifted by 10, in every row."""
    lr, _, _ = _model()
    lr.intercept_ += 10.0
    mon, logged = _run("value,minus,plus", {"kind": "regression", "interval_level": 0.9}, caplog, lr)
    try:
        assert "offsets from the value" in logged, logged
    finally:
        mon.close()


def test_value_lower_upper_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """The documented order, and a model whose value leaves its interval now and then (a mean beside
    separately fitted quantiles: 5% of rows on scikit-learn's diabetes data), say nothing."""
    mon, logged = _run("value,lower,upper", {"kind": "regression", "interval_level": 0.9}, caplog)
    try:
        assert "outside its own interval" not in logged and "interval_level" not in logged, logged
        assert mon.store.value("monitor_interval_coverage_gap_ratio") is not None
    finally:
        mon.close()



def test_intervals_without_interval_level_say_that_the_rule_cannot_fire(caplog: pytest.LogCaptureFixture) -> None:
    mon, logged = _run("value,lower,upper", {"kind": "regression"}, caplog)
    try:
        assert mon.store.value("monitor_interval_coverage_ratio") is not None
        assert mon.store.value("monitor_interval_coverage_gap_ratio") is None
        assert "interval_level" in logged and "RegressionIntervalTooNarrow" in logged, logged
        assert logged.count("has no interval_level") == 1  # once, not at every batch
    finally:
        mon.close()


def test_a_reference_without_labels_says_the_error_rule_cannot_fire(caplog: pytest.LogCaptureFixture) -> None:
    """A regression reference built from predictions alone: MAE and RMSE come with live labels, but
    monitor_regression_reference_mae, what RegressionErrorHigh compares them with, never did, and
    nothing said why the rule never fired (s27d's report)."""
    from monitor.detectors.regression import RegressionDetector
    from monitor.reference import Reference

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        RegressionDetector(reference=Reference.from_arrays(x, scores=x[:, 0] * 2.0))
    said = [r.getMessage() for r in caplog.records if "reference_mae" in r.getMessage()]
    assert len(said) == 1 and "RegressionErrorHigh" in said[0] and "Fix:" in said[0], said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        RegressionDetector(reference=Reference.from_arrays(x, scores=x[:, 0] * 2.0, labels=x[:, 0] * 2.1))
    assert not [r for r in caplog.records if "reference_mae" in r.getMessage()]
