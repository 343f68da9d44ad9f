"""``feedback`` given pandas DataFrames (session 26 audit): a one-column DataFrame of labels
(``df[["label"]]``) raised AttributeError ('DataFrame' object has no attribute 'reshape') from
inside the monitor, and one of several columns was iterated as its column names, taken as the
labels when they were as many as the ids. A one-column DataFrame is now read as its column (as a
``(n, 1)`` array is), one of several columns is a ValueError naming the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor


def _monitor_with_predictions(ids: list[str]) -> Monitor:
    mon = Monitor(model="m", registry=CollectorRegistry(), start_worker=False, live=False)
    p = np.linspace(0.1, 0.9, len(ids))
    mon.observe(np.zeros((len(ids), 3)), np.c_[1 - p, p], request_id=ids)
    mon.flush()
    return mon


def test_one_column_dataframes_of_ids_and_labels_are_joined() -> None:
    ids = [f"r{i}" for i in range(10)]
    mon = _monitor_with_predictions(ids)
    try:
        frame = pd.DataFrame({"request_id": ids, "label": [0, 1] * 5})
        mon.feedback(frame[["request_id"]], frame[["label"]])
        mon.flush()
        assert mon.store.value("monitor_feedback_labels", {"outcome": "joined"}) == 10
    finally:
        mon.close()


def test_a_dataframe_of_several_columns_is_refused_with_the_fix() -> None:
    mon = _monitor_with_predictions(["a", "b"])
    try:
        with pytest.raises(ValueError, match=r"2 columns.*df\[\"label\"\]"):
            mon.feedback(["a", "b"], pd.DataFrame({"label": [0, 1], "weight": [1.0, 2.0]}))
    finally:
        mon.close()
