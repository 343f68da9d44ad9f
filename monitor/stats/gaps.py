"""The largest difference of a figure between groups (segments), with the z statistic that says
whether it is noise: the fairness view of the segments and regression detectors.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAP_Z", "largest_gap", "pair_gap"]


#: z statistic from which a difference between two segments is significant in the choice of the
#: pair that stands for the largest gap (the shipped rules page on the largest gap from z > 4)
GAP_Z = 4.0


def pair_gap(values: np.ndarray, counts: np.ndarray, variances: np.ndarray | None, hi: int, lo: int) -> tuple[float, float]:
    """``(gap, z)`` of group ``hi`` over group ``lo``: the pooled two-proportion z for proportions
    (``variances`` None), else Welch's."""
    gap = float(values[hi] - values[lo])
    n1, n2 = float(counts[hi]), float(counts[lo])
    if variances is None:
        p = (values[hi] * n1 + values[lo] * n2) / (n1 + n2)
        se = np.sqrt(max(p * (1.0 - p), 0.0) * (1.0 / n1 + 1.0 / n2))
    else:
        se = np.sqrt(variances[hi] / n1 + variances[lo] / n2)
    return gap, float(gap / se if se > 0 else (0.0 if gap == 0 else float("inf")))


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
        zs = np.where(se > 0, gaps / se, np.where(gaps > 0, np.inf, 0.0))
    significant = (gaps > 0) & (zs >= z_min)
    if not significant.any():
        return hi, lo, gap, z
    i, j = np.unravel_index(np.argmax(np.where(significant, gaps, -np.inf)), gaps.shape)
    hi, lo = int(idx[i]), int(idx[j])
    return (hi, lo, *pair_gap(values, counts, variances, hi, lo))
