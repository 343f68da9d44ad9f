"""Probabilities computed in float32 land a few units of its last place outside [0, 1]; such rows
are read (clipped), not refused, while a value truly out of range still is."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor


def _monitor(config: dict | None = None) -> Monitor:
    return Monitor("m", config=config, registry=CollectorRegistry(), live=False, start_worker=False)


def _float32_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """A confident float32 softmax whose last class is computed as 1 minus the others' sum."""
    z = (rng.normal(size=(n, k)) * 8.0).astype(np.float32)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[:, -1] = np.float32(1.0) - p[:, :-1].sum(axis=1)
    return p


def test_float32_rounding_below_zero_is_read_not_refused() -> None:
    """2,000 such rows of 10 classes, of which (seeded) dozens hold a value below 0 (down to
    -2.4e-7): every one is a prediction, none refused; a row with -0.01 is still refused."""
    p = _float32_rows(np.random.default_rng(0), 2000, 10)
    assert (p < 0).any(axis=1).sum() >= 20 and p.min() >= -3e-7
    bad = np.array([[0.51, 0.5] + [0.0] * 7 + [-0.01]], dtype=np.float32)
    mon = _monitor()
    mon.observe(np.zeros((2001, 2)), np.vstack([p, bad]), timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_predictions") == 2000
    assert mon.store.value("monitor_rows_rejected", ("probability_out_of_range",)) == 1


def test_ensemble_members_and_multilabel_rows_take_the_same_tolerance() -> None:
    """The same rounding in each member of an ensemble (samples x classes), and a multi-label
    model's independent probabilities of -1e-7 and 1 + 1e-7: read; -0.01 and 1.01 refused."""
    rng = np.random.default_rng(1)
    members = np.stack([_float32_rows(rng, 500, 4) for _ in range(3)], axis=1)
    assert (members < 0).any()
    mon = _monitor({"output": {"samples_axis": True}})
    mon.observe(np.zeros((500, 2)), members, timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_predictions") == 500
    multi = _monitor({"output": {"kind": "multilabel", "classes": ["a", "b", "c"]}})
    rows = np.array([[-1e-7, 0.5, 1.0 + 1e-7], [0.2, 0.3, 0.4], [-0.01, 0.5, 0.5], [0.5, 1.01, 0.0]])
    multi.observe(np.zeros((4, 2)), rows, timestamp=1000.0)
    multi.flush()
    assert multi.store.value("monitor_predictions") == 2
    assert multi.store.value("monitor_rows_rejected", ("probability_out_of_range",)) == 2
