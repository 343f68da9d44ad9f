"""Delayed labels as callers really send them (an independent review of the label path).

Each test is a bug the review reproduced: a label that made the worker's whole drain fail, a
restart that forgot every waiting prediction, missing labels read as a class, free-text labels
filling a labels-only model's classes, ids read differently on the two sides of the join, a
datetime refused by the forwarding monitor, and a null in a JSON feedback event named as a
missing key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.events import EventFormatError, parse_event
from monitor.forwarding import ForwardingMonitor
from monitor.outputs import LABEL_CLASSES_MAX, MAX_CLASS_CHARS

T0 = 1_700_000_000.0


def _monitor(config: dict | None = None) -> Monitor:
    return Monitor("m", config=config, registry=CollectorRegistry(), live=False, start_worker=False)


def _outcomes(mon: Monitor) -> dict[str, float]:
    return {labels["outcome"]: v for name, labels, v in mon.store.samples()
            if name == "monitor_feedback_labels_total" and v}


@pytest.mark.parametrize("kind, poison", [("classifier", 10**5000), ("regression", 10**400)], ids=["classifier", "regression"])
def test_one_unreadable_label_is_invalid_and_the_rest_of_the_drain_joins(kind: str, poison: int) -> None:
    """An integer of 5,000 digits (``str()`` refuses it) as a class, one beyond float range as a
    regression target: the join raised, the worker's drain was lost with 500 good labels of
    another caller (their predictions already taken from the table, so a resend found nothing)."""
    regression = kind == "regression"
    mon = _monitor({"output": {"kind": "regression"}} if regression else None)
    n = 500
    out = np.linspace(0.0, 1.0, n) if regression else np.tile([[0.2, 0.8]], (n, 1))
    ids = [f"r{i}" for i in range(n)]
    try:
        mon.observe(np.zeros((n, 3)), out, request_id=ids, timestamp=T0)
        mon.observe(np.zeros((1, 3)), out[:1], request_id="x", timestamp=T0)
        mon.flush()
        mon.feedback(ids, list(out) if regression else [1] * n, timestamp=T0 + 5)
        mon.feedback(["x"], [poison], timestamp=T0 + 6)
        mon.flush()
        assert _outcomes(mon) == {"joined": 500, "invalid": 1}
        assert mon.store.value("monitor_internal_errors", ("pipeline",)) == 0
        assert mon.store.value("monitor_labels_pending") == 1  # "x" still waits for a readable label
    finally:
        mon.close()


def test_missing_labels_given_as_pandas_na_or_numpy_nan_are_invalid_not_a_class() -> None:
    """pandas' NA (a nullable Int64 column's gap) and a float32 NaN were joined and taken as a
    class: the prediction was used up, and the real label that came later found no prediction."""
    mon = _monitor()
    try:
        mon.observe(np.zeros((3, 3)), np.tile([[0.2, 0.8]], (3, 1)), request_id=["a", "b", "c"], timestamp=T0)
        mon.flush()
        mon.feedback(["a", "b"], pd.Series([1, pd.NA], dtype="Int64"), timestamp=T0 + 1)
        mon.feedback(["c"], [np.float32("nan")], timestamp=T0 + 1)
        mon.flush()
        assert _outcomes(mon) == {"joined": 1, "invalid": 2}
        mon.feedback(["b", "c"], [0, 1], timestamp=T0 + 2)  # the real labels still find their predictions
        mon.flush()
        assert _outcomes(mon) == {"joined": 3, "invalid": 2}
        assert mon.store.value("monitor_calibration_labels_skipped", ("unknown_class",)) in (None, 0.0)
    finally:
        mon.close()


def test_labels_only_models_learn_few_classes_from_labels_and_cut_long_names() -> None:
    """A labels-only model learns a label it never answered as a class (a model collapsed onto
    one answer), but free text in a label column took every place of the class cap, after
    which the model's own new answer was refused as too_many_classes; megabyte labels were kept
    whole as class names."""
    mon = _monitor({"output": {"kind": "labels"}})
    n = 1_000
    ids = [f"r{i}" for i in range(n)]
    try:
        mon.observe(np.zeros((n, 3)), np.array(["cat"] * n, dtype=object), request_id=ids, timestamp=T0)
        mon.flush()
        mon.feedback(ids, [f"free text {i}" for i in range(n)], timestamp=T0 + 1)
        mon.flush()
        classes = mon.pipeline.builder.classes
        assert len(classes.names) == 1 + LABEL_CLASSES_MAX
        assert mon.store.value("monitor_calibration_labels_skipped", ("unknown_class",)) == n - LABEL_CLASSES_MAX
        mon.observe(np.zeros((5, 3)), np.array(["dog"] * 5, dtype=object), timestamp=T0 + 2)
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", ("too_many_classes",)) in (None, 0.0)
        assert "dog" in classes.names
        mon.observe(np.zeros((1, 3)), np.array(["x" * 1_000_000], dtype=object), timestamp=T0 + 3)
        mon.flush()
        assert max(map(len, classes.names)) == MAX_CLASS_CHARS
    finally:
        mon.close()


def test_request_ids_as_bytes_join_as_the_predictions_held_them() -> None:
    """Ids given as bytes were decoded for the prediction (``req-1``) but looked up as
    ``b'req-1'`` for its label: never joined."""
    mon = _monitor()
    ids = np.array([b"req-1", b"req-2"])
    try:
        mon.observe(np.zeros((2, 3)), np.tile([[0.2, 0.8]], (2, 1)), request_id=ids, timestamp=T0)
        mon.flush()
        mon.feedback(ids, [1, 0], timestamp=T0 + 1)
        mon.feedback([float("nan")], [1], timestamp=T0 + 1)  # a missing id: unknown, as a prediction's is unset
        mon.flush()
        assert _outcomes(mon) == {"joined": 2, "unknown_id": 1}
    finally:
        mon.close()


@pytest.mark.parametrize("before, after", [(1_000, 5_000), (1_000, 120)])
def test_predictions_waiting_survive_a_restart_that_changes_labels_pending(tmp_path: Path, before: int,
                                                                           after: int) -> None:
    """``labels.pending`` raised across a restart (what monitor_labels_evicted_total's help
    advises) restored no waiting prediction at all: every label came back unknown_id. The
    waiting rows are laid into the new ring; a smaller one keeps the newest and counts the
    others as evicted."""
    n = 200
    ids = [f"r{i}" for i in range(n)]
    mon = _monitor({"labels": {"pending": before}})
    try:
        for i in range(0, n, 50):  # four calls: the ring's order is the calls' order
            mon.observe(np.zeros((50, 3)), np.tile([[0.2, 0.8]], (50, 1)), request_id=ids[i:i + 50], timestamp=T0 + i)
        mon.flush()
        path = tmp_path / "m.ckpt"
        mon.save_checkpoint(path)
    finally:
        mon.close()
    restored = _monitor({"labels": {"pending": after}})
    try:
        assert restored.restore_checkpoint(path)
        kept = min(n, after)
        assert restored.store.value("monitor_labels_pending") == kept
        assert (restored.store.value("monitor_labels_evicted") or 0.0) == n - kept
        restored.feedback(ids, [1] * n, timestamp=T0 + 300)
        restored.flush()
        assert _outcomes(restored) == {"joined": kept, **({"unknown_id": n - kept} if kept < n else {})}
        restored.observe(np.zeros((1, 3)), np.array([[0.2, 0.8]]), request_id="new", timestamp=T0 + 301)
        restored.flush()
        restored.feedback(["new"], [1], timestamp=T0 + 302)  # the ring goes on after the restored rows
        restored.flush()
        assert _outcomes(restored)["joined"] == kept + 1
    finally:
        restored.close()


def test_the_newest_waiting_predictions_are_kept_when_the_ring_shrinks(tmp_path: Path) -> None:
    mon = _monitor({"labels": {"pending": 100}})
    try:
        for i in range(130):  # the ring wrapped: slot order is not age order
            mon.observe(np.zeros((1, 3)), np.array([[0.2, 0.8]]), request_id=f"r{i}", timestamp=T0 + i)
        mon.flush()
        mon.save_checkpoint(tmp_path / "m.ckpt")
    finally:
        mon.close()
    restored = _monitor({"labels": {"pending": 40}})
    try:
        assert restored.restore_checkpoint(tmp_path / "m.ckpt")
        restored.feedback([f"r{i}" for i in range(130)], [1] * 130, timestamp=T0 + 200)
        restored.flush()
        assert _outcomes(restored) == {"joined": 40, "unknown_id": 90}
        assert len(restored.pipeline.joiner) == 0  # every kept id was joined
    finally:
        restored.close()


def test_the_forwarding_monitor_takes_a_datetime_as_the_monitor_does() -> None:
    fm = ForwardingMonitor("m", start=False)
    when = dt.datetime.fromtimestamp(T0, tz=dt.timezone.utc)
    try:
        assert fm.feedback(["a"], [1], timestamp=when)
        assert fm.observe(np.zeros((1, 3)), np.array([[0.2, 0.8]]), timestamp=when)
        assert fm.observe_error(RuntimeError("x"), timestamp=when)
        assert [e[1] for e in fm.queue.drain(10)] == [T0, T0, T0]
        assert fm.observe(np.zeros((1, 3)), np.array([[0.2, 0.8]]), timestamp="yesterday") is False
        assert fm.queue.counters()[0].get("invalid_timestamp") == 1
        with pytest.raises(ValueError, match="feedback"):
            fm.feedback(["a"], [1], timestamp="yesterday")
    finally:
        fm.close(timeout=0.1)


@pytest.mark.parametrize("event, field, reason", [
    ({"type": "feedback", "request_id": "r1", "label": None}, "label", "bad_label"),
    ({"type": "feedback", "request_id": None, "label": 1}, "request_id", "bad_request_id"),
    ({"type": "feedback", "request_ids": None, "labels": [1]}, "request_ids", "bad_request_id"),
    ({"type": "feedback", "request_ids": ["a"], "labels": None}, "labels", "bad_label"),
    ({"type": "feedback", "label": 1}, "request_id", "missing_feedback"),
    ({"type": "feedback", "request_id": "r1"}, "label", "missing_feedback"),
])
def test_a_null_in_a_json_feedback_event_is_named_as_sent(event: dict, field: str, reason: str) -> None:
    """A null label was answered "labels: feedback needs request_ids and labels", naming a key
    the client never sent, with the reason of a missing key."""
    with pytest.raises(EventFormatError) as err:
        parse_event(event, T0)
    assert (err.value.field, err.value.reason) == (field, reason)
