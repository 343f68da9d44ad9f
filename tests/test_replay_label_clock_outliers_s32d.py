"""In a replay, one event stamped far ahead does not let go of every held label (s32d).

Without an agent's clock (``monitor replay``, batch jobs) a held label's wait is measured in event
time, which was the newest event time seen: one event from a sender whose clock ran a day ahead
(a replay of last week's log lets it in: it is not ahead of the wall clock) moved it a day and let
go of every held label at once, each counted ``unknown_id``. The clock now follows the median time
of the latest events; an event it did not follow is counted and said once.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.checkpoint import decode_state, encode_state
from monitor.labels import RECENT_EVENTS, LabelJoiner
from monitor.outputs import ClassIndex

T0 = 1_600_000_000.0  # years before the wall clock: a replay of an old log
DAY = 86_400.0
CLASSES = ClassIndex(("0", "1"))


def _batch(ids: list[str], ts: float) -> Batch:
    return Batch.from_arrays(np.zeros((len(ids), 1)), np.tile([[0.3, 0.7]], (len(ids), 1)),
                             ts=np.full(len(ids), ts), request_id=ids)


def _replay() -> Monitor:
    return Monitor("m", config={"detectors": [{"kind": "calibration", "min_labels": 5}]}, registry=CollectorRegistry(),
                   live=False, start_worker=False)


def _predict(mon: Monitor, rid: str, ts: float) -> None:
    mon.observe(np.zeros((1, 2)), np.array([[0.2, 0.8]]), request_id=[rid], timestamp=ts)
    mon.flush()


def _count(mon: Monitor, outcome: str) -> float:
    return mon.store.value("monitor_feedback_labels", (outcome,)) or 0


def test_one_event_a_day_ahead_does_not_expire_the_held_labels(caplog: pytest.LogCaptureFixture) -> None:
    mon = _replay()
    for i in range(5):
        _predict(mon, f"p{i}", T0 + i)
    mon.feedback(["a", "b"], [1, 0], timestamp=T0 + 10)  # labels first: their predictions come 30 s later
    mon.flush()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        _predict(mon, "wrong-clock", T0 + 11 + DAY)
        for i in range(RECENT_EVENTS + 5):  # the replay goes on; the outlier leaves the latest events
            _predict(mon, f"q{i}", T0 + 12 + i / 10)
    assert mon.store.value("monitor_labels_early") == 2 and _count(mon, "unknown_id") == 0
    _predict(mon, "a", T0 + 40)
    _predict(mon, "b", T0 + 41)
    assert _count(mon, "joined") == 2 and _count(mon, "unknown_id") == 0
    assert mon.store.value("monitor_labels_clock_outliers") == 1
    said = [r.getMessage() for r in caplog.records if "monitor_labels_clock_outliers_total" in r.getMessage()]
    assert len(said) == 1 and repr(T0 + 11 + DAY) in said[0]  # names the event
    mon.close()


def test_a_gap_in_the_replayed_events_still_lets_held_labels_go() -> None:
    mon = _replay()
    mon.feedback(["lost"], [1], timestamp=T0)
    mon.flush()
    for i in range(RECENT_EVENTS):  # a quiet night, then the next day's events
        _predict(mon, f"d{i}", T0 + DAY + i)
    assert mon.store.value("monitor_labels_early") == 0 and _count(mon, "unknown_id") == 1
    assert (mon.store.value("monitor_labels_clock_outliers") or 0) == 0  # the clock followed them
    mon.close()


def test_the_latest_event_times_survive_a_checkpoint() -> None:
    joiner = LabelJoiner(capacity=100, early_wait_s=600.0)
    joiner.remember(_batch([f"p{i}" for i in range(3)], T0))
    joiner.join(T0 + 1, ["a"], [1], CLASSES, regression=False)
    restored = LabelJoiner(capacity=100, early_wait_s=600.0)
    restored.load_state_dict(decode_state(*encode_state(joiner.state_dict())))
    restored.remember(_batch(["wrong-clock"], T0 + DAY))  # one event among the restored latest ones
    assert restored.early_held == 1
    restored.remember(_batch(["a"], T0 + 2))
    labeled, outcome = restored.join(T0 + 3, [], [], CLASSES, regression=False)
    assert outcome["joined"] == 1 and outcome["unknown_id"] == 0
