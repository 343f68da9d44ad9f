"""Configured ``features`` that leave out some of the reference's: inputs are read by that schema,
so those features never arrive. Found in the drift review (session 18): ``input_drift`` read each
of them as "no data" and stayed in alarm for good (ModelInputDrift firing on unchanged traffic),
and ``pca_drift``, whose PCA needs every numeric feature of the reference, never saw a row, with
nothing said. Now input drift watches the features that arrive, the default PCA drift is left
out, both with a warning naming the features and the fix, and a listed ``pca_drift`` is refused
at its entry."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.config import ConfigError

T0 = 1_700_000_000.0


def _reference() -> Reference:
    rng = np.random.default_rng(0)
    return Reference.from_arrays(rng.normal(size=(3000, 3)), numeric_names=["a", "b", "c"],
                                 scores=rng.dirichlet([1.0, 1.0], 3000))


def _monitor(**config: object) -> Monitor:
    return Monitor("m", config={"features": ["a", "b"], "output": {"kind": "probabilities"}, **config},
                   reference=_reference(), registry=CollectorRegistry(), live=False, start_worker=False)


def test_unchanged_traffic_of_the_configured_features_raises_no_drift(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor()
    try:
        said = [r.getMessage() for r in caplog.records if "features the reference has" in r.getMessage()]
        assert len(said) == 1 and ": c (the config lists a, b)" in said[0] and "left out: pca_drift" in said[0]
        kinds = [d.kind for d in mon.detectors]
        assert "input_drift" in kinds and "pca_drift" not in kinds
        rng = np.random.default_rng(1)
        for i in range(40):  # 20,000 rows of a and b as the reference has them
            mon.observe(rng.normal(size=(500, 2)), rng.dirichlet([1.0, 1.0], 500), timestamp=T0 + 60 * i)
            mon.flush()
        mon.pipeline.export(T0 + 2400)
        assert mon.store.value("monitor_drift_detected", ("input_drift",)) == 0
        watched = {labels["feature"] for name, labels, _ in mon.store.samples() if name == "monitor_drift_feature_score_ratio"}
        assert watched == {"a", "b"}
    finally:
        mon.close()


def test_a_listed_pca_drift_is_refused_at_its_entry() -> None:
    with pytest.raises(ConfigError) as err:
        _monitor(detectors=["input_drift", "pca_drift"])
    assert err.value.key == "detectors[1]"
    assert "lack c" in err.value.problem and "list them under features" in err.value.fix


def test_features_that_cover_the_reference_change_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(features=["a", "b", "c"])
    try:
        assert not [r for r in caplog.records if "features the reference has" in r.getMessage()]
        assert {"input_drift", "pca_drift"} <= {d.kind for d in mon.detectors}
    finally:
        mon.close()


def test_a_reference_of_unnamed_columns_is_told_to_be_named(caplog: pytest.LogCaptureFixture) -> None:
    """``Reference.from_arrays(X)`` names its columns f0.., which configured features never match:
    input drift watched every one as "no data" (in alarm from the first rows). The default input
    and PCA drift are left out, said with the fix; the monitor starts (it was refused at first,
    a walkthrough test of session 7 showed)."""
    rng = np.random.default_rng(0)
    ref = Reference.from_arrays(rng.normal(size=(500, 2)), scores=rng.dirichlet([1.0, 1.0], 500))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = Monitor("m", config={"features": ["a", "b"], "output": {"kind": "probabilities"}}, reference=ref,
                      registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        said = [r.getMessage() for r in caplog.records if "features the reference has" in r.getMessage()]
        assert len(said) == 1 and "left out: input_drift, pca_drift" in said[0] and "numeric_names=" in said[0]
        assert not {"input_drift", "pca_drift"} & {d.kind for d in mon.detectors}
    finally:
        mon.close()
    with pytest.raises(ConfigError) as err:
        Monitor("m", config={"features": ["a", "b"], "output": {"kind": "probabilities"}, "detectors": ["input_drift"]},
                reference=ref, registry=CollectorRegistry(), live=False, start_worker=False)
    assert err.value.key == "detectors[0]" and "numeric_names=" in err.value.fix
