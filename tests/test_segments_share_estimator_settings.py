"""The segments detector's per-segment CBPE and ATC estimates use the accuracy-estimation
detector's settings: ``atc_score`` / ``prior_weight`` given to one of the two is taken by the other
(the segments fitted ATC-NE with a prior of 2 whatever was given, so that a segment holding every
row was estimated by another estimator than the whole window), and two different values are refused."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.catalog import confidence as names
from monitor.config import ConfigError, parse_config


def _reference(rng: np.random.Generator, n: int = 2000) -> tuple[Reference, np.ndarray]:
    z = rng.normal(size=(n, 4)) * 2.0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.where(rng.random(n) < p.max(axis=1), p.argmax(axis=1), rng.integers(0, 4, n))
    return Reference.from_arrays(np.zeros((n, 1)), scores=p, labels=labels), p


@pytest.mark.parametrize("settings", [{"atc_score": "confidence"}, {"prior_weight": 0.0}])
def test_one_segment_holding_every_row_is_estimated_as_the_whole_window(settings: dict) -> None:
    rng = np.random.default_rng(3)
    reference, _ = _reference(rng)
    dets = [{"kind": "accuracy_estimation", **settings}, {"kind": "segments"}]
    mon = Monitor("m", config={"detectors": dets}, reference=reference, registry=CollectorRegistry(), live=False,
                  start_worker=False)
    _, live = _reference(np.random.default_rng(4), 600)
    live = live ** 1.5  # sharper than the reference: the estimators disagree with each other
    live /= live.sum(axis=1, keepdims=True)
    mon.observe(np.zeros((600, 1)), live, segment="all", timestamp=1000.0)
    mon.flush()
    for estimator in ("cbpe", "atc"):
        whole = mon.store.value(names.ESTIMATED_ACCURACY, (estimator,))
        segment = mon.store.value(names.SEGMENT_ESTIMATED_ACCURACY, ("all", estimator))
        assert whole is not None and segment == pytest.approx(whole, abs=1e-12), (estimator, whole, segment)
    mon.close()


def test_two_different_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"detectors\[1\]\.atc_score.*detectors\[0\]\.atc_score \('entropy'\)"):
        parse_config({"detectors": [{"kind": "accuracy_estimation", "atc_score": "entropy"},
                                    {"kind": "segments", "atc_score": "confidence"}]})
    same = parse_config({"detectors": [{"kind": "segments", "prior_weight": 1.0}, {"kind": "accuracy_estimation"}]}).model()
    assert [d.params["prior_weight"] for d in same.detectors] == [1.0, 1.0]
