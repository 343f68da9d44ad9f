"""The ERT-calibrated sequential test: band calibration, false-alarm rate vs the stated bound."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.stats.sequential import BinnedSequentialTest, betabinom_bands, per_test_alpha


@pytest.mark.parametrize("p,n_ref,n", [(0.1, 200, 300), (0.3, 2000, 100), (0.02, 500, 1000)])
def test_band_is_calibrated_including_reference_noise(p: float, n_ref: int, n: int) -> None:
    """Frequentist check of the Beta-Binomial band: draw the reference count AND the window count
    from the same p; each tail is exceeded at most at its level (alpha=1e-3, 60,000 draws, 3 SE)."""
    rng = np.random.default_rng(0)
    alpha = 1e-3
    m = 60_000
    r = rng.binomial(n_ref, p, size=m).astype(float)
    x = rng.binomial(n, p, size=m)
    uniq, inv = np.unique(r, return_inverse=True)
    lo, up = betabinom_bands(n, uniq, np.full(uniq.size, float(n_ref)), alpha)
    low_rate = np.mean(x < lo[inv])
    high_rate = np.mean(x >= up[inv])
    slack = 3 * np.sqrt(alpha / m)
    assert low_rate <= alpha + slack and high_rate <= alpha + slack
    assert high_rate + low_rate >= alpha / 20  # not vacuous: the band is near its level


def test_false_alarm_rate_stays_under_the_ert_bound() -> None:
    """At ERT=1,000 rows the union bound allows 200 flagged tests in 200,000 rows; it must hold,
    and the detector must not be silent (the bound is conservative, not vacuous)."""
    rng = np.random.default_rng(1)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    ref = np.stack([rng.multinomial(3000, p) for _ in range(5)]).astype(float)
    test = BinnedSequentialTest(ref, ordered=[4] * 5, ert=1000, step=50, scales=(100, 300))
    flagged_times = 0
    for _ in range(200):
        x = rng.choice(4, size=(1000, 5), p=p)
        before = test.n_alarm_tests
        test.update(x)
        flagged_times += test.n_alarm_tests - before
    assert flagged_times <= 200
    assert flagged_times >= 1


def test_cumulative_counts_catch_a_spread_shift() -> None:
    """A location shift spread over many bins is caught by the cumulative (KS-like) counts sooner
    than by bins alone."""
    rng = np.random.default_rng(2)
    edges = np.quantile(rng.normal(size=50_000), np.linspace(0, 1, 11)[1:-1])
    ref = np.bincount(np.searchsorted(edges, rng.normal(size=5000), side="right"), minlength=10)[None, :].astype(float)
    delays = {}
    for ordered in (0, 10):
        t = BinnedSequentialTest(ref, ordered=[ordered], ert=1e6, step=50, scales=(100, 300, 1000))
        r = np.random.default_rng(3)
        seen = 0
        while seen < 20_000:
            x = np.searchsorted(edges, r.normal(0.3, 1, size=50), side="right")[:, None]
            seen += 50
            if t.update(x).any():
                break
        delays[ordered] = seen
    assert delays[10] < delays[0]


def test_windows_match_a_brute_force_count() -> None:
    rng = np.random.default_rng(4)
    ref = np.full((2, 3), 100.0)
    t = BinnedSequentialTest(ref, ert=1e6, step=10, scales=(20, 60))
    allx = []
    for size in (7, 13, 40, 1, 59, 80):
        x = rng.integers(0, 3, size=(size, 2))
        allx.append(x)
        t.update(x)
    xs = np.concatenate(allx)
    complete = (xs.shape[0] // 10) * 10
    for si, n in enumerate(t.scales):
        last = xs[complete - n:complete]
        brute = np.stack([np.bincount(last[:, j], minlength=3) for j in range(2)])
        assert np.array_equal(t._win[si], brute)


def test_invalid_parameters() -> None:
    ref = np.full((1, 3), 10.0)
    with pytest.raises(ValueError, match="multiples"):
        BinnedSequentialTest(ref, step=30, scales=(100,))
    with pytest.raises(ValueError, match="correction"):
        BinnedSequentialTest(ref, correction="holm")
    with pytest.raises(ValueError, match="reference data"):
        BinnedSequentialTest(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="ert"):
        per_test_alpha(10, 50, 3)


def test_large_and_small_batches_give_identical_results() -> None:
    """The vectorised path for many blocks per batch equals pushing block by block."""
    rng = np.random.default_rng(8)
    ref = np.stack([rng.multinomial(2000, [0.25, 0.25, 0.25, 0.25]) for _ in range(3)]).astype(float)
    x = rng.integers(0, 4, size=(12_000, 3))
    x[6000:, 1] = rng.choice(4, size=6000, p=[0.4, 0.3, 0.2, 0.1])  # a shift half-way
    small = BinnedSequentialTest(ref, ordered=[4, 4, 4], ert=1e4, step=50, scales=(100, 300, 1000))
    big = BinnedSequentialTest(ref, ordered=[4, 4, 4], ert=1e4, step=50, scales=(100, 300, 1000))
    for s in range(0, 12_000, 50):
        small.update(x[s:s + 50])
    for s in range(0, 12_000, 1234):
        big.update(x[s:s + 1234])
    assert small.n_alarm_tests == big.n_alarm_tests > 0
    assert np.array_equal(small._win, big._win)
    assert small.last is not None and big.last is not None and small.last.event == big.last.event
