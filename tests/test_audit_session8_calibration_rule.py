"""Audit (session 8) of issue 3 item 6: the shipped ModelCalibrationErrorHigh alert fires.

Before this file no test made ModelCalibrationErrorHigh fire (only the benchmark's digits 2-sd
stream did, in benchmarks/results/confidence.md). The stream here is the case the alert exists
for beyond the mean gap: a model over-confident above its median confidence and under-confident
below it by 15 points, so that its mean confidence equals its accuracy while its reliability
diagram is far from the diagonal (debiased L2 calibration error about 0.15 > 0.1). (The weighted
over-confidence test may fire too, since it weighs the confident rows' errors more: correctly, the
confident half is over-confident; this file asserts the calibration-error alert only.)

Seeded streams through the agent's own rule evaluator with the shipped ``rules/confidence.yml``
(``for:`` as shipped), using the harness of tests/test_confidence_rules.py: 1 h calibrated, then
2 h miscalibrated, every row labelled at once.
"""

from __future__ import annotations

import numpy as np
import pytest

from scipy.stats import beta

from monitor.reference import Reference
from tests.test_confidence_rules import HOUR, K, fired, outputs


#: Median confidence of the stream (0.1 + 0.9 Beta(3, 1.5)): the split of over- and under-confidence.
SPLIT = 0.1 + 0.9 * float(beta.ppf(0.5, 3.0, 1.5))


def _two_sided(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """A 10-class model with confidences spread over [0.1, 1]; right with probability
    ``conf - shift`` above the median and ``conf + shift`` below it (``shift`` 0: calibrated)."""
    y = rng.integers(0, K, n)
    conf = 0.1 + 0.9 * rng.beta(3.0, 1.5, n)
    p_right = np.clip(np.where(conf > SPLIT, conf - shift, conf + shift), 0.0, 1.0)
    right = rng.random(n) < p_right
    pred = np.where(right, y, (y + rng.integers(1, K, n)) % K)
    probs = np.repeat(((1.0 - conf) / (K - 1))[:, None], K, axis=1)
    probs[np.arange(n), pred] = conf
    return probs, y


def _stream(shift: float):
    def stream(rng: np.random.Generator, t: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs, y = _two_sided(rng, n, shift if t >= HOUR else 0.0)
        return probs, y, np.full(n, None, dtype=object)

    return stream


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(8)
    probs, y = outputs(rng, 2000)
    return Reference.from_arrays(np.zeros((2000, 1)), scores=probs, labels=y, classes=[f"c{i}" for i in range(K)])


def test_the_seeded_stream_has_no_mean_gap_but_a_large_calibration_error() -> None:
    """The premise, checked on 200,000 rows: mean gap within 1 point, yet 15 points off per side."""
    rng = np.random.default_rng(1)
    probs, y = _two_sided(rng, 200_000, 0.15)
    conf, right = probs.max(axis=1), probs.argmax(axis=1) == y
    assert abs(conf.mean() - right.mean()) < 0.01
    hi = conf > SPLIT
    assert conf[hi].mean() - right[hi].mean() > 0.12 and right[~hi].mean() - conf[~hi].mean() > 0.12


def test_calibration_error_alert_fires_on_a_two_sided_miscalibration(reference: Reference) -> None:
    names = fired(_stream(0.15), ("calibration",), reference, hours=3.0, seed=11)
    assert "ModelCalibrationErrorHigh" in names, names


def test_calibration_error_alert_is_silent_on_the_calibrated_stream(reference: Reference) -> None:
    assert fired(_stream(0.0), ("calibration",), reference, hours=3.0, seed=12) == set()
