"""Fixes from session 19's review of the delayed-label, segment and regression side."""

from __future__ import annotations

import prometheus_client

from monitor import Monitor


def _late_and_joined(config: dict) -> tuple[float | None, float | None]:
    """300 predictions, then 10 more two hours later, then labels for all 310: the late and
    joined label counts."""
    t = [1_700_000_000.0]
    mon = Monitor(model="late", config=config, registry=prometheus_client.CollectorRegistry(), start_worker=False,
                  clock=lambda: t[0])
    try:
        mon.observe([[1.0]] * 300, [[0.8, 0.2]] * 300, request_id=[f"r{i}" for i in range(300)])
        mon.flush()
        t[0] += 2 * 3600.0
        mon.observe([[1.0]] * 10, [[0.8, 0.2]] * 10, request_id=[f"s{i}" for i in range(10)])
        mon.flush()
        mon.feedback([f"r{i}" for i in range(300)] + [f"s{i}" for i in range(10)], [0] * 310)
        mon.flush()
        return mon.store.value("monitor_feedback_labels", ("late",)), mon.store.value("monitor_feedback_labels", ("joined",))
    finally:
        mon.close()


def test_a_detector_that_reads_no_labels_does_not_set_how_late_a_label_may_come():
    """output_repeats declared an update_labels that does nothing, and the joiner took its window as
    one of the label readers': with its window at 3 h under a 1-hour model window, labels 2 h late
    were counted joined, though no figure could count them."""
    config = {"output": {"kind": "probabilities"}, "window": "1h",
              "detectors": [{"kind": "calibration"}, {"kind": "output_repeats", "window_s": 3 * 3600.0}]}
    assert _late_and_joined(config) == (300.0, 10.0)
