"""The confidence benchmark's end-to-end section, smaller: a scikit-learn model on ``wine`` streams
through a Monitor with this issue's default detectors and the shipped output rule packs
(``rules/confidence.yml``, ``rules/core.yml``, ``for:`` as shipped).

Bounds: no alert at all over 2 hours of unshifted traffic; with Gaussian noise of 2 sd on half the
rows from hour 1, the over-confidence and accuracy alerts fire within the hour after the onset,
and nothing fires before it.
"""

from __future__ import annotations


import pytest

from tests.conftest import load_benchmark

pytest.importorskip("sklearn", reason="scikit-learn (dev extra) trains the benchmark model")


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("eval_confidence")


@pytest.fixture(scope="module")
def wine(bench):
    return bench.make_setup("wine")


def test_silent_on_unshifted_wine_traffic(bench, wine) -> None:
    fired, early, _ = bench.run_rule_packs(wine, "none", seed=3, hours=(1.0, 1.0))
    assert fired == {} and early == []


def test_fires_on_noisy_wine_traffic(bench, wine) -> None:
    fired, early, accuracy = bench.run_rule_packs(wine, "noise_2", seed=3, hours=(1.0, 1.0))
    assert early == []
    assert {"ModelOverconfident", "ModelAccuracyDrop"} <= set(fired), fired
    assert max(fired["ModelOverconfident"], fired["ModelAccuracyDrop"]) <= 60.0
    assert accuracy[0] - accuracy[1] > 0.1  # the shift really costs accuracy (the table's column)
