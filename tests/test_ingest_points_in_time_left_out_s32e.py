"""Points in time left out of a learned schema are said once. Rows of a point in time and nothing
else were refused as "the inputs are list, not rows of numbers or of feature values" (with the
fix for numeric rows), and "left out" was logged again at every drain, as the schema was learned
again each time. They are refused saying they hold points in time alone, with the fix, once."""

from __future__ import annotations

import datetime

import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor

WHEN = datetime.datetime(2024, 5, 1, 12, 30)


def _monitor() -> Monitor:
    return Monitor(model="m", config={"output": {"kind": "none"}}, registry=CollectorRegistry(), start_worker=False,
                   live=False)


def test_rows_of_points_in_time_alone_are_refused_saying_so_once(caplog) -> None:
    mon = _monitor()
    try:
        with caplog.at_level("WARNING", logger="monitor"):
            for _ in range(3):
                mon.observe([{"ts": WHEN}, {"ts": WHEN}], None)
                mon.flush()
        assert mon.store.value("monitor_rows_rejected", labels=("wrong_type",)) == 6.0
        said = [r.getMessage() for r in caplog.records if "'ts'" in r.getMessage()]
        assert len(said) == 1, said
        assert "points in time and nothing else" in said[0] and "hour of day" in said[0], said[0]
        assert "not rows of numbers" not in said[0] and "send numeric rows" not in said[0]
    finally:
        mon.close()


def test_a_point_in_time_beside_features_is_left_out_and_said_once(caplog) -> None:
    mon = _monitor()
    frame = pd.DataFrame({"when": pd.to_datetime([WHEN] * 2), "x": [1.0, 2.0]})
    try:
        with caplog.at_level("WARNING", logger="monitor"):
            mon.observe(frame, None)
            mon.flush()
            mon.observe(frame, None)
            mon.flush()
        assert mon.pipeline.builder.schema.names == ("x",)
        said = [r.getMessage() for r in caplog.records if "'when'" in r.getMessage()]
        assert len(said) == 1 and "left out of the monitored features" in said[0], said
        assert mon.store.value("monitor_predictions") == 4.0
    finally:
        mon.close()
