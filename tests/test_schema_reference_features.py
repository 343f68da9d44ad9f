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


def _stream_with_b_drifting(mon: Monitor, rng: np.random.Generator) -> None:
    """10,000 rows of three features, the second one shifted, in 20 batches a minute apart."""
    for i in range(20):
        rows = rng.normal(size=(500, 3))
        rows[:, 1] = rows[:, 1] * 3.0 + 2.0
        mon.observe(rows, rng.dirichlet([1.0, 1.0], 500), timestamp=T0 + 60 * i)
        mon.flush()
    mon.pipeline.export(T0 + 1200)


def _top_input_drift_feature(mon: Monitor) -> list[str]:
    return [labels["feature"] for name, labels, _ in mon.store.samples()
            if name == "monitor_drift_top_feature" and labels.get("detector") == "input_drift" and labels["rank"] == "1"]


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
        _stream_with_b_drifting(mon, rng)
        assert mon.store.value("monitor_drift_detected", ("input_drift",)) == 1
        assert _top_input_drift_feature(mon) == ["b"]
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


def _array_file(tmp_path, kind: str, x: np.ndarray, scores: np.ndarray):
    if kind == "npy":
        np.save(tmp_path / "ref.npy", x)
        return tmp_path / "ref.npy"
    np.savez(tmp_path / "ref.npz", X=x, scores=scores)
    return tmp_path / "ref.npz"


@pytest.mark.parametrize("kind", ["npy", "npz"])
@pytest.mark.parametrize("pca_fit", [False, True])
def test_an_array_file_in_reference_path_is_read_in_the_features_order(tmp_path, kind: str, pca_fit: bool) -> None:
    """A ``.npy`` (or an ``.npz`` without ``feature_names``) named in ``reference.path`` has no
    column names: it was profiled under f0.., which the configured features never match, and the
    default input and PCA drift were left out (the case left alone when in-memory references
    were named in order). Its columns are now the configured features, a ``pca_fit`` array file's
    too, and a shift of the second column is named as feature b."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    path = _array_file(tmp_path, kind, x, rng.dirichlet([1.0, 1.0], 3000))
    reference: dict[str, object] = {"path": str(path)}
    if pca_fit:
        np.save(tmp_path / "train.npy", rng.normal(size=(2000, 3)))
        reference["pca_fit"] = str(tmp_path / "train.npy")
    mon = Monitor("m", config={"features": ["a", "b", "c"], "output": {"kind": "probabilities"},
                               "detectors": ["input_drift", "pca_drift"], "reference": reference},
                  registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        assert mon.reference.numeric_names == ("a", "b", "c")
        _stream_with_b_drifting(mon, rng)
        assert _top_input_drift_feature(mon) == ["b"]
        assert mon.store.value("monitor_drift_window_rows", ("pca_drift",)) == 10_000
    finally:
        mon.close()


def test_an_array_file_of_another_width_keeps_its_positional_names(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).normal(size=(500, 3)))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = Monitor("m", config={"features": ["a", "b"], "output": {"kind": "probabilities"},
                                   "reference": {"path": str(tmp_path / "ref.npy")}},
                      registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        assert mon.reference.numeric_names == ("f0", "f1", "f2")
        assert any("features the reference has" in r.getMessage() for r in caplog.records)
    finally:
        mon.close()


def test_reference_build_names_an_array_file_s_columns(tmp_path) -> None:
    from click.testing import CliRunner

    from monitor.cli import main
    from monitor.profile import Profile

    rng = np.random.default_rng(0)
    np.save(tmp_path / "ref.npy", rng.normal(size=(400, 3)))
    run = CliRunner().invoke
    res = run(main, ["reference", "build", str(tmp_path / "ref.npy"), "-o", str(tmp_path / "p.npz"), "--quiet",
                     "--feature-names", "a,b,c"])
    assert res.exit_code == 0, res.output
    assert Profile.load(tmp_path / "p.npz").numeric_names == ("a", "b", "c")
    res = run(main, ["reference", "build", str(tmp_path / "ref.npy"), "-o", str(tmp_path / "q.npz"), "--quiet",
                     "--feature-names", "a,b"])
    assert res.exit_code == 1 and "--feature-names names 2 columns" in res.output and "f0, f1, f2" in res.output
    assert not (tmp_path / "q.npz").exists()
    (tmp_path / "ref.csv").write_text("x,y\n1,2\n3,4\n")
    res = run(main, ["reference", "build", str(tmp_path / "ref.csv"), "-o", str(tmp_path / "r.npz"), "--quiet",
                     "--feature-names", "a,b"])
    assert res.exit_code == 1 and "names its columns in its header" in res.output
    res = run(main, ["reference", "build", str(tmp_path / "ref.npy"), "-o", str(tmp_path / "s.npz"), "--quiet",
                     "--feature-names", "a,a,b"])
    assert res.exit_code == 1 and "names a column twice" in res.output
