"""A reference of fewer than 20 rows with two numeric features stopped the monitor from starting:
the default set took pca_drift (two numeric features), whose PCA needs 20 rows, and its build
raised. The defaults now leave it out with a warning, as they leave out probing below its rows.

Since the PCA is fitted on half the reference and calibrated on the other half, a reference of 20
to 39 rows gave each half 10 to 19 rows: no false alarm on healthy streams (0 of 80 seeded streams
of 20,000 rows, 2 to 16 features), but hardly any sight (noise of one sd on 8 correlated features:
found in 0 of 20 streams of 5,000 rows at 20 rows, 9 at 30, 16 at 40, 20 at 80), and a detector
that runs blind reads as "no drift". The bound is now 20 rows for each half: 40 reference rows,
or 20 with pca_fit (the training rows give the directions, every reference row calibrates).
The input PCA now fits ten fold PCAs instead (each on 90% of the rows, every row calibrating);
the bound stays, as measured under the split (the embedding space still splits in two)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from monitor.cli import main
from monitor.core import Monitor
from monitor.detectors.defaults import default_detectors, why_not_run
from monitor.detectors.multivariate import PCADriftDetector
from monitor.profile import Profile, profile_of
from monitor.reference import Reference
from monitor.schema import OutputSpec


def _reference(rows: int) -> Reference:
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(3), rows)
    return Reference.from_arrays(rng.normal(size=(rows, 2)), scores=scores, numeric_names=["a", "b"], classes=["x", "y", "z"])


@pytest.mark.parametrize("rows", [15, 20, 39])
def test_defaults_leave_pca_drift_out_below_40_rows_and_say_why(caplog: pytest.LogCaptureFixture, rows: int) -> None:
    output = OutputSpec(classes=("x", "y", "z"))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        kinds = [d.kind for d in default_detectors(output, _reference(rows))]
    assert "pca_drift" not in kinds and "input_drift" in kinds
    line = next(r.getMessage() for r in caplog.records if "'pca_drift'" in r.getMessage())
    assert f"needs at least 40 reference rows, the reference has {rows}" in line and "input_drift" in line
    assert "at least 40 reference rows" in why_not_run("pca_drift", output, _reference(rows), None)
    assert "pca_drift" in [d.kind for d in default_detectors(output, _reference(40))]


def test_below_40_rows_the_profile_has_no_pca_and_the_detector_says_why() -> None:
    assert profile_of(_reference(39)).pca is None
    with pytest.raises(ValueError, match="needs at least 40 reference rows, to fit the PCA's directions and to "
                                         "calibrate its errors on rows it was not fitted on .*; the reference has 39. "
                                         "Fix: "):
        PCADriftDetector(_reference(39))
    pca = profile_of(_reference(40)).pca
    assert pca is not None and pca.error.n == 40 and len(pca.folds) == 10  # every row, under the other folds' PCA


def test_with_pca_fit_20_reference_rows_calibrate() -> None:
    """The training rows give the directions: every reference row calibrates, 20 are enough."""
    rng = np.random.default_rng(1)
    train = rng.normal(size=(500, 2))
    ref = Reference.from_arrays(rng.normal(size=(20, 2)), numeric_names=["a", "b"], pca_fit=train)
    pca = profile_of(ref).pca
    assert pca is not None and pca.error.n == 20
    output = OutputSpec(kind="none")
    assert "pca_drift" in [d.kind for d in default_detectors(output, ref)]
    few = Reference.from_arrays(rng.normal(size=(19, 2)), numeric_names=["a", "b"], pca_fit=train)
    with pytest.raises(ValueError, match="needs at least 20 reference rows; the reference has 19"):
        PCADriftDetector(few)


def test_reference_show_says_why_pca_drift_is_off(tmp_path: Path) -> None:
    path = Profile.from_reference(_reference(30)).save(tmp_path / "small.npz")
    res = CliRunner().invoke(main, ["reference", "show", str(path)])
    assert res.exit_code == 0, res.output
    assert ("PCA (multivariate drift): none, pca_drift is off: pca_drift needs at least 40 reference rows" in res.output
            and "the reference has 30" in res.output), res.output
    info = json.loads(CliRunner().invoke(main, ["reference", "show", str(path), "--json"]).stdout)
    assert "needs at least 40 reference rows" in info["pca_off"] and info["pca_components"] is None


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
