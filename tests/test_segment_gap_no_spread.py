"""A difference between segments with no spread in either is certain: its z is +Inf, exported.

The segments detector's largest gap in mean confidence uses Welch's z; when every row of one
segment has the same confidence and every row of another a different one, the standard error is
zero. The z used to be left out of the exposition there, so the clearest gap of all had no z
(a model that answers one segment with a constant, collapsed output is the case that makes it).
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

T0 = 1_700_000_000.0


def test_constant_confidence_per_segment_gives_an_infinite_z_for_the_confidence_gap() -> None:
    mon = Monitor(model="m", registry=CollectorRegistry(), live=False, start_worker=False,
                  config={"output": {"kind": "probabilities", "classes": ["no", "yes"]}, "segments": {"cap": 4},
                          "detectors": [{"kind": "segments", "min_rows": 10}]})
    n = 200
    segment = ["web", "app"] * (n // 2)
    # 0.75 and 0.5 are exact in binary: every sum and sum of squares is exact, the variance exactly 0
    probs = np.array([[0.25, 0.75] if s == "web" else [0.5, 0.5] for s in segment])
    mon.observe(np.zeros((n, 1)), probs, segment=segment, timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    labels = {"figure": "confidence", "high": "web", "low": "app"}
    assert sample(text, "monitor_segment_max_gap_ratio", **labels) == 0.25
    assert sample(text, "monitor_segment_max_gap_zscore", **labels) == float("inf")
    assert 'monitor_segment_max_gap_zscore{figure="confidence",high="web",low="app",model="m"} +Inf' in text


def test_the_same_constant_in_two_segments_is_no_gap_whatever_the_rounding() -> None:
    """Session 12's review: 3 and 10 rows of 0.1 give means that differ in the last bit
    (2.8e-17) and a variance clipped to 0, and that rounding was exported as an infinitely
    significant gap. Both the float path (few groups) and the array path (many) say z = 0."""
    from monitor.stats.gaps import group_means, largest_gap

    sums, sq, n = np.array([0.1 * 3, 0.1 * 10]), np.array([0.01 * 3, 0.01 * 10]), np.array([3.0, 10.0])
    for k in (1, 20):  # 2 groups (floats), 40 groups (arrays)
        mean, var = group_means(np.tile(sums, k), np.tile(sq, k), np.tile(n, k))
        found = largest_gap(mean, np.tile(n, k), np.ones(2 * k, dtype=bool), var)
        assert found is not None and abs(found[2]) < 1e-15 and found[3] == 0.0, found
    mean, var = group_means(np.array([0.3, 0.5]), np.array([0.03, 0.05]), np.array([3.0, 5.0]))  # 0.1 and 0.1
    assert abs(largest_gap(mean, np.array([3.0, 5.0]), np.ones(2, dtype=bool), var)[3]) < 1.0  # rounding only
    mean, var = group_means(np.array([0.3, 1.0]), np.array([0.03, 0.2]), np.array([3.0, 5.0]))  # 0.1 and 0.2: a real gap
    assert largest_gap(mean, np.array([3.0, 5.0]), np.ones(2, dtype=bool), var)[3] > 1e6  # +Inf or rounding-sized se
