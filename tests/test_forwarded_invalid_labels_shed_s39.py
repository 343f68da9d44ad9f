"""A forwarded feedback call taken label by label, then shed by a full queue: each label counted
once, by its final fate (session 39).

The sidecar counted the labels its model cannot take ``invalid`` as it took the call apart, before
the call's event went to the queue; a full queue then shed that event, counted in
``monitor_events_dropped_total{reason="queue_full"}``, and its invalid labels stayed counted too:
the one call counted under two fates. An in-process Monitor sheds the call whole before its label
join, and counts none of its labels. The invalid labels now travel in the call's event (the
sidecar parses a worker's event as such, ``parse_event(forwarded=True)``), and the model's join
counts them invalid as in process, if and when the call is processed. (Helper s39b's test, kept
beside the lead's refactor that fixed the same double count: tests/test_forwarded_parse_s39.py.)"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.forwarding import ForwardingMonitor
from tests.sidecar_support import quiet_factory, sample, start_sidecar, total, wait_until
from tests.test_forwarded_labels_s38 import CLASSIFIER, OUTCOMES

FULL = {**CLASSIFIER, "queue": {"capacity": 1}}
IDS = ["r0", "r1", "r2", "r3"]
LABELS = ["y", float("nan"), [0, 1], "n"]  # two the model takes, two it cannot


def _figures(store) -> dict[str, float | None]:
    return {**{o: store.value("monitor_feedback_labels", {"outcome": o}) for o in OUTCOMES},
            "queue_full": store.value("monitor_events_dropped", {"reason": "queue_full"})}


def test_a_forwarded_call_shed_by_a_full_queue_counts_no_label_invalid_as_in_process(tmp_path) -> None:
    mon = Monitor(model="m", config=FULL, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(np.zeros((4, 2)), [[0.9, 0.1]] * 4, request_id=IDS)  # the queue's one place taken
        assert mon.feedback(IDS, LABELS) is False  # shed whole
        mon.flush()
        expected = _figures(mon.store)
    finally:
        mon.close()
    assert expected == {"joined": None, "invalid": None, "unknown_id": None, "queue_full": 1.0}, expected

    sock = str(tmp_path / "fb.sock")
    s = start_sidecar({**FULL, "model": "m", "server": {"forward": {"unix": sock}}}, tmp_path,
                      factory=quiet_factory(start_worker=False))  # nothing drains the queue
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        fm.observe(np.zeros((4, 2)), [[0.9, 0.1]] * 4, request_id=IDS)
        fm.flush()
        assert wait_until(lambda: len(s.monitor("m").queue) == 1)
        assert fm.feedback(IDS, LABELS) is True
        fm.flush()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 2)
        s.flush()
        text = s.metrics()
        got = {**{o: sample(text, "monitor_feedback_labels_total", model="m", outcome=o) for o in OUTCOMES},
               "queue_full": sample(text, "monitor_events_dropped_total", model="m", reason="queue_full")}
        assert got == expected
    finally:
        fm.close()
        s.close()
