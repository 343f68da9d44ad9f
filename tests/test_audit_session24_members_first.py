"""An ensemble's outputs given as the list of its members' outputs (``[est.predict_proba(X) for
est in ensemble]``: samples, rows, classes) with ``output.samples_axis: true``, which reads
(rows, samples, classes); found by session 24's audit. The rows were refused as
``rows_mismatch`` ("50 input rows but 5 outputs") with the fix "predict must return one output
per input row", which sends the user to the wrong place. When the outputs' second axis has the
call's rows, the log now says the axes are swapped and how to stack them."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

__all__: list[str] = []


def test_members_first_outputs_are_refused_with_the_axis_fix(caplog: Any) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 50, 3))
    members = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    mon = Monitor(model="e", config={"output": {"samples_axis": True}}, registry=CollectorRegistry(auto_describe=False))
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe(rng.normal(size=(50, 2)), list(members))
            mon.observe(rng.normal(size=(50, 2)), np.stack(list(members), axis=1))  # the fix the log gives
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "rows_mismatch" in r.getMessage()]
        assert len(said) == 1 and "np.stack" in said[0] and "axis=1" in said[0], said
        text = mon.metrics_text()
        assert sample(text, "monitor_rows_rejected_total", model="e", reason="rows_mismatch") == 50
        assert sample(text, "monitor_predictions_total", model="e") == 50
    finally:
        mon.close()
