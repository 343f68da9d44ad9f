"""Chernoff's bound on the upper tail of a sum of independent discrete variables
(monitor.stats.chernoff): never under the exact tail, equal to the closed form where there is one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.stats.chernoff import chernoff_upper


def exact_tail(pmfs: list[np.ndarray]) -> np.ndarray:
    """P(sum >= t) for t = 0, 1, ..., of variables on 0..len(pmf)-1, by convolution."""
    dist = np.array([1.0])
    for pmf in pmfs:
        dist = np.convolve(dist, pmf)
    return np.cumsum(dist[::-1])[::-1]


def test_the_bound_is_never_under_the_exact_tail() -> None:
    """300 seeded sums of 1 to 6 variables, each on 0..10 with random (some zero) probabilities,
    every threshold of the support: bound >= exact tail (to 1e-12 relative), and <= 1."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        pmfs = []
        for _ in range(int(rng.integers(1, 7))):
            p = rng.dirichlet(np.full(11, 0.5)) * (rng.random(11) < 0.8)
            p[int(rng.integers(0, 11))] += 0.1  # every variable has some mass
            pmfs.append(p / p.sum())
        width = 11
        with np.errstate(divide="ignore"):
            log_p = np.log(np.array(pmfs))
        values = np.tile(np.arange(width, dtype=np.float64), (len(pmfs), 1))
        tail = exact_tail(pmfs)
        for t in range(tail.size):
            bound = chernoff_upper(log_p, values, float(t))
            assert tail[t] * (1.0 - 1e-12) <= bound <= 1.0, (t, tail[t], bound)


def test_binomial_tail_meets_the_closed_form() -> None:
    """For n Bernoulli(p) the best tilt gives exp(-n KL(a || p)) at t = a n: the search finds it
    (to 1e-6 relative) from p = 0.5 to p = 0.999, and the bound is above the binomial tail."""
    from scipy.stats import binom

    for n, p, t in ((20, 0.5, 18), (200, 0.9, 195), (500, 0.999, 500), (500, 0.99, 499), (1000, 0.3, 400)):
        log_p = np.log(np.array([[1.0 - p, p]] * n))
        values = np.tile([0.0, 1.0], (n, 1))
        a = t / n
        kl = (a * math.log(a / p) if a > 0 else 0.0) + ((1 - a) * math.log((1 - a) / (1 - p)) if a < 1 else 0.0)
        bound = chernoff_upper(log_p, values, float(t))
        assert bound == pytest.approx(math.exp(-n * kl), rel=1e-6)
        assert bound >= binom.sf(t - 1, n, p) * (1.0 - 1e-12)


def test_ends_of_the_support_and_padding() -> None:
    """At or under the mean: 1; above the largest sum: 0; padded entries (-inf) carry nothing,
    whatever value they hold."""
    log_p = np.array([[math.log(0.25), math.log(0.75), -np.inf], [math.log(0.5), math.log(0.5), -np.inf]])
    values = np.array([[0.0, 2.0, 1e9], [0.0, 1.0, -1e9]])
    assert chernoff_upper(log_p, values, 2.0) == 1.0  # the mean is 2.0
    assert chernoff_upper(log_p, values, 3.5) == 0.0  # the largest sum is 3
    assert chernoff_upper(log_p, values, 3.0) == pytest.approx(0.75 * 0.5, rel=1e-6)


def test_a_row_without_probability_is_refused() -> None:
    with pytest.raises(ValueError, match="finite entry in every row"):
        chernoff_upper(np.array([[-np.inf, -np.inf], [0.0, -np.inf]]), np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="variables, support"):
        chernoff_upper(np.zeros(3), np.zeros(3), 1.0)
