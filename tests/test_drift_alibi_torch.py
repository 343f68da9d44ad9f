"""alibi-detect's PyTorch-backed drift detectors (``MMDDrift``, ``MMDDriftOnline``,
``LSDDDriftOnline``) through the monitor's own config path, on seeded streams.

They need alibi-detect *and* PyTorch, in a separate virtualenv (alibi-detect pins numpy<2):
``.ci/run`` installs both in ``.bench-venv`` and runs this file with ``MONITOR_REQUIRE_TORCH=1``, so
that a missing PyTorch fails there instead of skipping. Elsewhere the tests skip with the reason.

Bounds. The online detectors' thresholds are alibi-detect's own bootstrap calibration for an
expected run time ``ERT`` (mean rows to a false alarm from a fresh start), so on unshifted rows
false alarms arrive at about one per ``ERT`` rows. Its calibration costs about
``n_bootstraps * window`` tensor operations, so the tests use ``ERT = 200`` rows with the ten-fold
``n_bootstraps = 2000`` alibi-detect recommends and a window of 10 rows (seconds), and check
counts against Poisson tails rather than "no alarm ever": a null stream of ``2 * ERT`` rows
expects 2 alarms and may raise at most 8 (P(Poisson(2) >= 9) = 0.02%). A clear shift (one feature
scaled x10) must be flagged within two windows (20 rows; 5 to 8 seen over seeds) and stay flagged
while it lasts: one alarm, not several (with a 5-row window both detectors flap on and off under
this shift, and LSDD's statistic is bounded once no row of the window is near its kernel centres,
so a window of 10 is the smallest that holds the alarm here). The batch ``MMDDrift`` tests windows
of 100 rows at ``p_val = 0.01`` (a permutation p-value from 100 permutations: a false positive per
window with probability 1/101): of 10 null windows at most 2 may be flagged (P(Binomial(10, 1/101)
>= 3) = 0.011%), and the first window of x10-scaled rows must be.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.registry import create
from monitor.reference import Reference
from tests import drift_streams as S

try:
    import alibi_detect  # noqa: F401
    import torch

    HAVE_TORCH = True
    WHY = ""
except ImportError as err:
    HAVE_TORCH = False
    WHY = str(err)

if os.environ.get("MONITOR_REQUIRE_TORCH") == "1" and not HAVE_TORCH:
    raise RuntimeError(f"MONITOR_REQUIRE_TORCH=1 but alibi-detect with PyTorch is not importable ({WHY}): "
                       ".ci/run installs torch==2.13.0 (CPU) and alibi-detect in .bench-venv")

pytestmark = pytest.mark.skipif(
    not HAVE_TORCH,
    reason=f"alibi-detect with PyTorch is not importable here ({WHY}); run in .bench-venv: "
           ".bench-venv/bin/pip install -e . alibi-detect torch==2.13.0 pytest pytest-timeout",
)

FEATURES = ["income", "age", "score"]
ERT = 200
WINDOW = 10
ONLINE_PARAMS = {"ert": ERT, "window_sizes": [WINDOW], "n_bootstraps": 10 * ERT, "features": FEATURES,
                 "max_reference_rows": 500}
T0 = 1.7e9


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """alibi-detect's calibration is thousands of tiny tensor operations: PyTorch's thread pool only
    adds overhead there (measured 20x slower with 2 threads on a busy 2-core machine)."""
    if not HAVE_TORCH:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.from_arrays(S.sample(np.random.default_rng(0), 2000), numeric_names=S.NAMES)


def monitor_with(reference: Reference, method: str, **params):
    """A Monitor whose config selects one alibi detector, as a user's monitor.yaml would."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    cfg = {"model": "m", "features": list(S.NAMES), "output": {"kind": "regression"}, "seed": 0,
           "detectors": [{"kind": "alibi_drift", "method": method, **params}]}
    return Monitor(config=cfg, reference=reference, registry=CollectorRegistry(), start_worker=False, live=False)


def observe(mon, x: np.ndarray, t: float) -> None:
    mon.observe(x, np.zeros(x.shape[0]), timestamp=t)
    mon.flush()


def value(mon, name: str) -> float | None:
    return mon.store.value(name, ("alibi_drift",))


@pytest.mark.parametrize("method", ["MMDDriftOnline", "LSDDDriftOnline"])
def test_online_detector_keeps_its_ert_and_flags_a_rescale(reference: Reference, method: str) -> None:
    mon = monitor_with(reference, method, **ONLINE_PARAMS)
    try:
        det = mon.detectors[0]
        assert det.method == method and det._inner.backend == "pytorch"
        rng = np.random.default_rng(11)
        null = S.sample(rng, 2 * ERT)
        for i in range(0, null.shape[0], 50):
            observe(mon, null[i:i + 50], T0 + i)
        false_alarms = value(mon, "monitor_drift_alarms")
        assert false_alarms is not None and false_alarms <= 8, f"{false_alarms} false alarms in {2 * ERT} rows at ERT {ERT}"
        assert value(mon, "monitor_drift_ert_events") == ERT
        assert value(mon, "monitor_drift_statistic") is not None and value(mon, "monitor_drift_statistic_threshold") > 0

        det.reset()  # a fresh start (alibi's test window back on reference rows), then the shift
        shifted = S.sample(rng, 4 * WINDOW)
        S.x10(0)(shifted, rng, np.zeros(shifted.shape[0]))
        delay = None
        for i in range(shifted.shape[0]):
            observe(mon, shifted[i:i + 1], T0 + 10_000 + i)
            if value(mon, "monitor_drift_detected") == 1.0:
                delay = i + 1
                break
        assert delay is not None and delay <= 2 * WINDOW, f"x10 on income flagged after {delay} rows (window {WINDOW})"
        assert value(mon, "monitor_drift_statistic") > value(mon, "monitor_drift_statistic_threshold")
        assert value(mon, "monitor_drift_alarms") == false_alarms + 1
        for i in range(delay, shifted.shape[0]):  # the shift goes on: the alarm holds, no new one
            observe(mon, shifted[i:i + 1], T0 + 10_000 + i)
            assert value(mon, "monitor_drift_detected") == 1.0, f"alarm dropped {i + 1 - delay} rows after detection"
        assert value(mon, "monitor_drift_alarms") == false_alarms + 1
        # multivariate kernel tests do not rank features: no explanation series is invented
        assert not [s for s in mon.store.samples() if s[0] == "monitor_drift_top_feature"]
    finally:
        mon.close()


def test_mmd_batch_detector_holds_its_level_and_flags_a_rescale(reference: Reference) -> None:
    mon = monitor_with(reference, "MMDDrift", window=100, p_val=0.01, features=FEATURES, max_reference_rows=500)
    try:
        rng = np.random.default_rng(12)
        null = S.sample(rng, 10 * 100)
        for i in range(0, null.shape[0], 50):
            observe(mon, null[i:i + 50], T0 + i)
        flagged = value(mon, "monitor_drift_alarms")
        assert flagged is not None and flagged <= 2, f"{flagged} of 10 null windows flagged at p_val=0.01"
        assert 0.0 <= value(mon, "monitor_drift_pvalue") <= 1.0
        assert mon.detectors[0].windows_tested == 10

        shifted = S.sample(rng, 100)
        S.x10(0)(shifted, rng, np.zeros(100))
        observe(mon, shifted[:99], T0 + 5000)
        assert mon.detectors[0].windows_tested == 10  # the window is not full yet: no test
        observe(mon, shifted[99:], T0 + 5001)
        assert value(mon, "monitor_drift_detected") == 1.0
        assert value(mon, "monitor_drift_pvalue") < 0.01
        assert value(mon, "monitor_drift_statistic") > value(mon, "monitor_drift_statistic_threshold")
    finally:
        mon.close()


@pytest.mark.parametrize("method", ["MMDDriftOnline", "LSDDDriftOnline"])
def test_trimming_alibis_history_changes_no_statistic(reference: Reference, method: str) -> None:
    """The detector empties the per-row history alibi-detect appends (its memory and per-row cost
    grow with the stream otherwise); alibi's own detector fed the same rows gives the same figures."""
    det = create("alibi_drift", reference=reference,
                 params={"method": method, "ert": 50, "window_sizes": [WINDOW], "n_bootstraps": 100, "features": FEATURES,
                         "max_reference_rows": 300})
    plain = copy.deepcopy(det._det)  # alibi-detect's detector as calibrated, driven directly below
    x = S.sample(np.random.default_rng(13), 120)
    S.scale(0, 1.5)(x[60:], None, None)
    ours, theirs = [], []
    for i in range(x.shape[0]):
        det.update(Batch.from_arrays(x[i:i + 1], numeric_names=S.NAMES, ts=np.array([float(i)])))
        ours.append((det.statistic, det.in_alarm))
        out = plain.predict(x[i, :3].astype(np.float32))["data"]
        theirs.append((float(out["test_stat"]), bool(out["is_drift"])))
    np.testing.assert_array_equal(np.array(ours, dtype=float), np.array(theirs, dtype=float))
    assert det._inner.test_stats.size == 0 and plain.test_stats.size == x.shape[0]


@pytest.mark.parametrize("method,params", [
    ("MMDDriftOnline", {"ert": 50, "window_sizes": [WINDOW], "n_bootstraps": 500}),
    ("LSDDDriftOnline", {"ert": 50, "window_sizes": [WINDOW], "n_bootstraps": 500}),
    ("MMDDrift", {"window": 40, "p_val": 0.05, "seed_windows": True}),
])
def test_checkpoint_holds_alibis_state_without_pickle(tmp_path, reference: Reference, method: str, params: dict) -> None:
    """Saved with the monitor's checkpoint (JSON + .npy, no pickle) and restored into a detector
    built from the same config, the test continues exactly where it stopped: same statistics, same
    p-values, same alarms, on the same new rows."""
    from monitor import checkpoint

    full = {"method": method, "features": FEATURES, "max_reference_rows": 300, **params}
    a = create("alibi_drift", reference=reference, params=full)
    rng = np.random.default_rng(14)
    x = S.sample(rng, 230)
    S.x10(0)(x[150:], rng, np.zeros(80))
    a.update(Batch.from_arrays(x[:130], numeric_names=S.NAMES, ts=np.arange(130.0)))
    path = tmp_path / "a.ckpt"
    checkpoint.save(path, {"detector": a.state_dict()}, model="m", state_version=1)
    state, _ = checkpoint.load(path, model="m", state_version=1)
    b = create("alibi_drift", reference=reference, params=full)
    b.load_state_dict(state["detector"])
    if method in ("MMDDriftOnline", "LSDDDriftOnline"):
        assert b._inner.t == a._inner.t == 130
        assert torch.equal(b._inner.test_window, a._inner.test_window)
    seen_a, seen_b = [], []
    for i in range(130, 230, 10):
        batch = Batch.from_arrays(x[i:i + 10], numeric_names=S.NAMES, ts=np.arange(i, i + 10.0))
        a.update(batch)
        b.update(batch)
        seen_a.append((a.statistic, a.threshold, a.pvalue, a.in_alarm))
        seen_b.append((b.statistic, b.threshold, b.pvalue, b.in_alarm))
    np.testing.assert_array_equal(np.array(seen_a, dtype=float), np.array(seen_b, dtype=float))
    assert a.drift_detected and b.drift_detected  # the x10 rows after the restore are flagged by both


def test_a_checkpoint_from_another_calibration_restarts_the_test(reference: Reference) -> None:
    params = {"method": "MMDDriftOnline", "ert": 50, "window_sizes": [WINDOW], "n_bootstraps": 500,
              "features": FEATURES, "max_reference_rows": 300}
    a = create("alibi_drift", reference=reference, params=params)
    a.update(Batch.from_arrays(S.sample(np.random.default_rng(15), 40), numeric_names=S.NAMES, ts=np.arange(40.0)))
    other = create("alibi_drift", reference=reference, params={**params, "seed": 1})  # other split, other thresholds
    other.load_state_dict(a.state_dict())
    assert other._inner.t == 0 and other.rows_seen == 40  # restarted, counters kept
    same = create("alibi_drift", reference=reference, params=params)
    same.load_state_dict(a.state_dict())
    assert same._inner.t == 40


def test_too_few_bootstraps_for_the_ert_is_a_clear_error(reference: Reference) -> None:
    with pytest.raises(ValueError, match=r"n_bootstraps=100 is too few for ert=500.*at least 600"):
        create("alibi_drift", reference=reference,
               params={"method": "MMDDriftOnline", "ert": 500, "n_bootstraps": 100, "features": FEATURES})
    # enough for the first window but not for the ones after it: alibi's own error, explained
    with pytest.raises(ValueError, match=r"could not calibrate ert=100 from n_bootstraps=100 .*raise n_bootstraps"):
        create("alibi_drift", reference=reference,
               params={"method": "MMDDriftOnline", "ert": 100, "n_bootstraps": 100, "window_sizes": [WINDOW],
                       "features": FEATURES, "max_reference_rows": 300})


def test_a_monitor_restored_from_its_checkpoint_continues_the_online_test(tmp_path, reference: Reference) -> None:
    """The whole path: a Monitor's checkpoint file holds the MMD detector's online state; a new
    Monitor from the same config restores it and exports the same figures on the same new rows."""
    from monitor import checkpoint
    from monitor.core import STATE_VERSION

    params = {"ert": 50, "window_sizes": [WINDOW], "n_bootstraps": 500, "features": FEATURES, "max_reference_rows": 300}
    a = monitor_with(reference, "MMDDriftOnline", **params)
    b = monitor_with(reference, "MMDDriftOnline", **params)
    try:
        rng = np.random.default_rng(16)
        x = S.sample(rng, 160)
        S.x10(0)(x[100:], rng, np.zeros(60))
        observe(a, x[:90], T0)
        path = tmp_path / "m.ckpt"
        checkpoint.save(path, a.state_dict(), model="m", state_version=STATE_VERSION)
        restored, failure = checkpoint.restore(b, path)
        assert (restored, failure) == (True, None)
        assert b.detectors[0]._inner.t == 90
        names = ("monitor_drift_statistic", "monitor_drift_statistic_threshold", "monitor_drift_detected")
        for i in range(90, 160, 10):
            observe(a, x[i:i + 10], T0 + i)
            observe(b, x[i:i + 10], T0 + i)
            assert [value(a, n) for n in names] == [value(b, n) for n in names]
        assert value(b, "monitor_drift_detected") == 1.0
    finally:
        a.close()
        b.close()
