"""The confidence benchmark's end-to-end section, smaller: a scikit-learn model on ``wine`` streams
through a Monitor with this issue's default detectors and the shipped output rule packs
(``rules/confidence.yml``, ``rules/core.yml``, ``for:`` as shipped).

Bounds: no alert at all over 2 hours of unshifted traffic; with Gaussian noise of 2 sd on half the
rows from hour 1, the over-confidence and error-rate alerts fire within the hour after the onset,
and nothing fires before it. (ModelAccuracyDrop fired here too while it took the 44-row reference's
accuracy as exact; allowing for its sampling error, about 6 points on 44 rows, the 14-point drop
is under z 3: ModelErrorRateRose, against the window before, sees it at 27 minutes.)
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
    assert {"ModelOverconfident", "ModelErrorRateRose"} <= set(fired), fired
    assert max(fired["ModelOverconfident"], fired["ModelErrorRateRose"]) <= 60.0
    assert accuracy[0] - accuracy[1] > 0.1  # the shift really costs accuracy (the table's column)


@pytest.fixture(scope="module")
def wine_pool(bench, wine):
    """The table's deployment configuration: the pool as the reference, the PCA's directions from
    the training half (``pca_fit``)."""
    return bench.pool_reference(wine)


def test_every_pack_silent_on_unshifted_wine_traffic(bench, wine_pool) -> None:
    fired, early, _ = bench.run_rule_packs(wine_pool, "none", seed=3, hours=(1.0, 1.0), packs=bench.ALL_PACKS,
                                           kinds=None)
    assert fired == {} and early == []


def test_multivariate_drift_fires_on_wine_noise_with_training_directions(bench, wine_pool) -> None:
    """1-sd noise on half the rows: the PCA drift alert within 15 minutes of the onset (3 min on
    the table's two seeds). With the PCA fitted on the 45-row pool itself, the stream's rows are
    the rows it was fitted on, and the alert came after 81 minutes on one seed of two."""
    fired, early, _ = bench.run_rule_packs(wine_pool, "noise_1", seed=3, hours=(1.0, 1.0), packs=bench.ALL_PACKS,
                                           kinds=None)
    assert early == []
    assert fired.get("ModelMultivariateDrift", float("inf")) <= 15.0, fired
