"""Chernoff's bound on the upper tail of a sum of independent discrete variables.

Why: a Monte-Carlo p-value is never below ``1 / (1 + draws)``. To show one under ``alpha / m``
(Bonferroni over ``m`` segments) it makes ``m / alpha`` draws, and makes every one of them when
the observation lies far in the tail, which is exactly when the answer is plain: a model
miscalibrated on 200 segments cost about 9 ms of draws per segment each time its window slid.
Chernoff's bound ``P(S >= t) <= min over l >= 0 of E[exp(l S)] exp(-l t)`` is computed from the
variables' own distributions, with no approximation, so that where it is already under the
draws' floor the draws can stop and the p-value stays valid. Any ``l`` gives a valid bound: the
search for the best one only makes it tighter, never wrong.

>>> import numpy as np
>>> coin = np.log(np.array([[0.5, 0.5]] * 20))   # 20 fair coins, heads = 1
>>> heads = np.array([[0.0, 1.0]] * 20)
>>> round(chernoff_upper(coin, heads, 18.0), 6)   # exp(-20 KL(0.9 || 0.5)); the exact tail is 0.000201
0.000635
>>> chernoff_upper(coin, heads, 20.0) <= 1.01 * 0.5 ** 20   # the top of the support: its best tilt is infinite
True
>>> chernoff_upper(coin, heads, 21.0), chernoff_upper(coin, heads, 5.0)
(0.0, 1.0)
"""

from __future__ import annotations

import numpy as np

__all__ = ["chernoff_upper"]

#: Doublings of the tilt tried to bracket the best one (its largest, 2^80 times the first, is
#: reached only by a threshold within rounding of the largest sum).
_MAX_DOUBLINGS = 80


def chernoff_upper(log_pmf: np.ndarray, values: np.ndarray, t: float) -> float:
    """Upper bound on ``P(X_1 + ... + X_g >= t)`` for independent discrete ``X_i``.

    Parameters
    ----------
    log_pmf, values
        ``(variables, support)`` matrices: ``X_i`` takes ``values[i, j]`` with probability
        ``exp(log_pmf[i, j])``. Rows of shorter support are padded with ``-inf`` log-probabilities
        (their values are then ignored). Each row is normalised to sum to 1.
    t
        The threshold.

    Returns
    -------
    float
        ``min(1, min over l >= 0 of prod_i E[exp(l X_i)] exp(-l t))``: 1 when ``t`` is at most the
        sum's mean, 0 when ``t`` exceeds its largest value.
    """
    from scipy.optimize import brentq
    from scipy.special import logsumexp, softmax

    log_p = np.asarray(log_pmf, dtype=np.float64)
    live = np.isfinite(log_p)
    if log_p.ndim != 2 or not live.any(axis=1).all():
        raise ValueError("chernoff_upper: log_pmf must be a (variables, support) matrix with a finite entry in every row")
    log_p = log_p - logsumexp(log_p, axis=1, keepdims=True)
    x = np.where(live, np.asarray(values, dtype=np.float64), -np.inf)
    top = x.max(axis=1)
    # each variable measured down from its largest value: at any tilt the largest term of a
    # row's sum is its top's probability, so large tilts lose nothing to rounding
    below = np.where(live, x - top[:, None], 0.0)
    mean_below = float((np.exp(log_p) * below).sum())
    room = float(top.sum()) - float(t)  # how far the largest sum is above the threshold
    if mean_below + room >= 0.0:  # the threshold is at or under the mean
        return 1.0
    if room < -1e-12 * (float(np.abs(top).sum()) + abs(float(t))):
        return 0.0
    top_log_p = float(np.where(below == 0.0, log_p, -np.inf).max(axis=1).sum())
    if room <= 0.0:  # the very top (to rounding): its probability is the tail, the best tilt's limit
        return float(np.exp(top_log_p))

    def log_bound(tilt: float) -> float:
        return float(logsumexp(log_p + tilt * below, axis=1).sum()) + tilt * room

    def slope(tilt: float) -> float:  # the tilted mean of the sum, less the threshold
        return float((softmax(log_p + tilt * below, axis=1) * below).sum()) + room

    high = 1.0 / float(np.abs(below).max())
    for _ in range(_MAX_DOUBLINGS):
        if slope(high) >= 0.0:
            break
        high *= 2.0
    else:  # the threshold within rounding of the top: the top's probability is its tail
        return float(np.exp(top_log_p))
    best = brentq(slope, 0.0, high, xtol=1e-9 * high, rtol=1e-10)
    return float(np.exp(min(log_bound(best), 0.0)))
