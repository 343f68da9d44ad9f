"""A prediction under a request id still waiting for its label, replaced by a later one.

A retry sends the same id again: the label then joins the newest prediction, the one the caller
got. Ids that are not unique (a constant, a session id) look the same from here, and each label
then joins whichever prediction came last under its id; before, nothing counted the predictions
so replaced, and such a misconfiguration was invisible.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex


def _monitor() -> Monitor:
    return Monitor("m", config={"detectors": [{"kind": "calibration", "min_labels": 5}]}, registry=CollectorRegistry(),
                   live=False, start_worker=False)


def test_a_retry_replaces_the_waiting_prediction_and_is_counted() -> None:
    mon = _monitor()
    ids = [f"r{i}" for i in range(10)]
    mon.observe(np.zeros((10, 2)), np.tile([[0.9, 0.1]], (10, 1)), request_id=ids, timestamp=1000.0)
    # r3 and r4 retried: the model now answers class 1; "dup" comes twice within one call
    mon.observe(np.zeros((2, 2)), np.tile([[0.2, 0.8]], (2, 1)), request_id=["r3", "r4"], timestamp=1001.0)
    mon.observe(np.zeros((2, 2)), np.array([[0.9, 0.1], [0.3, 0.7]]), request_id=["dup", "dup"], timestamp=1002.0)
    mon.flush()
    assert mon.store.value("monitor_labels_replaced") == 3
    assert mon.store.value("monitor_labels_pending") == 11
    mon.feedback(ids + ["dup"], [1] * 11, timestamp=1010.0)
    mon.flush()
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 11
    # r3, r4 and dup joined their newest predictions (class 1, right); the 8 others said class 0
    assert mon.store.value("monitor_accuracy_ratio") == pytest.approx(3 / 11)
    mon.close()


def test_the_joiner_counts_replacements_across_a_checkpoint() -> None:
    joiner = LabelJoiner(capacity=8)
    scores = np.tile([[0.6, 0.4]], (3, 1))
    joiner.remember(Batch.from_arrays(np.zeros((3, 1)), scores, ts=np.array([1.0, 2.0, 3.0]), request_id=["a", "b", "c"]))
    assert joiner.replaced == 0
    joiner.remember(Batch.from_arrays(np.zeros((1, 1)), np.array([[0.1, 0.9]]), ts=np.array([4.0]), request_id=["b"]))
    assert joiner.replaced == 1 and len(joiner) == 3
    restored = LabelJoiner(capacity=8)
    restored.load_state_dict(joiner.state_dict())
    assert restored.replaced == 1
    labeled, counts = restored.join(5.0, ["b"], [1], ClassIndex(("x", "y")), regression=False)
    assert labeled is not None and counts["joined"] == 1
    assert labeled.predicted.tolist() == [1]  # the retry's answer, not the first one
    # a label already given for "b" consumed it: a new prediction under "b" is not a replacement
    restored.remember(Batch.from_arrays(np.zeros((1, 1)), np.array([[0.5, 0.5]]), ts=np.array([6.0]), request_id=["b"]))
    assert restored.replaced == 1


def test_a_ring_that_wraps_counts_evictions_not_replacements() -> None:
    joiner = LabelJoiner(capacity=4)
    for i in range(3):
        ids = [f"{i}-{j}" for j in range(4)]
        joiner.remember(Batch.from_arrays(np.zeros((4, 1)), np.tile([[0.5, 0.5]], (4, 1)), ts=np.full(4, float(i)), request_id=ids))
    assert joiner.evicted == 8
    assert joiner.replaced == 0
