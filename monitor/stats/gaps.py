"""The largest difference of a figure between groups (segments), with the z statistic that says
whether it is noise: the fairness view of the segments and regression detectors.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GAP_Z", "group_means", "largest_gap", "pair_gap"]


#: z statistic from which a difference between two segments is significant in the choice of the
#: pair that stands for the largest gap (the shipped rules page on the largest gap from z > 4)
GAP_Z = 4.0


def group_means(sums: np.ndarray, sq_sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's mean and the unbiased variance of its values, from their sums, sums of squares
    and counts: what Welch's z of a difference of two means (:func:`largest_gap` with
    ``variances``) reads. Written once for the segments detector's mean confidence and the
    regression detector's MAE (a group without rows gets mean 0 and variance 0; callers mask it).

    >>> mean, var = group_means(np.array([3.0, 0.0]), np.array([5.0, 0.0]), np.array([2.0, 0.0]))
    >>> mean.tolist(), var.tolist()  # values 1 and 2: mean 1.5, variance 0.5
    ([1.5, 0.0], [0.5, 0.0])
    """
    safe = np.maximum(counts, 1.0)
    mean = sums / safe
    return mean, np.maximum(sq_sums / safe - mean**2, 0.0) * counts / np.maximum(counts - 1.0, 1.0)


def pair_gap(values: np.ndarray, counts: np.ndarray, variances: np.ndarray | None, hi: int, lo: int) -> tuple[float, float]:
    """``(gap, z)`` of group ``hi`` over group ``lo``: the pooled two-proportion z for proportions
    (``variances`` None), else Welch's."""
    n1, n2 = float(counts[hi]), float(counts[lo])
    w1 = w2 = None
    if variances is not None:
        with np.errstate(divide="ignore", invalid="ignore"):  # an empty group: an infinite se, z 0
            w1, w2 = float(variances[hi] / counts[hi]), float(variances[lo] / counts[lo])
    return _pair_z(float(values[hi]), float(values[lo]), n1, n2, w1, w2)


def largest_gap(values: np.ndarray, counts: np.ndarray, ok: np.ndarray, variances: np.ndarray | None = None,
                z_min: float = GAP_Z) -> tuple[int, int, float, float] | None:
    """Largest difference between two eligible groups: ``(high, low, gap, z)`` or None.

    ``values`` are per-group means; for proportions (``variances`` None) the z statistic is the
    pooled two-proportion test, otherwise Welch's with the given per-group variances. The highest
    group against the lowest is the widest difference, but a small, noisy group at an extreme
    would then stand for every difference: its z below any bound while two large groups differ
    significantly (an alert on "large and significant" silent). So when that pair's z is below
    ``z_min``, every pair is weighed and the widest whose z reaches ``z_min`` is given instead;
    when none does, the widest of all (its z says it is noise).

    >>> largest_gap(np.array([0.5, 0.7, 0.6]), np.array([100.0, 100.0, 5.0]), np.array([True, True, False]))[:3]
    (1, 0, 0.19999999999999996)
    >>> ok = np.ones(3, dtype=bool)  # the group of 5 at the top is noise; 0.6 over 0.5 at 4,000 each is not
    >>> largest_gap(np.array([0.5, 0.6, 0.9]), np.array([4000.0, 4000.0, 5.0]), ok)[:3]
    (1, 0, 0.09999999999999998)
    """
    idx = np.flatnonzero(ok)
    if idx.size < 2:
        return None
    if idx.size <= _SCALAR_GROUPS:
        v, n = [float(x) for x in values[idx].tolist()], [float(c) for c in counts[idx].tolist()]
        w = None if variances is None else [float(x) for x in variances[idx].tolist()]
        # the float operations raise where the arrays give inf or NaN: those cases take the arrays
        if all(map(math.isfinite, v)) and min(n) > 0 and (w is None or all(x >= 0 for x in w)):
            found = _largest_gap_scalar(v, n, w, z_min)
            return int(idx[found[0]]), int(idx[found[1]]), found[2], found[3]
    return _largest_gap_arrays(values, counts, ok, variances, z_min, idx)


#: Up to this many eligible groups :func:`largest_gap` weighs the pairs in Python floats: a
#: segments export computes four gaps at every rule tick, and forty array operations on eight
#: values cost more than the few hundred float operations they stand for (same IEEE operations
#: in the same order: the same figures).
_SCALAR_GROUPS = 32


def _pair_z(v1: float, v2: float, n1: float, n2: float, w1: float | None, w2: float | None) -> tuple[float, float]:
    """:func:`pair_gap` on floats (``w``: variance over count, None for proportions)."""
    gap = v1 - v2
    if w1 is None or w2 is None:
        p = (v1 * n1 + v2 * n2) / (n1 + n2)
        se = math.sqrt(max(p * (1.0 - p), 0.0) * (1.0 / n1 + 1.0 / n2))
    else:
        se = math.sqrt(w1 + w2)
    return gap, (gap / se if se > 0 else _no_spread_z(gap, v1, v2))


def _no_spread_z(gap: float, v1: float, v2: float) -> float:
    """z of a difference between two groups whose values do not vary: +Inf when the means really
    differ, 0 when they differ by rounding only (the same constant summed over different counts:
    ``3 x 0.1 / 3`` is not ``10 x 0.1 / 10`` to the last bit, and that is no gap)."""
    return math.inf if abs(gap) > 1e-9 * max(abs(v1), abs(v2), 1e-300) else 0.0


def _least_se(v_min: float, v_max: float, n: list[float], w: list[float] | None) -> float:
    """A lower bound of the standard error of any pair of the groups: Welch's from the two
    smallest variances over counts; for proportions, the pooled ``p (1 - p)`` at least its value
    at an end of ``[v_min, v_max]`` (it is concave) and ``1/n1 + 1/n2`` at least ``2 / max(n)``."""
    if w is not None:
        a, b = sorted(w)[:2]
        return math.sqrt(a + b)
    return math.sqrt(max(min(v_min * (1.0 - v_min), v_max * (1.0 - v_max)), 0.0) * 2.0 / max(n))


def _largest_gap_scalar(v: list[float], n: list[float], var: list[float] | None,
                        z_min: float) -> tuple[int, int, float, float]:
    """:func:`largest_gap` on finite values as lists (positions among them)."""
    k = len(v)
    hi = max(range(k), key=v.__getitem__)
    lo = min(range(k), key=v.__getitem__)
    if lo == hi:
        lo = 1 if hi == 0 else 0
    w = None if var is None else [x / c for x, c in zip(var, n)]
    w_hi, w_lo = (None, None) if w is None else (w[hi], w[lo])
    gap, z = _pair_z(v[hi], v[lo], n[hi], n[lo], w_hi, w_lo)
    if z >= z_min or k == 2 or gap < z_min * _least_se(v[lo], v[hi], n, w) * (1.0 - 1e-9):
        # the widest gap is below z_min standard errors of the least noisy pair any two groups can
        # make (with a margin for rounding): no pair is significant, none need be weighed (when
        # the groups differ by noise only, the usual case, this saves the k^2 pairs)
        return hi, lo, gap, z
    best, bi, bj = -math.inf, -1, -1
    inv = [1.0 / c for c in n]
    for i in range(k):  # row: the higher group, column: the lower (the array version's order); _pair_z inline
        vi, ni, inv_i = v[i], n[i], inv[i]
        for j in range(k):
            g = vi - v[j]
            if g > 0 and g > best:
                if w is None:
                    q = (vi * ni + v[j] * n[j]) / (ni + n[j])
                    se = math.sqrt(max(q * (1.0 - q), 0.0) * (inv_i + inv[j]))
                else:
                    se = math.sqrt(w[i] + w[j])
                if (g / se >= z_min) if se > 0 else _no_spread_z(g, vi, v[j]) >= z_min:  # no spread: z infinite or 0
                    best, bi, bj = g, i, j
    if bi < 0:
        return hi, lo, gap, z
    return (bi, bj, *_pair_z(v[bi], v[bj], n[bi], n[bj], None if w is None else w[bi], None if w is None else w[bj]))


def _largest_gap_arrays(values: np.ndarray, counts: np.ndarray, ok: np.ndarray, variances: np.ndarray | None,
                        z_min: float, idx: np.ndarray) -> tuple[int, int, float, float] | None:
    """:func:`largest_gap` with array operations (many groups, or values that are not finite)."""
    hi = int(idx[np.argmax(values[idx])])
    lo = int(idx[np.argmin(values[idx])])
    if lo == hi:  # every eligible group has the same value: name two of them (gap 0), not one twice
        lo = int(idx[idx != hi][0])
    gap, z = pair_gap(values, counts, variances, hi, lo)
    if z >= z_min or idx.size == 2:
        return hi, lo, gap, z
    v, n = values[idx], counts[idx].astype(np.float64)
    gaps = v[:, None] - v[None, :]  # row: the higher group, column: the lower
    if variances is None:
        pooled = (v[:, None] * n[:, None] + v[None, :] * n[None, :]) / (n[:, None] + n[None, :])
        se = np.sqrt(np.maximum(pooled * (1.0 - pooled), 0.0) * (1.0 / n[:, None] + 1.0 / n[None, :]))
    else:
        w = variances[idx] / n
        se = np.sqrt(w[:, None] + w[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.maximum(np.maximum(np.abs(v)[:, None], np.abs(v)[None, :]), 1e-300)
        zs = np.where(se > 0, gaps / se, np.where(gaps > 1e-9 * scale, np.inf, 0.0))  # as _no_spread_z
    significant = (gaps > 0) & (zs >= z_min)
    if not significant.any():
        return hi, lo, gap, z
    i, j = np.unravel_index(np.argmax(np.where(significant, gaps, -np.inf)), gaps.shape)
    hi, lo = int(idx[i]), int(idx[j])
    return (hi, lo, *pair_gap(values, counts, variances, hi, lo))
