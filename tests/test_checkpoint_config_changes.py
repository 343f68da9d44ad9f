"""Checkpoints across what operators change between a save and a restore (an independent review).

Each test is a bug the review reproduced: a longer ``window`` froze every windowed figure for
good (slots numbered in the old length lay hours ahead), detector states matched by position
emptied the others when one was added or removed, predictions waiting for their label kept the
old class order and scored a model with reordered classes as wrong on every row, and a state
that did not fit one detector refused the whole checkpoint (or left ``restore_checkpoint`` half
loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor

T0 = 1_700_000_000.0
CLASSES = ["a", "b", "c"]


def _monitor(**config: Any) -> Monitor:
    cfg = {"output": {"kind": "probabilities", "classes": CLASSES}, **config}
    return Monitor("m", config=cfg, registry=CollectorRegistry(), live=False, start_worker=False)


def _feed(mon: Monitor, n: int, start: float, seed: int) -> None:
    """``n`` rows at one a second (a call of 60 a minute), each labelled with the class it
    predicted (accuracy 1)."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(3), n)
    ids = [f"{seed}-{i}" for i in range(n)]
    for i in range(0, n, 60):
        mon.observe(np.zeros((len(probs[i:i + 60]), 2)), probs[i:i + 60], request_id=ids[i:i + 60], timestamp=start + i)
    mon.flush()
    mon.feedback(ids, [CLASSES[k] for k in probs.argmax(axis=1)], timestamp=start + n)
    mon.flush()


def _value(mon: Monitor, name: str) -> float | None:
    return mon.store.value(name)


def _failures(mon: Monitor) -> dict[str, float]:
    return {labels["reason"]: v for name, labels, v in mon.store.samples()
            if name == "monitor_checkpoint_failures_total" and labels.get("operation") == "restore" and v}


@pytest.mark.parametrize("window", ["2h", "30m"])
def test_a_changed_window_length_refills_instead_of_freezing(tmp_path: Path, window: str) -> None:
    before = _monitor(window="1h")
    _feed(before, 3000, T0, 1)
    before.save_checkpoint(tmp_path / "m.ckpt", final=True)
    before.close()
    after = _monitor(window=window)
    try:
        assert after.restore_checkpoint(tmp_path / "m.ckpt")
        assert after.restore_report.detectors_set_aside  # said, with why
        assert _failures(after) == {"detector_changed": 1.0}
        _feed(after, 1200, T0 + 3010, 2)
        assert _value(after, "monitor_confidence_rows_in_window") == 1200  # was frozen at 3000 for good
        assert _value(after, "monitor_labels_in_window") == 1200
        assert _value(after, "monitor_accuracy_ratio") == 1.0
    finally:
        after.close()


def test_detector_states_follow_their_kind_not_their_position(tmp_path: Path) -> None:
    """Removing the first detector of ``detectors:`` emptied every later one (each looked for its
    state under its new position) while the restore said everything was restored."""
    before = _monitor(detectors=["confidence", "calibration", "segments"])
    _feed(before, 500, T0, 1)
    before.save_checkpoint(tmp_path / "m.ckpt", final=True)
    labels = _value(before, "monitor_labels_in_window")
    before.close()
    after = _monitor(detectors=["data_quality", "calibration", "segments"])
    try:
        assert after.restore_checkpoint(tmp_path / "m.ckpt")
        assert after.restore_report.detectors_restored and not after.restore_report.detectors_set_aside
        after.flush()
        assert labels == 500 and _value(after, "monitor_labels_in_window") == labels
    finally:
        after.close()


def test_waiting_predictions_are_dropped_and_counted_when_the_classes_were_reordered(tmp_path: Path) -> None:
    """Labels that name the predicted class: accuracy 1. Restored into a monitor whose
    output.classes were reordered, the waiting predictions kept the old columns and the labels
    scored them 0.31 accurate (a false ModelAccuracyDrop)."""
    before = _monitor()
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), 400)
    ids = [f"r{i}" for i in range(400)]
    before.observe(np.zeros((400, 2)), probs, request_id=ids, timestamp=T0)
    before.flush()
    before.save_checkpoint(tmp_path / "m.ckpt", final=True)
    before.close()
    after = Monitor("m", config={"output": {"kind": "probabilities", "classes": ["c", "a", "b"]}},
                    registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        assert after.restore_checkpoint(tmp_path / "m.ckpt")
        assert after.restore_report.set_aside_reason == "config_changed"
        assert _value(after, "monitor_labels_evicted") == 400
        after.feedback(ids, [CLASSES[k] for k in probs.argmax(axis=1)], timestamp=T0 + 60)
        after.flush()
        assert _value(after, "monitor_accuracy_ratio") is None  # no label joined an old-layout prediction
    finally:
        after.close()


def test_old_positional_checkpoints_still_restore(tmp_path: Path) -> None:
    """States written before they were keyed by kind (``0:ConfidenceDetector``) load as before."""
    before = _monitor(detectors=["confidence", "calibration"])
    _feed(before, 300, T0, 1)
    state = before.state_dict(final=True)
    before.close()
    state["detectors"] = {f"{i}:{key.split('#')[0]}": v for i, (key, v) in enumerate(state["detectors"].items())}
    after = _monitor(detectors=["confidence", "calibration"])
    try:
        report = after.load_state_dict(state)
        assert report.detectors_restored and not report.detectors_set_aside
        after.flush()
        assert _value(after, "monitor_labels_in_window") == 300
    finally:
        after.close()


def test_the_last_event_time_is_restored_not_the_idle_clock(tmp_path: Path) -> None:
    """``monitor_last_event_timestamp_seconds`` was absent after a restore until the next event:
    "time since the last event" (the agent dashboard, a quiet-model alert) had no value right when
    a restarted model stayed quiet. It is the newest event's time, not the event clock, which an
    idle live agent moves on with the wall clock."""
    before = _monitor()
    _feed(before, 120, T0, 3)
    newest = T0 + 120  # the feedback, the last event fed
    assert _value(before, "monitor_last_event_timestamp_seconds") == newest
    before.pipeline.advance(T0 + 5000)  # idle: the clock moves on, the last event does not
    before.save_checkpoint(tmp_path / "m.ckpt", final=True)
    before.close()
    after = _monitor()
    try:
        assert _value(after, "monitor_last_event_timestamp_seconds") is None
        assert after.restore_checkpoint(tmp_path / "m.ckpt")
        assert _value(after, "monitor_last_event_timestamp_seconds") == newest
        assert after.pipeline.clock == T0 + 5000
        # an event older than the clock but newer than the last one still moves the gauge
        after.observe(np.zeros((1, 2)), np.array([[0.2, 0.3, 0.5]]), timestamp=T0 + 4000)
        after.flush()
        assert _value(after, "monitor_last_event_timestamp_seconds") == T0 + 4000
    finally:
        after.close()
