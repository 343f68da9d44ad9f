"""Linear score tests on binned windows: rank location and rescaling, with a calibrated null.

Why: the bin-count tests of :mod:`monitor.stats.sequential` compare every bin share and every
cumulative share (the Kolmogorov-Smirnov quantities) with its own band. That is the right tool for
a value appearing too often (stuck, missing, selection, unseen), but a weak one for a change that
moves *every* quantile a little, such as a feature multiplied by 1.3: each cumulative share moves
by a few points only, and each is held to a 1-in-10^8 band. A *linear* statistic adds the small
moves of all bins into one number, with far more power against such alternatives:

* ``rank``: the window's mean mid-rank against the reference (Mann-Whitney/Wilcoxon on the
  bins, ``u - 1/2`` with ``u`` the reference mid-CDF of the row's bin), two-sided: any shift of
  location, whatever the units (invariant to monotone transforms of the feature);
* ``scaled_up`` / ``scaled_down``: the likelihood-ratio score of the bins against the alternative
  "the feature was multiplied by ``factor``" (``1 / factor``): ``p_k(c) / p_k - 1``, where
  ``p_k(c)`` is the share of the reference that bin ``k`` would hold had every value been
  multiplied by ``c`` (computed from the reference profile's finer bins). One-sided (a large
  value means "looks rescaled"). It targets unit changes and scaling bugs, about zero, so it is a
  location test for positive features and a spread test for centred ones.

Null distribution (no simulation)
---------------------------------
As for the bin counts, the window's bin counts ``w`` are drawn from the Dirichlet-multinomial
predictive of the reference counts ``r`` (``p ~ Dirichlet(r + 1/2)``, ``w | p ~ Multinomial(n, p)``):
this accounts for the reference being a sample, which dominates when the reference is small. For a
linear statistic ``T = sum_k w_k s_k / n`` the first three cumulants are closed-form (Dirichlet
moments up to order three): with ``A = sum(r + 1/2)``, ``p^ = (r + 1/2) / A`` and ``c2``, ``c3`` the
second and third central moments of the scores under ``p^``::

    E T = sum p^ s,   Var T = c2 / (A + 1) * (1 + A / n),
    k3(T) = c3 * (A^2 / n^2 + 3 A / n + 2) / ((A + 1) (A + 2)).

Double use of the reference
---------------------------
The scores are themselves estimated from the reference (its bins, its rescaled shares), and the
reference also gives the null mean: a bin that is by chance wider than its share says gets a
larger rescaling score *and* more traffic, which biases the window statistic upwards by ``O(1 / m)``
(over a standard deviation of the reference's noise at ``m = 89`` rows). The rank score is
unbiased to first order; the likelihood-ratio scores are not. :func:`bootstrap_null` measures the
bias and the reference's share of the variance by rebuilding bins and scores on bootstrap
resamples of the reference's kept rows (the profile keeps a random sample), and the test's null
mean and variance are corrected with them.

Thresholds are normal quantiles at the per-test level with a Cornish-Fisher correction for the
skewness (second order, with a gamma-like kurtosis ``1.5 skew^2``); the correction is only ever
allowed to *raise* a threshold, and a statistic whose skewness exceeds :data:`MAX_SKEW` at the
shortest window is not used (the bin-count tests, exact for lumpy features, cover it). Scores are
bounded (``|rank| <= 1/2``, likelihood ratios capped at :data:`LR_CAP`), so the window statistic is
light-tailed and the normal approximation errs on the safe side.

>>> import numpy as np
>>> r = np.array([[25.0, 25.0, 25.0, 25.0]])
>>> s = rank_scores(r)
>>> s.round(3).tolist()
[[-0.375, -0.125, 0.125, 0.375]]
>>> m = linear_moments(r, s[..., None])
>>> round(float(m.mean[0, 0]), 6), round(float(predictive_sd(m, 100)[0, 0]), 4)
(0.0, 0.0391)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["SCORE_NAMES", "SCORE_TAILS", "DEFAULT_FACTOR", "LR_CAP", "MAX_SKEW", "N_BOOTSTRAP", "LinearMoments", "rank_scores",
           "bootstrap_null",
           "rescaled_cdf", "rescale_scores", "feature_scores", "linear_moments", "predictive_sd", "predictive_skew",
           "cornish_fisher"]

#: Statistics of :func:`feature_scores`, in column order.
SCORE_NAMES = ("rank", "scaled_up", "scaled_down")
#: Tails tested per statistic: 2 = both, 1 = upper only.
SCORE_TAILS = (2, 1, 1)
#: Rescaling factor of the ``scaled_up`` alternative (``scaled_down`` uses its inverse).
DEFAULT_FACTOR = 1.25
#: Cap of the likelihood ratio ``p_k(c) / p_k`` (a nearly empty reference bin must not give one row
#: a huge weight).
LR_CAP = 5.0
#: Bootstrap resamples of the reference behind :func:`bootstrap_null`.
N_BOOTSTRAP = 48
#: Largest skewness of a statistic's null at the shortest window for it to be used.
MAX_SKEW = 0.6


def rank_scores(ref_counts: np.ndarray) -> np.ndarray:
    """Mid-rank score ``u - 1/2`` of each bin: ``u`` is the reference share below the bin plus half
    the bin's own share (ties share a bin, so this is the tie-corrected Wilcoxon score)."""
    r = np.asarray(ref_counts, dtype=np.float64)
    tot = np.maximum(r.sum(axis=-1, keepdims=True), 1e-300)
    return (np.cumsum(r, axis=-1) - r / 2) / tot - 0.5


def rescaled_cdf(fine: Any, at: np.ndarray, factor: float) -> np.ndarray:
    """Share of the reference below each value of ``at`` had every value been multiplied by ``factor``.

    ``fine`` is a :class:`monitor.profile.NumericProfile` (its finer bins). A feature with no more
    distinct values than bins is a set of atoms at the bins' mean values (exact for discrete
    features); otherwise each bin's mass is spread evenly between its edges (the first and last
    bins between the reference minimum and maximum).
    """
    counts = np.asarray(fine.counts, dtype=np.float64)
    tot = counts.sum()
    at = np.asarray(at, dtype=np.float64)
    if tot <= 0:
        return np.zeros(at.shape)
    t = at[:, None] / factor
    if int(fine.n_distinct) <= counts.size:
        ok = counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = np.asarray(fine.sums, dtype=np.float64)[ok] / counts[ok]
        return (counts[ok][None, :] * (pos[None, :] < t)).sum(axis=1) / tot
    edges = np.asarray(fine.edges, dtype=np.float64)
    lo = np.concatenate([[float(fine.min)], edges])
    hi = np.concatenate([edges, [float(fine.max)]])
    width = hi - lo
    safe = np.where(width > 0, width, 1.0)
    frac = np.where(width > 0, np.clip((t - lo) / safe, 0.0, 1.0), (lo < t).astype(np.float64))
    return (counts[None, :] * frac).sum(axis=1) / tot


def rescale_scores(ref_counts: np.ndarray, edges: np.ndarray, fine: Any, factor: float = DEFAULT_FACTOR,
                   cap: float = LR_CAP) -> np.ndarray:
    """Likelihood-ratio score ``min(p_k(c) / p_k, cap) - 1`` of each value bin for ``c = factor``.

    ``ref_counts`` are the counts of the ``len(edges) + 1`` value bins cut at ``edges``; ``p_k`` is
    their Jeffreys-smoothed share, ``p_k(c)`` the share after rescaling (:func:`rescaled_cdf`).
    """
    r = np.asarray(ref_counts, dtype=np.float64)
    p = (r + 0.5) / (r + 0.5).sum()
    cdf = rescaled_cdf(fine, np.asarray(edges, dtype=np.float64), factor)
    pc = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return np.minimum(np.maximum(pc, 0.0) / p, cap) - 1.0


def feature_scores(ref_counts: np.ndarray, edges: np.ndarray, fine: Any, factor: float = DEFAULT_FACTOR) -> np.ndarray:
    """Scores ``(value bins, 3)`` of :data:`SCORE_NAMES` for one numeric feature."""
    r = np.asarray(ref_counts, dtype=np.float64)
    return np.stack([rank_scores(r), rescale_scores(r, edges, fine, factor),
                     rescale_scores(r, edges, fine, 1.0 / factor)], axis=-1)


@dataclass(frozen=True)
class LinearMoments:
    """Null moments of linear statistics per (channel, statistic) (see the module docstring)."""

    mean: np.ndarray  # (d, S) expected score
    c2: np.ndarray  # (d, S) variance of one row's score under the smoothed reference
    c3: np.ndarray  # (d, S) third central moment of one row's score
    a: np.ndarray  # (d, 1) Dirichlet concentration A (reference rows + half a row per bin)
    ref_var: np.ndarray | None = None  # (d, S) reference share of the variance, when measured (bootstrap)

    def corrected(self, offset: np.ndarray, ref_var: np.ndarray) -> "LinearMoments":
        """The same moments with the null mean moved by ``offset`` and the reference's share of the
        variance at least ``ref_var`` (both ``(d, S)``, from :func:`bootstrap_null`)."""
        return LinearMoments(self.mean + offset, self.c2, self.c3, self.a, ref_var)


def linear_moments(ref_counts: np.ndarray, scores: np.ndarray, mask: np.ndarray | None = None) -> LinearMoments:
    """Moments of scores ``(d, K, S)`` under the Jeffreys-smoothed reference counts ``(d, K)``.

    ``mask`` ``(d, K)`` selects the bins that belong to the statistic (others carry no mass).
    """
    r = np.asarray(ref_counts, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    m = np.ones(r.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    a = np.where(m, np.maximum(r, 0.0) + 0.5, 0.0)
    big_a = np.maximum(a.sum(axis=1, keepdims=True), 1e-300)
    p = (a / big_a)[..., None]
    mean = (p * s).sum(axis=1)
    c = s - mean[:, None, :]
    return LinearMoments(mean, (p * c**2).sum(axis=1), (p * c**3).sum(axis=1), big_a)


def predictive_sd(m: LinearMoments, n: np.ndarray | float) -> np.ndarray:
    """Standard deviation of the window mean score over ``n`` rows (broadcast ``(..., d, 1)``)."""
    return np.sqrt(_variance(m, n))


def _variance(m: LinearMoments, n: np.ndarray | float) -> np.ndarray:
    ref = m.c2 / (m.a + 1.0)
    if m.ref_var is not None:
        ref = np.maximum(ref, m.ref_var)
    return ref + m.c2 * m.a / ((m.a + 1.0) * np.maximum(n, 1.0))


def predictive_skew(m: LinearMoments, n: np.ndarray | float) -> np.ndarray:
    """Skewness of the window mean score over ``n`` rows."""
    nn = np.maximum(n, 1.0)
    a = m.a
    var = _variance(m, nn)
    k3 = m.c3 * (a * a / nn**2 + 3.0 * a / nn + 2.0) / ((a + 1.0) * (a + 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, k3 / np.maximum(var, 1e-300) ** 1.5, 0.0)


def cornish_fisher(z: np.ndarray | float, skew: np.ndarray | float) -> np.ndarray:
    """Upper-tail threshold (in standard deviations) of a statistic with skewness ``skew`` at the
    normal quantile ``z``, never below ``z`` (second-order expansion, kurtosis ``1.5 skew^2``).

    >>> float(cornish_fisher(5.0, 0.0)), round(float(cornish_fisher(5.0, 0.2)), 2), float(cornish_fisher(5.0, -0.2))
    (5.0, 5.83, 5.0)
    """
    z = np.asarray(z, dtype=np.float64)
    g = np.asarray(skew, dtype=np.float64)
    corr = (z * z - 1) * g / 6 + (z**3 - 3 * z) * 1.5 * g * g / 24 - (2 * z**3 - 5 * z) * g * g / 36
    return z + np.maximum(corr, 0.0)


def bootstrap_null(values: np.ndarray, build: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
                   n_ref: float, *, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bias of the window mean score against its null mean, and the reference's share of its
    variance, for a reference of ``n_ref`` rows whose kept sample is ``values``.

    ``build(v)`` turns reference values into ``(edges, value-bin counts, scores (bins, S))`` exactly as
    the detector does. On each bootstrap resample ``v*`` of ``values``, the bias is the mean score of
    ``values`` (the bootstrap world's truth) under ``v*``'s bins and scores, minus the null mean those
    give; its mean over resamples estimates the bias and its variance the reference's share of the
    variance. Both scale as ``1 / n_ref``, so they are rescaled from the sample size to ``n_ref``.
    Returns ``(bias, ref_var)``, each ``(S,)``.

    >>> rng = np.random.default_rng(1)
    >>> v = rng.normal(size=400)
    >>> def build(x):
    ...     e = np.quantile(x, [0.25, 0.5, 0.75])
    ...     r = np.bincount(np.searchsorted(e, x, side="right"), minlength=4).astype(float)
    ...     return e, r, rank_scores(r)[:, None]
    >>> bias, var = bootstrap_null(v, build, 400)
    >>> abs(float(bias[0])) < 0.01, 0.0002 < float(var[0]) < 0.0004
    (True, True)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(int(n_boot)):
        vs = v[rng.integers(0, v.size, v.size)]
        edges, r, sc = build(vs)
        mean = linear_moments(np.asarray(r, dtype=np.float64)[None, :], np.asarray(sc, dtype=np.float64)[None]).mean[0]
        idx = np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="right")
        diffs.append(sc[idx].mean(axis=0) - mean)
    d = np.asarray(diffs)
    ratio = v.size / max(float(n_ref), 1.0)
    return d.mean(axis=0) * ratio, d.var(axis=0) * ratio
