"""Two-sample tests and effect sizes of monitor.stats.univariate / multiple_testing."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

from monitor.stats import multiple_testing as mt
from monitor.stats.univariate import (
    bin_index,
    chi2_test,
    compare_counts,
    histogram,
    js_distance,
    ks_2samp,
    ks_binned,
    ks_statistic,
    psi,
    quantile_edges,
    two_sample,
    wasserstein_normalised,
)


def test_exact_ks_matches_scipy_exact_without_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.normal(size=rng.integers(10, 60))
        b = rng.normal(rng.uniform(0, 1), 1, size=rng.integers(10, 60))
        ours = ks_2samp(a, b)
        ref = st.ks_2samp(a, b, method="exact")
        assert ours.method == "exact"
        assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)


def test_exact_ks_with_ties_matches_permutation_distribution() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 4, 60).astype(float)
    b = rng.integers(0, 4, 50).astype(float) + (rng.random(50) < 0.25)
    res = ks_2samp(a, b)
    pooled = np.concatenate([a, b])
    edges = np.unique(pooled)[1:]
    n_perm = 4000
    hits = 0
    for _ in range(n_perm):
        p = rng.permutation(pooled)
        hits += ks_statistic(histogram(p[:60], edges), histogram(p[60:], edges)) >= res.statistic - 1e-12
    mc = hits / n_perm
    se = np.sqrt(res.pvalue * (1 - res.pvalue) / n_perm)
    assert abs(mc - res.pvalue) < 4 * se + 1e-3


def test_ks_is_valid_on_discrete_features() -> None:
    """Under the null with heavy ties, at most 5% of seeded pairs reach p < 0.05 (+ MC slack),
    and the test is not uselessly conservative (>= 1% do): ties are handled, not ignored."""
    rng = np.random.default_rng(3)
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    flagged = 0
    n = 400
    for _ in range(n):
        a = rng.choice(4, size=150, p=probs).astype(float)
        b = rng.choice(4, size=100, p=probs).astype(float)
        flagged += ks_2samp(a, b).pvalue < 0.05
    assert flagged / n <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / n)
    assert flagged / n >= 0.01


def test_ks_binned_statistic_never_splits_ties() -> None:
    x = np.array([0, 0, 0, 0, 1, 1, 2, 5, 5, 5], dtype=float)
    edges = quantile_edges(x, n_bins=3)
    idx = bin_index(x, edges)
    for v in np.unique(x):
        assert np.unique(idx[x == v]).size == 1
    assert quantile_edges([3, 3, 7, 7, 9], n_bins=8).tolist() == [7.0, 9.0]


def test_ks_asymptotic_on_large_samples_detects_shift_and_not_null() -> None:
    rng = np.random.default_rng(4)
    edges = quantile_edges(rng.normal(size=20000), 16)
    ref = histogram(rng.normal(size=20000), edges)
    same = ks_binned(ref, histogram(rng.normal(size=5000), edges))
    shifted = ks_binned(ref, histogram(rng.normal(0.2, 1, size=5000), edges))
    assert same.method == "asymptotic" and same.pvalue > 0.001
    assert shifted.pvalue < 1e-10


def test_chi2_null_rate_and_power() -> None:
    rng = np.random.default_rng(5)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    null = [chi2_test(rng.multinomial(300, p), rng.multinomial(200, p)).pvalue < 0.05 for _ in range(400)]
    assert np.mean(null) <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 400)
    q = np.array([0.25, 0.3, 0.2, 0.25])
    alt = [chi2_test(rng.multinomial(300, p), rng.multinomial(200, q)).pvalue < 0.05 for _ in range(100)]
    assert np.mean(alt) >= 0.9


def test_effect_sizes_behave() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0, abs=1e-12)
    assert psi([10, 20, 30], [30, 20, 10]) > 0.25
    assert js_distance([5, 5], [5, 5]) == pytest.approx(0.0, abs=1e-12)
    assert js_distance([10, 0], [0, 10]) == pytest.approx(1.0)
    rng = np.random.default_rng(6)
    a = rng.normal(size=5000)
    assert wasserstein_normalised(a, a + 1.0) == pytest.approx(1.0, rel=0.05)
    assert wasserstein_normalised(a, rng.normal(size=5000)) < 0.1


def test_two_sample_names_scale_and_shift() -> None:
    rng = np.random.default_rng(7)
    ref = rng.gamma(3.0, 2.0, size=4000)
    scaled = two_sample(ref, 10 * rng.gamma(3.0, 2.0, size=500))
    assert scaled.scale_ratio == pytest.approx(10, rel=0.2)
    assert scaled.pvalue < 1e-12 and scaled.js > 0.5
    shifted = two_sample(ref, rng.gamma(3.0, 2.0, size=500) + 2 * ref.std())
    assert shifted.mean_shift_sd == pytest.approx(2.0, abs=0.3)
    assert shifted.scale_ratio == pytest.approx(1.0, abs=0.2)
    assert shifted.wasserstein == pytest.approx(2.0, rel=0.25)
    same = two_sample(ref, rng.gamma(3.0, 2.0, size=500))
    assert same.js < 0.15 and same.pvalue > 1e-4
    cat = two_sample(["a", "b"] * 100, ["a", "b", "c", "c"] * 50, categorical=True)
    assert cat.ks is None and cat.chi2.pvalue < 1e-6


def test_compare_counts_rejects_mismatched_bins() -> None:
    with pytest.raises(ValueError, match="same edges"):
        compare_counts([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        psi([1, -2], [1, 2])


@pytest.mark.parametrize("method", ["bonferroni", "holm", "fdr"])
def test_adjusted_pvalues_agree_with_rejections(method: str) -> None:
    rng = np.random.default_rng(8)
    for _ in range(50):
        p = np.concatenate([rng.uniform(size=20), rng.uniform(0, 0.01, size=rng.integers(0, 5))])
        alpha = 0.05
        assert np.array_equal(mt.adjust(p, method) <= alpha, mt.reject(p, alpha, method))


def test_bh_matches_definition_and_dominates_bonferroni() -> None:
    rng = np.random.default_rng(9)
    for _ in range(100):
        p = rng.uniform(0, 0.2, size=10)
        bh = mt.benjamini_hochberg(p, 0.05)
        ps = np.sort(p)
        k = [i + 1 for i in range(10) if ps[i] <= 0.05 * (i + 1) / 10]
        assert bh.sum() == (max(k) if k else 0)
        assert (bh | ~mt.bonferroni(p, 0.05)).all()
        assert (mt.holm(p, 0.05) >= mt.bonferroni(p, 0.05)).all()
    with pytest.raises(ValueError, match="correction"):
        mt.adjust([0.1], "sidak")
