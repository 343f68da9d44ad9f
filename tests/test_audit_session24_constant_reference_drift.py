"""Audit (session 24, numbers): the regression detector's prediction drift (chi-squared p-value
and PSI on the reference's prediction quantiles) has one bin for a model whose reference
predictions are all one value: p 1 and PSI 0 for any live predictions. Absent now.

(The same audit made the input drift detector's windowed figures absent for a numeric feature
constant in the reference; that was reverted: it also removed the effect sizes, mean shift in sd
and scale ratio, that tests/test_review_detectors.py pins for such a feature, 0 and 1 when
unchanged, inf when live values leave the constant.)
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from tests.sidecar_support import sample


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
