"""A forwarded ``feedback()`` call with a label its model cannot take keeps its other labels, as
an in-process Monitor does: the sidecar refused such a call's feedback event whole (one NaN label
lost every other label of the call, counted as one refused event, ``bad_label``), and a pandas NA
label made the worker drop the call as unserializable. Each test failed before (session 38).
Since session 39 the sidecar parses a worker's event as such (``parse_event(forwarded=True)``):
its labels go to the model's join, which counts and says the ones it cannot take as in process."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.forwarding import ForwardingMonitor
from tests.sidecar_support import sample, start_sidecar, total, wait_until

__all__: list[str] = []

CLASSIFIER = {"features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["n", "y"]}}
REGRESSOR = {"features": ["a", "b"], "output": {"kind": "regression"}}
OUTCOMES = ("joined", "invalid", "unknown_id")


def _calls(kind: str) -> tuple[list, list[tuple[object, object]]]:
    """Predictions for ids r0-r4 and the feedback calls for them: good labels beside bad ones."""
    if kind == "regression":
        outputs = [1.0, 2.0, 3.0, 4.0, 5.0]
        feedback = [(["r0", "r1", "r2", "r3"], [1.5, "soon", float("nan"), 1e300]),
                    (["r4"], [pd.NA]), ("r4", 2.5)]
    else:
        outputs = [[0.9, 0.1]] * 5
        feedback = [(["r0", "r1", "r2", "r3"], ["y", float("nan"), [0, 1], 2**300]),
                    (["r4", "zz"], [None, pd.NA]), ("r4", "n")]
    return outputs, feedback


def _in_process(config: dict, outputs: list, feedback: list) -> dict[str, float | None]:
    mon = Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(np.zeros((len(outputs), 2)), outputs, request_id=[f"r{i}" for i in range(len(outputs))])
        for ids, labels in feedback:
            mon.feedback(ids, labels)
        mon.flush()
        return {o: mon.store.value("monitor_feedback_labels", {"outcome": o}) for o in OUTCOMES}
    finally:
        mon.close()


@pytest.mark.parametrize("kind", ["probabilities", "regression"])
def test_forwarded_labels_are_counted_as_in_process(tmp_path, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    config = REGRESSOR if kind == "regression" else CLASSIFIER
    outputs, feedback = _calls(kind)
    expected = _in_process(config, outputs, feedback)
    assert expected["joined"] == 2 and expected["invalid"] == (4 if kind == "regression" else 5), expected

    sock = str(tmp_path / "fb.sock")
    s = start_sidecar({**config, "model": "m", "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        fm.observe(np.zeros((5, 2)), outputs, request_id=[f"r{i}" for i in range(5)])
        with caplog.at_level(logging.WARNING, logger="monitor"):
            caplog.clear()  # the in-process Monitor's own lines
            for ids, labels in feedback:
                assert fm.feedback(ids, labels) is True
            fm.flush()
            assert fm.counters().dropped == {}  # pandas' NA was an unserializable call
            assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") >= 2)
            s.flush()
            text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total") == 0, text
        got = {o: sample(text, "monitor_feedback_labels_total", model="m", outcome=o) for o in OUTCOMES}
        assert got == expected
        # said once, by the sidecar's join in the words an in-process Monitor's uses (what was wrong, what a label must be)
        said = [r.getMessage() for r in caplog.records if "label" in r.getMessage()]
        assert len(said) == 1 and "refused as invalid (e.g." in said[0] and "a label must be" in said[0], said
    finally:
        fm.close()
        s.close()


def test_a_forwarded_feedback_event_refused_for_another_reason_is_counted_once(tmp_path) -> None:
    """A feedback event for a model the sidecar does not serve stays one refused event
    (``unknown_model``), not one per label, whatever its labels."""
    sock = str(tmp_path / "fb.sock")
    s = start_sidecar({**CLASSIFIER, "model": "m", "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("elsewhere", f"unix://{sock}", start=False)
    try:
        fm.feedback(["r0", "r1", "r2"], ["y", float("nan"), "n"])
        fm.flush()
        assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total") >= 1)
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total") == 1, text
        assert total(text, "monitor_feedback_labels_total") == 0
    finally:
        fm.close()
        s.close()


def test_the_ids_a_worker_left_out_are_counted_when_every_forwarded_label_is_invalid(tmp_path) -> None:
    """The worker left out the label of an id that is no id (``unknown_ids``, counted unknown_id
    under the datagram's taken feedback event): when every label left in the event was invalid, the
    event taken apart gave no feedback event to count them under, and they were counted nowhere.
    (Workers now send such ids as null, their labels counted by the sidecar's join, s38g; the
    sidecar still counts an earlier worker's ``unknown_ids``: tests/test_forward_fragments.py.)"""
    outputs = [[0.9, 0.1]] * 5
    feedback = [(["r0", None], [float("nan"), "y"])]
    expected = _in_process(CLASSIFIER, outputs, feedback)
    assert expected == {"joined": None, "invalid": 1.0, "unknown_id": 1.0}, expected
    sock = str(tmp_path / "fb.sock")
    s = start_sidecar({**CLASSIFIER, "model": "m", "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        fm.observe(np.zeros((5, 2)), outputs, request_id=[f"r{i}" for i in range(5)])
        for ids, labels in feedback:
            assert fm.feedback(ids, labels) is True
        fm.flush()
        wait_until(lambda: total(s.metrics(), "monitor_feedback_labels_total") >= 2)  # both counted, or the time out
        s.flush()
        text = s.metrics()
        got = {o: sample(text, "monitor_feedback_labels_total", model="m", outcome=o) for o in OUTCOMES}
        assert got == expected
    finally:
        fm.close()
        s.close()
