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
    """``Reference.from_arrays(X)`` names its columns f0.., which configured features never match
    by name: input drift watched every one as "no data" (in alarm from the first rows). With as
    many features as columns they are named in order (next test); otherwise the default input and
    PCA drift are left out, said with the fix, and the monitor starts (it was refused at first, a
    walkthrough test of session 7 showed)."""
    rng = np.random.default_rng(0)
    ref = Reference.from_arrays(rng.normal(size=(500, 3)), scores=rng.dirichlet([1.0, 1.0], 500))
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


@pytest.mark.parametrize("pca_fit", [False, True])
def test_as_many_unnamed_columns_as_features_are_read_in_order(pca_fit: bool) -> None:
    """Array inputs are read in the configured features' order, so column i of an unnamed
    reference is feature i: input and PCA drift watch them under the configured names, and a
    shift of the second column is named as feature b."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 3))
    ref = Reference.from_arrays(x, scores=rng.dirichlet([1.0, 1.0], 3000),
                                pca_fit=rng.normal(size=(2000, 3)) if pca_fit else None)
    mon = Monitor("m", config={"features": ["a", "b", "c"], "output": {"kind": "probabilities"},
                               "detectors": ["input_drift", "pca_drift"]},
                  reference=ref, registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        for i in range(20):
            rows = rng.normal(size=(500, 3))
            rows[:, 1] = rows[:, 1] * 3.0 + 2.0  # b drifts
            mon.observe(rows, rng.dirichlet([1.0, 1.0], 500), timestamp=T0 + 60 * i)
            mon.flush()
        mon.pipeline.export(T0 + 1200)
        assert mon.store.value("monitor_drift_detected", ("input_drift",)) == 1
        top = [labels["feature"] for name, labels, _ in mon.store.samples()
               if name == "monitor_drift_top_feature" and labels.get("detector") == "input_drift" and labels["rank"] == "1"]
        assert top == ["b"]
        assert mon.store.value("monitor_drift_window_rows", ("pca_drift",)) == 10_000
        assert ref.numeric_names == ("f0", "f1", "f2")  # the monitor's own reference is kept as given
    finally:
        mon.close()


def test_the_default_probing_is_left_out_too_and_no_detector_fails(caplog: pytest.LogCaptureFixture) -> None:
    """probing reads the rows' numeric columns as the reference's, by position: with the config's
    two of the reference's three, every update raised (monitor_detector_errors_total, a traceback
    in the log per batch) and it saw nothing, while the warning said only pca_drift was left out."""
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor()
    try:
        said = [r.getMessage() for r in caplog.records if "features the reference has" in r.getMessage()]
        assert len(said) == 1 and "left out: pca_drift, probing" in said[0]
        assert "probing" not in [d.kind for d in mon.detectors]
        rng = np.random.default_rng(2)
        for i in range(3):
            mon.observe(rng.normal(size=(50, 2)), rng.dirichlet([1.0, 1.0], 50), client=f"c{i}", timestamp=T0 + i)
        mon.flush()
        errors = {labels["detector"]: v for name, labels, v in mon.store.samples() if name == "monitor_detector_errors_total"}
        assert not any(errors.values()), errors
    finally:
        mon.close()


def test_a_listed_probing_is_refused_at_its_entry_and_one_on_embeddings_is_kept() -> None:
    with pytest.raises(ConfigError) as err:
        _monitor(detectors=["input_drift", "probing"])
    assert err.value.key == "detectors[1]" and "lack c" in err.value.problem
    rng = np.random.default_rng(3)
    ref = Reference.from_arrays(rng.normal(size=(3000, 3)), numeric_names=["a", "b", "c"],
                                scores=rng.dirichlet([1.0, 1.0], 3000), embedding=rng.normal(size=(3000, 4)))
    mon = Monitor("m", config={"features": ["a", "b"], "output": {"kind": "probabilities"},
                               "detectors": [{"kind": "probing", "space": "embedding"}]},
                  reference=ref, registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        assert [d.kind for d in mon.detectors] == ["probing"]
    finally:
        mon.close()
