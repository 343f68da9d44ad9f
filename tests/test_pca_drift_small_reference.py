"""A reference of fewer than 20 rows with two numeric features stopped the monitor from starting:
the default set took pca_drift (two numeric features), whose PCA needs 20 rows, and its build
raised. The defaults now leave it out with a warning, as they leave out probing below its rows."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor.core import Monitor
from monitor.detectors.defaults import default_detectors, why_not_run
from monitor.reference import Reference
from monitor.schema import OutputSpec


def _reference(rows: int) -> Reference:
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(3), rows)
    return Reference.from_arrays(rng.normal(size=(rows, 2)), scores=scores, numeric_names=["a", "b"], classes=["x", "y", "z"])


def test_defaults_leave_pca_drift_out_below_20_rows_and_say_why(caplog: pytest.LogCaptureFixture) -> None:
    output = OutputSpec(classes=("x", "y", "z"))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        kinds = [d.kind for d in default_detectors(output, _reference(15))]
    assert "pca_drift" not in kinds and "input_drift" in kinds
    line = next(r.getMessage() for r in caplog.records if "'pca_drift'" in r.getMessage())
    assert "needs at least 20 reference rows, the reference has 15" in line and "input_drift" in line
    assert "at least 20 reference rows" in why_not_run("pca_drift", output, _reference(15), None)
    assert "pca_drift" in [d.kind for d in default_detectors(output, _reference(20))]


def test_a_monitor_on_a_15_row_reference_starts_and_watches() -> None:
    cfg = {"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y", "z"]}}
    mon = Monitor(config=cfg, reference=_reference(15), registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        kinds = {d.kind for d in mon.detectors}
        assert "pca_drift" not in kinds and {"input_drift", "confidence_drift"} <= kinds
        mon.observe(np.zeros((4, 2)), np.full((4, 3), 1 / 3), timestamp=1_700_000_000.0)
        mon.flush()
        assert 'monitor_calls_total{model="m"} 1.0' in mon.metrics_text()
    finally:
        mon.close()


def test_the_warnings_of_a_monitors_set_up_name_its_model(caplog: pytest.LogCaptureFixture) -> None:
    """A sidecar loads several models: "output_repeats: the reference has 15 rows" must say whose."""
    import threading

    from monitor.log_model import model_named_in_log

    cfg = {"model": "fraud", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y", "z"]}}
    with caplog.at_level(logging.WARNING, logger="monitor"):
        Monitor(config=cfg, reference=_reference(15), registry=CollectorRegistry(), start_worker=False, live=False).close()
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("model 'fraud': detector 'pca_drift' is left out") for m in lines), lines
    assert any(m.startswith("model 'fraud': output_repeats: the reference has 15 rows") for m in lines), lines
    caplog.clear()
    other = threading.Thread(target=lambda: logging.getLogger("monitor").warning("another model's line"))
    with caplog.at_level(logging.WARNING, logger="monitor"), model_named_in_log("fraud"):
        other.start()
        other.join()
        logging.getLogger("monitor").warning("model 'x' already named")
    assert [r.getMessage() for r in caplog.records] == ["another model's line", "model 'x' already named"]
