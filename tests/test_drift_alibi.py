"""The alibi-detect backend: a clear error without the extra; with it (a separate virtualenv, since
alibi-detect needs numpy<2), its detectors run and export through the same metrics."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.store import MetricStore
from tests import drift_streams as S

try:
    import alibi_detect  # noqa: F401

    HAVE_ALIBI = True
except ImportError:
    HAVE_ALIBI = False

if os.environ.get("MONITOR_REQUIRE_ALIBI") == "1" and not HAVE_ALIBI:
    raise RuntimeError("MONITOR_REQUIRE_ALIBI=1 but alibi-detect is not importable: .ci/run installs it in .bench-venv")

needs_alibi = pytest.mark.skipif(
    not HAVE_ALIBI,
    reason="alibi-detect is not importable here (it pins numpy<2); run in .bench-venv: "
           "python3 -m venv .bench-venv && .bench-venv/bin/pip install -e . alibi-detect pytest pytest-timeout",
)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.from_arrays(S.sample(np.random.default_rng(0), 2000), numeric_names=S.NAMES)


def test_missing_extra_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, reference: Reference) -> None:
    monkeypatch.setitem(sys.modules, "alibi_detect", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "alibi_detect.cd", None)
    with pytest.raises(ValueError, match=r"pip install 'model-monitor\[alibi\]'"):
        create("alibi_drift", reference=reference)


def feed(det, rng: np.random.Generator, n: int, shift=None, t0: float = 0.0) -> None:
    x = S.sample(rng, n)
    if shift is not None:
        shift(x, rng, np.zeros(n))
    det.update(Batch.from_arrays(x, numeric_names=S.NAMES, ts=t0 + np.arange(n)))


@needs_alibi
def test_ksdrift_backend_flags_and_names_the_feature(reference: Reference) -> None:
    det = create("alibi_drift", reference=reference, params={"method": "KSDrift", "window": 500, "p_val": 0.001})
    rng = np.random.default_rng(1)
    feed(det, rng, 500)
    assert not det.drift_detected
    feed(det, rng, 500, S.x10(0))
    assert det.drift_detected and det.top_features[0][0] == "income"
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_drift_detected", ("alibi_drift",)) == 1.0
    assert store.value("monitor_drift_feature_pvalue", ("alibi_drift", "income", "ks")) < 1e-6
    assert store.value("monitor_drift_alarms", ("alibi_drift",)) == 1.0


@needs_alibi
def test_cvm_online_backend_detects_a_rescale(reference: Reference) -> None:
    det = create("alibi_drift", reference=reference,
                 params={"method": "CVMDriftOnline", "ert": 300, "window_sizes": [50], "n_bootstraps": 3000,
                         "features": ["income", "age"], "max_reference_rows": 500})
    rng = np.random.default_rng(2)
    feed(det, rng, 100)
    for _ in range(10):
        feed(det, rng, 20, S.x10(0))
        if det.drift_detected:
            break
    assert det.drift_detected
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_drift_statistic", ("alibi_drift",)) >= store.value("monitor_drift_statistic_threshold", ("alibi_drift",))


@needs_alibi
def test_default_online_detector_calibrates_without_parameters(reference: Reference) -> None:
    """The default method (CVMDriftOnline) at the default ERT (1,000) with the default bootstrap
    count (1.25x what the 1 - q quantile needs for these features) builds, stays quiet on 300
    unshifted rows and flags an x10 rescale within 100 rows."""
    det = create("alibi_drift", reference=reference, params={"features": ["income", "age"], "window_sizes": [50],
                                                             "max_reference_rows": 500})
    assert det.ert == 1000.0
    q = 1.0 - (1.0 - 1.0 / det.ert) ** (1.0 / 2)
    assert det.n_bootstraps == int(np.ceil(1.25 / q))
    rng = np.random.default_rng(4)
    feed(det, rng, 300)
    assert not det.drift_detected
    for _ in range(5):
        feed(det, rng, 20, S.x10(0))
        if det.drift_detected:
            break
    assert det.drift_detected


def test_missing_torch_is_named_for_the_kernel_detectors(monkeypatch: pytest.MonkeyPatch, reference: Reference) -> None:
    """MMD/LSDD need PyTorch beside the extra (which does not install it): the error names both."""
    if HAVE_ALIBI:
        import alibi_detect.cd  # noqa: F401 - imported before torch is hidden, as in a real process
    monkeypatch.setitem(sys.modules, "torch", None)  # import fails as if not installed
    for method in ("MMDDrift", "MMDDriftOnline", "LSDDDriftOnline"):
        with pytest.raises(ValueError, match=r"torch.*pip install 'model-monitor\[alibi\]' torch") as err:
            create("alibi_drift", reference=reference, params={"method": method})
        assert f"method {method!r}" in str(err.value)
    if HAVE_ALIBI:  # the numpy/scipy detectors do not need it
        assert create("alibi_drift", reference=reference, params={"method": "KSDrift"}).method == "KSDrift"


def test_unknown_backend_is_refused_by_name(reference: Reference) -> None:
    with pytest.raises(ValueError, match=r"backend must be one of pytorch, tensorflow, keops, not 'jax'"):
        create("alibi_drift", reference=reference, params={"method": "MMDDriftOnline", "backend": "jax"})


@needs_alibi
def test_cvm_online_memory_is_bounded_and_its_statistics_unchanged(reference: Reference) -> None:
    """alibi-detect's CVMDriftOnline keeps a copy of every past row and every statistic (memory and
    per-row cost grow with the stream); the backend trims both to what the next update reads, and
    alibi's own untrimmed detector fed the same rows gives the same statistics and decisions."""
    import copy

    det = create("alibi_drift", reference=reference,
                 params={"method": "CVMDriftOnline", "ert": 50, "window_sizes": [10, 20], "n_bootstraps": 2000,
                         "features": ["income", "age"], "max_reference_rows": 300})
    plain = copy.deepcopy(det._det)
    x = S.sample(np.random.default_rng(3), 150)
    S.scale(0, 1.5)(x[100:], None, None)
    ours, theirs = [], []
    for i in range(0, 150, 5):  # the backend takes batches, alibi one row at a time
        det.update(Batch.from_arrays(x[i:i + 5], numeric_names=S.NAMES, ts=np.arange(i, i + 5.0)))
        ours.append((det.statistic, det.threshold, det.in_alarm))
        for row in x[i:i + 5, :2].astype(np.float32):
            out = plain.predict(row)["data"]
        theirs.append((float(np.max(out["test_stat"])), float(np.max(out["threshold"])), bool(out["is_drift"])))
    np.testing.assert_array_equal(np.array(ours, dtype=float), np.array(theirs, dtype=float))
    assert det._det.xs.shape[0] == 20 and plain.xs.shape[0] == 150
    assert det._det.test_stats.shape[0] == 0 and plain.test_stats.shape[0] == 150


@needs_alibi
def test_cvm_online_state_round_trips_through_a_checkpoint(tmp_path, reference: Reference) -> None:
    """The online state (alibi's ``online_state_keys``, numpy arrays) goes into the monitor's
    checkpoint without pickle; restored into a detector built from the same config and seed (same
    calibration), the test continues exactly where it stopped."""
    from monitor import checkpoint

    params = {"method": "CVMDriftOnline", "ert": 50, "window_sizes": [10], "n_bootstraps": 2000,
              "features": ["income", "age"], "max_reference_rows": 300}
    a = create("alibi_drift", reference=reference, params=params)
    rng = np.random.default_rng(4)
    x = S.sample(rng, 200)
    S.x10(0)(x[120:], rng, np.zeros(80))
    a.update(Batch.from_arrays(x[:100], numeric_names=S.NAMES, ts=np.arange(100.0)))
    checkpoint.save(tmp_path / "c.ckpt", {"detector": a.state_dict()}, model="m", state_version=1)
    state, _ = checkpoint.load(tmp_path / "c.ckpt", model="m", state_version=1)
    assert set(state["detector"]["online"]) == {"t", "xs", "ids_ref_wins", "ids_wins_ref", "ids_wins_wins"}
    b = create("alibi_drift", reference=reference, params=params)
    b.load_state_dict(state["detector"])
    assert b._det.t == 100
    seen_a, seen_b = [], []
    for i in range(100, 200, 10):
        batch = Batch.from_arrays(x[i:i + 10], numeric_names=S.NAMES, ts=np.arange(i, i + 10.0))
        a.update(batch)
        b.update(batch)
        seen_a.append((a.statistic, a.threshold, a.in_alarm))
        seen_b.append((b.statistic, b.threshold, b.in_alarm))
    np.testing.assert_array_equal(np.array(seen_a, dtype=float), np.array(seen_b, dtype=float))
    assert a.drift_detected and b.drift_detected


@needs_alibi
def test_ksdrift_alarm_explanation_and_partial_window_survive_a_checkpoint(tmp_path, reference: Reference) -> None:
    from monitor import checkpoint

    params = {"method": "KSDrift", "window": 500, "p_val": 0.001}
    a = create("alibi_drift", reference=reference, params=params)
    rng = np.random.default_rng(5)
    feed(a, rng, 500, S.x10(0))
    feed(a, rng, 300)  # a partial window of unshifted rows
    checkpoint.save(tmp_path / "k.ckpt", {"detector": a.state_dict()}, model="m", state_version=1)
    state, _ = checkpoint.load(tmp_path / "k.ckpt", model="m", state_version=1)
    b = create("alibi_drift", reference=reference, params=params)
    b.load_state_dict(state["detector"])
    assert b.drift_detected and b.top_features == a.top_features and b.top_features[0][0] == "income"
    sa, sb = MetricStore("m"), MetricStore("m")
    a.export(sa)
    b.export(sb)
    assert sorted(map(repr, sa.samples())) == sorted(map(repr, sb.samples()))
    rows = S.sample(rng, 200)  # completes the window: both test the same 500 rows
    for det in (a, b):
        det.update(Batch.from_arrays(rows, numeric_names=S.NAMES, ts=np.arange(200.0)))
    assert a.windows_tested == b.windows_tested == 2
    np.testing.assert_array_equal(a.feature_pvalues, b.feature_pvalues)
    assert not a.drift_detected and not b.drift_detected
