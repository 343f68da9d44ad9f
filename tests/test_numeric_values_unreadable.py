"""One value of a numeric feature that is no number ("N/A", a list, an object) costs that value,
not the call: the call was refused whole as wrong_type, so one "N/A" in a batch of 500 rows lost
500 rows of confidence, calibration and label joins. The row is now monitored with that value
missing and the value counted per feature as ``wrong_type`` by data quality (not as missing), said
once in the log with the fix; empty text is missing, as a CSV's gap is; a call none of whose
values is a number (texts for a numeric model) is still refused, with its fix."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import http, sample, start_sidecar

P = [0.7, 0.2, 0.1]
CONFIG = {"output": {"kind": "probabilities", "classes": ["x", "y", "z"]},
          "features": [{"name": "a"}, {"name": "b"}]}


def _monitor(config: dict | None = None) -> Monitor:
    return Monitor(model="m", config=config or CONFIG, registry=CollectorRegistry(), start_worker=False, live=False)


def _invalid(mon: Monitor, feature: str, reason: str) -> float:
    return mon.store.value("monitor_data_invalid_rows", labels=(feature, reason)) or 0.0


@pytest.mark.parametrize("form", ["rows", "dicts", "columns", "frame"])
def test_a_value_that_is_no_number_costs_that_value_not_the_call(form: str, caplog: pytest.LogCaptureFixture) -> None:
    rows = [[1.0, 2.0], [3.0, "N/A"], [5.0, [6.0]], [7.0, ""], ["8.5", 9.0]]
    inputs = {
        "rows": rows,
        "dicts": [{"a": r[0], "b": r[1]} for r in rows],
        "columns": {"a": [r[0] for r in rows], "b": [r[1] for r in rows]},
        "frame": pd.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows]}),
    }[form]
    mon = _monitor()
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for _ in range(2):
                mon.observe(inputs, [P] * len(rows))
                mon.flush()
        assert mon.store.value("monitor_predictions") == 10
        assert not mon.store.value("monitor_rows_rejected", labels=("wrong_type",))
        assert _invalid(mon, "b", "wrong_type") == 4  # "N/A" and [6.0], twice
        assert _invalid(mon, "b", "missing") == 2  # "": a gap, not a wrong value
        assert _invalid(mon, "a", "wrong_type") == 0 and _invalid(mon, "a", "missing") == 0  # "8.5" reads
        said = [r.getMessage() for r in caplog.records if "not numbers" in r.getMessage()]
        assert len(said) == 1, said
        assert "feature 'b'" in said[0] and "'N/A'" in said[0] and "wrong_type" in said[0] and "Fix:" in said[0]
        quality = next(d for d in mon.pipeline.detectors if d.kind == "data_quality")
        assert quality.ratio("b", "wrong_type") is None  # below min_rows: absent, not 0
    finally:
        mon.close()


def test_the_rows_values_that_read_reach_the_detectors() -> None:
    """The row with an unreadable value keeps its other values and its outputs: the ratio of
    wrong values is the share of rows, and the confidence figures count every row."""
    mon = _monitor({**CONFIG, "detectors": [{"kind": "data_quality", "min_rows": 10}, {"kind": "confidence"}]})
    rng = np.random.default_rng(0)
    try:
        rows = rng.normal(size=(40, 2)).tolist()
        for i in range(0, 40, 8):
            rows[i][1] = "unknown"
        mon.observe(rows, [P] * 40)
        mon.flush()
        quality = next(d for d in mon.pipeline.detectors if d.kind == "data_quality")
        assert quality.ratio("b", "wrong_type") == pytest.approx(5 / 40)
        assert quality.ratio("b", "missing") == 0.0 and quality.ratio("a", "wrong_type") == 0.0
        assert mon.store.value("monitor_predictions") == 40
    finally:
        mon.close()


def test_a_categorical_schema_reads_its_numeric_values_one_by_one() -> None:
    config = {**CONFIG, "features": [{"name": "a"}, {"name": "city", "kind": "categorical"}]}
    mon = _monitor(config)
    try:
        mon.observe([[1.0, "paris"], ["oops", "rome"], [None, "oslo"]], [P] * 3)
        mon.flush()
        assert mon.store.value("monitor_predictions") == 3
        assert (_invalid(mon, "a", "wrong_type"), _invalid(mon, "a", "missing")) == (1, 1)
    finally:
        mon.close()


def test_a_call_of_no_number_at_all_is_still_refused(caplog: pytest.LogCaptureFixture) -> None:
    mon = _monitor()
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe([["p", "q"], ["r", "s"]], [P, P])
            mon.flush()
        assert mon.store.value("monitor_rows_rejected", labels=("wrong_type",)) == 2
        assert not mon.store.value("monitor_predictions")
        assert any("kind: text" in r.getMessage() for r in caplog.records)  # the refusal's fix
    finally:
        mon.close()


def test_over_http_the_event_is_accepted_and_the_value_counted(tmp_path: Path) -> None:
    iris = {"model": "iris", "features": ["a", "b", "c", "d"], "output": {"kind": "probabilities",
                                                                       "classes": ["x", "y", "z"]}}
    s = start_sidecar(iris, tmp_path)
    try:
        r = http("POST", s.url + "/v1/events", {"inputs": [[5.1, 3.5, "n/a", 0.2], [5.0, 3.4, 1.5, 0.2]],
                                                 "outputs": [P, P]})
        assert r.status == 202, r.body
        r = http("POST", s.url + "/v1/events", {"inputs": {"a": 5.1, "b": "?", "c": 1.4, "d": 0.2}, "outputs": P})
        assert r.status == 202, r.body
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_predictions_total", model="iris") == 3
        assert sample(text, "monitor_data_invalid_rows_total", model="iris", feature="c", reason="wrong_type") == 1
        assert sample(text, "monitor_data_invalid_rows_total", model="iris", feature="b", reason="wrong_type") == 1
        assert not sample(text, "monitor_rows_rejected_total", model="iris", reason="wrong_type")
    finally:
        s.close()
