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
