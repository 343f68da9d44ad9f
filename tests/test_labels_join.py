"""Delayed labels of a whole drain are joined at once, exactly as one by one."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex


def _joiner(rng: np.random.Generator, n: int = 300, ttl_s: float = 50.0) -> LabelJoiner:
    joiner = LabelJoiner(capacity=1000, ttl_s=ttl_s)
    scores = rng.dirichlet(np.ones(3), size=n)
    joiner.remember(Batch.from_arrays(np.zeros((n, 1)), scores, ts=np.arange(n, dtype=np.float64),
                                      request_id=[f"r{i}" for i in range(n)], segment=[f"s{i % 4}" for i in range(n)]))
    return joiner


def _feedback(rng: np.random.Generator, n_events: int) -> list[tuple[float, list, list]]:
    """Feedback events with repeated ids, unknown ids, expired ones and unreadable labels."""
    names = ["a", "b", "c", 0, 2, "zzz", None, ["x"], np.int64(1)]
    events = []
    for k in range(n_events):
        size = int(rng.integers(1, 12))
        ids = [f"r{int(i)}" if i < 320 else f"other{int(i)}" for i in rng.integers(0, 340, size)]
        labels = [names[int(j)] for j in rng.integers(0, len(names), size)]
        events.append((100.0 + 20.0 * k, ids, labels))
    return events


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_joining_many_events_equals_joining_them_in_turn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    events = _feedback(rng, 30)
    classes = ClassIndex(("a", "b", "c"))
    one, many = _joiner(np.random.default_rng(seed)), _joiner(np.random.default_rng(seed))
    parts, totals = [], {"joined": 0, "unknown_id": 0, "invalid": 0, "expired": 0}
    for ts, ids, labels in events:
        labeled, outcome = one.join(ts, ids, labels, classes, regression=False)
        totals = {k: totals[k] + outcome[k] for k in totals}
        if labeled is not None:
            parts.append(labeled)
    merged, outcome = many.join_many(events, classes, regression=False)
    assert outcome == totals
    assert min(totals.values()) > 0  # every outcome occurs in this stream
    assert merged is not None
    for field in ("ts", "label_ts", "label", "segment", "scores", "predicted"):
        expected = np.concatenate([getattr(p, field) for p in parts])
        assert np.array_equal(getattr(merged, field), expected), field
    assert merged.label.dtype == np.int64 and set(merged.label.tolist()) <= {-1, 0, 1, 2}


def test_regression_labels_join_many() -> None:
    joiner = _joiner(np.random.default_rng(5))
    labeled, outcome = joiner.join_many([(10.0, ["r1", "r2"], [0.5, "x"]), (11.0, ["r3", "r1"], [float("nan"), 2.0])],
                                        ClassIndex(), regression=True)
    assert outcome == {"joined": 1, "unknown_id": 1, "invalid": 2, "expired": 0}
    assert labeled is not None and labeled.label.tolist() == [0.5] and labeled.label_ts.tolist() == [10.0]


def test_a_large_table_of_held_scores_is_said_with_its_size_and_fix(monkeypatch, caplog) -> None:
    """The held scores take ``labels.pending x classes x 4`` bytes at the first prediction with a
    request id (a 1,000-class model at the default 100,000: 400 MB), which nothing said."""
    import logging

    from monitor import labels

    monkeypatch.setattr(labels, "LARGE_SCORE_TABLE_BYTES", 1000 * 50 * 4)
    rng = np.random.default_rng(0)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        for classes in (10, 50):
            joiner = LabelJoiner(capacity=1000)
            joiner.remember(Batch.from_arrays(np.zeros((5, 1)), rng.dirichlet(np.ones(classes), size=5),
                                              ts=np.arange(5, dtype=np.float64), request_id=[f"r{i}" for i in range(5)]))
    said = [r.getMessage() for r in caplog.records if "label join holds" in r.getMessage()]
    assert len(said) == 1  # 50 classes, not 10
    assert "1000 predictions (labels.pending) of 50 values" in said[0] and "lower labels.pending" in said[0]


def test_an_id_that_went_through_a_float_column_joins_its_integer_label() -> None:
    """Ids of a pandas column with a missing value are float64 (``5.0``), read ``"5.0"``: the
    labels sent under the integer ids never joined them. A whole-number float reads as the
    integer on both sides; other floats keep their text."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    mon = Monitor("ids", config={"output": {"kind": "probabilities", "classes": ["a", "b"]}},
                  registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        ids = np.array([5.0, 6.0, np.nan, 7.5, 9.0])
        mon.observe(np.zeros((5, 2)), np.full((5, 2), 0.5), request_id=ids, timestamp=1000.0)
        mon.feedback([5, np.int64(6), "7.5", np.float32(9.0)], ["a", "b", "a", "b"], timestamp=1010.0)
        mon.flush()
        assert mon.store.value("monitor_feedback_labels", ("joined",)) == 4
        assert (mon.store.value("monitor_feedback_labels", ("unknown_id",)) or 0) == 0
    finally:
        mon.close()
