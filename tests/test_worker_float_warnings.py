"""numpy's floating-point warnings of the monitor's own figures never reach the user's stderr.
Regression outputs and labels near the float limit (1e308), logits of +-1e308: the worker thread
printed "overflow encountered in subtract/cast/reduceat" and "invalid value encountered in add"
(regression.py, labels.py, _pending.py, windows.py, scipy's logsumexp: 20 warnings here), once per
line of code, or raised them where the user's process turns warnings into errors. The pipeline's
entry points now run with them ignored (monitor.float_errors), in whichever thread runs them (the
worker, flush, a scrape), and restore the thread's error state on the way out."""

from __future__ import annotations

import warnings

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor


def _feed(mon: Monitor, rng: np.random.Generator, kind: str) -> None:
    for k in range(12):
        ids = [f"{k}-{i}" for i in range(40)]
        if kind == "regression":
            y = np.full(40, 1e308 * (1 if k % 2 else -1)) if k % 3 == 0 else rng.normal(size=40)
            mon.observe(rng.normal(size=(40, 3)), y, timestamp=1e9 + 30 * k, request_id=ids)
            mon.feedback(ids, (-y).tolist(), timestamp=1e9 + 30 * k + 1)
        else:
            out = np.tile([1e308, -1e308, 0.0], (40, 1)) if k % 3 == 0 else rng.normal(size=(40, 3))
            mon.observe(rng.normal(size=(40, 3)), out, timestamp=1e9 + 30 * k, request_id=ids)
            mon.feedback(ids, ["x"] * 40, timestamp=1e9 + 30 * k + 1)
        mon.flush()


def test_the_worker_thread_says_no_floating_point_warning() -> None:
    rng = np.random.default_rng(5)
    configs = {"regression": {"output": {"kind": "regression"}},
               "logits": {"output": {"kind": "logits", "classes": ["x", "y", "z"]}}}
    before = np.geterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for kind, config in configs.items():
            mon = Monitor(model=kind, config=config, registry=CollectorRegistry())
            try:
                assert mon.worker is not None and mon.worker._thread.is_alive()
                _feed(mon, rng, kind)
                # regression outputs of 1e308 (4 calls of 40 rows) are refused as output_too_large
                # since session 37 (beyond 1e150, as labels are): every row is still accounted for
                refused = 160 if kind == "regression" else 0
                assert mon.store.value("monitor_predictions") == 480 - refused
                assert (mon.store.value("monitor_rows_rejected", labels=("output_too_large",)) or 0) == refused
                assert not mon.store.value("monitor_internal_errors", labels=("ingest",))
            finally:
                mon.close()
    said = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if issubclass(w.category, RuntimeWarning)]
    assert said == []
    assert np.geterr() == before  # the caller's thread keeps its own error state

