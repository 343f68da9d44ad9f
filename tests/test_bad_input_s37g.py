"""Bad input, follow-ups of session 37's reviews (helper s37g): each test failed before its fix.
The standard: a clear error naming the field and the fix, counted when refused, never a crash of
the agent, a figure poisoned, a warning on the user's stderr or a value silently read as another."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from monitor.forwarding import ForwardingMonitor
from tests.sidecar_support import sample, start_sidecar, total, wait_until

__all__: list[str] = []

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def test_a_forwarded_feedback_call_with_ids_that_are_no_id_keeps_its_good_labels(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """One id that is no id (None, "", NaN, np.ma.masked) or over 1,024 characters in a
    ``ForwardingMonitor.feedback`` call made the sidecar refuse the whole forwarded feedback event
    (``bad_request_id``): the call's good labels were lost with it, where an in-process
    ``Monitor.feedback`` counts only the bad id's label ``unknown_id``. The worker now leaves
    those labels out, counted in the sidecar's ``monitor_feedback_labels_total{outcome="unknown_id"}``
    (as in process) and said once in its own log, which alone knows the id; the good labels
    join. A call of bad ids only is counted as well; the other ids are sent as the in-process join
    reads them (a non-integral float id, which the sidecar refused with the whole event, is held
    for its prediction as any id)."""
    sock = str(tmp_path / "fb.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("iris", f"unix://{sock}", start=False)
    try:
        fm.observe(np.zeros((3, 4)), np.tile([0.2, 0.5, 0.3], (3, 1)), request_id=["r0", "r1", "r2"])
        with caplog.at_level(logging.WARNING, logger="monitor"):
            assert fm.feedback(["r0", None, "r1", "", float("nan"), np.ma.masked, "x" * 1025, "r2", 1.5],
                               ["setosa"] * 9) is True
            assert fm.feedback([None, ""], ["setosa", "virginica"]) is True  # bad ids only: counted all the same
            fm.flush()
        assert fm.counters().dropped == {}
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 3)
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total") == 0
        assert sample(text, "monitor_feedback_labels_total", model="iris", outcome="joined") == 3  # r0, r1, r2
        assert sample(text, "monitor_feedback_labels_total", model="iris", outcome="unknown_id") == 7
        assert sample(text, "monitor_labels_early", model="iris") == 1  # 1.5 waits for its prediction
        said = [r.getMessage() for r in caplog.records if r.name == "monitor.forwarding" and "no id" in r.getMessage()]
        assert len(said) == 1 and "unknown_id" in said[0] and "Fix:" in said[0], said
    finally:
        fm.close()
        s.close()
