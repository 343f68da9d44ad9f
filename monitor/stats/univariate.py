"""Two-sample tests and effect sizes for one feature (or one model output), raw or binned.

Why binned: the monitor never keeps raw live values. Each numeric feature is cut into bins at
quantiles of the *reference* (equal reference mass, so every bin carries information), each
categorical feature into its reference categories, and a window of traffic is a vector of counts
per bin. Every function here therefore has a form on counts, and the raw-sample forms simply bin
on the distinct values first (which makes them exact for ties).

Conventions
-----------
* A *bin index* of a numeric value ``x`` is ``searchsorted(edges, x, side="right")``: bin 0 is
  ``x < edges[0]``, bin ``i`` is ``edges[i-1] <= x < edges[i]``, the last bin is ``x >= edges[-1]``.
  Equal values always share a bin, so ties are never split (the classic bug of binned KS).
* Counts exclude missing values; missing rates are compared separately (data quality) or as an
  extra bin (sequential drift).

Exactness of the Kolmogorov-Smirnov test
----------------------------------------
:func:`ks_binned` computes the KS statistic at the bin boundaries. When every bin holds a single
distinct value (discrete features with at most ``n_bins`` values, or :func:`ks_2samp`, which bins
on the pooled distinct values) this *is* the KS statistic of the raw samples. With wider bins it is
the supremum over the bin edges only: a lower bound of the raw statistic, smaller by at most the
larger bin share of either sample. Its p-value is, when ``n_ref * (n_ref + n_cur) <= exact_budget``,
the exact permutation p-value *conditional on the ties* (a lattice-path recursion that checks the
boundary only where the pooled value changes, after Hilton, Mehta & Patel 1994); otherwise the
asymptotic Kolmogorov distribution with ``n_eff = n1 n2 / (n1 + n2)``, which is conservative
(p-values too large) when there are ties. The usual mistake -- continuous-case p-values on tied
data evaluated between tied values -- is what makes windowed KS fire on discrete features.

Examples
--------
>>> import numpy as np
>>> r = ks_2samp([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2])
>>> r.statistic, round(r.pvalue, 6), r.method
(0.0, 1.0, 'exact')
>>> round(psi([50, 50], [50, 50]), 6), round(js_distance([10, 0], [0, 10]), 6)
(0.0, 1.0)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TestResult",
    "DriftStats",
    "quantile_edges",
    "EDGE_TIE_REL",
    "tie_tolerant",
    "bin_index",
    "histogram",
    "ks_statistic",
    "ks_binned",
    "ks_2samp",
    "chi2_test",
    "chi2_monte_carlo",
    "CHI2_MIN_EXPECTED",
    "CHI2_MC_BELOW",
    "CHI2_MC_STOP",
    "CHI2_DENSE_ENOUGH",
    "bonferroni_draws",
    "chi2_draws",
    "psi",
    "js_distance",
    "wasserstein_atoms",
    "wasserstein_normalised",
    "mean_shift_sd",
    "column_moments",
    "REFERENCE_ROUNDOFF_REL",
    "ROUNDOFF_REL",
    "RUNNING_SD_REL",
    "running_sd_resolves",
    "scale_ratio",
    "compare_counts",
    "two_sample",
]

ArrayLike = "np.ndarray | Sequence[float]"

#: Work budget (cells of the lattice recursion) under which KS p-values are exact.
EXACT_KS_BUDGET = 2_000_000
#: Pearson's chi-squared test: below this smallest expected count (either row) its asymptotic
#: p-value is too small in the tail (seeded, smallest expected count 5.6-6.8: 0.12-0.13% of null
#: windows under 0.001; 8.3 and more: nominal), so :func:`chi2_test` can draw tables instead.
CHI2_MIN_EXPECTED = 10.0
#: ... when the asymptotic p-value is under this: far above every level an alert uses, so the
#: draws go where a decision is made (the asymptotic error there is a fraction of itself).
CHI2_MC_BELOW = 0.05
#: Besag-Clifford stop of the Monte-Carlo test: tables as extreme as the observed before stopping
#: (the p-value's relative standard error there is about ``1 / sqrt(20)``, 22%).
CHI2_MC_STOP = 20
#: A sparse table whose classes with every expected count at least :data:`CHI2_MIN_EXPECTED`
#: already reject homogeneity on their own at this asymptotic p-value is not drawn (a plain
#: shift of frequent classes, or a segment's standing difference, would otherwise cost every draw
#: at every refresh): that sub-table's p-value is reported. Either p-value is valid, so a level
#: ``a`` keeps its rate within ``a`` plus the chance of the sub-table's under 1e-8, which is
#: 3-5e-8: the exact conditional distribution of tables of 4, 5 and 6 classes with expected
#: counts of 10 (all tables enumerated) puts 2.9e-8, 4.1e-8 and 5.1e-8 under an asymptotic 1e-8
#: (and 0.86-1.23 times nominal under 1e-4). Against the smallest level the shipped rules use,
#: 0.001 / 21, that is 0.1% more alarms at most.
CHI2_DENSE_ENOUGH = 1e-8
#: Additive smoothing of bin shares in PSI (Jeffreys' half count), so empty bins stay finite.
PSI_PSEUDOCOUNT = 0.5


@dataclass(frozen=True)
class TestResult:
    """Result of a two-sample test.

    Attributes
    ----------
    statistic
        The test statistic (KS distance in [0, 1], or Pearson's chi-squared).
    pvalue
        Probability under "same distribution" of a statistic at least as large.
    method
        How the p-value was obtained: ``"exact"`` or ``"asymptotic"``; for :func:`chi2_test` on a
        sparse table also ``"monte-carlo"`` (conditional on the margins) or ``"asymptotic-dense"``
        (its frequent classes alone, ``df`` theirs).
    df
        Degrees of freedom (chi-squared), else 0.
    """

    statistic: float
    pvalue: float
    method: str = "asymptotic"
    df: int = 0


@dataclass(frozen=True)
class DriftStats:
    """Everything the drift detectors export for one feature and one window.

    ``pvalue`` is the KS p-value for numeric features and the chi-squared one for categorical
    ones; ``effect`` is the Jensen-Shannon distance (bounded in [0, 1], comparable across
    features); the other distances are there because users ask for them by name.
    """

    n_ref: int
    n_cur: int
    ks: TestResult | None
    chi2: TestResult
    psi: float
    js: float
    wasserstein: float
    mean_shift_sd: float
    scale_ratio: float

    @property
    def pvalue(self) -> float:
        return self.ks.pvalue if self.ks is not None else self.chi2.pvalue

    @property
    def effect(self) -> float:
        return self.js


# -- binning --------------------------------------------------------------------------------------
def quantile_edges(values: ArrayLike, n_bins: int = 16) -> np.ndarray:
    """Inner bin edges at reference quantiles, usable with :func:`bin_index`.

    Edges are actual data values (inverted-CDF quantiles), deduplicated, so a value that carries
    a lot of mass (an atom such as 0 in a sparse feature) gets a bin of its own rather than being
    split, and a feature with at most ``n_bins`` distinct values gets exactly one bin per value.

    >>> quantile_edges([1, 1, 1, 1, 2, 3], n_bins=3).tolist()
    [2.0, 3.0]
    >>> quantile_edges(np.arange(100.0), n_bins=4).tolist()
    [25.0, 50.0, 75.0]
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    if x.size == 0:
        return np.empty(0)
    distinct = np.unique(x)
    if distinct.size <= n_bins:
        return distinct[1:].astype(np.float64)
    xs = np.sort(x)
    n = xs.size
    # first index of each quantile position; edges at values so that ties never straddle a bin
    pos = np.ceil(np.arange(1, n_bins) * n / n_bins).astype(np.int64)
    edges = np.unique(xs[np.clip(pos, 0, n - 1)])
    return edges[edges > xs[0]]


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value (``len(edges) + 1`` bins); NaN maps to ``-1``."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(edges, v, side="right")
    if np.isnan(v).any():
        idx = np.where(np.isnan(v), -1, idx)
    return idx


#: Relative distance below a bin edge at a reference value within which a value counts as on
#: the edge (see :func:`tie_tolerant`): float32's rounding is 6e-8 of the value.
EDGE_TIE_REL = 1e-6
#: At most this share of the bin below an edge is what :func:`tie_tolerant` lowers it by.
EDGE_TIE_GAP = 1e-3


def tie_tolerant(edges: np.ndarray) -> np.ndarray:
    """Bin edges taken at reference values, each lowered by :data:`EDGE_TIE_REL` of its size
    (the regression detector's prediction drift, the drift detectors' numeric channels).

    Why: a model whose predictions repeat (a tree's leaves, a nearest-neighbour mean) has its
    edges on those values (they are data values), and the same value reaches the monitor a few
    units of the 8th digit away when the served model runs in float32 (ONNX, a KServe FP32
    tensor) and the reference was scored in float64, or the reverse. Just below its edge, such a
    prediction fell in the bin of the value below: an unchanged depth-3 tree read PSI 2.6 and p
    3e-261. The regression detector bins reference and window alike with these edges; a drift
    channel's reference counts were taken at the edges themselves, where a reference value sits
    on its edge, counted above it either way. A continuous value moves across an edge with
    probability of order 1e-6.

    The lowering is also at most :data:`EDGE_TIE_GAP` of the bin below (the one above for the
    lowest edge): a feature far from zero with a small spread (a Unix timestamp over an hour, sd
    900 s around 1.7e9) had its edges moved by 1,700 s, two of its sds, below the reference
    counts taken at the edges themselves, and read as drift on unchanged traffic (p 0).

    >>> tie_tolerant(np.array([-2.0, 0.0, 10.0])).tolist()
    [-2.000002, 0.0, 9.99999]
    >>> (np.array([1.7e9, 1.7e9 + 600.0]) - tie_tolerant(np.array([1.7e9, 1.7e9 + 600.0]))).round(3).tolist()
    [0.6, 0.6]
    """
    edges = np.asarray(edges, dtype=np.float64)
    shift = EDGE_TIE_REL * np.abs(edges)
    if edges.size > 1:
        gaps = np.diff(edges)
        below = np.concatenate([gaps[:1], gaps])  # the bin below each edge; the lowest takes the one above
        shift = np.minimum(shift, EDGE_TIE_GAP * below)
    return edges - np.where(np.isfinite(shift), shift, 0.0)


def histogram(values: ArrayLike, edges: np.ndarray) -> np.ndarray:
    """Counts per bin of ``values`` (NaN excluded), length ``len(edges) + 1``."""
    idx = bin_index(np.asarray(values, dtype=np.float64).ravel(), edges)
    return np.bincount(idx[idx >= 0], minlength=len(edges) + 1).astype(np.float64)


def _counts(a: ArrayLike) -> np.ndarray:
    c = np.asarray(a, dtype=np.float64).ravel()
    if (c < 0).any() or not np.isfinite(c).all():
        raise ValueError("bin counts must be finite and non-negative")
    return c


def _pair(ref: ArrayLike, cur: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    r, c = _counts(ref), _counts(cur)
    if r.shape != c.shape:
        raise ValueError(f"reference has {r.size} bins, current window has {c.size}; bin both with the same edges")
    return r, c


# -- Kolmogorov-Smirnov -----------------------------------------------------------------------------
def ks_statistic(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """Largest gap between the two empirical CDFs at the bin boundaries."""
    r, c = _pair(ref_counts, cur_counts)
    n1, n2 = r.sum(), c.sum()
    if n1 == 0 or n2 == 0:
        return float("nan")
    return float(np.max(np.abs(np.cumsum(r) / n1 - np.cumsum(c) / n2)))


def _ks_exact_sf(r: np.ndarray, c: np.ndarray, d: float) -> float:
    """P(D >= d) under random permutation of the pooled sample, conditional on the tie blocks.

    The pooled sorted sample is a sequence of blocks (one per bin with data); the permutation
    distribution puts, in each block, a hypergeometric number of reference items given how many
    remain. The KS boundary is checked only at block ends, where the empirical CDFs are defined.
    """
    from scipy.special import gammaln

    n1, n2 = int(r.sum()), int(c.sum())
    keep = (r + c) > 0
    r, c = r[keep].astype(np.int64), c[keep].astype(np.int64)
    total = n1 + n2
    lf = gammaln(np.arange(total + 2) + 1.0)  # log k!
    prob = np.zeros(n1 + 1)
    prob[0] = 1.0
    consumed = 0
    i_all = np.arange(n1 + 1)
    tol = 1e-10
    for b in range(len(r) - 1):  # the last boundary is always 0 gap
        t = int(r[b] + c[b])
        remaining = total - consumed
        live = np.flatnonzero(prob > 0)
        if live.size == 0:  # every permutation already reached the observed gap
            return 1.0
        ref_left = (n1 - live)[:, None]  # reference items still to place, per live state
        cur_left = remaining - ref_left
        k = np.arange(t + 1)[None, :]  # reference items among the block's t
        ok = (k <= ref_left) & (t - k <= cur_left)
        # hypergeometric P(k | i) = C(ref_left, k) C(cur_left, t - k) / C(remaining, t), in logs
        logp = (lf[ref_left] - lf[np.where(ok, k, 0)] - lf[np.where(ok, ref_left - k, 0)]
                + lf[cur_left] - lf[np.where(ok, t - k, 0)] - lf[np.where(ok, cur_left - (t - k), 0)]
                - (lf[remaining] - lf[t] - lf[remaining - t]))
        trans = np.exp(np.where(ok, logp, -np.inf)) * prob[live][:, None]
        # new[i + k] += P(i) P(k | i): one weighted bincount over the (state, k) pairs
        new = np.bincount((live[:, None] + k).ravel(), weights=trans.ravel(), minlength=n1 + 1)[: n1 + 1]
        consumed += t
        gap = np.abs(i_all / n1 - (consumed - i_all) / n2)
        new[gap >= d - tol] = 0.0
        prob = new
    return float(min(1.0, max(0.0, 1.0 - prob.sum())))


def ks_binned(ref_counts: ArrayLike, cur_counts: ArrayLike, *, exact_budget: int = EXACT_KS_BUDGET) -> TestResult:
    """Two-sample KS test on counts per ordered bin (see the module notes on exactness).

    >>> ks_binned([30, 30, 40], [30, 30, 40]).pvalue
    1.0
    >>> ks_binned([100, 0], [0, 100]).statistic
    1.0
    """
    r, c = _pair(ref_counts, cur_counts)
    n1, n2 = float(r.sum()), float(c.sum())
    if n1 == 0 or n2 == 0:
        return TestResult(float("nan"), float("nan"), "none")
    d = ks_statistic(r, c)
    if d <= 1e-12:
        return TestResult(0.0, 1.0, "exact")
    integral = np.all(r == np.round(r)) and np.all(c == np.round(c))
    if integral and n1 * (n1 + n2) <= exact_budget:
        return TestResult(d, _ks_exact_sf(r, c, d), "exact")
    from scipy.special import kolmogorov

    en = n1 * n2 / (n1 + n2)
    # Stephens' small-sample correction of the asymptotic argument
    lam = (np.sqrt(en) + 0.12 + 0.11 / np.sqrt(en)) * d
    return TestResult(d, float(min(1.0, kolmogorov(lam))), "asymptotic")


def ks_2samp(a: ArrayLike, b: ArrayLike, *, exact_budget: int = EXACT_KS_BUDGET) -> TestResult:
    """KS test on raw samples, correct with ties (bins on the pooled distinct values).

    NaN values are ignored.

    >>> r = ks_2samp(np.zeros(50), np.ones(50))
    >>> r.statistic, r.pvalue < 1e-12
    (1.0, True)
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    pooled = np.unique(np.concatenate([x, y]))
    edges = pooled[1:]
    return ks_binned(histogram(x, edges), histogram(y, edges), exact_budget=exact_budget)


# -- chi-squared ---------------------------------------------------------------------------------
def chi2_test(ref_counts: ArrayLike, cur_counts: ArrayLike, *, draws: int = 0, seed: int = 0) -> TestResult:
    """Pearson's chi-squared test of homogeneity of the 2 x bins table.

    It treats the reference as a sample too (not as the truth), which is what keeps it valid
    when the reference is small. Bins empty in both are dropped.

    The p-value is the chi-squared distribution's, except with ``draws > 0`` for a sparse table
    (an expected count under :data:`CHI2_MIN_EXPECTED` in either row) whose asymptotic p-value is
    under :data:`CHI2_MC_BELOW`: there the asymptotic tail is too light (seeded, 50 Zipf classes,
    200 rows against 2,000: 0.25% of null windows under 0.001), so the p-value is the
    Monte-Carlo one conditional on both margins (:func:`chi2_monte_carlo`, up to ``draws`` tables
    from a generator seeded by ``seed`` and the table: the same table always gets the same
    p-value), ``method`` ``"monte-carlo"``; unless the classes whose expected counts are all at
    least :data:`CHI2_MIN_EXPECTED` reject on their own at :data:`CHI2_DENSE_ENOUGH`: that
    sub-table's asymptotic p-value, ``method`` ``"asymptotic-dense"`` (no draws for a plain shift).

    >>> chi2_test([50, 50], [50, 50]).pvalue
    1.0
    >>> r = chi2_test([400, 300, 200, 80, 15, 5], [30, 20, 25, 10, 8, 7], draws=9999)
    >>> r.method, r.pvalue > chi2_test([400, 300, 200, 80, 15, 5], [30, 20, 25, 10, 8, 7]).pvalue
    ('monte-carlo', True)
    """
    # the survival function itself (what scipy.stats.chi2.sf evaluates), without the ~40 us of
    # the distribution object's argument handling: detectors call this at every figure refresh
    from scipy.special import chdtrc

    r, c = _pair(ref_counts, cur_counts)
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    n1, n2 = r.sum(), c.sum()
    df = int(keep.sum()) - 1
    if n1 == 0 or n2 == 0 or df < 1:
        return TestResult(0.0, 1.0, "asymptotic", max(df, 0))
    stat = _pearson(r, c)
    p = float(chdtrc(df, stat))
    expected = (r + c) * min(n1, n2) / (n1 + n2)  # the smaller of each class's two expected counts
    if draws > 0 and p < CHI2_MC_BELOW and expected.min() < CHI2_MIN_EXPECTED and _integral(r, c):
        dense = expected >= CHI2_MIN_EXPECTED
        if dense.sum() >= 2:
            p_dense = float(chdtrc(int(dense.sum()) - 1, _pearson(r[dense], c[dense])))
            if p_dense < CHI2_DENSE_ENOUGH:
                return TestResult(stat, p_dense, "asymptotic-dense", int(dense.sum()) - 1)
        return TestResult(stat, chi2_monte_carlo(r, c, draws, seed), "monte-carlo", df)
    return TestResult(stat, p, "asymptotic", df)


def _pearson(r: np.ndarray, c: np.ndarray) -> float:
    """Pearson's statistic of the 2 x bins table of two count rows (no bin empty in both)."""
    tot = r + c
    n1, n2 = r.sum(), c.sum()
    e1, e2 = tot * n1 / (n1 + n2), tot * n2 / (n1 + n2)
    return float(((r - e1) ** 2 / e1).sum() + ((c - e2) ** 2 / e2).sum())


def _integral(*counts: np.ndarray) -> bool:
    return all(bool((a == np.rint(a)).all()) for a in counts)


def bonferroni_draws(alpha: float, tests: int, least_tests: float = 1.0) -> int:
    """Most draws of a Monte-Carlo p-value compared with ``alpha / tests`` (Bonferroni) so that
    its smallest value, ``1 / (draws + 1)``, is at most ``0.8 alpha / tests``: a statistic no
    draw reaches is then below the corrected level. ``least_tests`` sets a floor (as if that many
    tests were made).

    >>> [bonferroni_draws(0.01, m) for m in (0, 1, 21, 200)]
    [124, 124, 2624, 24999]
    """
    return int(np.ceil(1.25 * max(tests, least_tests) / alpha - 1e-6)) - 1


def chi2_draws(alpha: float, tests: int) -> int:
    """Most tables a Monte-Carlo p-value (:func:`chi2_monte_carlo`) draws when ``tests`` p-values
    are compared with ``alpha / tests`` (Bonferroni): :func:`bonferroni_draws`, and at least
    enough for a smallest value of a tenth of ``alpha`` (as if 8 tests were made).

    >>> [chi2_draws(0.001, m) for m in (1, 8, 9, 21)]
    [9999, 9999, 11249, 26249]
    """
    return bonferroni_draws(alpha, tests, least_tests=8.0)


def chi2_monte_carlo(ref_counts: np.ndarray, cur_counts: np.ndarray, draws: int, seed: int = 0) -> float:
    """Monte-Carlo p-value of Pearson's chi-squared statistic conditional on both margins.

    Under homogeneity, given the class totals and the two row totals, the smaller row's counts
    are multivariate hypergeometric (whatever the class probabilities), so tables drawn that
    way (``numpy.random.Generator.multivariate_hypergeometric``, many per call) give the exact
    conditional distribution of the statistic, the observed one among them. The p-value is
    Besag and Clifford's (1991) sequential one, valid at every level (``P(p <= a) <= a`` under
    the null): drawing stops at the :data:`CHI2_MC_STOP`-th table at least as extreme as the
    observed, after ``L`` tables, with ``p = CHI2_MC_STOP / L`` (a large p-value costs few
    draws), or after ``draws`` tables with ``R`` as extreme, ``p = (R + 1) / (draws + 1)``: the
    smallest p-value is ``1 / (draws + 1)``. Ties count as extreme.

    The generator is seeded by ``seed`` and the table, so the p-value is a function of the table:
    recomputed without new rows, from a restored checkpoint, or for a segment holding the whole
    window, it is the same. Counts must be non-negative integers with no class empty in both rows.

    Parameters
    ----------
    ref_counts, cur_counts
        The two rows of the table.
    draws
        Most tables drawn (the p-value's resolution).
    seed
        Combined with the table into the generator's seed.
    """
    r = np.rint(ref_counts).astype(np.int64)
    c = np.rint(cur_counts).astype(np.int64)
    t = r + c
    n1, n2 = int(r.sum()), int(c.sum())
    n, m = n1 + n2, min(n1, n2)
    small = r if n1 <= n2 else c  # the statistic is symmetric in the rows: draw the shorter one
    weight = n * n / (n1 * n2) / t.astype(np.float64)  # X^2 = sum weight * (row - expected)^2
    mean = m * t / n
    observed = float((small - mean) ** 2 @ weight)
    observed -= 1e-9 * max(observed, 1.0)  # equal tables sum in another order: still ties
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % 2**64, len(t), *r.tolist(), *c.tolist()]))
    # per table, "count" walks the drawn rows and "marginals" the classes: the cheaper
    method = "count" if m < 10 * len(t) else "marginals"
    done = extreme = 0
    chunk = 512
    while done < draws:
        size = min(chunk, draws - done)
        sim = rng.multivariate_hypergeometric(t, m, size=size, method=method)
        hits = np.flatnonzero((sim - mean) ** 2 @ weight >= observed)
        if extreme + len(hits) >= CHI2_MC_STOP:
            return CHI2_MC_STOP / float(done + hits[CHI2_MC_STOP - extreme - 1] + 1)
        extreme += len(hits)
        done += size
        chunk = min(2 * chunk, max(1024, 2**18 // len(t)))  # a drawn block stays in cache (~2 MB)
    return (extreme + 1) / (draws + 1)


# -- effect sizes --------------------------------------------------------------------------------
def _shares(counts: np.ndarray, pseudo: float = 0.0) -> np.ndarray:
    total = counts.sum() + pseudo * counts.size
    return (counts + pseudo) / total if total > 0 else np.full(counts.size, np.nan)


def psi(ref_counts: ArrayLike, cur_counts: ArrayLike, *, pseudocount: float = PSI_PSEUDOCOUNT) -> float:
    """Population stability index ``sum (q - p) ln(q / p)``, shares smoothed by ``pseudocount``.

    Rules of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large. It grows without bound, so it
    is exported for users who know it, while alarms use the bounded Jensen-Shannon distance.

    Bins empty in both samples are left out (as :func:`chi2_test` leaves them): smoothed, such a
    bin's share is ``pseudocount / size`` in each, and with samples of different sizes those
    differ, so a categorical feature's empty other / missing / unseen bins put 0.0996 on a window
    of 100 rows with exactly the shares of a 100,000-row reference.

    >>> psi([1200, 900, 450, 300, 150, 0, 0, 0], [240, 180, 90, 60, 30, 0, 0, 0]) < 1e-4
    True
    """
    r, c = _pair(ref_counts, cur_counts)
    seen = (r + c) > 0
    r, c = r[seen], c[seen]
    p, q = _shares(r, pseudocount), _shares(c, pseudocount)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2): 0 same, 1 disjoint."""
    r, c = _pair(ref_counts, cur_counts)
    if r.sum() == 0 or c.sum() == 0:
        return float("nan")
    p, q = _shares(r), _shares(c)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.sqrt(max(0.0, 0.5 * kl(p) + 0.5 * kl(q))))


def wasserstein_atoms(pos_a: ArrayLike, w_a: ArrayLike, pos_b: ArrayLike, w_b: ArrayLike) -> float:
    """Earth mover's distance (W1) between two weighted sets of points on the line.

    Binned windows keep the sum of values per bin, so each bin is an atom at its mean: this gives
    W1 at bin resolution and still sees values far outside the reference range (a x10 rescale).
    """
    xa, wa = np.asarray(pos_a, dtype=np.float64), np.asarray(w_a, dtype=np.float64)
    xb, wb = np.asarray(pos_b, dtype=np.float64), np.asarray(w_b, dtype=np.float64)
    ka, kb = (wa > 0) & np.isfinite(xa), (wb > 0) & np.isfinite(xb)
    xa, wa, xb, wb = xa[ka], wa[ka], xb[kb], wb[kb]
    if wa.sum() == 0 or wb.sum() == 0:
        return float("nan")
    grid = np.unique(np.concatenate([xa, xb]))
    fa = np.cumsum(np.bincount(np.searchsorted(grid, xa), weights=wa, minlength=grid.size)) / wa.sum()
    fb = np.cumsum(np.bincount(np.searchsorted(grid, xb), weights=wb, minlength=grid.size)) / wb.sum()
    return float(np.sum(np.abs(fa - fb)[:-1] * np.diff(grid)))


def wasserstein_normalised(a: ArrayLike, b: ArrayLike, scale: float | None = None) -> float:
    """W1 between raw samples divided by ``scale`` (default: the standard deviation of ``a``).

    In units of reference standard deviations: a shift of the whole feature by one sd gives 1.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    s = float(np.std(x)) if scale is None else float(scale)
    w = wasserstein_atoms(x, np.ones_like(x), y, np.ones_like(y))
    return w / s if s > 0 else (0.0 if w == 0 else float("inf"))


#: Relative size, against the mean, below which a standard deviation or a mean difference is
#: rounding error rather than spread: a constant feature's mean and sd computed in floating point
#: (and a window's sd from running sums, ``sqrt(E[x^2] - E[x]^2)``, which cancels to about
#: ``sqrt(n * eps) * |mean|``) are not exact, and dividing by such an sd turned an unchanged
#: constant feature into effects of 1e8.
ROUNDOFF_REL = 1e-6

#: The same for a reference's standard deviation, which is computed in two passes (``np.std``,
#: :func:`column_moments`): on a constant column its error is a few ``eps x |mean|``, so 1e-10
#: leaves it a margin of about 1e5, and real spread is read as spread however far from zero the
#: values sit. With :data:`ROUNDOFF_REL` a timestamp feature (sd 15 minutes: 5e-7 of its mean) was
#: taken for a constant: its shift read 0 or infinite sds, and the PCA left it unscaled (its raw
#: seconds swamped every other column).
REFERENCE_ROUNDOFF_REL = 1e-10


#: The smallest sd, relative to the mean, that a window's running sums resolve: their
#: ``sqrt(E[x^2] - E[x]^2)`` is off by about ``sqrt(k x eps) x |mean|`` (3e-8 of the mean for a
#: few dozen roundings), so an sd under 3e-7 of the mean is known to 10% at best. A reference sd
#: below it (a feature far from zero with a tiny spread) has no live sd to compare with: the ratio
#: is absent rather than that noise (1.26 for an unchanged sd of 50 around 1.7e9, 0 for 0.5).
RUNNING_SD_REL = 3e-7


def running_sd_resolves(sd: float, mean: float) -> bool:
    """Whether an sd this large beside ``mean`` is resolved by a window's running sums (see
    :data:`RUNNING_SD_REL`)."""
    return sd > _roundoff(mean, rel=RUNNING_SD_REL)


def _roundoff(*means: float, rel: float = ROUNDOFF_REL) -> float:
    finite = [abs(float(m)) for m in means if np.isfinite(m)]
    return rel * max(finite, default=0.0)


def column_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring mean and standard deviation of each column of ``x``, without overflow.

    ``np.nanstd`` squares the values: beyond ~1e154 that is inf, and a non-finite matrix handed
    on to an SVD makes LAPACK loop for ever. The moments are taken of ``x / peak`` per column
    and scaled back. Columns with no finite value give NaN (callers pick their default).
    """
    x = np.asarray(x, dtype=np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean, sd = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        over = ~(np.isfinite(mean) & np.isfinite(sd)) & np.isfinite(x).any(axis=0)
        if over.any():  # only then the scaled path, so that ordinary data gets the very same numbers
            u = x[:, over]
            peak = np.nanmax(np.abs(u), axis=0)
            u = u / peak
            mean[over], sd[over] = np.nanmean(u, axis=0) * peak, np.nanstd(u, axis=0) * peak
        return mean, sd


def mean_shift_sd(ref_mean: float, ref_sd: float, cur_mean: float) -> float:
    """Change of the mean in reference standard deviations (a Glass's delta).

    A reference sd within rounding error of zero (see :data:`REFERENCE_ROUNDOFF_REL`) is a
    constant feature: the shift is then 0 when the means agree to rounding (:data:`ROUNDOFF_REL`:
    the live mean comes from running sums) and infinite otherwise.
    """
    if not np.isfinite(cur_mean):
        return float("nan")
    if ref_sd <= _roundoff(ref_mean, rel=REFERENCE_ROUNDOFF_REL):
        tol = _roundoff(ref_mean, cur_mean)
        return 0.0 if abs(cur_mean - ref_mean) <= tol else float(np.sign(cur_mean - ref_mean) * np.inf)
    return float((cur_mean - ref_mean) / ref_sd)


def scale_ratio(ref_sd: float, cur_sd: float, *, mean: float = 0.0) -> float:
    """Current over reference standard deviation (1 = unchanged, 10 = rescaled x10, 0 = stuck).

    ``mean`` (the reference mean) sets the rounding floors: two sds within rounding error of zero
    are both "constant" and give 1 (the live sd, from running sums, has the looser floor
    :data:`ROUNDOFF_REL`; the reference's :data:`REFERENCE_ROUNDOFF_REL`). A live sd that running
    sums cannot resolve (:data:`RUNNING_SD_REL`) beside a reference sd they cannot resolve either
    gives NaN: neither "stuck" nor a ratio of rounding noise.
    """
    if not np.isfinite(cur_sd):
        return float("nan")
    if ref_sd <= _roundoff(mean, rel=REFERENCE_ROUNDOFF_REL):
        return 1.0 if cur_sd <= _roundoff(mean) else float("inf")
    if not running_sd_resolves(cur_sd, mean) and not running_sd_resolves(ref_sd, mean):
        return float("nan")
    return float(cur_sd / ref_sd)


# -- all at once -----------------------------------------------------------------------------------
def compare_counts(
    ref_counts: ArrayLike,
    cur_counts: ArrayLike,
    *,
    ordered: bool = True,
    ref_positions: ArrayLike | None = None,
    cur_positions: ArrayLike | None = None,
    ref_moments: tuple[float, float] | None = None,
    cur_moments: tuple[float, float] | None = None,
    exact_budget: int = EXACT_KS_BUDGET,
    chi2_draws: int = 0,
    chi2_seed: int = 0,
) -> DriftStats:
    """Every test and distance for one feature from counts per bin.

    Parameters
    ----------
    ref_counts, cur_counts
        Counts per bin (same bins).
    ordered
        True for numeric bins (adds KS and Wasserstein), False for categories.
    ref_positions, cur_positions
        Mean value of each bin in each sample, for Wasserstein (NaN where a bin is empty).
    ref_moments, cur_moments
        ``(mean, sd)`` of each sample, for the mean shift and the scale ratio.
    exact_budget
        Work budget of the exact KS p-value (see :func:`ks_binned`).
    chi2_draws, chi2_seed
        The chi-squared test's Monte-Carlo p-value for sparse tables (see :func:`chi2_test`).
    """
    r, c = _pair(ref_counts, cur_counts)
    ks = ks_binned(r, c, exact_budget=exact_budget) if ordered else None
    w = float("nan")
    shift, ratio = float("nan"), float("nan")
    sd = ref_moments[1] if ref_moments is not None else float("nan")
    if ordered and ref_positions is not None:
        cp = ref_positions if cur_positions is None else cur_positions
        w = wasserstein_atoms(ref_positions, r, cp, c)
        tol = _roundoff(ref_moments[0]) if ref_moments is not None else 0.0
        flat = _roundoff(ref_moments[0], rel=REFERENCE_ROUNDOFF_REL) if ref_moments is not None else 0.0
        w = w / sd if sd > flat else (0.0 if w <= tol else w)
    if ref_moments is not None and cur_moments is not None:
        shift = mean_shift_sd(ref_moments[0], ref_moments[1], cur_moments[0])
        ratio = scale_ratio(ref_moments[1], cur_moments[1], mean=ref_moments[0])
    return DriftStats(
        n_ref=int(r.sum()),
        n_cur=int(c.sum()),
        ks=ks,
        chi2=chi2_test(r, c, draws=chi2_draws, seed=chi2_seed),
        psi=psi(r, c),
        js=js_distance(r, c),
        wasserstein=w,
        mean_shift_sd=shift,
        scale_ratio=ratio,
    )


def two_sample(ref: ArrayLike, cur: ArrayLike, *, n_bins: int = 16, categorical: bool = False) -> DriftStats:
    """Compare two raw samples (e.g. reference vs window of max probabilities).

    Numeric samples are binned at ``n_bins`` reference quantiles; categorical ones (any hashable
    values, compared as strings) on the union of categories. The KS test here is on those bins;
    use :func:`ks_2samp` for the KS test on the raw values.
    """
    if categorical:
        a = np.asarray([str(v) for v in np.asarray(ref, dtype=object).ravel() if v is not None], dtype=object)
        b = np.asarray([str(v) for v in np.asarray(cur, dtype=object).ravel() if v is not None], dtype=object)
        cats, inv = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
        rc = np.bincount(inv[: a.size], minlength=cats.size).astype(np.float64)
        cc = np.bincount(inv[a.size:], minlength=cats.size).astype(np.float64)
        return compare_counts(rc, cc, ordered=False)
    x = np.asarray(ref, dtype=np.float64).ravel()
    y = np.asarray(cur, dtype=np.float64).ravel()
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    edges = quantile_edges(x, n_bins)
    ix, iy = bin_index(x, edges), bin_index(y, edges)
    nb = edges.size + 1
    rc = np.bincount(ix, minlength=nb).astype(np.float64)
    cc = np.bincount(iy, minlength=nb).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rp = np.bincount(ix, weights=x, minlength=nb) / rc
        cp = np.bincount(iy, weights=y, minlength=nb) / cc
    return compare_counts(
        rc, cc, ordered=True, ref_positions=rp, cur_positions=cp,
        ref_moments=(float(x.mean()), float(x.std())) if x.size else None,
        cur_moments=(float(y.mean()), float(y.std())) if y.size else None,
    )
