"""A held label whose prediction came within its wait joins, however late the join comes.

``remember()`` marks a held label whose prediction has come, and the next join joins it. That join
swept the held labels whose wait had run out first: when it came later than the wait (``monitor
replay`` and batch jobs process thousands of events at once, whose later predictions move the
event clock past it), a label whose prediction had come in time was let
go of as ``unknown_id``, with a log line saying no prediction came, and its prediction waited for
a label for good (``monitor_labels_pending``).
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor


def _monitor() -> Monitor:
    return Monitor("m", config={"detectors": [{"kind": "calibration", "min_labels": 5}], "labels": {"early_wait": "10m"}},
                   registry=CollectorRegistry(), live=False, start_worker=False)


def _predict(mon: Monitor, ids: list[str], ts: float) -> None:
    mon.observe(np.zeros((len(ids), 2)), np.tile([[0.2, 0.8]], (len(ids), 1)), request_id=ids, timestamp=ts)


def test_a_prediction_within_the_wait_joins_when_later_events_come_in_the_same_chunk() -> None:
    mon = _monitor()
    mon.feedback(["early"], [1], timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_labels_early") == 1
    # one chunk, as a replay reads it: the label's prediction 100 s after it, then traffic for an hour
    _predict(mon, ["early"], ts=1100.0)
    for i in range(60):
        _predict(mon, [f"other{i}"], ts=1200.0 + 60.0 * i)
    mon.feedback(["other0"], [1], timestamp=4800.0)
    mon.flush()
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 2
    assert mon.store.value("monitor_feedback_labels", ("unknown_id",)) in (None, 0)
    assert mon.store.value("monitor_labels_early") == 0
    assert mon.store.value("monitor_labels_pending") == 59  # "early" is no longer waiting
    mon.close()
