"""Per-row ``request_id=`` and ``segment=`` given as a column (session 26 audit).

``df[["request_id"]].values`` is ``(n, 1)``: each row's value was a one-element list, so its
request id was the text "['r-17']", which no label joined (every label counted as unknown_id,
nothing logged), and its segment "['x']"; a one-column DataFrame was read as its column's name,
one value for n rows (dropped and counted). ``feedback()`` already read a ``(n, 1)`` array of
labels as its column; the per-row arguments now do too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor


@pytest.mark.parametrize("as_column", [lambda s: s.to_frame().to_numpy(), lambda s: s.to_frame()])
def test_a_column_of_ids_and_segments_is_read_as_one_value_per_row(as_column) -> None:
    frame = pd.DataFrame({"request_id": ["a", "b", "c", "d"], "segment": ["x", "y", "x", "y"]})
    mon = Monitor(model="m", registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        p = np.linspace(0.1, 0.9, 4)
        mon.observe(np.zeros((4, 3)), np.c_[1 - p, p], request_id=as_column(frame["request_id"]),
                    segment=as_column(frame["segment"]))
        mon.flush()
        mon.feedback(["a", "b"], [1, 0])
        mon.flush()
        assert mon.store.value("monitor_feedback_labels", {"outcome": "joined"}) == 2
        assert mon.store.value("monitor_segment_rows_in_window", {"segment": "x"}) == 2
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "request_id"}) in (None, 0.0)
    finally:
        mon.close()
