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
