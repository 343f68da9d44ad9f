"""The over-confidence gap's interval holds its level when a window has few errors.

With the sample variance of ``conf - correct`` alone, a confident model's window with no error (or
one) had an interval of (almost) no width: "upper bound below 0, significantly under-confident"
for a calibrated model in about 13% of 100-label windows at confidence 0.98, where 1% is claimed.
"""

from __future__ import annotations

import numpy as np

from monitor.batch import LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors.calibration import CalibrationDetector
from monitor.detectors.segments import SegmentDetector
from monitor.store import MetricStore


def _window(rng: np.random.Generator, n: int, a: float, b: float) -> LabeledBatch:
    """A calibrated binary model's labelled rows: confidence 0.5 + 0.5 Beta(a, b), right with that probability."""
    conf = 0.5 + 0.5 * rng.beta(a, b, n)
    pred = rng.integers(0, 2, n)
    scores = np.empty((n, 2))
    scores[np.arange(n), pred] = conf
    scores[np.arange(n), 1 - pred] = 1.0 - conf
    label = np.where(rng.random(n) < conf, pred, 1 - pred)
    ts = np.sort(rng.uniform(0.0, 100.0, n))
    return LabeledBatch(ts=ts, label_ts=ts + 5.0, label=label, segment=np.full(n, None, dtype=object), scores=scores, predicted=pred)


def _misses(a: float, b: float, windows: int, seed: int) -> tuple[float, float]:
    """Shares of calibrated 100-label windows whose 98% interval lies above, resp. below, the gap 0."""
    rng = np.random.default_rng(seed)
    above = below = 0
    for _ in range(windows):
        det = CalibrationDetector(window_s=1000.0, min_labels=100)
        det.update_labels(_window(rng, 100, a, b))
        gap = det.figures().gap
        assert gap is not None
        above += gap.lower > 0.0
        below += gap.upper < 0.0
    return above / windows, below / windows


def test_calibrated_confident_windows_are_not_called_under_confident() -> None:
    # mean confidence 0.98 (before: 0.12-0.15 of the windows below 0) and 0.99; 1% a side claimed,
    # at most 2% allowed for the draws' own error (sd 0.22% at 2,000 windows)
    for a, b, seed in ((48.0, 2.0, 0), (98.0, 2.0, 1)):
        above, below = _misses(a, b, 2000, seed)
        assert below <= 0.02, (a, b, below)
        assert above <= 0.02, (a, b, above)


def test_a_window_without_errors_has_an_interval_around_its_gap() -> None:
    rng = np.random.default_rng(2)
    lb = _window(rng, 150, 98.0, 2.0)
    lb.label[:] = lb.predicted  # every answer right: likely (22%) for a calibrated model at 0.99
    det = CalibrationDetector(window_s=1000.0, min_labels=100)
    det.update_labels(lb)
    gap = det.figures().gap
    assert gap is not None
    assert gap.lower < gap.gap < 0.0 < gap.upper


def test_calibrated_confident_segments_are_not_called_under_confident() -> None:
    # the segments detector's interval is the calibration detector's on the segment's rows: 180
    # calibrated segments of 100 labels at confidence 0.98 (before: 26 of them "under-confident");
    # at most 6 allowed (1.8 expected at 1%; binomial(180, 0.01) exceeds 6 with probability 0.003)
    rng = np.random.default_rng(3)
    parts = [_window(rng, 100, 48.0, 2.0) for _ in range(180)]
    segment = np.repeat([f"s{i}" for i in range(180)], 100).astype(object)
    ts = np.arange(18000) * 0.01
    lb = LabeledBatch(ts=ts, label_ts=ts + 1.0, label=np.concatenate([p.label for p in parts]), segment=segment,
                      scores=np.vstack([p.scores for p in parts]), predicted=np.concatenate([p.predicted for p in parts]))
    det = SegmentDetector(window_s=1e6, segment_cap=180, min_labels=50)
    det.update_labels(lb)
    store = MetricStore("m")
    det.export(store)
    upper = [store.value(names.SEGMENT_GAP_UPPER, (f"s{i}",)) for i in range(180)]
    lower = [store.value(names.SEGMENT_GAP_LOWER, (f"s{i}",)) for i in range(180)]
    assert all(v is not None for v in upper + lower)
    assert sum(v < 0.0 for v in upper) <= 6
    assert sum(v > 0.0 for v in lower) <= 6
