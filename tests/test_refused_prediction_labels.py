"""A label for a prediction the agent refused counts ``prediction_refused`` at once.

A prediction row refused by the agent (``monitor_rows_rejected_total``: NaN outputs, probabilities
out of range, a wrong shape, a timestamp far ahead) that carried a request id left no trace in the
label join: the label that came for that id later was held ``labels.early_wait`` (10 minutes) for a
prediction that had come already, then counted ``unknown_id`` with a log line saying that none came;
and a label held early whose prediction then came refused waited its whole wait all the same. The
join now remembers the ids of the last ``labels.early`` refused rows (across a restart too).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.checkpoint import decode_state, encode_state
from monitor.labels import LabelJoiner
from tests.sidecar_support import http, sample, start_sidecar, wait_until

T0 = 1_700_000_000.0
CONFIG = {"features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["n", "y"]},
          "labels": {"early_wait": "10m"}}
OUTCOMES = ("joined", "unknown_id", "prediction_refused")


def _monitor(**labels: object) -> Monitor:
    return Monitor("m", config={**CONFIG, "labels": {**CONFIG["labels"], **labels}}, registry=CollectorRegistry(),
                   live=False, start_worker=False)


def _outcomes(mon: Monitor) -> dict[str, float]:
    return {o: mon.store.value("monitor_feedback_labels", (o,)) or 0.0 for o in OUTCOMES}


def test_labels_for_refused_rows_count_prediction_refused_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """One accepted row, then refused ones of each kind: a row's NaN outputs and probabilities out
    of range (refused row by row), a call of the wrong shape (refused whole, one id for the call),
    a batch call refused whole whose rows are labelled ``<id>/<row>``, a timestamp far ahead."""
    mon = _monitor()
    try:
        mon.observe([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[0.2, 0.8], [np.nan, 0.5], [1.5, -0.5]],
                    request_id=["ok", "nan", "range"], timestamp=T0)
        mon.observe([[1.0, 2.0, 3.0]], [[0.2, 0.8]], request_id="shape", timestamp=T0)
        mon.observe([[1.0, 2.0, 3.0]] * 3, [[0.2, 0.8]] * 3, request_id="call", timestamp=T0)
        mon.observe([[1.0, 2.0]], [[0.2, 0.8]], request_id="future", timestamp=T0 + 10 * 365 * 86400.0)
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback(["ok", "nan", "range", "shape", "call/0", "call/2", "future"], ["y"] * 7, timestamp=T0 + 60)
            mon.flush()
        rejected = sum(mon.store.value("monitor_rows_rejected", (r,)) or 0.0
                       for r in ("nan_output", "probability_out_of_range", "wrong_shape", "future_timestamp"))
        assert rejected == 7  # the rows these labels are for were refused, and counted so
        assert _outcomes(mon) == {"joined": 1.0, "unknown_id": 0.0, "prediction_refused": 6.0}
        assert mon.store.value("monitor_labels_early") == 0  # none held for a prediction to come
        said = [r.getMessage() for r in caplog.records]
        assert any("was refused" in m and "prediction_refused" in m for m in said), said
        assert not any("none came" in m for m in said), said
    finally:
        mon.close()


def test_a_label_held_early_is_let_go_when_its_prediction_comes_refused() -> None:
    mon = _monitor()
    try:
        mon.feedback(["nan", "call/1", "valid"], ["y", "n", "y"], timestamp=T0)
        mon.flush()
        assert mon.store.value("monitor_labels_early") == 3
        mon.observe([[1.0, 2.0], [3.0, 4.0]], [[np.nan, 0.5], [0.3, 0.7]], request_id=["nan", "valid"], timestamp=T0 + 5)
        mon.observe([[1.0, 2.0, 3.0]] * 2, [[0.2, 0.8]] * 2, request_id="call", timestamp=T0 + 5)
        mon.flush()
        # within the wait (10 minutes): let go now, as they came, not at its end as unknown_id
        assert _outcomes(mon) == {"joined": 1.0, "unknown_id": 0.0, "prediction_refused": 2.0}
        assert mon.store.value("monitor_labels_early") == 0
    finally:
        mon.close()


def test_accepted_predictions_join_as_before_on_a_seeded_stream() -> None:
    """A seeded stream of which about a third of the rows have NaN outputs: every label of an
    accepted row joins, every label of a refused one is prediction_refused, none unknown_id; an id
    refused then predicted again and accepted joins its label (the later prediction is the one
    labelled), and so does one accepted and waiting when a retry under its id is refused."""
    rng = np.random.default_rng(20240611)
    n = 300
    probs = rng.dirichlet([2.0, 2.0], size=n)
    bad = rng.random(n) < 0.3
    probs[bad, 0] = np.nan
    ids = [f"r{i}" for i in range(n)]
    mon = _monitor()
    try:
        for start in range(0, n, 25):
            mon.observe(rng.normal(size=(25, 2)), probs[start:start + 25], request_id=ids[start:start + 25],
                        timestamp=T0 + start)
        mon.observe([[0.0, 0.0]], [[np.nan, 0.5]], request_id="again", timestamp=T0 + n)
        mon.observe([[0.0, 0.0]], [[0.4, 0.6]], request_id="again", timestamp=T0 + n + 1)
        mon.observe([[0.0, 0.0]], [[0.4, 0.6]], request_id="retried", timestamp=T0 + n + 2)
        mon.observe([[0.0, 0.0]], [[0.4, np.nan]], request_id="retried", timestamp=T0 + n + 3)
        labels = np.where(rng.random(n) < 0.5, "y", "n").tolist()
        mon.feedback(ids + ["again", "retried"], labels + ["y", "y"], timestamp=T0 + n + 60)
        mon.flush()
        assert _outcomes(mon) == {"joined": float((~bad).sum() + 2), "unknown_id": 0.0,
                                  "prediction_refused": float(bad.sum())}
        assert mon.store.value("monitor_rows_rejected", ("nan_output",)) == bad.sum() + 2
    finally:
        mon.close()


def test_the_oldest_refused_ids_are_forgotten_beyond_labels_early() -> None:
    """At most ``labels.early`` refused ids are remembered: beyond, the oldest one's label is held
    for its prediction, as before (and counted unknown_id when its wait ends)."""
    mon = _monitor(early=4)
    try:
        ids = [f"r{i}" for i in range(6)]
        for i, rid in enumerate(ids):
            mon.observe([[0.0, 0.0]], [[np.nan, 0.5]], request_id=rid, timestamp=T0 + i)
        mon.flush()
        assert mon.pipeline.joiner.refused_remembered == 4
        mon.feedback(ids, ["y"] * 6, timestamp=T0 + 10)
        mon.flush()
        assert _outcomes(mon) == {"joined": 0.0, "unknown_id": 0.0, "prediction_refused": 4.0}
        assert mon.store.value("monitor_labels_early") == 2  # r0 and r1: held, as for an id never seen
        for i in range(40):  # event time past their wait (no agent's clock: the median of the latest events)
            mon.observe([[0.0, 0.0]], [[0.5, 0.5]], request_id=f"later{i}", timestamp=T0 + 700 + i)
        mon.flush()
        assert _outcomes(mon)["unknown_id"] == 2.0 and mon.store.value("monitor_labels_early") == 0
    finally:
        mon.close()


def test_refused_ids_survive_a_checkpoint_and_a_smaller_labels_early() -> None:
    joiner = LabelJoiner(capacity=100, early=5)
    joiner.refuse([(f"r{i}", False) for i in range(5)] + [("call", True)])
    state = decode_state(*encode_state(joiner.state_dict()))
    restored = LabelJoiner(capacity=100, early=3)
    restored.load_state_dict(state)
    assert restored.refused_remembered == 3  # the newest three
    from monitor.outputs import ClassIndex

    _, outcome = restored.join(10.0, ["r4", "call/7", "r0"], [1, 1, 1], ClassIndex(("0", "1")), regression=False)
    assert outcome.get("prediction_refused") == 2 and restored.early_held == 1


def test_over_http_a_refused_event_s_label_counts_prediction_refused(tmp_path) -> None:
    """The event format (``POST /v1/events``, ``/v1/feedback``) feeds the same join: a refused
    prediction event's label, before and after it, counts prediction_refused."""
    s = start_sidecar({**CONFIG, "model": "m"}, tmp_path)
    try:
        assert http("POST", s.url + "/v1/feedback", {"request_id": "held", "label": "y"}).status == 202
        events = [{"inputs": [1.0, 2.0], "outputs": [1.5, -0.5], "request_id": "range"},
                  {"inputs": [1.0, 2.0, 3.0], "outputs": [0.2, 0.8], "request_id": "held"},
                  {"inputs": [1.0, 2.0], "outputs": [0.2, 0.8], "request_id": "ok"}]
        assert http("POST", s.url + "/v1/events", events).status == 202
        assert wait_until(lambda: (sample(s.metrics(), "monitor_predictions_total", model="m") or 0) >= 1)
        assert http("POST", s.url + "/v1/feedback", {"request_ids": ["range", "ok"], "labels": ["y", "n"]}).status == 202
        s.flush()
        text = s.metrics()
        got = {o: sample(text, "monitor_feedback_labels_total", model="m", outcome=o) for o in OUTCOMES}
        assert got == {"joined": 1.0, "unknown_id": None, "prediction_refused": 2.0}, got
        assert sample(text, "monitor_labels_early", model="m") == 0
    finally:
        s.close()


@pytest.mark.parametrize("classes", [["n", "y"], ["y", "n"]], ids=["same_outputs", "classes_reordered"])
def test_refused_ids_survive_a_restart_of_the_monitor(tmp_path, classes: list[str]) -> None:
    """A restart (a deploy) between a refused prediction and its label: the label still counts
    prediction_refused, also when the restart changed the outputs' layout (which drops the
    waiting predictions and the held labels: a refused one is refused whatever the layout)."""
    before = _monitor()
    before.observe([[1.0, 2.0], [3.0, 4.0]], [[np.nan, 0.5], [0.3, 0.7]], request_id=["nan", "ok"], timestamp=T0)
    before.flush()
    before.save_checkpoint(tmp_path / "m.ckpt", final=True)
    before.close()
    after = Monitor("m", config={**CONFIG, "output": {"kind": "probabilities", "classes": classes}},
                    registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        assert after.restore_checkpoint(tmp_path / "m.ckpt")
        after.feedback(["nan"], ["y"], timestamp=T0 + 60)
        after.flush()
        assert _outcomes(after)["prediction_refused"] == 1.0
        assert after.store.value("monitor_labels_early") in (None, 0)
    finally:
        after.close()
