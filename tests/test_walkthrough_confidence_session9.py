"""Defects found by a walkthrough of issue 3 (confidence, calibration, segments, feedback) in
session 9: a user decorating scikit-learn models as the README says, sending delayed labels and
reading ``/metrics``. Each test fails without its fix."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

T0 = 1_700_000_000.0


def _monitor(config: dict, **kwargs: object) -> Monitor:
    return Monitor(model="wt9", config=config, registry=CollectorRegistry(), live=False, start_worker=False, **kwargs)


@pytest.mark.parametrize("kind", ["probabilities", "labels"])
def test_segment_overflow_counts_each_row_once_whatever_its_labels(kind: str) -> None:
    """``monitor_segment_overflow_rows_total`` counts the rows folded into ``other``; their labels
    arriving later are not new rows (they were counted a second time, so the counter was twice
    ``monitor_segment_rows_in_window{segment="other"}`` once every row was labelled)."""
    rng = np.random.default_rng(0)
    n = 600
    segs = np.array(["a", "b", "c", "d", "e"])[rng.integers(0, 5, n)]
    p1 = rng.uniform(0.05, 0.95, n)
    outputs = np.column_stack([1 - p1, p1]) if kind == "probabilities" else np.where(p1 > 0.5, "yes", "no")
    mon = _monitor({"segments": {"cap": 3}, "output": {"kind": kind, "classes": ["no", "yes"]}})
    ids = [f"r{i}" for i in range(n)]
    mon.observe(rng.normal(size=(n, 2)), outputs, request_id=ids, segment=segs.tolist(), timestamp=T0)
    mon.flush()
    other = sample(mon.metrics_text(), "monitor_segment_rows_in_window", segment="other")
    assert other is not None and other > 0
    assert sample(mon.metrics_text(), "monitor_segment_overflow_rows_total") == other
    mon.feedback(ids, np.where(rng.random(n) < 0.5, "yes", "no").tolist(), timestamp=T0 + 5)
    mon.flush()
    text = mon.metrics_text()
    assert sample(text, "monitor_feedback_labels_total", outcome="joined") == n
    assert sample(text, "monitor_segment_overflow_rows_total") == other
    mon.close()
