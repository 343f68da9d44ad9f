"""The label-free confidence side reviewed again (session 19): how a reference's scores and live
outputs are read by the detectors that compare them.

Each test is a bug the review reproduced: a binary model's reference given as its one output
column from a CSV (``(n, 1)``, as live outputs of one column are read) refused as "not class
probabilities"; a k-NN's float32 votes, exactly the reference's own rows, found drifted by the
confidence drift test (KS distance 0.40, p ~ 1e-213) because renormalised live scores moved 3e-8
below the reference's quantile edges, which are its atoms; a forest's tenths read from a CSV
reference (0.7) and live as float32 (0.69999999) calibrated by CBPE in different bins; under a warnings-as-errors filter an ensemble's logit of
-1000 (numpy's overflow warning in ``exp``) lost its whole event as an internal error, and a
member's +inf logit of a one-column ensemble was read as P(positive) = 1 (refused without
``samples_axis``).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.reference import Reference
from monitor.stats.uncertainty import energy_score

T0 = 1_700_000_000.0


def _binary_stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, P(positive) and labels of a calibrated binary model."""
    x = rng.normal(size=(n, 2))
    p = 1.0 / (1.0 + np.exp(-2.0 * x[:, 0]))
    y = (rng.uniform(size=n) < p).astype(int)
    return x, p, y


def _estimates(mon: Monitor) -> dict[str, float]:
    return {labels["estimator"]: v for name, labels, v in mon.store.samples() if name == "monitor_estimated_accuracy_ratio"}


def test_a_binary_reference_of_one_csv_output_column_is_read_as_p_positive(tmp_path: Path) -> None:
    """A CSV reference with ``output_columns: [p_fraud]`` holds scores of shape (n, 1): the label-free
    detectors refused it at start ("400 row(s) ... do not sum to 1"), while live outputs of one column
    are P(positive) of a binary model. Read alike, the estimates on unshifted traffic are the
    reference's accuracy (seeded, 4,000 live rows: within 3 points; the KS test does not reject)."""
    rng = np.random.default_rng(7)
    x, p, y = _binary_stream(rng, 2000)
    path = tmp_path / "ref.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "p_fraud", "label"])
        w.writerows([[x[i, 0], x[i, 1], p[i], y[i]] for i in range(len(y))])
    config = {"reference": {"path": str(path), "output_columns": ["p_fraud"], "label_column": "label"},
              "detectors": [{"kind": "accuracy_estimation", "min_rows": 50}, {"kind": "confidence_drift", "min_rows": 50},
                            {"kind": "prediction_drift", "min_rows": 50}]}
    mon = Monitor("m", config=config, registry=CollectorRegistry(), live=False, start_worker=False)
    assert [type(d).__name__ for d in mon.detectors] == ["AccuracyEstimationDetector", "ConfidenceDriftDetector",
                                                          "PredictionDriftDetector"]
    x_live, p_live, y_live = _binary_stream(rng, 4000)
    mon.observe(x_live, p_live[:, None], timestamp=T0)
    mon.flush()
    truth = float(((p_live > 0.5).astype(int) == y_live).mean())
    est = _estimates(mon)
    assert set(est) >= {"cbpe", "atc", "bbse"}
    for name in ("cbpe", "atc", "bbse"):
        assert abs(est[name] - truth) < 0.03, (name, est[name], truth)
    pvalues = {labels["score"]: v for name, labels, v in mon.store.samples() if name == "monitor_confidence_drift_pvalue"}
    assert min(pvalues.values()) > 0.001, pvalues
    mon.close()


def test_a_one_column_reference_array_matches_two_configured_classes() -> None:
    """``Reference.from_arrays(X, scores=p[:, None])`` with ``output.classes: [ok, fraud]``: one
    column is P(positive), two classes; it was refused as "1 columns, but output.classes names 2"."""
    rng = np.random.default_rng(8)
    x, p, y = _binary_stream(rng, 500)
    ref = Reference.from_arrays(x, scores=p[:, None], labels=y)
    mon = Monitor("m", config={"output": {"classes": ["ok", "fraud"]}, "detectors": ["accuracy_estimation"]},
                  reference=ref, registry=CollectorRegistry(), live=False, start_worker=False)
    est = mon.detectors[0]
    assert abs(est.reference_accuracy - float(((p > 0.5).astype(int) == y).mean())) < 1e-12
    mon.close()


def _knn_votes(rng: np.random.Generator, n: int, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a k-nearest-neighbours vote over 3 classes, as float32 (scikit-learn's
    ``predict_proba`` on float32 inputs), and labels."""
    votes = rng.multinomial(k, [0.6, 0.3, 0.1], size=n)
    y = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    return (votes / k).astype(np.float32), y


def test_a_model_of_few_distinct_scores_is_not_drifted_from_its_own_reference() -> None:
    """Live rows drawn as the reference's (seeded, 3,000 of each, 7-NN votes in float32): the KS
    distance was 0.40 for the confidence and 0.16 for the entropy (p < 1e-30), every unshifted
    window an alarm. Now each is below 0.05 with p > 0.01; the reference's own rows give 0 exactly."""
    rng = np.random.default_rng(11)
    p_ref, y_ref = _knn_votes(rng, 3000)
    ref = Reference.from_arrays(np.zeros((3000, 1)), scores=p_ref, labels=y_ref)
    for live, exact in ((p_ref, True), (_knn_votes(rng, 3000)[0], False)):
        mon = Monitor("m", config={"detectors": [{"kind": "confidence_drift", "min_rows": 100}]}, reference=ref,
                      registry=CollectorRegistry(), live=False, start_worker=False)
        mon.observe(np.zeros((len(live), 1)), live, timestamp=T0)
        mon.flush()
        results = mon.detectors[0].results()
        for score, res in results.items():
            assert res is not None
            if exact:
                assert res.statistic == 0.0, (score, res)
            else:
                assert res.statistic < 0.05 and res.pvalue > 0.01, (score, res)
        mon.close()


def test_cbpe_reads_a_forests_tenths_alike_from_a_csv_reference_and_live_float32() -> None:
    """A 10-tree forest scores in tenths; its reference read from a CSV holds 0.7, live float32
    rows hold 0.69999999, a fine-grid edge apart: CBPE gave them the calibration of the empty bin
    below 0.7 (its prior, pooled with the 0.6 rows', right 62% of the time, against 97% at 0.7).
    Seeded, 3,000 reference rows, the same rows live: CBPE is the reference accuracy to 0.005 (it
    was 2.9 points low)."""
    rng = np.random.default_rng(5)
    n = 3000
    votes = rng.choice([6, 7, 8, 9, 10], size=n, p=[0.2, 0.4, 0.2, 0.1, 0.1])
    p1 = votes / 10.0
    right = rng.uniform(size=n) < np.select([votes == 6, votes == 7], [0.62, 0.97], 0.99)
    p_text = np.round(np.stack([1.0 - p1, p1], axis=1), 6)  # as a CSV holds them
    y = np.where(right, 1, 0)
    ref = Reference.from_arrays(np.zeros((n, 1)), scores=p_text, labels=y)
    mon = Monitor("m", config={"detectors": [{"kind": "accuracy_estimation", "min_rows": 100}]}, reference=ref,
                  registry=CollectorRegistry(), live=False, start_worker=False)
    mon.observe(np.zeros((n, 1)), p_text.astype(np.float32), timestamp=T0)
    mon.flush()
    est = _estimates(mon)
    accuracy = mon.detectors[0].reference_accuracy
    assert abs(est["cbpe"] - accuracy) < 0.005, (est, accuracy)
    assert abs(est["atc"] - accuracy) < 0.005, (est, accuracy)
    mon.close()


def _samples(mon: Monitor, prefix: str) -> dict[tuple[str, str], float]:
    return {(name, ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "model")): v
            for name, labels, v in mon.store.samples() if name.startswith(prefix) and v}


def test_ensemble_logits_that_overflow_are_read_or_refused_under_warnings_as_errors() -> None:
    """``pytest -W error`` or ``PYTHONWARNINGS=error`` makes numpy's RuntimeWarning an exception.
    A member's logit of -1000 (``exp`` overflows: P(positive) is 0) lost the event's two good rows
    as ``internal_error``; members of +inf or all -inf (softmax of inf - inf) did the same instead
    of being refused as ``nan_output``. A one-column member of +inf is refused as it is without
    ``samples_axis``."""
    outputs = np.array([
        [[-1000.0], [0.0]],  # good: members say P = 0 and 0.5
        [[1.0], [2.0]],  # good
        [[np.inf], [0.0]],  # +inf logit: refused
        [[np.nan], [0.0]],  # refused
    ])
    multi = np.array([
        [[1e308, -1e308], [0.0, 1.0]],  # good: softmax of the first member overflows to exactly [1, 0]
        [[np.inf, 0.0], [0.0, 1.0]],  # refused
        [[-np.inf, -np.inf], [0.0, 1.0]],  # every class masked: refused
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for out, good in ((outputs, 2), (multi, 1)):
            mon = Monitor("m", config={"output": {"kind": "logits", "samples_axis": True}, "detectors": ["confidence"]},
                          registry=CollectorRegistry(), live=False, start_worker=False)
            mon.observe(np.zeros((len(out), 1)), out, timestamp=T0)
            mon.flush()
            rejected = _samples(mon, "monitor_rows_rejected")
            assert rejected == {("monitor_rows_rejected_total", "reason=nan_output"): float(len(out) - good)}, rejected
            assert not _samples(mon, "monitor_internal_errors"), _samples(mon, "monitor_internal_errors")
            assert mon.detectors[0].rows_in_window == good
            mon.close()
        # logits 2e308 apart: z - max overflows to -inf, whose exp is an exact 0
        assert energy_score(np.array([[1e308, -1e308]])).tolist() == [-1e308]


def test_live_scores_of_another_width_than_the_reference_are_counted_not_passed_over() -> None:
    """Without output.classes, a reference of 3 classes and a model answering 4: the accuracy
    estimate and the confidence drift passed over every batch (their figures absent for good,
    nothing logged or counted), and the prediction drift dropped the fourth class's rows. Each now
    raises, which the pipeline logs and counts (MonitorDetectorFailing), as the segments detector did."""
    rng = np.random.default_rng(9)
    p = rng.dirichlet([1.0, 1.0, 1.0], size=400)
    y = np.array([rng.choice(3, p=row) for row in p])
    ref = Reference.from_arrays(rng.normal(size=(400, 2)), scores=p, labels=y)
    kinds = ["accuracy_estimation", "confidence_drift", "prediction_drift", "segments"]
    mon = Monitor("m", config={"detectors": [{"kind": k, "min_rows": 10} for k in kinds]}, reference=ref,
                  registry=CollectorRegistry(), live=False, start_worker=False)
    mon.observe(rng.normal(size=(300, 2)), rng.dirichlet([1.0] * 4, size=300), timestamp=T0)
    mon.flush()
    errors = _samples(mon, "monitor_detector_errors")
    assert errors == {("monitor_detector_errors_total", f"detector={k}"): 1.0 for k in kinds}, errors
    mon.close()
