"""The calibration detector on seeded labelled streams: figures, minimum counts, windows, state."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors.calibration import CalibrationDetector
from monitor.detectors.registry import create
from monitor.stats import calibration as cal
from monitor.store import MetricStore


def labeled(rng: np.random.Generator, n: int, *, gap: float = 0.0, k: int = 10, t0: float = 0.0, span: float = 100.0,
            a: float = 20.0, b: float = 1.5) -> LabeledBatch:
    """Predictions with top-label confidence on [1/k, 1], right with probability conf - gap."""
    conf = 1.0 / k + (1.0 - 1.0 / k) * rng.beta(a, b, n)
    pred = rng.integers(0, k, n)
    scores = np.repeat(((1.0 - conf) / (k - 1))[:, None], k, axis=1)
    scores[np.arange(n), pred] = conf
    right = rng.random(n) < np.clip(conf - gap, 0.0, 1.0)
    label = np.where(right, pred, (pred + rng.integers(1, k, n)) % k)
    ts = np.sort(rng.uniform(t0, t0 + span, n))
    return LabeledBatch(ts=ts, label_ts=ts + 5.0, label=label, segment=np.full(n, None, dtype=object),
                        scores=scores, predicted=pred)


def test_figures_match_direct_computation() -> None:
    rng = np.random.default_rng(0)
    lb = labeled(rng, 800, gap=0.05)
    det = CalibrationDetector(window_s=1000.0)
    det.update_labels(lb)
    f = det.figures()
    conf = lb.scores.max(axis=1)
    correct = (lb.predicted == lb.label).astype(float)
    assert f.labels == 800
    assert f.accuracy == pytest.approx(correct.mean())
    assert f.brier == pytest.approx(cal.brier_terms(lb.scores, lb.label).mean())
    assert f.log_loss == pytest.approx(cal.log_loss_terms(lb.scores, lb.label).mean())
    assert f.gap.gap == pytest.approx(conf.mean() - correct.mean())
    assert f.ece == pytest.approx(cal.ece_equal_width(conf, correct))
    assert f.mce == pytest.approx(cal.max_calibration_error(conf, correct, min_count=10))
    assert f.debiased_ce == pytest.approx(cal.debiased_calibration_error(conf, correct), abs=0.02)
    assert f.temperature == pytest.approx(cal.fit_temperature(np.log(np.maximum(lb.scores, 1e-12)), lb.label), rel=1e-6)
    assert f.temperature > 1.0  # over-confident: soften


def test_minimum_counts_make_figures_absent_not_zero() -> None:
    rng = np.random.default_rng(1)
    det = CalibrationDetector(window_s=1000.0, min_labels=100, min_labels_calibration=300, refresh=0.0)
    store = MetricStore("m")
    det.update_labels(labeled(rng, 50))
    det.export(store)
    assert store.value(names.LABELS_IN_WINDOW) == 50
    for name in (names.ACCURACY, names.BRIER, names.GAP, names.GAP_PVALUE, names.TEMPERATURE, names.MAX_CALIBRATION_ERROR):
        assert store.value(name) is None, name
    det.update_labels(labeled(rng, 100))
    det.export(store)
    assert store.value(names.ACCURACY) is not None and store.value(names.GAP_LOWER) is not None
    assert store.value(names.CALIBRATION_ERROR, ("ece_equal_width",)) is None
    det.update_labels(labeled(rng, 200))
    det.export(store)
    assert store.value(names.CALIBRATION_ERROR, ("ece_equal_width",)) is not None
    assert store.value(names.CALIBRATION_ERROR, ("debiased_l2_equal_mass",)) is not None
    assert store.value(names.TEMPERATURE) is not None
    # the reliability diagram: counts add up, sparse bins have no confidence/accuracy
    counts = [store.value(names.RELIABILITY_COUNT, (lab,)) for lab in (f"{i / 15:.2f}-{(i + 1) / 15:.2f}" for i in range(15))]
    assert sum(counts) == 350
    sparse = [i for i, c in enumerate(counts) if c < 10]
    assert sparse, "the seeded stream has empty low-confidence bins"
    lab = f"{sparse[0] / 15:.2f}-{(sparse[0] + 1) / 15:.2f}"
    assert store.value(names.RELIABILITY_ACCURACY, (lab,)) is None


def test_window_slides_in_event_time_of_the_prediction() -> None:
    rng = np.random.default_rng(2)
    det = CalibrationDetector(window_s=600.0, n_slots=6, refresh=0.0)
    det.update_labels(labeled(rng, 300, t0=0.0, span=100.0))
    det.update_labels(labeled(rng, 200, t0=500.0, span=50.0))
    assert det.figures().labels == 500
    det.advance(800.0)  # the slots holding t < 200 have left the window
    assert det.figures().labels == 200
    # a label for a prediction already outside the window is not counted
    det.update_labels(labeled(rng, 10, t0=0.0, span=10.0))
    assert det.figures().labels == 200


def test_unknown_classes_and_missing_scores_are_counted() -> None:
    rng = np.random.default_rng(3)
    lb = labeled(rng, 120)
    lb.label[:20] = -1
    det = CalibrationDetector(window_s=1000.0)
    det.update_labels(lb)
    det.update_labels(LabeledBatch(ts=np.zeros(3), label_ts=np.zeros(3), label=np.zeros(3, dtype=np.int64),
                                   segment=np.full(3, None, dtype=object)))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.LABELS_IN_WINDOW) == 100
    assert store.value(names.LABELS_SKIPPED, ("unknown_class",)) == 20
    assert store.value(names.LABELS_SKIPPED, ("no_scores",)) == 3


def test_overconfidence_power_and_false_alarms_through_the_detector() -> None:
    """500 labels per window: calibrated flagged in <= 1% of 600 seeded windows (plus 3
    Monte-Carlo standard errors: 0.022), a 5-point gap in >= 90% of 200 (model with mean
    confidence ~0.94); the exported p-value is the weighted test of the window's rows."""
    rng = np.random.default_rng(4)

    def flagged(gap: float, windows: int) -> float:
        hits = 0
        for _ in range(windows):
            det = CalibrationDetector(window_s=1000.0)
            lb = labeled(rng, 500, gap=gap)
            det.update_labels(lb)
            p = det.figures().gap_pvalue
            assert lb.scores is not None
            conf = lb.scores.max(axis=1)
            assert p == pytest.approx(cal.binned_overconfidence_pvalue(conf, (lb.label == lb.predicted).astype(np.float64)), abs=1e-9)
            hits += p < 0.01
        return hits / windows

    assert flagged(0.0, 600) <= 0.01 + 3.0 * np.sqrt(0.01 * 0.99 / 600)
    assert flagged(0.05, 200) >= 0.9


def test_state_round_trip_restores_figures() -> None:
    rng = np.random.default_rng(5)
    det = CalibrationDetector(window_s=1000.0, temperature_rows=256)
    det.update_labels(labeled(rng, 400, gap=0.03))
    clone = create("calibration", params={"window_s": 1000.0, "temperature_rows": 256})
    clone.load_state_dict(det.state_dict())
    a, b = det.figures(), clone.figures()
    assert (a.labels, a.accuracy, a.ece, a.debiased_ce, a.temperature) == (b.labels, b.accuracy, b.ece, b.debiased_ce, b.temperature)
    with pytest.raises(ValueError, match="temperature_rows"):
        CalibrationDetector(window_s=1000.0, temperature_rows=128).load_state_dict(det.state_dict())
    with pytest.raises(ValueError, match="length changed"):  # read as this window's, its slots froze every figure
        CalibrationDetector(window_s=2000.0, temperature_rows=256).load_state_dict(det.state_dict())
    # a state saved with the two trailing sums (of c^2, c^3) earlier versions kept restores the same figures
    old = det.state_dict()
    data = old["windows"]["labels"]["data"]
    old["windows"]["labels"]["data"] = np.concatenate([data, np.ones(data.shape[:-1] + (2,))], axis=-1)
    legacy = create("calibration", params={"window_s": 1000.0, "temperature_rows": 256})
    legacy.load_state_dict(old)
    c = legacy.figures()
    assert (c.labels, c.accuracy, c.ece, c.gap_pvalue) == (a.labels, a.accuracy, a.ece, a.gap_pvalue)


def test_bad_configuration_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="gap_level"):
        CalibrationDetector(gap_level=1.5)
    with pytest.raises(ValueError, match="unknown parameter.*windw_s.*known parameters"):
        create("calibration", params={"windw_s": 10})


def test_calibration_error_pvalue_comes_and_goes_with_the_error() -> None:
    """The p-value is exported beside the debiased error, absent below min_labels_calibration as
    the error is, small on a 15-point miscalibration and repeatable with the same seed."""
    det = CalibrationDetector(window_s=1000.0, min_labels_calibration=300, refresh=0.0, seed=3)
    store = MetricStore("m")
    rng = np.random.default_rng(4)
    det.update_labels(labeled(rng, 200, gap=0.15))
    det.export(store)
    assert store.value(names.CALIBRATION_ERROR, ("debiased_l2_equal_mass",)) is None
    assert store.value(names.CALIBRATION_ERROR_PVALUE) is None
    batch = labeled(rng, 600, gap=0.15)
    det.update_labels(batch)
    det.export(store)
    assert store.value(names.CALIBRATION_ERROR, ("debiased_l2_equal_mass",)) > 0.1
    assert store.value(names.CALIBRATION_ERROR_PVALUE) == pytest.approx(1.0 / 2000.0)
    again = CalibrationDetector(window_s=1000.0, min_labels_calibration=300, refresh=0.0, seed=3, resamples=100)
    twin = CalibrationDetector(window_s=1000.0, min_labels_calibration=300, refresh=0.0, seed=3, resamples=100)
    calm = labeled(np.random.default_rng(5), 800)
    for d in (again, twin):
        d.update_labels(calm)
    assert again.figures().debiased_ce_pvalue == twin.figures().debiased_ce_pvalue > 0.01


@pytest.mark.parametrize(("params", "match"), [
    ({"resamples": 50}, "resamples must be a whole number from 100"),
    ({"resamples": 5000}, "resamples must be a whole number from 100"),
    ({"resamples": True}, "resamples must be a whole number"),
    ({"resamples": 999.5}, "resamples must be a whole number"),
    ({"seed": -1}, "seed must be a whole number, 0 or more"),
    ({"seed": "x"}, "seed must be a whole number"),
])
def test_bad_resampling_parameters_are_refused_with_the_fix(params: dict, match: str) -> None:
    for kind in ("calibration", "segments"):
        with pytest.raises(ValueError, match=match) as ei:
            create(kind, params=params)
        assert "Fix:" in str(ei.value) and str(ei.value).startswith(f"{kind}:")
