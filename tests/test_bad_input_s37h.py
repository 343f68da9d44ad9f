"""Bad input, follow-ups of session 37's reviews (helper s37h): each test failed before its fix.
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
P = [0.2, 0.5, 0.3]


def test_a_forwarded_prediction_whose_request_id_the_sidecar_refuses_keeps_its_rows(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """A prediction forwarded with a request id the sidecar refuses (over 1,024 characters, a
    non-integral float, True, a per-row list with one such entry) was refused whole at the sidecar
    (``bad_request_id``), and one with a bytes id dropped whole by the worker (``unserializable``):
    its rows were lost from every figure. In process such an id is only left out of its rows,
    counted in ``monitor_row_arguments_dropped_total{argument="request_id"}`` (a scalar id too long
    for a call of n rows: n), or read as text (1.5 is "1.5", True "True", bytes decoded). The
    worker now sends each id as the in-process join reads it, leaves out those that are no usable
    id (keeping the rows), says it once in its log and carries the count to the sidecar."""
    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("iris", f"unix://{sock}", start=False)

    def predict(x, rid):
        return np.tile(P, (len(x), 1))

    watched = fm.watch(predict, request_id="rid")
    long_id = "x" * 1025
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            fm.observe(np.zeros((3, 4)), np.tile(P, (3, 1)), request_id=long_id)  # 3 rows, no id: 3 counted
            fm.observe(np.zeros((1, 4)), [P], request_id=1.5)  # "1.5", as in process
            fm.observe(np.zeros((1, 4)), [P], request_id=True)  # "True"
            fm.observe(np.zeros((3, 4)), np.tile(P, (3, 1)), request_id=["a", "y" * 2000, "c"])  # 1 counted
            fm.observe(np.zeros((1, 4)), [P], request_id=b"bytes-id")  # decoded
            fm.observe(np.zeros((2, 4)), np.tile(P, (2, 1)), request_id=np.array([b"n0", "n1"], dtype=object))
            fm.observe(np.zeros((2, 4)), np.tile(P, (2, 1)), request_id=[None, float("nan")])  # no id: not counted
            watched(np.zeros((2, 4)), ["d0", 2.5])  # the decorator's path: "d0", "2.5"
            watched(np.zeros((1, 4)), [long_id])  # a one-row call's list: 1 counted
            fm.feedback(["1.5", "True", "a", "c", "bytes-id", "n0", "n1", "d0", "2.5"], ["setosa"] * 9)
            fm.flush()
        assert fm.counters().dropped == {}
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 10)
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total") == 0
        assert sample(text, "monitor_predictions_total", model="iris") == 16  # every row kept
        assert sample(text, "monitor_row_arguments_dropped_total", model="iris", argument="request_id") == 5
        assert sample(text, "monitor_feedback_labels_total", model="iris", outcome="joined") == 9
        said = [r.getMessage() for r in caplog.records
                if r.name == "monitor.forwarding" and "monitor_row_arguments_dropped_total" in r.getMessage()]
        assert len(said) == 1 and "1,025 characters" in said[0] and "Fix:" in said[0], said
    finally:
        fm.close()
        s.close()
