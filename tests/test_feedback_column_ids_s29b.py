"""Feedback request ids given as a column vector (session 29 review): ``feedback(ids.reshape(-1, 1),
labels)`` or ``df[["request_id"]].values`` iterated the ``(n, 1)`` array as one-element arrays,
whose text ``"[17]"`` is no prediction's id, so every label counted as ``unknown_id`` and the
labelled figures stayed empty, while the same column of labels was read as its values. Ids and
labels are now read alike: a column vector is its ``n`` values."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.events import feedback_lists, request_id_text


def test_a_column_of_integer_ids_joins_its_predictions() -> None:
    mon = Monitor(model="m", registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        ids = np.arange(10)
        p = np.linspace(0.1, 0.9, 10)
        mon.observe(np.zeros((10, 3)), np.c_[1 - p, p], request_id=ids)
        mon.flush()
        mon.feedback(ids.reshape(-1, 1), np.array([0, 1] * 5))
        mon.flush()
        assert mon.store.value("monitor_feedback_labels", {"outcome": "joined"}) == 10
        assert not mon.store.value("monitor_feedback_labels", {"outcome": "unknown_id"})
    finally:
        mon.close()


def test_a_column_of_text_ids_and_a_column_of_labels_read_as_values() -> None:
    ids, labels = feedback_lists(np.array([["a"], ["b"]], dtype=object), np.array([[1], [0]]))
    assert [request_id_text(i) for i in ids] == ["a", "b"]
    assert labels == [1, 0]
