"""The calibration error's p-value by consistency resampling (monitor.stats.calibration.debiased_l2_pvalue)
on seeded streams: uniform under calibration, small under a 10-point miscalibration, the same
estimator as the exported error, exact draws, and a sequential stop that keeps calibrated windows cheap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.stats import calibration as cal

EDGES = cal.fine_confidence_edges()


def window(rng: np.random.Generator, n: int, gap: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fine-bin sums of ``n`` labelled rows of a 10-class model (confidences 0.1 + 0.9 Beta(20, 1.5),
    mean 0.94), right with probability ``conf - gap``: calibrated at ``gap`` 0."""
    conf = 0.1 + 0.9 * rng.beta(20.0, 1.5, n)
    correct = (rng.random(n) < np.clip(conf - gap, 0.0, 1.0)).astype(np.float64)
    return cal.reliability_sums(conf, correct, EDGES)


def band(n: int, p: float, sds: float = 4.0) -> tuple[float, float]:
    """``n p +- sds`` binomial standard deviations."""
    sd = math.sqrt(n * p * (1.0 - p))
    return n * p - sds * sd, n * p + sds * sd


def test_calibrated_windows_give_uniform_pvalues() -> None:
    """2,000 calibrated windows of 300 labels: the share of p-values under 0.01, 0.1 and 0.5 each
    within 4 binomial standard deviations of its level (under 0.01: 2.2 to 37.8 of 2,000)."""
    rng, draws = np.random.default_rng(3), np.random.default_rng(4)
    p = np.array([cal.debiased_l2_pvalue(*window(rng, 300), draws).pvalue for _ in range(2000)])
    for level in (0.01, 0.1, 0.5):
        lo, hi = band(p.size, level)
        assert lo <= np.count_nonzero(p < level) <= hi, (level, np.count_nonzero(p < level))


def test_a_ten_point_miscalibration_is_significant() -> None:
    """Right 10 points less often than confident, 500 labels: p < 0.01 in at least 90% of 200
    windows (measured 0.995 on another seed; 0.46 for a 5-point gap)."""
    rng, draws = np.random.default_rng(5), np.random.default_rng(6)
    p = np.array([cal.debiased_l2_pvalue(*window(rng, 500, gap=0.1), draws).pvalue for _ in range(200)])
    assert np.mean(p < 0.01) >= 0.9


def test_the_statistic_is_the_exported_estimator_squared() -> None:
    """Where the debiased error is positive, its p-value is that of its square: each draw's
    statistic is the exported estimator on the drawn answers (groups with one row included)."""
    rng = np.random.default_rng(7)
    count = np.array([1.0, 2.0, 40.0, 300.0])
    sum_conf = count * np.array([0.7, 0.5, 0.8, 0.95])
    stat = cal._DrawnStatistic(count, sum_conf)
    right = np.stack([rng.binomial(count.astype(np.int64), [0.7, 0.5, 0.8, 0.95]) for _ in range(50)]).astype(np.float64)
    expected = cal.debiased_l2_squared_rows(np.broadcast_to(count, right.shape), np.broadcast_to(sum_conf, right.shape), right)
    np.testing.assert_allclose(stat(right), expected, rtol=1e-12, atol=1e-15)
    positive = expected > 0
    np.testing.assert_allclose(np.sqrt(expected[positive]),
                               cal.debiased_l2_rows(np.broadcast_to(count, right.shape), np.broadcast_to(sum_conf, right.shape), right)[positive])


def test_group_draws_follow_the_sum_of_the_bins_binomials() -> None:
    """A group of two fine bins (30 rows at 0.6, 50 at 0.9) against numpy's binomials summed:
    means within 4 standard errors, quantiles 0.1% to 99.9% equal (200,000 draws each)."""
    rng = np.random.default_rng(8)
    sampler = cal._GroupSums(np.array([30, 50, 7]), np.array([0.6, 0.9, 1.0]), np.array([0, 2]))
    x = sampler.draw(rng, 200_000)
    direct = rng.binomial(30, 0.6, 200_000) + rng.binomial(50, 0.9, 200_000)
    se = math.sqrt(2.0 * (30 * 0.6 * 0.4 + 50 * 0.9 * 0.1) / 200_000)
    assert abs(x[:, 0].mean() - direct.mean()) < 4.0 * se
    q = [0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]
    assert np.quantile(x[:, 0], q).tolist() == np.quantile(direct, q).tolist()
    assert (x[:, 1] == 7).all()  # confidence 1: every row right


def test_the_sequential_stop_keeps_calibrated_windows_cheap() -> None:
    """Besag-Clifford: a calibrated window stops after 10 exceedances (mean draws under 200 over
    300 windows; measured about 60), a miscalibrated one draws all 1,999 and reports 1/2000."""
    rng, draws = np.random.default_rng(9), np.random.default_rng(10)
    made = [cal.debiased_l2_pvalue(*window(rng, 1000), draws).draws for _ in range(300)]
    assert np.mean(made) < 200
    r = cal.debiased_l2_pvalue(*window(rng, 2000, gap=0.15), draws)
    assert (r.pvalue, r.draws) == (1.0 / 2000.0, 1999)


def test_seeded_draws_repeat_and_bad_arguments_are_refused() -> None:
    sums = window(np.random.default_rng(11), 400)
    a = cal.debiased_l2_pvalue(*sums, np.random.default_rng(1))
    assert a == cal.debiased_l2_pvalue(*sums, np.random.default_rng(1))
    assert math.isnan(cal.debiased_l2_pvalue(np.zeros(3), np.zeros(3), np.zeros(3), np.random.default_rng(1)).pvalue)
    with pytest.raises(ValueError, match="draws and exceedances must be at least 1"):
        cal.debiased_l2_pvalue(*sums, np.random.default_rng(1), draws=0)


def test_large_windows_draw_their_groups_from_the_normal_law_and_stay_uniform() -> None:
    """Past NORMAL_GROUP_VARIANCE a group's right answers are drawn normal (its exact table grows
    with the labels: 18-20 ms a p-value at 180,000). Calibrated windows of 20,000 labels keep
    uniform p-values, and a miscalibrated window's p-value is the exact way's within the draws'
    error."""
    edges = np.linspace(0.0, 1.0, 133)

    def sums(rng: np.random.Generator, n: int, gap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        conf = 0.1 + 0.9 * rng.beta(3.0, 1.5, n)
        right = rng.random(n) < conf - gap
        idx = np.clip(np.searchsorted(edges, conf) - 1, 0, 131)
        return (np.bincount(idx, minlength=132).astype(float), np.bincount(idx, conf, 132),
                np.bincount(idx, right.astype(float), 132))

    rng, draws = np.random.default_rng(5), np.random.default_rng(6)
    count, conf, _ = sums(np.random.default_rng(0), 20_000, 0.0)
    mean = np.divide(conf, count, out=np.zeros_like(conf), where=count > 0)
    variance = np.bincount(cal.equal_mass_groups(count, 15), weights=count * mean * (1.0 - mean))
    assert (variance >= cal.NORMAL_GROUP_VARIANCE).sum() >= 10  # the normal draws are really taken
    p = np.array([cal.debiased_l2_pvalue(*sums(rng, 20_000, 0.0), draws).pvalue for _ in range(400)])
    for level in (0.01, 0.05, 0.5):
        lo, hi = band(400, level)
        assert lo <= (p < level).sum() <= hi, (level, (p < level).sum())
    window = sums(np.random.default_rng(9), 20_000, 0.01)
    normal = cal.debiased_l2_pvalue(*window, np.random.default_rng(1), exceedances=10**9).pvalue
    saved = cal.NORMAL_GROUP_VARIANCE
    try:
        cal.NORMAL_GROUP_VARIANCE = float("inf")
        exact = cal.debiased_l2_pvalue(*window, np.random.default_rng(1), exceedances=10**9).pvalue
    finally:
        cal.NORMAL_GROUP_VARIANCE = saved
    se = np.sqrt(exact * (1.0 - exact) / 1999)
    assert 0.0 < exact < 0.5 and abs(normal - exact) <= 4.0 * np.sqrt(2.0) * se, (normal, exact)


def _parts(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> tuple:
    """The sampler, statistic and threshold debiased_l2_pvalue builds for these sums."""
    c = np.rint(count)
    groups = cal.equal_mass_groups(c, cal.ECE_BINS)
    gc, gs, gy = cal.merge_bins(groups, c, sum_conf, sum_correct)
    observed = float(cal.debiased_l2_squared_rows(gc[None], gs[None], gy[None])[0])
    live = c > 0
    g_f = groups[live]
    starts = np.flatnonzero(np.r_[True, g_f[1:] != g_f[:-1]])
    sampler = cal._MixedGroupSums(c[live].astype(np.int64), np.clip(sum_conf[live] / c[live], 0.0, 1.0), starts)
    return sampler, cal._DrawnStatistic(gc[g_f[starts]], gs[g_f[starts]]), observed - 1e-12 * max(abs(observed), 1e-12)


def test_the_support_is_the_law_the_draws_follow() -> None:
    """The law the Chernoff bound is computed on (exact groups and, at 20,000 labels, normal ones)
    is the sampler's: per group, 100,000 draws' mean and share of the most likely count within 4.5
    standard errors of the support's, and the support's probabilities sum to 1 (1e-9)."""
    for n, spread in ((400, (20.0, 1.5)), (20_000, (3.0, 1.5))):
        rng = np.random.default_rng(21)
        conf = 0.1 + 0.9 * rng.beta(*spread, n)
        sampler, _, _ = _parts(*cal.reliability_sums(conf, (rng.random(n) < conf).astype(float), EDGES))
        drawn = sampler.draw(np.random.default_rng(22), 100_000).copy()
        if n == 20_000:
            assert sampler.normal.any() and not sampler.normal.all()
        for g, (log_p, k) in enumerate(sampler.support()):
            p = np.exp(log_p)
            assert abs(p.sum() - 1.0) < 1e-9
            mean, sd = float((p * k).sum()), float(np.sqrt((p * k * k).sum() - (p * k).sum() ** 2))
            assert abs(drawn[:, g].mean() - mean) <= 4.5 * max(sd, 1e-9) / np.sqrt(drawn.shape[0]), g
            mode = k[np.argmax(p)]
            share = float(p.max())
            se = np.sqrt(share * (1.0 - share) / drawn.shape[0])
            assert abs(np.mean(drawn[:, g] == mode) - share) <= 4.5 * se + 1e-12, g


def test_the_tail_bound_is_above_the_resampled_tail() -> None:
    """Chernoff's bound (with the rare values set aside) against the resampled tail of 40,000 draws,
    on windows from calibrated to a p-value near 1e-3, 100 to 20,000 labels: never under it by
    more than 4 standard errors; and far in the tail it is tiny (under 1e-8 for a 20-point gap at
    500 labels)."""
    cases = [(300, 0.0, (20.0, 1.5)), (100, 0.2, (20.0, 1.5)), (500, 0.1, (20.0, 1.5)),
             (2_000, 0.05, (3.0, 1.5)), (20_000, 0.01, (3.0, 1.5)), (1_000, 0.03, (3.0, 1.5))]
    for i, (n, gap, spread) in enumerate(cases):
        rng = np.random.default_rng(30 + i)
        conf = 0.1 + 0.9 * rng.beta(*spread, n)
        sums = cal.reliability_sums(conf, (rng.random(n) < conf - gap).astype(float), EDGES)
        sampler, stat, tie = _parts(*sums)
        bound = cal._tail_bound(sampler, stat, tie, 1e-9)
        resampled = cal.debiased_l2_pvalue(*sums, np.random.default_rng(40 + i), draws=40_000, exceedances=10**9).pvalue
        assert bound >= resampled - 4.0 * np.sqrt(resampled * (1.0 - resampled) / 40_000), (n, gap, bound, resampled)
    rng = np.random.default_rng(50)
    conf = 0.1 + 0.9 * rng.beta(20.0, 1.5, 500)
    sampler, stat, tie = _parts(*cal.reliability_sums(conf, (rng.random(500) < conf - 0.2).astype(float), EDGES))
    assert cal._tail_bound(sampler, stat, tie, 1e-12) < 1e-8


def test_far_in_the_tail_the_bound_stops_the_draws() -> None:
    """24,999 draws (a segment among 200 tracked): a 20-point gap at 300 labels, 10 at 2,000, 5 at
    20,000 stop after the first 992 draws with the floor 1/25,000, what every draw would give
    (with 1,999 draws the bound is never tried: every draw made); a 10-point gap at 500 labels,
    as far out but with a bound above a hundredth of the floor, makes all 24,999."""
    for n, gap, seed in ((300, 0.2, 60), (2_000, 0.1, 61), (20_000, 0.05, 62)):
        sums = window(np.random.default_rng(seed), n, gap)
        r = cal.debiased_l2_pvalue(*sums, np.random.default_rng(1), draws=24_999)
        assert (r.pvalue, r.draws) == (1.0 / 25_000, 992), (n, gap, r)
        assert cal.debiased_l2_pvalue(*sums, np.random.default_rng(1)).draws == 1999
    sums = window(np.random.default_rng(63), 500, 0.1)
    sampler, stat, tie = _parts(*sums)
    assert cal._tail_bound(sampler, stat, tie, 4e-8) > 4e-7  # the bound cannot show it: every draw is made
    assert cal.debiased_l2_pvalue(*sums, np.random.default_rng(1), draws=24_999).draws == 24_999
