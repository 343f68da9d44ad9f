"""Per-row ``segment`` and ``request_id`` given as a DataFrame's columns, with missing values.

``observe(df[features], p, segment=df["region"], request_id=df["rid"])`` is how a pandas user
passes them. Only lists, tuples and arrays were read as one value per row: a Series became one
segment named after its printout, and every label sent for its rows counted as unknown_id.
Missing values (NaN, pandas' NA) became segments named ``nan`` and ``<NA>``, bytes ``b'eu'``, and
a segment name from the Python API was not cut to 200 characters as the HTTP intakes cut it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.events import FEEDBACK, MAX_LABEL_CHARS, PREDICTION, is_missing
from monitor.forwarding import encode_event

pd = pytest.importorskip("pandas")

T0 = 1_700_000_000.0
CONFIG = {"output": {"kind": "probabilities", "classes": ["a", "b"]},
          "detectors": [{"kind": "segments", "min_rows": 1, "min_labels": 1}, {"kind": "calibration", "min_labels": 2}]}


def _monitor() -> Monitor:
    return Monitor("m", config=CONFIG, registry=CollectorRegistry(), live=False, start_worker=False)


def _rows_by_segment(mon: Monitor) -> dict[str, float]:
    return {labels["segment"]: v for name, labels, v in mon.store.samples() if name == "monitor_segment_rows_in_window"}


def test_series_give_one_value_per_row_and_labels_join() -> None:
    df = pd.DataFrame({"x": np.arange(6.0), "region": ["eu", "us", "eu", None, "us", np.nan],
                       "rid": [f"id{i}" for i in range(6)]})
    p = np.tile([[0.2, 0.8]], (6, 1))
    mon = _monitor()
    mon.observe(df[["x"]], p, segment=df["region"], request_id=df["rid"], timestamp=T0)
    mon.flush()
    mon.feedback(df["rid"].tolist(), ["b", "b", "a", "b", "b", "b"], timestamp=T0 + 1)
    mon.flush()
    assert _rows_by_segment(mon) == {"eu": 2.0, "us": 2.0, "unset": 2.0}
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 6
    assert mon.store.value("monitor_accuracy_ratio") == pytest.approx(5 / 6)
    mon.close()


def test_categorical_nullable_and_bytes_values() -> None:
    region = pd.Series(pd.Categorical(["eu", "us", None, "eu"]))
    nullable = pd.Series(["eu", pd.NA, "us", "us"], dtype="string")
    mon = _monitor()
    p = np.tile([[0.6, 0.4]], (4, 1))
    mon.observe(np.zeros((4, 1)), p, segment=region, timestamp=T0)
    mon.observe(np.zeros((4, 1)), p, segment=nullable, timestamp=T0 + 1)
    mon.observe(np.zeros((2, 1)), p[:2], segment=[b"eu", float("nan")], timestamp=T0 + 2)
    mon.observe(np.zeros((1, 1)), p[:1], segment=b"us", timestamp=T0 + 3)
    mon.flush()
    assert _rows_by_segment(mon) == {"eu": 4.0, "us": 4.0, "unset": 3.0}
    mon.close()


def test_a_long_segment_name_is_cut_as_the_http_intakes_cut_it() -> None:
    mon = _monitor()
    mon.observe(np.zeros((2, 1)), np.tile([[0.6, 0.4]], (2, 1)), segment="x" * 100_000, timestamp=T0)
    mon.observe(np.zeros((2, 1)), np.tile([[0.6, 0.4]], (2, 1)), segment=["y" * 5_000, "z"], timestamp=T0 + 1)
    mon.flush()
    assert _rows_by_segment(mon) == {"x" * MAX_LABEL_CHARS: 2.0, "y" * MAX_LABEL_CHARS: 1.0, "z": 1.0}
    mon.close()


def test_a_missing_request_id_in_a_column_leaves_its_row_without_an_id() -> None:
    mon = _monitor()
    ids = pd.Series(["r0", None, "r2"])
    mon.observe(np.zeros((3, 1)), np.tile([[0.3, 0.7]], (3, 1)), request_id=ids, timestamp=T0)
    mon.flush()
    assert mon.store.value("monitor_labels_pending") == 2
    mon.feedback(["r0", "r2", "None"], ["b", "b", "b"], timestamp=T0 + 1)
    mon.flush()
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 2
    assert mon.store.value("monitor_labels_early") == 1  # "None" waits for a prediction of that id: none has it
    mon.close()


def test_forwarded_per_row_segments_send_missing_values_as_null() -> None:
    seg = pd.Series(["eu", np.nan, None, "us"])
    event = (PREDICTION, T0, [[0.0]] * 4, [[0.5, 0.5]] * 4, None, None, None, seg, None)
    assert json.loads(encode_event(event))["segment"] == ["eu", None, None, "us"]
    assert json.loads(encode_event((FEEDBACK, T0, ["a"], [1])))["labels"] == [1]


@pytest.mark.parametrize(("value", "missing"), [(None, True), (float("nan"), True), (np.float32("nan"), True),
                                                (pd.NA, True), (pd.NaT, True), ("nan", False), (0.0, False),
                                                (np.str_("eu"), False), ("", False)])
def test_what_counts_as_missing(value: object, missing: bool) -> None:
    assert is_missing(value) is missing
