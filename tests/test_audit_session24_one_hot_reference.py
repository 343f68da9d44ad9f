"""Audit (session 24, numbers): a model whose reference probabilities are one-hot (a fully grown
decision tree's ``predict_proba``, a 1-nearest-neighbour vote) has every reference confidence at
1.0 and every entropy at 0. The confidence drift bins at the reference's quantiles, and one value
gave no edge: one bin, which every live score fell in, so the KS distance read 0 and the p-value
1 for any live outputs, a model answering 0.67 on every row included (scipy's two-sample KS on
the same rows: distance 1). Such a reference now gets the bins below, on and above its one value.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry
from scipy import stats

from monitor import Monitor, Reference
from tests.sidecar_support import sample

K = 3


def _run(live: np.ndarray, segment: str | None = None) -> str:
    rng = np.random.default_rng(3)
    y = rng.integers(0, K, 1000)
    probs = np.eye(K)[np.where(rng.random(1000) < 0.9, y, rng.integers(0, K, 1000))]
    reference = Reference.from_arrays(np.zeros((1000, 1)), numeric_names=["x"], scores=probs, labels=y)
    cfg = {"model": "m", "features": ["x"], "output": {"kind": "probabilities"},
           "detectors": [{"kind": "confidence_drift", "window_s": 3600, "by_segment": True}]}
    mon = Monitor(config=cfg, reference=reference, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(np.zeros((len(live), 1)), live, segment=segment, timestamp=1_700_000_000.0)
        mon.flush()
        return mon.metrics_text()
    finally:
        mon.close()


def test_a_one_hot_reference_sees_softened_outputs() -> None:
    rng = np.random.default_rng(4)
    live = np.eye(K)[rng.integers(0, K, 400)] * 0.5 + 0.5 / K  # confidence 2/3 on every row
    assert stats.ks_2samp(np.ones(1000), live.max(axis=1)).statistic == 1.0
    text = _run(live, segment="eu")
    for score in ("confidence", "entropy"):
        assert sample(text, "monitor_confidence_drift_distance", model="m", score=score) == 1.0, score
        assert sample(text, "monitor_confidence_drift_pvalue", model="m", score=score) < 1e-10, score
        assert sample(text, "monitor_segment_confidence_drift_distance", model="m", segment="eu", score=score) == 1.0
        assert sample(text, "monitor_segment_confidence_drift_pvalue", model="m", segment="eu", score=score) < 1e-10


def test_a_one_hot_reference_with_one_hot_traffic_is_unchanged() -> None:
    rng = np.random.default_rng(5)
    live = np.eye(K)[rng.integers(0, K, 400)].astype(np.float32)  # as a float32 model sends them
    text = _run(live)
    for score in ("confidence", "entropy"):
        assert sample(text, "monitor_confidence_drift_distance", model="m", score=score) == 0.0, score
        assert sample(text, "monitor_confidence_drift_pvalue", model="m", score=score) == 1.0, score
