"""Audit (session 24, numbers): ``monitor_drift_feature_score_ratio`` is documented as the
feature's deviation relative to its alarm threshold, ">= 1 is beyond it". A bin's count is
flagged at ``count >= up`` (above) or ``count < lo`` (below); the ratio above the expected count
was ``(count - expected + 1) / (up - expected)``, which reaches 1 one count *before* the band
flags. For a bin holding the whole reference (a feature constant in the reference) the band
can never be crossed (``up = n + 1``) and the count is always ``n``: the ratio read 1.0 on
every test, unchanged traffic included, and ``monitor_drift_score_ratio`` (the detector's
largest) with it.

Checked against the bands themselves (not the ratio's formula): the ratio is >= 1 exactly when
a bin is outside its band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.stats.sequential import BinnedSequentialTest
from tests.sidecar_support import sample


def test_the_ratio_reaches_one_where_the_band_flags_and_not_before() -> None:
    test = BinnedSequentialTest(np.array([[300.0, 700.0, 0.0]]), ordered=[2])
    n = test.scales[0]
    lo, up = test._lo[0][0][0], test._up[0][0][0]  # bands of the Bonferroni level, bins then cumulative
    checked = 0
    for first in range(n + 1):
        win = np.array([[float(first), float(n - first), 0.0]])
        cum = np.array([first])  # the one cumulative count: rows in the first bin
        counts = np.concatenate([win[0], cum])
        outside = bool(((counts < lo) | (counts >= up)).any())
        ratio = float(test.scores(0, win)[0])
        assert (ratio >= 1.0) == outside, (first, ratio, outside)
        checked += 1
    assert checked == n + 1


def test_a_constant_reference_feature_left_unchanged_is_not_at_its_threshold() -> None:
    rng = np.random.default_rng(12)
    ref = pd.DataFrame({"c": np.full(1000, 3.0), "d": rng.normal(size=1000)})
    cfg = {"model": "m", "features": ["c", "d"], "output": {"kind": "probabilities"},
           "detectors": [{"kind": "input_drift", "window_s": 3600}]}
    mon = Monitor(config=cfg, reference=Reference.from_arrays(ref), registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        for i in range(10):
            live = pd.DataFrame({"c": np.full(300, 3.0), "d": rng.normal(size=300)})
            mon.observe(live, np.tile([0.5, 0.5], (300, 1)), timestamp=1_700_000_000.0 + i)
            mon.flush()
        text = mon.metrics_text()
    finally:
        mon.close()
    assert sample(text, "monitor_drift_detected", model="m", detector="input_drift") == 0.0
    ratio = sample(text, "monitor_drift_feature_score_ratio", model="m", detector="input_drift", feature="c")
    assert ratio is not None and ratio < 1.0
    assert sample(text, "monitor_drift_score_ratio", model="m", detector="input_drift") < 1.0
