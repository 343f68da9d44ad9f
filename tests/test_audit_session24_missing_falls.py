"""Audit (session 24): the drift explanation of a feature that was missing on every reference
row and arrives with values live. The missing bin moved most (100% -> 0%), but only a rise of
the missing share was put in words; the fall went on to the moments, where the reference's sd
(none) made the ratio infinite: ``change="scaled xinf"`` in the top-feature label and the alert
text, which names no cause. It now says the missing share fell, with both shares.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor import Monitor, Reference


def test_a_feature_missing_in_the_reference_that_arrives_is_described_as_such() -> None:
    rng = np.random.default_rng(96)
    ref = pd.DataFrame({"x": np.full(500, np.nan), "d": rng.normal(size=500)})
    cfg = {"model": "m", "features": ["x", "d"], "output": {"kind": "probabilities"},
           "detectors": [{"kind": "input_drift", "window_s": 3600}]}
    mon = Monitor(config=cfg, reference=Reference.from_arrays(ref), registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        live = pd.DataFrame({"x": rng.normal(size=300), "d": rng.normal(size=300)})
        mon.observe(live, np.tile([0.5, 0.5], (300, 1)), timestamp=1_700_000_000.0)
        mon.flush()
        text = mon.metrics_text()
    finally:
        mon.close()
    top = [s.labels for fam in text_string_to_metric_families(text) for s in fam.samples
           if s.name == "monitor_drift_top_feature" and s.labels.get("feature") == "x"]
    assert len(top) == 1
    assert top[0]["change"] == "missing 100% -> 0%"
