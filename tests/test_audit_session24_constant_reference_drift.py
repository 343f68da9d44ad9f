"""Audit (session 24, numbers): a numeric feature constant in the reference (a flag always 0 on
the held-out rows, a default filled in upstream) has one value bin: every live value, whatever it
is, falls in it, so the windowed KS p-value was 1 and the Jensen-Shannon distance and PSI 0 for
live values spread from 0 to 6 (scipy's two-sample KS on the same rows: p < 1e-50). Those test
figures are absent now for such a feature, which is left out of the multiple-testing count; its
effect sizes stay (0 and 1 when unchanged, tests/test_review_detectors.py), and values off the
constant are the data-quality out-of-range share. The regression detector's prediction drift
(chi-squared p-value and PSI on the reference's prediction quantiles) had the same one bin for a
model whose reference predictions are all one value: p 1 and PSI 0 for any live predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry
from scipy import stats

from monitor import Monitor, Reference
from tests.sidecar_support import sample


def test_test_figures_of_a_constant_reference_feature_are_absent() -> None:
    rng = np.random.default_rng(12)
    ref = pd.DataFrame({"c": np.full(1000, 3.0), "flag": (rng.random(1000) < 0.3).astype(float)})
    live = pd.DataFrame({"c": rng.normal(3.0, 1.0, 500), "flag": (rng.random(500) < 0.6).astype(float)})
    assert stats.ks_2samp(ref["c"], live["c"]).pvalue < 1e-50  # the change is there to see
    cfg = {"model": "m", "features": ["c", "flag"], "output": {"kind": "probabilities"},
           "detectors": [{"kind": "input_drift", "window_s": 3600}, {"kind": "data_quality", "window_s": 3600}]}
    mon = Monitor(config=cfg, reference=Reference.from_arrays(ref), registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(live, np.tile([0.5, 0.5], (len(live), 1)), timestamp=1_700_000_000.0)
        mon.flush()
        text = mon.metrics_text()
    finally:
        mon.close()
    det = {"model": "m", "detector": "input_drift"}
    assert sample(text, "monitor_drift_feature_pvalue", feature="c", test="ks", **det) is None
    for measure in ("js", "psi"):
        assert sample(text, "monitor_drift_feature_effect", feature="c", measure=measure, **det) is None, measure
    assert sample(text, "monitor_data_invalid_ratio", model="m", feature="c", reason="out_of_range") == 1.0
    # a two-valued feature keeps its figures (30% to 60% ones: drifted), tested alone
    p = sample(text, "monitor_drift_feature_pvalue", feature="flag", test="ks", **det)
    assert p is not None and p < 1e-6
    assert sample(text, "monitor_drift_features_drifted", **det) == 1.0


def test_regression_prediction_drift_of_a_constant_reference_is_absent() -> None:
    rng = np.random.default_rng(2)
    figures = {}
    for name, ref_pred in (("constant", np.full(1000, 5.0)), ("spread", rng.normal(5.0, 1.0, 1000))):
        reference = Reference.from_arrays(np.zeros((1000, 1)), numeric_names=["x"], scores=ref_pred,
                                          labels=ref_pred + rng.normal(0.0, 1.0, 1000))
        cfg = {"model": "m", "features": ["x"], "output": {"kind": "regression"},
               "detectors": [{"kind": "regression", "window_s": 3600}]}
        mon = Monitor(config=cfg, reference=reference, registry=CollectorRegistry(), start_worker=False, live=False)
        try:
            mon.observe(np.zeros((400, 1)), rng.normal(8.0, 2.0, 400), timestamp=1_700_000_000.0)
            mon.flush()
            text = mon.metrics_text()
        finally:
            mon.close()
        figures[name] = (sample(text, "monitor_regression_prediction_drift_pvalue", model="m"),
                         sample(text, "monitor_regression_prediction_psi", model="m"),
                         sample(text, "monitor_regression_prediction_mean", model="m"))
    assert figures["constant"][:2] == (None, None)
    assert figures["constant"][2] is not None  # the window's mean, beside the reference's, stays
    p, psi, _ = figures["spread"]  # a reference with spread keeps its test: 5 -> 8 is seen
    assert p is not None and p < 1e-6 and psi is not None and psi > 0.25
