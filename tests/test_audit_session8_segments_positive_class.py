"""Audit (session 8) of issue 3 item 4 for multi-class models: the positive-prediction rate per
segment and its largest gap, configured by ``positive_class`` (no test set it before).

The segments detector defaults the positive class to 1 for binary models and exports no positive
rate for multi-class ones unless ``positive_class`` (a class column) is given. Seeded stream of a
3-class model in three segments whose rates of predicting class 2 are 0.2, 0.2 and 0.5: the rates
and the gap equal the rows' own, the z statistic clears the rule's 4; without ``positive_class``
no positive rate is exported at all (absent, not zero).
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

N = 6000
RATE = {"eu": 0.2, "us": 0.2, "apac": 0.5}


def _stream() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(31)
    seg = np.array(list(RATE))[rng.integers(0, 3, N)]
    is_two = rng.random(N) < np.array([RATE[s] for s in seg])
    other = rng.integers(0, 2, N)  # class 0 or 1 when not class 2
    pred = np.where(is_two, 2, other)
    probs = rng.dirichlet(np.ones(3), N) * 0.3
    probs[np.arange(N), pred] += 0.7
    return rng.normal(size=(N, 1)), probs, seg


def _run(detector: dict) -> tuple[str, np.ndarray, np.ndarray]:
    x, probs, seg = _stream()
    cfg = {"model": "m", "features": ["a"], "output": {"kind": "probabilities", "classes": ["low", "mid", "high"]},
           "detectors": [{"kind": "segments", "window_s": 1e6, **detector}]}
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(x, probs, segment=list(seg), timestamp=1_700_000_000.0)
        mon.flush()
        return mon.metrics_text(), probs.argmax(axis=1), seg
    finally:
        mon.close()


def test_positive_rate_and_its_gap_for_a_configured_class_of_a_multiclass_model() -> None:
    text, pred, seg = _run({"positive_class": 2})
    rates = {s: float(np.mean(pred[seg == s] == 2)) for s in RATE}
    for s, r in rates.items():
        assert sample(text, "monitor_segment_positive_rate_ratio", model="m", segment=s) == pytest.approx(r)
    high = max(rates, key=rates.get)
    low = min(rates, key=rates.get)
    gap = sample(text, "monitor_segment_max_gap_ratio", model="m", figure="positive_rate", high=high, low=low)
    assert high == "apac" and gap == pytest.approx(rates[high] - rates[low])
    assert gap > 0.1 and sample(text, "monitor_segment_max_gap_zscore", model="m", figure="positive_rate", high=high, low=low) > 4


def test_a_multiclass_model_without_positive_class_exports_no_positive_rate() -> None:
    text, _, _ = _run({})
    assert sample(text, "monitor_segment_positive_rate_ratio", model="m") is None
    assert sample(text, "monitor_segment_max_gap_ratio", model="m", figure="positive_rate") is None
    assert sample(text, "monitor_segment_rows_in_window", model="m", segment="apac") is not None  # the rest is there
