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
        assert len(said) == 1 and ": c (the config lists a, b)" in said[0] and "pca_drift is left out" in said[0]
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
    assert "lack c" in err.value.problem and "list c under features" in err.value.fix


def test_features_that_cover_the_reference_change_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(features=["a", "b", "c"])
    try:
        assert not [r for r in caplog.records if "features the reference has" in r.getMessage()]
        assert {"input_drift", "pca_drift"} <= {d.kind for d in mon.detectors}
    finally:
        mon.close()
