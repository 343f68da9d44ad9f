"""Audit (session 8) of issue 3 item 3's reliability diagram: the exported per-bin mean confidence,
accuracy and count equal those of the window's labelled rows in each of the 15 equal-width bins.

tests/test_calibration_detector.py checked only that the counts add up and that a sparse bin has
no confidence or accuracy; nothing compared a bin's figures with its rows. Seeded over-confident
stream (5-point gap) with confidences spread over [0.1, 1].
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.catalog import confidence as names
from monitor.detectors.calibration import CalibrationDetector
from monitor.store import MetricStore
from tests.test_calibration_detector import labeled

BINS = 15


def test_every_bins_confidence_accuracy_and_count_are_its_rows() -> None:
    rng = np.random.default_rng(23)
    lb = labeled(rng, 3000, gap=0.05, a=2.0, b=1.0)
    det = CalibrationDetector(window_s=1000.0, refresh=0.0)
    det.update_labels(lb)
    store = MetricStore("m")
    det.export(store)
    assert lb.scores is not None
    conf = lb.scores.max(axis=1)
    right = (lb.predicted == lb.label).astype(float)
    which = np.minimum((conf * BINS).astype(int), BINS - 1)
    checked = 0
    for i in range(BINS):
        label = (f"{i / BINS:.2f}-{(i + 1) / BINS:.2f}",)
        rows = which == i
        assert store.value(names.RELIABILITY_COUNT, label) == rows.sum(), label
        if rows.sum() >= 10:  # the detector's min_bin_count
            assert store.value(names.RELIABILITY_CONFIDENCE, label) == pytest.approx(conf[rows].mean()), label
            assert store.value(names.RELIABILITY_ACCURACY, label) == pytest.approx(right[rows].mean()), label
            checked += 1
        else:
            assert store.value(names.RELIABILITY_ACCURACY, label) is None, label
    assert checked >= 12  # the seeded stream fills most bins
    # the diagram shows the over-confidence: accuracy below confidence in the well-filled bins
    full = [i for i in range(BINS) if (which == i).sum() >= 200]
    below = [store.value(names.RELIABILITY_ACCURACY, (f"{i / BINS:.2f}-{(i + 1) / BINS:.2f}",))
             < store.value(names.RELIABILITY_CONFIDENCE, (f"{i / BINS:.2f}-{(i + 1) / BINS:.2f}",)) for i in full]
    assert len(full) >= 5 and np.mean(below) >= 0.8
    # and the upper bound of the gap's interval, exported beside the lower one, brackets the gap
    gap = store.value(names.GAP)
    assert store.value(names.GAP_LOWER) < gap < store.value(names.GAP_UPPER)
    assert gap == pytest.approx(conf.mean() - right.mean())
