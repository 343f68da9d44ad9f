"""Review s42c: defects in session 42's confidence changes, each test failing before its fix."""

from __future__ import annotations

import numpy as np

from monitor.batch import LabeledBatch
from monitor.catalog import confidence as names
from monitor.stats import uncertainty as unc
from monitor.store import MetricStore


def _saturated_labelled(rng: np.random.Generator, n: int, accuracy: float, segment: str) -> LabeledBatch:
    """Labelled rows whose every top probability is exactly 1 (a tree's pure leaves, or a
    confident softmax read back from float32, where any top probability above 1 - 6e-8 is 1.0),
    right on ``accuracy`` of them."""
    label = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < accuracy, label, (label + 1) % 3)
    probs = np.eye(3)[pred]
    ts = np.sort(rng.uniform(0.0, 100.0, n))
    return LabeledBatch(ts=ts, label_ts=ts, label=label, segment=np.full(n, segment, dtype=object), scores=probs,
                        predicted=pred, log_scores=unc.log_probabilities(probs))


def test_a_segment_wrong_at_confidence_one_has_an_overconfidence_pvalue() -> None:
    """A segment whose confidences are all exactly 1 and which errs on 30% of its 300 labels is as
    over-confident as a segment can be: the whole window's p-value is 0 (an error at confidence 1
    is impossible under calibration). The segment's p-value was absent: the screen's
    approximation has no variance there (every bin's mean confidence is 1), and the exact tail,
    which answers it, was only consulted below 0.05; ModelSegmentOverconfident could not fire.
    It is now the exact tail (0), and a saturated segment that is always right gets 1."""
    from monitor.detectors.calibration import CalibrationDetector
    from monitor.detectors.segments import SegmentDetector

    rng = np.random.default_rng(3)
    det = SegmentDetector(window_s=1e6, min_labels=100)
    whole = CalibrationDetector(window_s=1e6, refresh=0.0)
    for batch in (_saturated_labelled(rng, 300, 0.7, "wrong"), _saturated_labelled(rng, 300, 1.0, "right")):
        det.update_labels(batch)
    whole.update_labels(_saturated_labelled(np.random.default_rng(3), 300, 0.7, "wrong"))
    store = MetricStore("m")
    det.export(store)
    whole.export(store)
    assert store.value(names.SEGMENT_GAP, ("wrong",)) > 0.2
    assert store.value(names.GAP_PVALUE) == 0.0
    assert store.value(names.SEGMENT_GAP_PVALUE, ("wrong",)) == 0.0
    assert store.value(names.SEGMENT_GAP_PVALUE, ("right",)) == 1.0


def test_segment_calibration_draws_exceed_resamples_only_where_the_segments_need_them() -> None:
    """A segment's calibration-error p-value is drawn ``resamples`` times, more only where the
    segments tracked need it (the README: 1.25 x 100 x their number, so that the smallest p-value
    is at most 0.8 of ModelSegmentCalibrationErrorHigh's 0.01 / segments). Through the chi-squared
    rule's own floor (a smallest p-value of a tenth of the level) a detector given resamples: 100
    to bound its cost drew 999 times from one segment, where 124 suffice."""
    from monitor.detectors.segments import CALIBRATION_ALPHA, SegmentDetector

    for resamples in (100, 500, 1999):
        det = SegmentDetector(resamples=resamples)
        for tracked in range(1, 201):
            level = 0.8 * CALIBRATION_ALPHA / tracked
            draws = det.draws(tracked)
            assert 1.0 / (draws + 1) <= level, (resamples, tracked, draws)  # fine enough for the rule
            assert draws == resamples or 1.0 / draws > level, (resamples, tracked, draws)  # and no finer than it needs
    assert SegmentDetector().draws(21) == 2624 and SegmentDetector().draws(200) == 24999  # the README's figures
