"""The over-confidence p-value of many groups at once equals the scalar test row by row."""

from __future__ import annotations

import math

import numpy as np

from monitor.stats import calibration as cal


def _scalar(c: np.ndarray, c2: np.ndarray, c3: np.ndarray, right: np.ndarray) -> list[float]:
    return [cal.overconfidence_pvalue(float(a), float(b), float(d), float(e)) for a, b, d, e in zip(c, c2, c3, right)]


def _assert_rows_equal(c: np.ndarray, c2: np.ndarray, c3: np.ndarray, right: np.ndarray) -> np.ndarray:
    rows = cal.overconfidence_pvalue_rows(c, c2, c3, right)
    assert rows.shape == np.shape(c)
    for got, want in zip(rows.tolist(), _scalar(c, c2, c3, right)):
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert abs(got - want) <= 1e-12, (got, want)
    return rows


def _sums(conf: np.ndarray, correct: np.ndarray) -> tuple[float, float, float, float]:
    return float(conf.sum()), float((conf**2).sum()), float((conf**3).sum()), float(correct.sum())


def test_rows_equal_the_scalar_test_on_seeded_groups() -> None:
    """Groups of 1 to 3,000 rows, calibrated, over- and under-confident, confidences near 1."""
    rng = np.random.default_rng(11)
    groups = []
    for n in (1, 2, 3, 5, 10, 30, 100, 500, 3000):
        for low, high, gap in ((0.1, 0.99, 0.0), (0.5, 0.9, 0.1), (0.9, 0.9999, 0.02), (0.2, 0.6, -0.1)):
            conf = rng.uniform(low, high, n)
            correct = (rng.random(n) < np.clip(conf - gap, 0.0, 1.0)).astype(np.float64)
            groups.append(_sums(conf, correct))
    c, c2, c3, right = (np.array(v) for v in zip(*groups))
    p = _assert_rows_equal(c, c2, c3, right)
    assert np.isfinite(p).all() and p.min() < 0.01 and p.max() > 0.5  # both tails are exercised


def test_rows_edge_cases_as_the_scalar_test() -> None:
    """No errors, all errors, tiny counts, confidences of exactly 1 (no null variance), zero rows,
    NaN sums, and an extreme statistic: each row as the scalar function (NaN where it is NaN)."""
    conf = np.array([0.7, 0.8, 0.95])
    cases = [
        _sums(conf, np.ones(3)),  # no errors: p near 1, clipped
        _sums(conf, np.zeros(3)),  # all errors
        _sums(np.array([0.6]), np.array([1.0])),  # one row
        _sums(np.array([0.999999]), np.array([0.0])),  # one row, tiny variance: far in the tail
        _sums(np.ones(50), np.ones(50)),  # every confidence 1: null variance 0
        (0.0, 0.0, 0.0, 0.0),  # no rows
        (float("nan"), 1.0, 1.0, 1.0),
        (2.0, 1.0, 0.5, float("nan")),
        (2.0, float("nan"), 0.5, 1.0),
        (2.0, 1.0, float("nan"), 1.0),
        (5.0, 6.0, 7.0, 3.0),  # impossible sums (sum c^2 > sum c): no variance
        (1e6, 1e6 - 1e-3, 1e6 - 2e-3, 0.0),  # x far below -40: pdf underflows to 0
    ]
    c, c2, c3, right = (np.array(v) for v in zip(*cases))
    p = _assert_rows_equal(c, c2, c3, right)
    assert np.isnan(p[4]) and np.isnan(p[5]) and np.isnan(p[6]) and np.isnan(p[10])
    assert p[0] > 0.5 and p[1] < p[0]


def test_rows_of_no_groups_and_of_groups_without_variance() -> None:
    assert cal.overconfidence_pvalue_rows(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)).shape == (0,)
    none = cal.overconfidence_pvalue_rows(np.ones(3), np.ones(3), np.ones(3), np.ones(3))
    assert none.shape == (3,) and np.isnan(none).all()
