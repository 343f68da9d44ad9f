"""Audit (session 24, numbers): a model whose confidences are vote shares (a 5-nearest-neighbour
vote, a forest of 5 or 10 trees) puts many rows exactly on an equal-width bin edge: 3 votes of 5
is 0.6, the edge between the reliability bins 0.53-0.60 and 0.60-0.67. The label join holds the
scores as float32 log-probabilities, and ``exp(float32(log 0.6))`` is 0.5999999939: without a
tolerance those rows were counted in the bin below (every 0.6 and 0.4 row of the 15-bin
reliability diagram, ECE and MCE, whole window and per segment), mixed there with the rows
really in that bin. Within the tie tolerance below an edge a labelled confidence now counts as on
it, as CBPE and the confidence drift already read the same scores.

Checked against an independent computation: each row's bin is ``floor(15 * votes / 5)`` in whole
numbers, the figures plain numpy means over the rows of each bin.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

N = 1200
BINS = 15


def _stream() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A binary vote model (3, 4 or 5 of 5 votes) and, sharing the 0.53-0.60 bin with its
    0.6 rows if they are misplaced, a scored model's rows at 0.55; two segments."""
    rng = np.random.default_rng(2024)
    votes = rng.choice([3, 4, 5], N, p=[0.5, 0.3, 0.2])
    conf = votes / 5.0
    scored = rng.random(N) < 0.3
    conf = np.where(scored, 0.55, conf)
    # bin index in whole numbers: 15 * votes / 5 = 3 * votes; 0.55 is in bin 8 (0.533-0.6)
    which = np.where(scored, 8, 3 * votes)
    which = np.minimum(which, BINS - 1)
    pred = rng.integers(0, 2, N)
    p1 = np.where(pred == 1, conf, 1.0 - conf)
    # right 40% of the time at 0.6 (over-confident), as often as claimed elsewhere
    hit = np.where(conf == 0.6, 0.4, conf)
    correct = rng.random(N) < hit
    label = np.where(correct, pred, 1 - pred)
    seg = np.array(["a", "b"])[rng.integers(0, 2, N)]
    return np.column_stack([1.0 - p1, p1]), label, which, correct.astype(float), seg


def _run() -> str:
    probs, label, _, _, seg = _stream()
    cfg = {"model": "m", "features": ["x"], "output": {"kind": "probabilities"},
           "detectors": ["calibration", {"kind": "segments", "reliability_bins": True, "min_labels": 50}]}
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        ids = [f"r{i}" for i in range(N)]
        mon.observe(np.zeros((N, 1)), probs, request_id=ids, segment=list(seg), timestamp=1_700_000_000.0)
        mon.flush()
        mon.feedback(ids, label.tolist(), timestamp=1_700_000_030.0)
        mon.flush()
        return mon.metrics_text()
    finally:
        mon.close()


def _bin_label(i: int) -> str:
    return f"{i / BINS:.2f}-{(i + 1) / BINS:.2f}"


def test_vote_share_confidences_fall_in_the_bin_they_open() -> None:
    text = _run()
    probs, _, which, correct, seg = _stream()
    conf = probs.max(axis=1)
    assert sample(text, "monitor_labels_in_window", model="m") == N
    for i in range(BINS):
        rows = which == i
        assert sample(text, "monitor_reliability_labels", model="m", bin=_bin_label(i)) == rows.sum(), _bin_label(i)
        if rows.sum() >= 10:
            assert sample(text, "monitor_reliability_accuracy_ratio", model="m", bin=_bin_label(i)) == pytest.approx(correct[rows].mean())
            assert sample(text, "monitor_reliability_confidence_ratio", model="m", bin=_bin_label(i)) == pytest.approx(conf[rows].mean())
        for s in ("a", "b"):
            in_seg = rows & (seg == s)
            assert sample(text, "monitor_segment_reliability_labels", model="m", segment=s, bin=_bin_label(i)) == in_seg.sum()
    gaps = [abs(conf[which == i].mean() - correct[which == i].mean()) for i in range(BINS) if (which == i).any()]
    shares = [(which == i).mean() for i in range(BINS) if (which == i).any()]
    ece = float(np.dot(shares, gaps))
    assert sample(text, "monitor_calibration_error_ratio", model="m", estimator="ece_equal_width") == pytest.approx(ece, abs=1e-6)
    assert sample(text, "monitor_max_calibration_error_ratio", model="m") == pytest.approx(max(gaps), abs=1e-6)
    for s in ("a", "b"):
        m = seg == s
        g = [abs(conf[m & (which == i)].mean() - correct[m & (which == i)].mean()) for i in range(BINS) if (m & (which == i)).any()]
        w = [(m & (which == i)).sum() / m.sum() for i in range(BINS) if (m & (which == i)).any()]
        got = sample(text, "monitor_segment_calibration_error_ratio", model="m", segment=s, estimator="ece_equal_width")
        assert got == pytest.approx(float(np.dot(w, g)), abs=1e-6)
