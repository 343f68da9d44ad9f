"""The warning that joined labels name no class (session 29 review) took its examples from every
label of the drain, missing ones included: ``feedback(ids, [None, nan, None, "fraud", "x"])`` said
"e.g. 'None', 'nan', 'fraud'", labels already refused as ``invalid`` and said in their own line,
crowding out the real ones; and one missing label among integer labels 1..k hid the hint that
the labels look like scikit-learn's ``classes_`` read as column indices. The examples now pass
the join's own check of what can be a class label."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor


def _warning(caplog: pytest.LogCaptureFixture, labels: list[object]) -> str:
    mon = Monitor(model="m", registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        ids = [f"r{i}" for i in range(len(labels))]
        p = np.linspace(0.1, 0.9, len(ids))
        mon.observe(np.zeros((len(ids), 3)), np.c_[1 - p, p], request_id=ids)
        mon.flush()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback(ids, labels)
            mon.flush()
    finally:
        mon.close()
    lines = [r.getMessage() for r in caplog.records if "name no class" in r.getMessage()]
    assert len(lines) == 1
    return lines[0]


def test_missing_labels_are_no_examples_of_unknown_classes(caplog: pytest.LogCaptureFixture) -> None:
    line = _warning(caplog, [None, float("nan"), None, "fraud", "x", 1])
    assert "e.g. 'fraud', 'x';" in line


def test_a_missing_label_does_not_hide_the_classes_hint(caplog: pytest.LogCaptureFixture) -> None:
    line = _warning(caplog, [None, 2, 1, 2, 1])
    assert "e.g. '2';" in line
    assert "read as a column index" in line
