"""A held label's wait runs on the agent's clock from when it arrived, not in event time (s31a).

Before, the held labels' clock was the newest event time seen: one event from a client whose
clock ran minutes ahead (the intake accepts up to 10 minutes) expired every held label at the
default ``labels.early_wait`` of 10 minutes, and a backfill of older events after live traffic held
nothing (each replayed early label left at once, counted ``unknown_id``).
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _live(clock: FakeClock) -> Monitor:
    return Monitor("m", config={"detectors": [{"kind": "calibration", "min_labels": 5}]}, registry=CollectorRegistry(),
                   live=True, start_worker=False, clock=clock)


def _predict(mon: Monitor, ids: list[str], ts: float) -> None:
    mon.observe(np.zeros((len(ids), 2)), np.tile([[0.2, 0.8]], (len(ids), 1)), request_id=ids, timestamp=ts)


def _count(mon: Monitor, outcome: str) -> float:
    return mon.store.value("monitor_feedback_labels", (outcome,)) or 0


def test_one_event_from_a_fast_client_clock_does_not_expire_held_labels() -> None:
    clock = FakeClock(T0)
    mon = _live(clock)
    mon.feedback(["a", "b"], [1, 0], timestamp=T0 - 120)  # labelled two minutes ago, prediction not here yet
    mon.flush()
    _predict(mon, ["other"], ts=T0 + 540)  # a client whose clock runs 9 minutes ahead: accepted
    mon.flush()
    assert _count(mon, "unknown_id") == 0 and mon.store.value("monitor_labels_early") == 2
    clock.t += 30
    _predict(mon, ["a", "b"], ts=T0 - 121)
    mon.flush()
    assert _count(mon, "joined") == 2 and _count(mon, "unknown_id") == 0
    mon.close()


def test_labels_of_a_backfill_after_live_traffic_are_held() -> None:
    clock = FakeClock(T0)
    mon = _live(clock)
    _predict(mon, ["live"], ts=T0)
    mon.flush()
    old = T0 - 86_400.0  # yesterday's events sent again, labels first
    mon.feedback(["x1", "x2", "x3"], [1, 1, 0], timestamp=old + 60)
    mon.flush()
    assert mon.store.value("monitor_labels_early") == 3
    _predict(mon, ["x1", "x2", "x3"], ts=old)
    mon.flush()
    assert _count(mon, "joined") == 3 and _count(mon, "unknown_id") == 0
    mon.close()


def test_a_held_label_leaves_after_the_wait_on_the_agents_clock_even_when_idle() -> None:
    clock = FakeClock(T0)
    mon = _live(clock)
    mon.feedback(["lost"], [1], timestamp=T0)
    mon.flush()
    clock.t += 599
    mon.flush()  # no event: the idle worker's advance sweeps the held labels
    assert mon.store.value("monitor_labels_early") == 1 and _count(mon, "unknown_id") == 0
    clock.t += 2
    mon.flush()
    assert mon.store.value("monitor_labels_early") == 0 and _count(mon, "unknown_id") == 1
    mon.close()


def _batch(ids: list[str], ts: float) -> Batch:
    return Batch.from_arrays(np.zeros((len(ids), 1)), np.tile([[0.3, 0.7]], (len(ids), 1)),
                             ts=np.full(len(ids), ts), request_id=ids)


def test_held_labels_keep_their_arrival_across_a_checkpoint() -> None:
    classes = ClassIndex(("0", "1"))
    clock = FakeClock(T0)
    joiner = LabelJoiner(capacity=100, early_wait_s=600.0, clock=clock)
    joiner.join(T0 - 3600, ["a"], [1], classes, regression=False)
    clock.t += 500
    joiner.join(T0 - 3600, ["b"], [0], classes, regression=False)
    state = joiner.state_dict()
    clock.t += 200  # restarted 700 s after "a" came, 200 s after "b"
    restored = LabelJoiner(capacity=100, early_wait_s=600.0, clock=clock)
    restored.load_state_dict(state)
    assert restored.early_held == 1 and restored.unheld_at_restore == 1  # "a" waited its 10 minutes: counted by the caller
    restored.remember(_batch(["a", "b"], T0 - 3601))
    labeled, outcome = restored.join(T0, [], [], classes, regression=False)
    assert outcome["joined"] == 1 and labeled.label.tolist() == [0]
