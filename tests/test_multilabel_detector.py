"""The multilabel detector (``output.kind: multilabel``): per-label positive rate and mean
probability, label cardinality, a histogram of max(p, 1 - p) over every label decision, and the
drift of each label's positive rate against the reference. Before it a multi-label model was not
monitored at all (every row refused), and once readable the single-label defaults would have
read its independent labels as one softmax answer.

Seeded figures README's "Multi-label models" paragraph gives: silent on 40 disjoint windows of
2,000 unchanged rows of 5 labels (no Bonferroni-adjusted p-value under 0.001: by the union bound
the chance of any false alarm is at most 40 x 0.001 = 0.04); one label's rate moved from 0.2 to
0.3 is under 0.001 within 1,000 rows, for each of 10 seeds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.config import ConfigError
from monitor.detectors.defaults import default_detectors
from monitor.detectors.multilabel import MultilabelDetector
from monitor.reference import Reference
from monitor.schema import OutputSpec
from monitor.store import MetricStore
from tests.sidecar_support import sample

__all__: list[str] = []

RATES = np.array([0.05, 0.1, 0.2, 0.3, 0.5])
LABELS = ["spam", "toxic", "adult", "ad", "other"]
HOUR = 3600.0


def scores(rng: np.random.Generator, n: int, rates: np.ndarray = RATES) -> np.ndarray:
    """Independent labels present at ``rates``: a present label's probability in [0.5, 1), an absent one's in [0, 0.5)."""
    present = rng.random((n, len(rates))) < rates
    return np.where(present, rng.uniform(0.5, 1.0, (n, len(rates))), rng.uniform(0.0, 0.5, (n, len(rates))))


def reference(seed: int = 0, n: int = 5000) -> Reference:
    return Reference.from_arrays(np.zeros((n, 1)), scores=scores(np.random.default_rng(seed), n), classes=LABELS)


def feed(det: MultilabelDetector, x: np.ndarray, ts: np.ndarray) -> None:
    det.update(Batch.from_arrays(np.zeros((len(x), 1)), x, ts=ts, classes=tuple(LABELS)))


def test_figures_of_a_window() -> None:
    x = np.array([[0.9, 0.2, 0.6, 0.0, 0.5], [0.1, 0.3, 0.7, 0.0, 0.4]] * 50)
    det = MultilabelDetector(reference(), min_rows=100)
    feed(det, x, np.zeros(100))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_multilabel_rows_in_window") == 100
    assert store.value("monitor_multilabel_positive_rate_ratio", ("spam",)) == 0.5
    assert store.value("monitor_multilabel_positive_rate_ratio", ("adult",)) == 1.0
    assert store.value("monitor_multilabel_positive_rate_ratio", ("other",)) == 0.5  # 0.5 is at the threshold: present
    assert store.value("monitor_multilabel_probability_mean_ratio", ("adult",)) == pytest.approx(0.65)
    assert store.value("monitor_multilabel_cardinality_mean") == pytest.approx(2.0)  # 3 labels, then 1
    hist = store.value("monitor_multilabel_confidence_ratio")
    assert hist.count == 500 and hist.sum == pytest.approx(np.maximum(x, 1 - x).sum())
    assert store.value("monitor_multilabel_reference_positive_rate_ratio", ("adult",)) == pytest.approx(0.2, abs=0.02)
    assert store.value("monitor_multilabel_reference_cardinality_mean") == pytest.approx(RATES.sum(), abs=0.05)
    # every label but "other" moved far from the reference: drifted; "other" kept its rate of 0.5
    assert store.value("monitor_multilabel_drift_pvalue", ("adult",)) < 1e-6
    assert store.value("monitor_multilabel_drift_pvalue", ("other",)) > 0.01


def test_figures_are_absent_below_min_rows_and_without_reference_no_drift() -> None:
    det = MultilabelDetector(None, min_rows=100)
    feed(det, scores(np.random.default_rng(1), 99), np.zeros(99))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_multilabel_positive_rate_ratio", ("spam",)) is None
    assert store.value("monitor_multilabel_cardinality_mean") is None
    feed(det, scores(np.random.default_rng(2), 1), np.zeros(1))
    det.on_tick(1.0)
    det.export(store)
    assert store.value("monitor_multilabel_positive_rate_ratio", ("spam",)) is not None
    assert store.value("monitor_multilabel_drift_pvalue", ("spam",)) is None


def test_silent_on_unchanged_outputs_over_40_windows() -> None:
    rng = np.random.default_rng(7)
    det = MultilabelDetector(reference(), window_s=HOUR)
    smallest = []
    for w in range(40):
        feed(det, scores(rng, 2000), w * HOUR + np.linspace(0.0, HOUR - 1.0, 2000))
        figures = det.figures()
        assert figures is not None and figures["rows"] == 2000  # disjoint windows
        smallest.append(float(figures["pvalue"].min()))
    assert min(smallest) > 0.001, min(smallest)


@pytest.mark.parametrize("seed", range(10))
def test_one_label_rate_shift_detected_within_1000_rows(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    det = MultilabelDetector(reference())
    shifted = RATES.copy()
    shifted[2] = 0.3
    for n in range(50, 1001, 50):
        feed(det, scores(rng, 50, shifted), np.full(50, n / 10.0))
        figures = det.figures()
        if figures is not None and figures["pvalue"][2] < 0.001:
            break
    else:
        pytest.fail("no alarm within 1,000 rows")
    assert figures["pvalue"][[0, 1, 3, 4]].min() > 0.001  # the unshifted labels are not blamed


def test_state_round_trips() -> None:
    rng = np.random.default_rng(3)
    det = MultilabelDetector(reference())
    feed(det, scores(rng, 300), np.linspace(0.0, 100.0, 300))
    again = MultilabelDetector(reference())
    again.load_state_dict(det.state_dict())
    a, b = det.figures(), again.figures()
    assert a["rows"] == b["rows"] == 300 and np.array_equal(a["rate"], b["rate"]) and np.array_equal(a["pvalue"], b["pvalue"])


def test_reference_scores_that_are_no_probabilities_are_refused_with_the_fix() -> None:
    ref = Reference.from_arrays(np.zeros((10, 1)), scores=np.random.default_rng(0).normal(size=(10, 3)) * 5)
    with pytest.raises(ValueError, match="not its raw scores"):
        MultilabelDetector(ref)


def test_defaults_of_a_multilabel_model_are_no_single_label_detectors() -> None:
    kinds = {d.kind for d in default_detectors(OutputSpec("multilabel"), reference())}
    assert "multilabel" in kinds and "data_quality" in kinds
    assert not kinds & {"confidence", "calibration", "segments", "confidence_drift", "prediction_drift", "regression"}
    assert "multilabel" not in {d.kind for d in default_detectors(OutputSpec("probabilities"), reference())}


def _monitor(config: dict[str, Any], ref: Reference | None = None) -> Monitor:
    return Monitor(model="tags", config=config, reference=ref, registry=CollectorRegistry(auto_describe=False))


def test_a_listed_single_label_detector_is_refused_for_a_multilabel_model() -> None:
    with pytest.raises(ConfigError) as err:
        _monitor({"output": {"kind": "multilabel"}, "detectors": [{"kind": "confidence"}]})
    assert "detectors[0]" in str(err.value) and "multilabel" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _monitor({"detectors": [{"kind": "multilabel"}]})
    assert "output.kind: multilabel" in str(err.value)


def test_a_decorated_multilabel_model_is_monitored_end_to_end() -> None:
    rng = np.random.default_rng(5)
    mon = _monitor({"output": {"kind": "multilabel", "classes": LABELS}}, reference())
    try:
        @mon.watch
        def predict(x: np.ndarray) -> np.ndarray:
            return scores(rng, len(x))

        for _ in range(5):
            predict(rng.normal(size=(100, 1)))
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_predictions_total", model="tags") == 500
        assert sample(text, "monitor_multilabel_rows_in_window", model="tags") == 500
        assert sample(text, "monitor_multilabel_positive_rate_ratio", model="tags", label="other") == pytest.approx(0.5, abs=0.1)
        assert sample(text, "monitor_multilabel_drift_pvalue", model="tags", label="other") > 0.001
        assert sample(text, "monitor_multilabel_confidence_ratio_count", model="tags") == 2500
        assert "monitor_confidence_ratio_count" not in text  # no softmax confidence of independent labels
    finally:
        mon.close()
