"""Class names learned as ``b'cat'`` before bytes were decoded are restored as ``cat`` (s32d).

A labels-only model answering bytes (TensorFlow string outputs) learned classes named ``b'cat'``
and ``b'dog'`` before 7dc7f5e, and its checkpoint kept them. Restored as they were, the model's
answers (now read as ``cat``) learned a second column for each class, the predictions waiting
for their labels kept the old column, and a label ``cat`` joined to one counted as wrong.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.outputs import ClassIndex
from tests.sidecar_support import sample

T0 = 1_700_000_000.0


def _monitor() -> Monitor:
    return Monitor("tf-labels", config={"output": {"kind": "labels"}, "detectors": [{"kind": "calibration", "min_labels": 2}]},
                   registry=CollectorRegistry(), live=False, start_worker=False)


def _old_checkpoint() -> dict:
    """A checkpoint as the release before 7dc7f5e wrote it: the answers' classes named by repr."""
    mon = _monitor()
    mon.observe(np.zeros((2, 1)), np.array(["cat", "dog"], dtype=object), request_id=["w1", "w2"], timestamp=T0)
    mon.flush()
    state = mon.state_dict()
    assert state["classes"] == ["cat", "dog"]
    state["classes"] = ["b'cat'", "b'dog'"]
    mon.close()
    return state


def test_old_bytes_class_names_are_restored_decoded_in_their_columns(caplog: pytest.LogCaptureFixture) -> None:
    state = _old_checkpoint()
    mon = _monitor()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.load_state_dict(state)
    classes = mon.pipeline.builder.classes
    assert classes.names == ["cat", "dog"]
    said = [r.getMessage() for r in caplog.records if "b'cat'" in r.getMessage()]
    assert len(said) == 1 and "cat" in said[0]
    mon.observe(np.zeros((1, 1)), np.array([b"dog"], dtype=object), request_id=["n1"], timestamp=T0 + 1)
    mon.feedback(["w1", "n1"], ["cat", "dog"], timestamp=T0 + 2)
    mon.flush()
    assert classes.names == ["cat", "dog"]  # no second column for an answer read as text
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 2
    assert sample(mon.metrics_text(), "monitor_accuracy_ratio") == 1.0  # each label names its prediction's class
    mon.close()


def test_a_bytes_name_whose_text_is_a_class_already_keeps_its_own_column() -> None:
    classes = ClassIndex()
    renamed = classes.restore(["cat", "b'cat'", "b'\\xc3\\xa9t\\xc3\\xa9'", "b'"])
    assert classes.names == ["cat", "b'cat'", "été", "b'"]
    assert renamed == [("b'\\xc3\\xa9t\\xc3\\xa9'", "été")]
    assert classes.lookup(np.array([b"cat", "été"], dtype=object), learn=False).tolist() == [0, 2]
