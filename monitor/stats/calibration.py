"""Calibration error, proper scores, recalibration and label-free accuracy estimation.

Pure functions over numpy arrays, in two forms:

* on samples (``conf``, ``correct`` arrays) for offline use, tests and the benchmark;
* on **binned sufficient statistics** (per-bin count, sum of confidence, sum of correctness),
  which is what the detectors keep in their sliding windows: these statistics are additive, so a
  window of any length costs a fixed number of floats, and every estimator below can be computed
  from them exactly as from the rows (up to the fine binning).

The fine grid (:func:`fine_confidence_edges`) nests the 15 equal-width bins of the classic ECE
(Guo et al. 2017) and refines the last one logarithmically towards 1, where a good model's
confidences pile up; equal-mass bins (Kumar et al. 2019) are formed by merging adjacent fine bins
to roughly equal counts over whatever window is being evaluated.

Examples
--------
>>> import numpy as np
>>> conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
>>> correct = np.array([1, 1, 1, 0, 1, 0])
>>> round(ece_equal_width(conf, correct), 4)   # |0.9 - 0.75| * 4/6 + |0.6 - 0.5| * 2/6
0.1333
>>> round(overconfidence_interval(6, float((conf - correct).sum()), float(((conf - correct) ** 2).sum())).gap, 4)  # 0.8 - 4/6
0.1333
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from monitor.stats.bins import UnitBins

__all__ = [
    "ECE_BINS",
    "fine_confidence_edges",
    "bin_index",
    "bins_of",
    "tie_tolerant_edges",
    "reliability_sums",
    "equal_width_groups",
    "equal_mass_groups",
    "merge_bins",
    "ece_from_sums",
    "mce_from_sums",
    "debiased_l2_from_sums",
    "debiased_l2_rows",
    "debiased_l2_squared_rows",
    "debiased_l2_pvalue",
    "ResampledPvalue",
    "CALIBRATION_PVALUE_DRAWS",
    "CALIBRATION_PVALUE_EXCEEDANCES",
    "ece_rows",
    "plugin_l2_from_sums",
    "ece_equal_width",
    "max_calibration_error",
    "debiased_calibration_error",
    "plugin_calibration_error",
    "brier_terms",
    "log_loss_terms",
    "fit_temperature",
    "GapInterval",
    "overconfidence_interval",
    "wilson_gap_bounds",
    "overconfidence_pvalue",
    "overconfidence_pvalue_rows",
    "OVERCONFIDENCE_DESIGN_GAP",
    "overconfidence_weights",
    "weighted_overconfidence_pvalue",
    "binned_overconfidence_pvalue",
    "atc_threshold",
    "atc_tie_weight",
    "platt_prior",
    "ATC_TIE_TOLERANCE",
    "isotonic_bins",
    "bbse_weights",
    "label_shift_accuracy",
    "mce_rows",
]

#: Number of equal-width bins of the classic expected calibration error (Guo et al. 2017).
ECE_BINS = 15
_LOG_EPS = 1e-15
_SQRT2, _SQRT_TAU = math.sqrt(2.0), math.sqrt(math.tau)  # the standard normal's, as statistics.NormalDist takes them


#: Fine bins per ECE bin in the default fine grid.
_FINE_SUBDIVIDE = 8
#: The highest edge of the default fine grid's equal-width part (its tail refines the bin above).
_LAST_LINEAR_EDGE = 1.0 - 1.0 / (ECE_BINS * _FINE_SUBDIVIDE) + 1e-12


def fine_confidence_edges(n_coarse: int = ECE_BINS, subdivide: int = _FINE_SUBDIVIDE, n_tail: int = 12) -> np.ndarray:
    """Edges of the fine confidence grid on [0, 1].

    ``n_coarse * subdivide`` equal-width bins, plus ``n_tail`` logarithmic edges inside the last
    one (``1 - w * 10**(-j/3)``), so that a window where every confidence is above 0.99 can still
    be split into equal-mass bins. Every coarse (ECE) edge is a fine edge.
    """
    base = np.linspace(0.0, 1.0, n_coarse * subdivide + 1)
    w = 1.0 / (n_coarse * subdivide)
    tail = 1.0 - w * 10.0 ** (-np.arange(1, n_tail + 1) / 3.0)
    return np.unique(np.concatenate([base, tail]))


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value for bins ``[edges[i], edges[i+1])`` (the last bin includes its upper edge).

    Values below the first edge fall in the first bin, values above the last in the last one:
    searching the inner edges alone gives exactly that, without a clip (which costs more than
    the search on the worker's small batches).
    """
    return np.searchsorted(edges[1:-1], values, side="right")


def bins_of(edges: np.ndarray) -> UnitBins:
    """:func:`bin_index` against ``edges`` for values in [0, 1] (confidences), by a guide table
    (:class:`monitor.stats.bins.UnitBins`): ``bins_of(edges).index(v)`` is ``bin_index(v, edges)``,
    three to four times cheaper on a hand-over's rows; made once per grid."""
    return UnitBins(np.asarray(edges, dtype=np.float64)[1:-1], side="right")


def tie_tolerant_edges(edges: np.ndarray) -> np.ndarray:
    """``edges`` of the equal-width grid each lowered by :data:`ATC_TIE_TOLERANCE`, to bin
    labelled confidences with: a confidence within the tolerance below such an edge counts as on it.

    A model whose confidences are vote shares (a 5-nearest-neighbour vote's 0.6, a forest's
    tenths) sits on bin edges, and the same score reaches the detectors a few units of the 8th
    digit away: float32's 0.7 is 0.69999999, and a labelled row's confidence is read back from
    the label join's float32 log-probability (``exp(float32(log 0.6))`` is 0.5999999939). With
    the plain edges such rows fell in the bin below, mixed with that bin's own rows. The fine
    grid's logarithmic tail (its edges above ``1 - 1/120``, down to 1e-6 apart) is kept as it
    is: no score sits on those edges by construction, and lowering them by 1e-6 would move
    whole bins of confident rows, and their weights in the over-confidence test.
    """
    e = np.asarray(edges, dtype=np.float64)
    return np.where(e <= _LAST_LINEAR_EDGE, e - ATC_TIE_TOLERANCE, e)


def reliability_sums(conf: np.ndarray, correct: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin count, sum of confidence and sum of correctness: the additive statistics of calibration."""
    idx = bin_index(np.asarray(conf, dtype=np.float64), edges)
    nb = len(edges) - 1
    return (
        np.bincount(idx, minlength=nb).astype(np.float64),
        np.bincount(idx, weights=conf, minlength=nb),
        np.bincount(idx, weights=np.asarray(correct, dtype=np.float64), minlength=nb),
    )


def equal_width_groups(edges: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Coarse equal-width bin of every fine bin (fine edges must nest the coarse ones)."""
    lower = np.asarray(edges[:-1], dtype=np.float64)
    return np.minimum(np.floor(lower * n_bins + 1e-9), n_bins - 1).astype(np.int64)


def equal_mass_groups(count: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Group adjacent fine bins into at most ``n_bins`` groups of roughly equal count.

    A fine bin goes to the group its cumulative mid-mass falls in, so groups are contiguous and
    a fine bin is never split (their granularity bounds how equal the masses can be).
    """
    c = np.asarray(count, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return np.zeros(len(c), dtype=np.int64)
    mid = np.cumsum(c) - c / 2.0
    return np.minimum(np.floor(mid / total * n_bins), n_bins - 1).astype(np.int64)


def merge_bins(groups: np.ndarray, *stats: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sum fine-bin statistics into their groups."""
    n = int(groups.max()) + 1 if len(groups) else 0
    return tuple(np.bincount(groups, weights=s, minlength=n) for s in stats)


def equal_mass_rows(count: np.ndarray, *stats: np.ndarray, n_bins: int = ECE_BINS) -> tuple[np.ndarray, ...]:
    """:func:`equal_mass_groups` and :func:`merge_bins` for every row of ``(rows, fine bins)``
    sums at once: each row's fine bins grouped into ``n_bins`` of roughly equal count (its own
    grouping), returned as ``(rows, n_bins)`` sums, ``count`` first. A row without counts comes
    out as zeros.

    >>> c = np.array([[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    >>> equal_mass_rows(c, n_bins=2)[0].tolist()
    [[2.0, 2.0], [0.0, 0.0]]
    """
    c = np.asarray(count, dtype=np.float64)
    rows = c.shape[0]
    total = c.sum(axis=1, keepdims=True)
    mid = np.cumsum(c, axis=1) - c / 2.0
    live = total > 0  # a row without counts divides by 1 instead (its groups are 0 either way)
    groups = np.where(live, np.minimum(np.floor(mid / np.where(live, total, 1.0) * n_bins), n_bins - 1), 0).astype(np.int64)
    flat = (groups + np.arange(rows)[:, None] * n_bins).ravel()
    return tuple(np.bincount(flat, weights=np.asarray(x, dtype=np.float64).ravel(), minlength=rows * n_bins).reshape(rows, n_bins)
                 for x in (c, *stats))


def ece_from_sums(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> float:
    """Expected calibration error ``sum_b n_b/N * |conf_b - acc_b|`` (plug-in, biased upwards;
    NaN without counts). One row of :func:`ece_rows`, so that a segment's value and the whole
    window's come from the same arithmetic."""
    return float(ece_rows(*_one_row(count, sum_conf, sum_correct))[0])


def _one_row(*sums: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(s, dtype=np.float64).reshape(1, -1) for s in sums)


def mce_from_sums(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray, min_count: int = 1) -> float:
    """Maximum calibration error over bins holding at least ``min_count`` rows (NaN if none does)."""
    c = np.asarray(count, dtype=np.float64)
    ok = c >= max(min_count, 1)
    if not ok.any():
        return float("nan")
    return float(np.max(np.abs(sum_conf[ok] - sum_correct[ok]) / c[ok]))


def _l2_terms(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    c = np.asarray(count, dtype=np.float64)
    total = float(c.sum())
    ok = c > 0
    conf = np.where(ok, sum_conf / np.where(ok, c, 1.0), 0.0)
    acc = np.where(ok, sum_correct / np.where(ok, c, 1.0), 0.0)
    return c, conf, acc, total


def plugin_l2_from_sums(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> float:
    """Plug-in binned L2 calibration error ``sqrt(sum_b p_b (conf_b - acc_b)^2)`` (biased upwards)."""
    c, conf, acc, total = _l2_terms(count, sum_conf, sum_correct)
    if total <= 0:
        return float("nan")
    return float(np.sqrt(np.sum(c / total * (conf - acc) ** 2)))


def debiased_l2_from_sums(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> float:
    """Debiased binned L2 calibration error (Kumar, Liang and Ma 2019, "Verified uncertainty calibration").

    The plug-in ``(conf_b - acc_b)^2`` overestimates the squared error by the variance of the
    bin's accuracy, ``acc_b (1 - acc_b) / n_b``; subtracting its unbiased estimate
    ``acc_b (1 - acc_b) / (n_b - 1)`` removes that bias, which dominates at a few hundred labels
    and makes a calibrated model look miscalibrated. A bin of one row subtracts its confidence's
    variance ``conf (1 - conf)`` instead (its accuracy's cannot be estimated from one answer). The squared estimate may be negative for a calibrated model; it is clipped at
    0 before the square root. NaN without counts. One row of :func:`debiased_l2_rows`.
    """
    return float(debiased_l2_rows(*_one_row(count, sum_conf, sum_correct))[0])


def ece_rows(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> np.ndarray:
    """:func:`ece_from_sums` of every row of ``(groups, bins)`` sums at once (NaN for a row
    without counts): one pass for all the segments of a window instead of a call per segment."""
    c = np.ascontiguousarray(count, dtype=np.float64)
    total = c.sum(axis=1)
    gap = np.abs(np.ascontiguousarray(sum_conf, dtype=np.float64) - np.ascontiguousarray(sum_correct, dtype=np.float64)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, gap / np.where(total > 0, total, 1.0), np.nan)


def mce_rows(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray, min_count: int = 1) -> np.ndarray:
    """:func:`mce_from_sums` of every row of ``(groups, bins)`` sums at once (NaN for a row
    without a bin of ``min_count`` rows).

    >>> mce_rows(np.array([[10.0, 20.0], [1.0, 0.0]]), np.array([[9.0, 10.0], [1.0, 0.0]]),
    ...          np.array([[8.0, 12.0], [0.0, 0.0]]), min_count=2).tolist()
    [0.1, nan]
    """
    c = np.ascontiguousarray(count, dtype=np.float64)
    ok = c >= max(min_count, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(ok, np.abs(np.asarray(sum_conf, dtype=np.float64) - np.asarray(sum_correct, dtype=np.float64))
                       / np.where(ok, c, 1.0), -np.inf)
    out = gap.max(axis=1) if gap.shape[1] else np.full(gap.shape[0], -np.inf)
    return np.where(ok.any(axis=1), out, np.nan)


def debiased_l2_rows(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> np.ndarray:
    """:func:`debiased_l2_from_sums` of every row of ``(groups, bins)`` sums at once (NaN for a
    row without counts)."""
    sq = debiased_l2_squared_rows(count, sum_conf, sum_correct)
    return np.sqrt(np.maximum(sq, 0.0))  # NaN stays NaN


def debiased_l2_squared_rows(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray) -> np.ndarray:
    """The squared debiased L2 error of every row before it is clipped at 0 (NaN for a row without
    counts): what :func:`debiased_l2_rows` takes the root of, and the statistic of
    :func:`debiased_l2_pvalue` (unclipped, a calibrated window's p-value is not stuck at 1
    whenever the estimate is clipped; where it is positive, the order is the root's)."""
    c = np.ascontiguousarray(count, dtype=np.float64)
    total = c.sum(axis=1)
    ok = c > 0
    safe = np.where(ok, c, 1.0)
    conf = np.where(ok, np.ascontiguousarray(sum_conf, dtype=np.float64) / safe, 0.0)
    acc = np.where(ok, np.ascontiguousarray(sum_correct, dtype=np.float64) / safe, 0.0)
    # a bin of one row cannot estimate its accuracy's variance: its confidence's Bernoulli variance
    # stands in (exact when the model is calibrated, the null that matters); its plug-in term alone
    # (the squared distance of one 0/1 answer) was pure noise of ~conf(1 - conf) per such bin
    var = np.where(c >= 2, acc * (1.0 - acc) / np.maximum(c - 1.0, 1.0), np.where(c == 1, conf * (1.0 - conf), 0.0))
    live = total > 0
    sq = (c / np.where(live, total, 1.0)[:, None] * ((conf - acc) ** 2 - var)).sum(axis=1)
    return np.where(live, sq, np.nan)


#: Most draws of :func:`debiased_l2_pvalue` (the smallest p-value it can give is 1 / (1 + draws)).
CALIBRATION_PVALUE_DRAWS = 1999
#: Exceedances after which :func:`debiased_l2_pvalue` stops drawing (Besag and Clifford 1991).
CALIBRATION_PVALUE_EXCEEDANCES = 10
_FIRST_CHUNK, _MAX_CHUNK = 32, 512
#: :func:`debiased_l2_pvalue` tries Chernoff's bound once, when this many draws (its first five
#: chunks) all fell short of the observation and at least :data:`_BOUND_WORTH` draws remain: the
#: bound costs about as much as 2,000 draws (0.6-1 ms), so that a window this far in the tail with
#: few draws left finishes them instead.
_BOUND_AFTER, _BOUND_WORTH = 992, 4000
_GUIDE = 64  # guide-table cells per group of :class:`_GroupSums`
#: A group whose right answers vary this much under calibration (variance; sd >= 10) is drawn
#: from the normal law with its mean and variance, rounded: the skewness of a sum of Bernoulli
#: variables is at most 1 / sd (0.1 here), and its exact table would cost time that grows with its
#: labels (a p-value at 180,000 labels: 18-20 ms exact, about 1.2 ms with such groups drawn
#: normal). On 20 windows of 20,000 labels, 1,999 draws each, the p-values of both ways agreed
#: within the draws' own error (0.25/0.27, 0.045/0.058, 0.012/0.010, ...), and 600 calibrated
#: windows gave 6 and 6 under 0.01, 26 and 22 under 0.05 (tests/test_calibration_pvalue.py).
NORMAL_GROUP_VARIANCE = 100.0


class _DrawnStatistic:
    """:func:`debiased_l2_squared_rows` of drawn right answers over fixed groups (every group
    holding a row): the counts, confidences and weights are the window's, computed once."""

    def __init__(self, count: np.ndarray, sum_conf: np.ndarray) -> None:
        self.count = np.asarray(count, dtype=np.float64)
        self.conf = np.asarray(sum_conf, dtype=np.float64) / self.count
        self.weight = self.count / self.count.sum()
        self.many = self.count >= 2
        self.few = ~self.many
        self.divisor = np.maximum(self.count - 1.0, 1.0)
        self.single_var = self.conf * (1.0 - self.conf)
        self._scratch = _Scratch()

    def __call__(self, right: np.ndarray) -> np.ndarray:
        """The statistic of each row of ``right`` (``(k, groups)``): the same operations as
        ``(((conf - acc) ** 2 - var) * weight).sum(axis=1)`` with ``acc = right / count`` and
        ``var`` the rows' variance, written into two scratch matrices kept between calls."""
        return self.terms(right).sum(axis=1)

    def terms(self, right: np.ndarray) -> np.ndarray:
        """Each group's term of the statistic (``(k, groups)``, a scratch matrix: valid until the
        next call): the statistic is their sum over groups."""
        acc, var = self._scratch.get("acc", right.shape), self._scratch.get("var", right.shape)
        np.divide(right, self.count, out=acc)
        np.subtract(1.0, acc, out=var)
        var *= acc
        var /= self.divisor
        np.copyto(var, self.single_var, where=self.few)
        np.subtract(self.conf, acc, out=acc)
        np.square(acc, out=acc)
        acc -= var
        acc *= self.weight
        return acc


class _Scratch:
    """Float64 matrices reused from one chunk of draws to the next, by name: a chunk's
    temporaries were fresh memory at every step of every chunk (the p-value's draws come in
    chunks of up to 512 x groups; a miscalibrated window makes every one of 1,999 draws). A
    request larger than what is kept grows it; views are C-contiguous, valid until the next
    request of the same name."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int], dtype: Any = np.float64) -> np.ndarray:
        k, g = shape
        kept = self._kept.get(name)
        if kept is None or kept.shape[0] < k or kept.shape[1] != g or kept.dtype != dtype:
            kept = self._kept[name] = np.empty((max(k, _FIRST_CHUNK), g), dtype=dtype)
        return kept[:k]


class _MixedGroupSums:
    """Draws of each group's right answers under calibration: exact (:class:`_GroupSums`) for
    groups of small variance, the rounded normal law for those past
    :data:`NORMAL_GROUP_VARIANCE`, whose exact tables would grow with the window's labels."""

    def __init__(self, n: np.ndarray, p: np.ndarray, starts: np.ndarray) -> None:
        groups = int(starts.size)
        group_of = np.cumsum(np.isin(np.arange(n.size), starts)) - 1
        nf = n.astype(np.float64)
        self.mean = np.bincount(group_of, weights=nf * p, minlength=groups)
        variance = np.bincount(group_of, weights=nf * p * (1.0 - p), minlength=groups)
        self.top = np.bincount(group_of, weights=nf, minlength=groups)
        self.normal = variance >= NORMAL_GROUP_VARIANCE
        self.sd = np.sqrt(variance[self.normal])
        self.groups = groups
        keep = ~self.normal[group_of]
        self._normal_mean, self._normal_top = self.mean[self.normal], self.top[self.normal]
        self._scratch = _Scratch()
        self.exact: _GroupSums | None = None
        if keep.any():
            sub = group_of[keep]
            self.exact = _GroupSums(n[keep], p[keep], np.flatnonzero(np.r_[True, sub[1:] != sub[:-1]]))

    def support(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The law :meth:`draw` samples: per group the log-probabilities of its possible right
        answers, and those counts (a normal group's within 12 standard deviations of its mean:
        beyond, under 1e-32)."""
        from scipy.special import log_ndtr

        exact = iter(self.exact.support() if self.exact is not None else [])
        ranges = []
        for mean, sd, top in zip(self._normal_mean, self.sd, self._normal_top):
            k = np.arange(max(np.floor(mean - 12.0 * sd), 0.0), min(np.ceil(mean + 12.0 * sd), top) + 1.0)
            # P(round(normal) = k) on each side of the mean from the nearer tail (no cancellation),
            # the clip's ends taking the tails beyond 0 and top
            lo = np.where(k > 0.0, (k - 0.5 - mean) / sd, -np.inf)
            hi = np.where(k < top, (k + 0.5 - mean) / sd, np.inf)
            upper = lo > 0.0
            a, b = np.where(upper, -hi, lo), np.where(upper, -lo, hi)
            la, lb = log_ndtr(a), log_ndtr(b)
            with np.errstate(divide="ignore"):
                ranges.append((lb + np.log1p(-np.exp(la - lb)), k))
        normal = iter(ranges)
        return [next(normal) if is_normal else next(exact) for is_normal in self.normal]

    def draw(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``(k, groups)`` right-answer counts (a scratch matrix: valid until the next draw)."""
        if self.exact is not None and not self.normal.any():
            return self.exact.draw(rng, k)
        out = self._scratch.get("out", (k, self.groups))
        if self.exact is not None:
            out[:, ~self.normal] = self.exact.draw(rng, k)
        drawn = self._scratch.get("normal", (k, self.sd.size))
        rng.standard_normal(out=drawn)  # the numbers standard_normal((k, groups)) draws
        drawn *= self.sd
        np.add(self._normal_mean, drawn, out=drawn)
        np.rint(drawn, out=drawn)
        np.clip(drawn, 0.0, self._normal_top, out=drawn)
        out[:, self.normal] = drawn
        return out


class _GroupSums:
    """Draws of each equal-mass group's right answers under calibration, all groups at once.

    A group's right answers are the sum of its fine bins' ``Binomial(count, mean confidence)``;
    its exact distribution (the convolution of theirs, each cut at its mean +- 12 standard
    deviations: the mass beyond is under 1e-32) is tabulated once per window, by FFT (every
    bin's probabilities at once, multiplied within groups), and sampled by inversion with a guide
    table (Chen and Asau 1974): a uniform's cell of ``_GUIDE`` per group points into the group's
    CDF at or just below the answer, one vectorised step finishes most draws and a search the
    rest. numpy's own binomial sampler cost 100-200 ns a draw with per-bin parameters, on 2.5 to
    7 times as many variates (fine bins, not groups); this costs a few tens of ns a group.
    """

    def __init__(self, n: np.ndarray, p: np.ndarray, starts: np.ndarray) -> None:
        from scipy.special import gammaln, xlog1py, xlogy

        sd = np.sqrt(n * p * (1.0 - p))
        lo = np.maximum(np.floor(n * p - 12.0 * sd - 1.0), 0.0).astype(np.int64)
        hi = np.minimum(np.ceil(n * p + 12.0 * sd + 1.0), n).astype(np.int64)
        group_of = np.cumsum(np.isin(np.arange(n.size), starts)) - 1
        self.groups = int(starts.size)
        # a group's sum lies within the sum of its bins' ranges: one FFT length for every group
        width = np.bincount(group_of, weights=hi - lo, minlength=self.groups).astype(np.int64) + 1
        size = 1 << int(np.ceil(np.log2(int(width.max()))))
        # each bin's probabilities on its own range (a few dozen values), then laid out in rows of
        # the transform's length
        sizes = hi - lo + 1
        bin_of = np.repeat(np.arange(n.size), sizes)
        at = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        k = (lo[bin_of] + at).astype(np.float64)
        nb, pb = n[bin_of].astype(np.float64), p[bin_of]
        pmf = np.zeros((n.size, size))
        pmf[bin_of, at] = np.exp(gammaln(nb + 1.0) - gammaln(k + 1.0) - gammaln(nb - k + 1.0) + xlogy(k, pb) + xlog1py(nb - k, -pb))
        dist = np.fft.irfft(np.multiply.reduceat(np.fft.rfft(pmf, axis=1), starts, axis=0), n=size, axis=1)
        dist = np.maximum(dist, 0.0)  # rounding of the transform: ~1e-17 either side of 0
        cdf = np.cumsum(dist, axis=1)
        cdf /= cdf[:, -1:]
        cdf[np.arange(self.groups), width - 1] = 1.0  # the top of a group's range takes what is left
        cdf[np.arange(size)[None, :] >= width[:, None]] = 1.0
        self.size = size
        # one sorted table: group g's CDF shifted by g, so that a key u + g finds group g's part
        self.table = (cdf + np.arange(self.groups)[:, None]).ravel()
        self.low = np.bincount(group_of, weights=lo, minlength=self.groups).astype(np.int64)
        grid = (np.arange(self.groups)[:, None] + np.arange(_GUIDE)[None, :] / _GUIDE).ravel()
        self.guide = np.searchsorted(self.table, grid, side="right").astype(np.int64)
        self._offset = np.arange(self.groups, dtype=np.float64)  # a group's part of the table starts at its index
        self._cell_base = np.arange(self.groups, dtype=np.int64) * _GUIDE
        self._shift = np.arange(self.groups, dtype=np.int64) * self.size - self.low
        self._scratch = _Scratch()

    def support(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group, the log-probabilities of its tabulated right-answer counts, and the counts."""
        cdf = (self.table.reshape(self.groups, self.size) - np.arange(self.groups)[:, None])
        pmf = np.diff(cdf, axis=1, prepend=0.0)
        with np.errstate(divide="ignore"):
            log_p = np.log(np.maximum(pmf, 0.0))
        return [(log_p[g], self.low[g] + np.arange(self.size, dtype=np.float64)) for g in range(self.groups)]

    def draw(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``(k, groups)`` right-answer counts: per group the smallest value whose CDF exceeds a
        uniform (a scratch matrix: valid until the next draw).

        Every step writes into matrices kept between draws (the uniforms drawn in place, the
        keys, cells and table positions computed into them): the numbers are those of
        ``rng.random((k, groups))`` and of the same arithmetic on fresh arrays."""
        g = self.groups
        u = self._scratch.get("u", (k, g))
        rng.random(out=u)
        key = self._scratch.get("key", (k, g))
        np.add(u, self._offset, out=key)
        cell_f = self._scratch.get("cell_f", (k, g))
        np.multiply(u, _GUIDE, out=cell_f)
        np.minimum(cell_f, _GUIDE - 1, out=cell_f)
        cell = self._scratch.get("cell", (k, g), np.int64)
        np.copyto(cell, cell_f, casting="unsafe")  # truncation, as astype(np.int64)
        cell += self._cell_base
        idx2 = self._scratch.get("idx", (k, g), np.int64)
        idx = idx2.reshape(-1)
        np.take(self.guide, cell.reshape(-1), out=idx)
        flat_key = key.reshape(-1)
        # the cell's first entry above its lower edge may still be at or below u: one step mostly
        # settles it, a search the few left (a cell of the tails spans many tiny steps)
        found = cell_f.reshape(-1)  # the cells' floats are spent: the table's entries go there
        np.take(self.table, idx, out=found)
        todo = np.flatnonzero(found <= flat_key)
        idx[todo] += 1
        todo = todo[self.table[idx[todo]] <= flat_key[todo]]
        idx[todo] = np.searchsorted(self.table, flat_key[todo], side="right")
        idx2 -= self._shift
        out = self._scratch.get("out", (k, g))
        np.copyto(out, idx2)
        return out


@dataclass(frozen=True)
class ResampledPvalue:
    """A consistency-resampling p-value and the number of draws it took."""

    pvalue: float
    draws: int


def debiased_l2_pvalue(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray, rng: np.random.Generator, *,
                       n_bins: int = ECE_BINS, draws: int = CALIBRATION_PVALUE_DRAWS,
                       exceedances: int = CALIBRATION_PVALUE_EXCEEDANCES) -> ResampledPvalue:
    """P-value of "the model is calibrated" for the debiased equal-mass L2 error of fine-bin sums.

    A calibration error above a bound says nothing of chance: at a few hundred labels a calibrated
    model's debiased estimate exceeds 0.1 now and then, and an alert on the bound alone pages
    for it. Consistency resampling (Bröcker and Smith 2007; Vaicenavicius et al. 2019) asks how
    often a model that *is* calibrated, with this window's confidences, reaches the observed
    error: each draw relabels the window with ``y* ~ Bernoulli(confidence)``, groups the fine bins
    into the same equal-mass bins (the grouping depends on the counts alone, which a draw keeps)
    and recomputes the same estimator (squared, before the clip at 0: see
    :func:`debiased_l2_squared_rows`). The window keeps per fine bin (132 of them, 1/120 wide or
    narrower) only the count and the sums, so a bin's right answers are drawn as
    ``Binomial(count, mean confidence)``: its variance exceeds that of the rows' own Bernoulli sum
    by the spread of the confidences inside the bin (at most 1/57,600 a row), which errs towards
    a larger p-value (silence).

    Draws come in chunks (``(chunk, groups)`` matrices) and stop as soon as ``exceedances`` of
    them reached the observed statistic: a calibrated window, whose p-value is spread over (0, 1),
    costs a few dozen draws, not ``draws``. At the other end a window far in the tail would make
    them all (24,999 for a segment among 200 tracked: about 9 ms, at every slide of its window):
    when the first 992 draws all fell short and 4,000 or more remain, Chernoff's bound on the same
    law (:func:`_tail_bound`) is computed once, and where it is under a hundredth of the draws'
    floor ``1 / (1 + draws)`` the draws stop and the floor is the p-value, the value all of them
    would give with probability at least 0.99 (an exceedance among them is then that unlikely);
    the p-value's false-alarm rate at any level grows by at most ``5e-5`` of the floor. Each group's right answers are drawn at once from its
    exact distribution (:class:`_GroupSums`): at 2,000 labels 0.6-0.8 ms for a calibrated window,
    1.6-1.9 ms for one that makes every draw (numpy's binomials per fine bin: 10-12 ms). The
    p-value is Besag and Clifford's (1991) sequential one, valid as it stands: ``exceedances / l``
    when the last exceedance came at draw ``l``, else ``(1 + exceedances seen) / (1 + draws)``. A
    draw equal to the observation counts as an exceedance. NaN without counts.

    >>> rng = np.random.default_rng(0)
    >>> count, conf, right = np.array([100.0, 100.0]), np.array([70.0, 90.0]), np.array([70.0, 90.0])
    >>> debiased_l2_pvalue(count, conf, right, rng).pvalue > 0.1   # right as often as confident
    True
    >>> debiased_l2_pvalue(count, conf, np.array([50.0, 99.0]), rng).pvalue   # 20 points off, then 9
    0.0005
    """
    if draws < 1 or exceedances < 1:
        raise ValueError(f"debiased_l2_pvalue: draws and exceedances must be at least 1, got {draws} and {exceedances}")
    c = np.rint(np.asarray(count, dtype=np.float64))
    total = float(c.sum())
    if not total > 0:
        return ResampledPvalue(float("nan"), 0)
    s = np.asarray(sum_conf, dtype=np.float64)
    groups = equal_mass_groups(c, n_bins)
    gc, gs, gy = merge_bins(groups, c, s, np.asarray(sum_correct, dtype=np.float64))
    observed = float(debiased_l2_squared_rows(gc[None, :], gs[None, :], gy[None, :])[0])
    tie = observed - 1e-12 * max(abs(observed), 1e-12)  # float sums of the window against whole draws
    live = c > 0
    g_f = groups[live]
    starts = np.flatnonzero(np.r_[True, g_f[1:] != g_f[:-1]])  # groups are runs of adjacent fine bins
    used = g_f[starts]
    sampler = _MixedGroupSums(c[live].astype(np.int64), np.clip(s[live] / c[live], 0.0, 1.0), starts)
    stat = _DrawnStatistic(gc[used], gs[used])
    seen = made = 0
    chunk = _FIRST_CHUNK
    floor = 1.0 / (1.0 + draws)
    bound_tried = False
    while made < draws:
        k = min(chunk, draws - made)
        hits = np.cumsum(stat(sampler.draw(rng, k)) >= tie)
        if seen + int(hits[-1]) >= exceedances:
            at = int(np.searchsorted(hits, exceedances - seen))  # the draw that brought the last one needed
            return ResampledPvalue(exceedances / (made + at + 1), made + at + 1)
        seen += int(hits[-1])
        made += k
        chunk = min(2 * chunk, _MAX_CHUNK)
        if not bound_tried and made >= _BOUND_AFTER and seen == 0 and draws - made >= _BOUND_WORTH:
            bound_tried = True  # once: the chunks need not sum to _BOUND_AFTER exactly
            if _tail_bound(sampler, stat, tie, floor / 1000.0) <= floor / 100.0:
                return ResampledPvalue(floor, made)
    return ResampledPvalue((1 + seen) / (1 + draws), draws)


def _tail_bound(sampler: _MixedGroupSums, stat: _DrawnStatistic, tie: float, slack: float) -> float:
    """An upper bound on the probability that a draw's statistic reaches ``tie``: Chernoff's
    (:func:`monitor.stats.chernoff.chernoff_upper`) on the groups' right answers as
    ``sampler`` draws them, each group's terms of the statistic as ``stat`` computes them.

    Chernoff's bound on a sum of squares is loose when a group's rare values carry large terms
    (at confidences near 1, its right answers' long lower tail): values of probability under a
    threshold are set aside, the bound computed on the rest, and the probability set aside
    (at most ``slack``) added, a bound still."""
    from monitor.stats.chernoff import chernoff_upper

    groups = sampler.support()
    least = math.log(slack / sum(k.size for _, k in groups))
    set_aside = sum(float(np.exp(lp[lp <= least]).sum()) for lp, _ in groups)
    kept = [(lp[lp > least], k[lp > least]) for lp, k in groups]
    if any(k.size == 0 for _, k in kept):  # a group of rare values only: no bound this way
        return 1.0
    width = max(k.size for _, k in kept)
    log_p = np.full((len(kept), width), -np.inf)
    right = np.empty((width, len(kept)))  # the statistic's layout: (draws, groups)
    for g, (lp, k) in enumerate(kept):
        log_p[g, :k.size], right[:k.size, g], right[k.size:, g] = lp, k, k[0]
    return chernoff_upper(log_p, stat.terms(right).T, tie) + set_aside


# -- the same estimators on samples -------------------------------------------------------------
def _equal_mass_sums(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(conf, kind="stable")
    parts = np.array_split(order, min(n_bins, max(len(order), 1)))
    c = np.array([len(p) for p in parts], dtype=np.float64)
    s = np.array([conf[p].sum() for p in parts])
    y = np.array([correct[p].sum() for p in parts], dtype=np.float64)
    return c, s, y


def ece_equal_width(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Classic ECE on ``n_bins`` equal-width bins (Guo et al. 2017), for comparability with papers."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return ece_from_sums(*reliability_sums(np.asarray(conf, dtype=np.float64), correct, edges))


def max_calibration_error(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS, min_count: int = 1) -> float:
    """MCE on ``n_bins`` equal-width bins holding at least ``min_count`` rows."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return mce_from_sums(*reliability_sums(np.asarray(conf, dtype=np.float64), correct, edges), min_count=min_count)


def debiased_calibration_error(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Debiased L2 top-label calibration error on ``n_bins`` equal-mass bins of the sample."""
    return debiased_l2_from_sums(*_equal_mass_sums(np.asarray(conf, dtype=np.float64), np.asarray(correct), n_bins))


def plugin_calibration_error(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Plug-in L2 top-label calibration error on ``n_bins`` equal-mass bins (for comparison)."""
    return plugin_l2_from_sums(*_equal_mass_sums(np.asarray(conf, dtype=np.float64), np.asarray(correct), n_bins))


# -- proper scores ------------------------------------------------------------------------------
def brier_terms(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Multi-class Brier score of each row: ``sum_k (p_k - [y = k])^2`` (0 best, 2 worst)."""
    p = np.asarray(probs, dtype=np.float64)
    rows = np.arange(p.shape[0])
    return np.einsum("ij,ij->i", p, p) - 2.0 * p[rows, labels] + 1.0


def log_loss_terms(probs: np.ndarray, labels: np.ndarray, eps: float = _LOG_EPS) -> np.ndarray:
    """Negative log-likelihood of the true class per row, with ``p`` clipped at ``eps`` so that
    one confidently wrong answer costs ``-log(eps)`` (34.5 nats) instead of infinity."""
    p = np.asarray(probs, dtype=np.float64)
    return -np.log(np.maximum(p[np.arange(p.shape[0]), labels], eps))


#: Log-probabilities at or below this (relative to the row's top class) are read as 0: the
#: log of a probability of 0 floored at 1e-300 is -690.8, and float64 holds nothing below ~1e-308.
_MASKED_LOG = -690.0
#: What a masked class's logit becomes in the fit: finite (so that ``z * z`` is), and ``exp(b * z)``
#: underflows to exactly 0 for every ``b >= 1 / 20``.
_MASK_VALUE = -1.0e6


def fit_temperature(log_probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(z / T)`` (Guo et al. 2017).

    ``log_probs`` may be logits or log-probabilities (softmax is invariant to a per-row shift).
    ``T > 1`` means the model is over-confident (dividing the logits by ``T`` softens it),
    ``T < 1`` under-confident. The NLL is convex in ``b = 1/T`` with derivative
    ``mean(E_b[z] - z_y)`` and second derivative ``mean(Var_b[z])``, so a safeguarded Newton
    iteration (bisection whenever a step leaves the bracket) converges in a handful of softmax
    passes; the result is clipped to ``bounds``.

    A class of probability 0 (a masked logit of ``-inf``, or a probability of 0 floored at
    1e-300 before its log: anything below ``exp(_MASKED_LOG)`` relative to the row's top class)
    stays 0 at every temperature, so it takes no part in the fit, and a row whose *true* class
    is such has a likelihood of 0 whatever ``T`` is and says nothing of it: left out. Read as a
    finite logit of -690 instead, one such row (a tree's one-hot wrong answer) pinned ``T`` at the
    upper bound, and a masked class gave NaN gradients that walked it to the lower one.

    NaN when there is nothing to fit: no rows, or rows whose every class of non-zero probability
    is tied at the top (a one-hot model, a fully grown tree or a 1-nearest-neighbour vote, wrong
    at a confidence of 1, or a uniform answer): ``softmax(z / T)`` is then the same at every ``T``
    and no temperature recalibrates them.
    """
    z = np.asarray(log_probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if z.shape[0] == 0:
        return float("nan")
    z = z - z.max(axis=1, keepdims=True)
    masked = ~(z > _MASKED_LOG)
    if masked.any():
        informative = ~masked[np.arange(z.shape[0]), y]
        z, y, masked = z[informative], y[informative], masked[informative]
        if z.shape[0] == 0:
            return float("nan")
        z = np.where(masked, _MASK_VALUE, z)  # exp(b * z) is exactly 0 for every b in the bracket
    if not (z[~masked] < 0).any():
        # every class a kept row can take is tied at its top (a one-hot model's rows, a uniform
        # answer): softmax(z / T) is the same at every T and so is the likelihood, so no finite
        # temperature recalibrates them (the fit ran to the upper bound and gave 20): none
        return float("nan")
    zy = z[np.arange(z.shape[0]), y]
    mean_zy = float(zy.mean())

    def grad_hess(b: float) -> tuple[float, float]:
        e = np.exp(b * z)
        p = e / e.sum(axis=1, keepdims=True)
        ez = np.einsum("ij,ij->i", p, z)
        ez2 = np.einsum("ij,ij->i", p, z * z)
        return float(ez.mean()) - mean_zy, float((ez2 - ez * ez).mean())

    lo, hi = 1.0 / bounds[1], 1.0 / bounds[0]
    g_lo, _ = grad_hess(lo)
    if g_lo >= 0:  # NLL increasing from the smallest b: the largest temperature
        return float(bounds[1])
    g_hi, _ = grad_hess(hi)
    if g_hi <= 0:
        return float(bounds[0])
    b = 1.0
    for _ in range(60):
        g, h = grad_hess(b)
        if g > 0:
            hi = b
        else:
            lo = b
        step = b - g / h if h > 1e-12 else 0.5 * (lo + hi)
        nb = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(nb - b) <= 1e-7 * max(b, 1e-3):
            b = nb
            break
        b = nb
    return float(1.0 / b)


# -- the over-confidence gap with its uncertainty -----------------------------------------------
@dataclass(frozen=True)
class GapInterval:
    """Signed over-confidence gap (mean confidence minus accuracy) and its two-sided interval."""

    gap: float
    lower: float
    upper: float
    se: float
    n: int


def overconfidence_interval(n: int, sum_d: float, sum_d2: float, level: float = 0.98, right: float | None = None) -> GapInterval:
    """Normal interval of the mean of ``d = conf - correct`` from its first two moments.

    With ``level = 0.98`` each side has 1%: "lower bound above zero" is a one-sided test of
    over-confidence at a 1% false-alarm rate per window. The variance is the sample variance
    of ``d`` (not the calibrated-null variance) so that the interval is valid whether or not the
    model is calibrated. For n in the hundreds the mean of these bounded terms is close to normal.

    ``right``: the window's right answers. The interval is then widened, where it is narrower, to
    mean confidence minus Wilson's score interval of the accuracy. Why: with few errors the sample
    variance of ``d`` misses the variance of the answers themselves (every answer right: the
    interval was the point ``mean(conf) - 1``), and the upper bound, "below 0: significantly
    under-confident", was under a calibrated model's gap of 0 in 13% of 100-label windows at
    confidence 0.98 and 59% at 0.995 (1% claimed); Wilson's interval holds its level there (given
    the confidences, the right answers vary at most as a binomial of their mean does).
    """
    if n < 2:
        nan = float("nan")
        return GapInterval(nan, nan, nan, nan, int(n))
    mean = sum_d / n
    var = max((sum_d2 - n * mean * mean) / (n - 1), 0.0)
    se = float(np.sqrt(var / n))
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    lower, upper = mean - z * se, mean + z * se
    if right is not None:
        low, high = wilson_gap_bounds(np.float64(n), np.float64(sum_d), np.float64(right), z)
        lower, upper = min(lower, float(low)), max(upper, float(high))
    return GapInterval(float(mean), float(lower), float(upper), se, int(n))


def wilson_gap_bounds(n: np.ndarray, sum_d: np.ndarray, right: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The gap's bounds from Wilson's score interval of the accuracy (``right / n``, at ``z``): mean
    confidence (``(sum_d + right) / n``) less its upper and its lower bound; of every group at once
    (arrays, ``n > 0``). What :func:`overconfidence_interval` widens its interval to, where wider."""
    acc = np.clip(right / n, 0.0, 1.0)
    shrink = 1.0 + z * z / n
    centre = (acc + z * z / (2.0 * n)) / shrink
    half = z * np.sqrt(acc * (1.0 - acc) / n + z * z / (4.0 * n * n)) / shrink
    conf = (sum_d + right) / n
    return conf - (centre + half), conf - (centre - half)


def overconfidence_pvalue(sum_c: float, sum_c2: float, sum_c3: float, n_correct: float) -> float:
    """One-sided p-value of "the model is calibrated" against "it is over-confident".

    Under calibration each row is right with probability equal to its confidence ``c_i``, so the
    number of right answers ``S`` is a sum of independent Bernoulli(``c_i``) variables whose
    first three cumulants are known from the confidences alone: mean ``sum c``, variance
    ``sum c(1-c)``, third cumulant ``sum c(1-c)(1-2c)``. The p-value is ``P(S <= observed)``
    by a one-term Edgeworth expansion with a continuity correction. The statistic
    ``sum (c - y)`` is the score test of a shift of the calibration curve on the logit scale,
    and using the null variance (not the sample variance) gains power; the skewness term brings
    the false-alarm rate near its nominal level at p-values of a few percent when confidences are
    near 1 (where the plain normal approximation fires too often), but not in the far tail: with
    a fraction of an error expected (100 rows at 0.999) it was under 0.001 in 0.39% of calibrated
    windows. Where that tail matters, use it as a screen and compute the exact tail
    (:func:`weighted_overconfidence_pvalue` with weights 1), as the segments detector does.

    >>> round(overconfidence_pvalue(450.0, 405.0, 364.5, 450.0), 2)  # 500 rows at 0.9, 90% right
    0.52
    >>> overconfidence_pvalue(450.0, 405.0, 364.5, 420.0) < 0.01    # 84% right
    True
    """
    var = sum_c - sum_c2
    if var <= 0:
        return float("nan")
    sd = float(np.sqrt(var))
    k3 = sum_c - 3.0 * sum_c2 + 2.0 * sum_c3
    x = (n_correct + 0.5 - sum_c) / sd
    gamma = k3 / sd**3
    nd = NormalDist()
    p = nd.cdf(x) - gamma / 6.0 * (x * x - 1.0) * nd.pdf(x)
    return float(min(max(p, 0.0), 1.0))


def overconfidence_pvalue_rows(sum_c: np.ndarray, sum_c2: np.ndarray, sum_c3: np.ndarray, n_correct: np.ndarray) -> np.ndarray:
    """:func:`overconfidence_pvalue` of many groups at once (equal to it row by row, NaN where it
    is NaN: no null variance, or NaN sums).

    A detector computing one p-value per segment at every rule tick paid the scalar function's
    Python arithmetic once per segment; here the arithmetic is one array operation per step and
    only the error function runs per group (``math.erf``, as :class:`statistics.NormalDist` does,
    so that the two agree to the last bits).

    >>> p = overconfidence_pvalue_rows(np.array([450.0, 450.0, 1.0]), np.array([405.0, 405.0, 1.0]),
    ...                                np.array([364.5, 364.5, 1.0]), np.array([450.0, 420.0, 1.0]))
    >>> round(float(p[0]), 2), bool(p[1] < 0.01), bool(np.isnan(p[2]))  # 90% right, 84% right, no variance
    (0.52, True, True)
    """
    c, c2, c3, right = (np.asarray(a, dtype=np.float64) for a in (sum_c, sum_c2, sum_c3, n_correct))
    if not c.shape == c2.shape == c3.shape == right.shape:
        c, c2, c3, right = np.broadcast_arrays(c, c2, c3, right)
    # every row computed, those without a null variance (or with NaN sums) masked at the end
    with np.errstate(all="ignore"):
        var = c - c2
        sd = np.sqrt(var)
        x = (right + 0.5 - c) / sd
        gamma = (c - 3.0 * c2 + 2.0 * c3) / sd**3
        cdf = 0.5 * (1.0 + np.array([math.erf(v) for v in (x / _SQRT2).tolist()]).reshape(x.shape))
        pdf = np.exp(x * x / -2.0) / _SQRT_TAU
        p = cdf - gamma / 6.0 * (x * x - 1.0) * pdf
        return np.where(var > 0, np.clip(p, 0.0, 1.0), np.nan)


#: Over-confidence gap (in accuracy points) that the weighted test's additive part is designed for:
#: the issue's target, "a 5-point gap".
OVERCONFIDENCE_DESIGN_GAP = 0.05
_WEIGHT_SCALE = 32  # the heaviest weight; integer weights make the null distribution a lattice one
_WEIGHT_CAP = 1e-4  # confidences above 1 - this weigh as much as 1 - this
_MAX_LATTICE = 1 << 11  # beyond this many lattice points the window is large: the saddlepoint is accurate...
_MAX_LATTICE_ROUGH = 1 << 16  # ...unless few errors carry its variance: then exact up to this size


def overconfidence_weights(edges: np.ndarray, design_gap: float = OVERCONFIDENCE_DESIGN_GAP, tilt: float = 7.0) -> np.ndarray:
    """Integer weight of a wrong answer in each confidence bin, for :func:`weighted_overconfidence_pvalue`.

    Two ways of being over-confident pull the weights apart. A shift of the calibration curve
    on the logit scale (temperature-like) multiplies the odds of an error by the same factor at
    every confidence: the most powerful test counts every error alike (weight 1, the score
    test of :func:`overconfidence_pvalue`). An additive gap (right with probability ``c - g``)
    multiplies the error rate of the most confident rows by ``1 + g / (1 - c)``: one error at
    0.999 is then as telling as eight at 0.9, and the most powerful test against that gap
    weighs an error by the log-likelihood ratio ``log(1 + g/(1-c)) + log(c / (c - g))``.
    The weight here is ``1 + tilt * llr / max(llr)``, between the two: at 500 labels it loses no
    measurable power on a logit shift (what counting alike is best against), gains on a
    temperature, and closes 40 to 80% of the distance between the flat test's power and the
    likelihood ratio's on the additive gap (benchmarks/results/confidence.md, over-confidence
    section). ``tilt = 7`` was chosen among 4, 7, 10 and 15 on those profiles: 4 gains less on
    the additive gap, 10 and more begin to lose a point or two on a logit shift and on
    accuracy = confidence ** a (over-confidence concentrated at middle confidences).

    The likelihood ratio is taken at each bin's mid-point, with ``c - g`` floored at ``c / 2``
    (an additive gap cannot exceed the confidence) and ``1 - c`` floored at ``1e-4`` (above
    0.9999 the weight stops growing: a handful of errors there should not outweigh the rest of
    the window). The weights are scaled to at most 32 and rounded to integers: they are fixed
    by the bins alone, never by the labels, which is what keeps the test's level exact.
    """
    if not 0.0 < design_gap < 0.5:
        raise ValueError(f"overconfidence_weights: design_gap must be in (0, 0.5), got {design_gap}")
    if tilt < 0:
        raise ValueError(f"overconfidence_weights: tilt must be >= 0, got {tilt}")
    e = np.asarray(edges, dtype=np.float64)
    c = np.clip(0.5 * (e[:-1] + e[1:]), 1e-6, 1.0 - _WEIGHT_CAP)
    q = np.maximum(c - design_gap, c / 2.0)
    llr = np.log((1.0 - q) / (1.0 - c)) + np.log(c / q)
    w = 1.0 + tilt * llr / llr.max()
    return np.maximum(np.round(_WEIGHT_SCALE * w / w.max()), 1.0).astype(np.int64)


def weighted_overconfidence_pvalue(count: np.ndarray, sum_conf: np.ndarray, sum_correct: np.ndarray, weights: np.ndarray) -> float:
    """One-sided p-value of "calibrated" against "over-confident" from binned sums, errors weighted by bin.

    The statistic is ``T = sum_b w_b E_b``, the weighted number of wrong answers (``E_b`` wrong
    answers in bin ``b``, integer weights ``w_b`` fixed per bin, e.g. :func:`overconfidence_weights`);
    the p-value is ``P(T >= observed)`` under calibration. Conditionally on the confidences,
    calibration makes ``E_b`` a sum of independent Bernoulli(``1 - c_i``) over the bin's rows;
    the window keeps only the bin's count and sum of confidence, so ``E_b`` is taken as
    Binomial(``n_b``, ``1 - mean c``): the same mean, and the most spread-out sum of Bernoullis
    with that mean (Hoeffding 1956), so the approximation errs on the side of fewer false alarms;
    on a fine bin, whose confidences differ by less than its width, the two barely differ.

    The null distribution of ``T`` is then computed exactly, not approximated: with integer
    weights ``T`` lives on the integers, its characteristic function is the product of the bins'
    binomial ones, and an inverse FFT over a range of ``mean +- (6 sd + 9 max w)`` gives its
    probabilities (the mass outside that range, which the FFT would fold in, is below 3e-6 by
    Bernstein's inequality; an observation beyond it gets Chernoff's bound, not 0). This matters because the weights near confidence 1 are large and
    the errors there rare: ``T`` is far from normal (a handful of errors at 0.999 decide it),
    and a normal or Edgeworth approximation misstates the tail. The FFT costs the number of
    bins times the range, so windows whose range exceeds 2,048 points (a few thousand labels)
    use the Lugannani-Rice saddlepoint approximation with Daniels' lattice correction instead,
    built on the exact cumulant generating function (relative error below 1e-3 at p = 0.01 on
    every confidence profile of the tests; 1e-5 measured), unless ``T`` is lumpy there (few errors carry its
    variance, see :func:`_smooth`): then the FFT is used up to 65,536 points.

    Two bins, 400 rows at 0.9 and 100 at 0.999, with 40 errors at 0.9 (as expected) and 3 at
    0.999 (0.1 expected): counting errors alike, 43 against 40.1 expected is unremarkable;
    weighing an error at 0.999 four times, it is not.

    >>> n, s, right = np.array([400.0, 100.0]), np.array([360.0, 99.9]), np.array([360.0, 97.0])
    >>> round(weighted_overconfidence_pvalue(n, s, right, np.array([1, 1])), 2)
    0.34
    >>> round(weighted_overconfidence_pvalue(n, s, right, np.array([1, 4])), 2)
    0.04
    """
    if not all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in (count, sum_conf, sum_correct)):
        return float("nan")  # a bin left out of the null would keep its errors in the statistic
    n = np.rint(np.asarray(count, dtype=np.float64))
    live = n > 0
    n = n[live]
    q = np.clip(1.0 - np.asarray(sum_conf, dtype=np.float64)[live] / n, 0.0, 1.0)  # n > 0: the live bins
    w = np.asarray(weights, dtype=np.int64)[live]
    errors = np.clip(n - np.asarray(sum_correct, dtype=np.float64)[live], 0.0, n)
    t = int(np.rint(float(np.dot(w, errors))))
    if n.size == 0:
        return float("nan")
    rand = q > 0  # bins whose confidence is exactly 1 cannot err under the null
    n, q, w = n[rand], q[rand], w[rand]
    if t <= 0:
        return 1.0
    if n.size == 0:
        return 0.0
    tail = _lattice_upper(t, n, q, w, _MAX_LATTICE)
    if tail is None and not _smooth(n, q, w):
        tail = _lattice_upper(t, n, q, w, _MAX_LATTICE_ROUGH)
    return _saddlepoint_upper(t, n, q, w) if tail is None else tail


def _smooth(n: np.ndarray, q: np.ndarray, w: np.ndarray) -> bool:
    """Whether ``T`` is smooth enough for the saddlepoint. A weight whose bins expect fewer than
    ``_WEIGHT_SCALE`` errors is lumpy: e.g. 15 expected errors at weights 31 and 32 put ``T`` in
    clumps around the multiples of 31.5, which no smooth approximation follows (errors of 20-30%
    at p = 0.01). The rest of ``T`` blurs those clumps when its standard deviation is at least
    four times the largest lumpy weight; otherwise the lattice is used, however large."""
    # per weight value (the weights are small positive integers: bincount by value, no unique)
    present = np.bincount(w) > 0
    var = np.bincount(w, weights=w * w * n * q * (1.0 - q))[present]
    lumpy = np.bincount(w, weights=n * q)[present] < _WEIGHT_SCALE
    values = np.flatnonzero(present)
    return not lumpy.any() or float(np.sqrt(var[~lumpy].sum())) >= 4.0 * float(values[lumpy].max())


def _lattice_upper(t: int, n: np.ndarray, q: np.ndarray, w: np.ndarray, max_size: int) -> float | None:
    """``P(T >= t)`` for ``T = sum w_b Binomial(n_b, q_b)`` by inverse FFT of its characteristic
    function on ``mean +- (6 sd + 9 max w)``; None when that range needs more than ``max_size`` points."""
    mean = float(np.dot(w, n * q))
    var = float(np.dot(w * w, n * q * (1.0 - q)))
    reach = 6.0 * np.sqrt(var) + 9.0 * float(w.max())
    lo = int(max(0.0, np.floor(mean - reach)))
    hi = int(min(float(np.dot(w, n)), np.ceil(mean + reach)))
    if t > hi:  # beyond the range (its tail under 3e-6): Chernoff's bound, 0 only past every error
        return _chernoff_weighted(t, n, q, w)
    size = 1 << int(np.ceil(np.log2(hi - lo + 1)))
    if size > max_size:
        return None
    # characteristic function at the frequencies 2 pi j / size: each bin's factor
    # 1 - q + q exp(-i theta w) in polar form, its angle read from a table of the size-th roots
    # of unity (theta w mod 2 pi is an integer multiple of 2 pi / size), summed in logs
    j = np.arange(size // 2 + 1)
    turn = 2.0 * np.pi * np.arange(size) / size
    at = np.outer(j, w) & (size - 1)  # mod size, a power of 2
    re = 1.0 - q + q * np.cos(turn)[at]
    im = -q * np.sin(turn)[at]
    with np.errstate(divide="ignore"):  # a factor of exactly 0 (q = 1/2) is a zero of the transform
        log_mod = 0.5 * np.log(re * re + im * im) @ n
    angle = np.arctan2(im, re) @ n + turn[: size // 2 + 1] * lo
    pmf = np.fft.irfft(np.exp(log_mod) * (np.cos(angle) + 1j * np.sin(angle)), n=size)
    k = t - lo
    return 1.0 if k <= 0 else float(min(max(pmf[k:].sum(), 0.0), 1.0))


def _saddlepoint_upper(t: int, n: np.ndarray, q: np.ndarray, w: np.ndarray) -> float:
    """``P(T >= t)`` for ``T = sum w_b Binomial(n_b, q_b)`` by the Lugannani-Rice saddlepoint
    formula with Daniels' (1987) continuity correction for a lattice of span ``gcd(w)``.

    Its relative error in the tail is of order ``1 / n`` whatever the skewness (it uses the whole
    cumulant generating function ``K(s) = sum n_b log(1 - q_b + q_b e^(s w_b))``, not its first
    three cumulants). Below the mean (p-values above one half, which no alert looks at) the
    normal approximation is used.
    """
    # the lattice's effective span: the weights' gcd over the bins carrying 99% of the variance
    # (a few rows of another weight barely fill the gaps between the multiples of the others)
    share = w * w * n * q * (1.0 - q)
    order = np.argsort(share)[::-1]
    carry = order[: int(np.searchsorted(np.cumsum(share[order]), 0.99 * share.sum())) + 1]
    span = int(np.gcd.reduce(w[carry]))
    x = t - span / 2.0
    q = np.minimum(q, 1.0 - 1e-15)
    mean = float(np.dot(w, n * q))
    sd = float(np.sqrt(np.dot(w * w, n * q * (1.0 - q))))
    nd = NormalDist()
    if x >= float(np.dot(w, n)):
        return 0.0
    if x <= mean + 1e-3 * sd:
        return float(1.0 - nd.cdf((x - mean) / sd))
    s, cgf, k2 = _saddle(x, n, q, w)
    r = float(np.sqrt(max(2.0 * (s * x - cgf), 0.0)))
    u = 2.0 * np.sinh(s * span / 2.0) / span * np.sqrt(k2)
    if r < 1e-6 or u <= 0:
        return float(1.0 - nd.cdf((x - mean) / sd))
    return float(min(max(1.0 - nd.cdf(r) + nd.pdf(r) * (1.0 / u - 1.0 / r), 0.0), 1.0))


def _saddle(x: float, n: np.ndarray, q: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """The saddlepoint ``s`` of ``T = sum w_b Binomial(n_b, q_b)`` at ``x`` (above its mean, under
    its largest value ``sum n w``: ``K'(s) = x``), with ``K(s)`` and ``K''(s)``, ``K`` the
    cumulant generating function ``sum n_b log(1 - q_b + q_b e^(s w_b))``."""
    q = np.minimum(q, 1.0 - 1e-15)
    lq, l1q = np.log(q) - np.log1p(-q), np.log1p(-q)

    def slopes(s: float) -> tuple[float, float]:  # K'(s), K''(s)
        pi = 1.0 / (1.0 + np.exp(-(lq + s * w)))
        return float(np.dot(n, w * pi)), float(np.dot(n, w * w * pi * (1.0 - pi)))

    # K' increases from the mean (s = 0) to sum(n w): bracket the root, then safeguarded Newton
    lo, hi = 0.0, 1.0 / float(w.max())
    while slopes(hi)[0] < x:
        lo, hi = hi, 2.0 * hi
    s = 0.5 * (lo + hi)
    for _ in range(100):
        k1, k2 = slopes(s)
        lo, hi = (lo, s) if k1 > x else (s, hi)
        step = s - (k1 - x) / k2 if k2 > 0 else 0.5 * (lo + hi)
        nxt = step if lo < step < hi else 0.5 * (lo + hi)
        done = abs(nxt - s) <= 1e-12 * s
        s = nxt
        if done:
            break
    return s, float(np.dot(n, l1q + np.logaddexp(0.0, lq + s * w))), slopes(s)[1]


def _chernoff_weighted(t: int, n: np.ndarray, q: np.ndarray, w: np.ndarray) -> float:
    """Chernoff's bound ``exp(K(s) - s t)`` on ``P(T >= t)`` at the saddlepoint (its best tilt),
    ``T = sum w_b Binomial(n_b, q_b)``: a p-value beyond the exact range's reach, never 0 while
    ``t`` can be reached (at ``t = sum n w``, the exact ``prod q_b^n_b``; beyond, 0)."""
    top = float(np.dot(w, n))
    if t > top:
        return 0.0
    if t == top:
        return float(np.exp(np.dot(n, np.log(q))))
    s, cgf, _ = _saddle(float(t), n, q, w)
    return float(min(np.exp(cgf - s * t), 1.0))


def binned_overconfidence_pvalue(conf: np.ndarray, correct: np.ndarray, edges: np.ndarray | None = None) -> float:
    """:func:`weighted_overconfidence_pvalue` of labelled rows on the fine grid (what the detector
    exports: its rows binned as the detector bins them, by :func:`tie_tolerant_edges`)."""
    e = fine_confidence_edges() if edges is None else edges
    sums = reliability_sums(np.asarray(conf, dtype=np.float64), correct, tie_tolerant_edges(e))
    return weighted_overconfidence_pvalue(*sums, overconfidence_weights(e))


# -- label-free accuracy estimation -------------------------------------------------------------
def atc_threshold(scores: np.ndarray, correct: np.ndarray) -> float:
    """Average Thresholded Confidence threshold (Garg et al. 2022).

    The threshold ``t`` is chosen on labelled reference data so that the share of rows whose
    score is above ``t`` equals the reference accuracy; on new data the share above ``t`` is the
    accuracy estimate. ``scores`` must grow with confidence (max probability, or negative
    entropy for ATC-NE). Where many rows share the score at ``t`` (a tree's pure leaves, a
    nearest-neighbour vote) the share above it is not the accuracy: :func:`atc_tie_weight` says
    how much each of those rows counts.
    """
    s = np.asarray(scores, dtype=np.float64)
    acc = float(np.mean(correct))
    return float(np.quantile(s, 1.0 - acc))


#: Scores this close to the ATC threshold count as tied with it: live probabilities reach the
#: detectors as float32, so a row that ties on the reference may differ from it in the 7th digit.
ATC_TIE_TOLERANCE = 1e-6


def atc_tie_weight(scores: np.ndarray, correct: np.ndarray, threshold: float, tol: float = ATC_TIE_TOLERANCE) -> float:
    """What a row whose score ties with the ATC ``threshold`` counts for, in ``[0, 1]``.

    Models with few distinct scores (a decision tree's pure leaves all score 1, a k-nearest
    neighbours vote takes k + 1 values) put a block of reference rows exactly at the threshold,
    and counting only the rows strictly above it (as the continuous ATC does) can estimate 0
    for a model that is right 93% of the time on its own reference. The tied rows count for the
    share of them that makes the estimate equal the reference accuracy on the reference, as a
    randomised threshold would; with no tie (continuous scores) it is 0 and ATC is unchanged.
    """
    s = np.asarray(scores, dtype=np.float64)
    tied = np.abs(s - threshold) <= tol
    n_tied = int(tied.sum())
    if not n_tied:
        return 0.0
    above = float(np.count_nonzero(s > threshold + tol))
    share = (float(np.sum(correct)) - above) / n_tied
    return float(min(max(share, 0.0), 1.0))


def platt_prior(conf: np.ndarray, correct: np.ndarray, at: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """The reference's probability of being right at confidences ``at``, by a logistic fit of
    correctness on the logit of the confidence (Platt scaling), shrunk towards "calibrated".

    This is the CBPE calibrator's prior (see :func:`isotonic_bins`): where the reference has few
    rows or none, the estimate follows the reference's own relation between confidence and
    accuracy instead of assuming the model calibrated. A model that is not (a random forest's
    confidences sit well below its accuracy) was otherwise pulled towards its confidence
    wherever its rows were sparse: 0.90 estimated for a forest right 97% of the time on digits.
    ``ridge`` pulls the slope and intercept towards 1 and 0 (the identity: a calibrated model),
    so that a small or one-sided reference (every row right) gives "calibrated", not a wild fit.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    eps = 1e-6
    c = np.clip(np.asarray(conf, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(correct, dtype=np.float64)
    x = np.log(c / (1.0 - c))
    identity = np.array([1.0, 0.0])  # slope, intercept

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * x + theta[1]
        nll = -float(np.sum(y * log_expit(z) + (1.0 - y) * log_expit(-z)))
        r = expit(z) - y
        d = theta - identity
        return nll + 0.5 * ridge * float(d @ d), np.array([float(r @ x), float(r.sum())]) + ridge * d

    # convex, but Newton from the identity overshoots when every confidence is near 1 (the
    # curvature there is ~0): a quasi-Newton search with line steps converges from anywhere
    theta = minimize(loss, identity, jac=True, method="L-BFGS-B").x
    t = np.clip(np.asarray(at, dtype=np.float64), eps, 1.0 - eps)
    return np.asarray(expit(theta[0] * np.log(t / (1.0 - t)) + theta[1]), dtype=np.float64)


def isotonic_bins(
    count: np.ndarray, sum_correct: np.ndarray, prior: np.ndarray | None = None, prior_weight: float = 0.0
) -> np.ndarray:
    """Non-decreasing accuracy per confidence bin by weighted pool-adjacent-violators.

    This is the CBPE-style calibrator (as NannyML's CBPE): on the reference, the probability of
    being right given the confidence bin, forced to grow with confidence so that noise in small
    bins cannot invert it. With ``prior`` (e.g. each bin's confidence) and ``prior_weight`` > 0,
    every bin gets ``prior_weight`` pseudo-rows at the prior: where the reference has no rows
    (low confidences a good model rarely produces, but a shifted stream does) the estimate falls
    back to "the model is calibrated" instead of extrapolating the nearest populated bin.
    Without a prior, empty bins take the value of the nearest non-empty bin below (or above).
    """
    c = np.asarray(count, dtype=np.float64)
    y = np.asarray(sum_correct, dtype=np.float64)
    if prior is not None and prior_weight > 0:
        c = c + prior_weight
        y = y + prior_weight * np.asarray(prior, dtype=np.float64)
    nz = np.flatnonzero(c > 0)
    out = np.full(len(c), np.nan)
    if nz.size == 0:
        return out
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for i in nz.tolist():
        vals.append(y[i] / c[i])
        wts.append(c[i])
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            s = sizes[-2] + sizes[-1]
            del vals[-1], wts[-1], sizes[-1]
            vals[-1], wts[-1], sizes[-1] = v, w, s
    fitted = np.repeat(vals, sizes)
    out[nz] = fitted
    # fill empty bins from the nearest fitted bin below, then above
    idx = np.where(c > 0, np.arange(len(c)), -1)
    below = np.maximum.accumulate(idx)
    filled = np.where(below >= 0, out[np.maximum(below, 0)], np.nan)
    first = nz[0]
    filled[:first] = out[first]
    return filled


#: Weight of BBSE's ridge towards no shift (the square root of its penalty; see bbse_weights).
BBSE_RIDGE = 1e-3


def bbse_weights(confusion: np.ndarray, pred_freq: np.ndarray) -> np.ndarray:
    """Black-box shift estimation of class weights ``q(y) / p(y)`` (Lipton et al. 2018).

    ``confusion[i, j]`` is the reference joint probability of predicting ``i`` when the truth is
    ``j``; ``pred_freq`` the predicted-class frequencies of the current window. Under label
    shift ``pred_freq = confusion @ w``; the system is solved by non-negative least squares with
    a small ridge towards no shift (``w = 1``), as in regularised learning under label shift
    (RLLS, Azizzadenesheli et al. 2019), and rescaled so that the implied target prior sums to
    one. Why the ridge: a model that cannot tell two classes apart makes the confusion matrix
    singular, and plain least squares then picks any split between them (``[1, 2, 0]`` with no
    shift at all); the ridge settles what the data cannot decide at "unchanged". Its weight is
    :data:`BBSE_RIDGE` times each class's own column norm, so that it costs nothing measurable
    where the matrix is well conditioned, rare classes included (an absolute weight shrank a
    0.2%-prior class's x5 shift to x4).
    """
    from scipy.optimize import nnls

    c = np.asarray(confusion, dtype=np.float64)
    mu = np.asarray(pred_freq, dtype=np.float64)
    norms = np.linalg.norm(c, axis=0)
    held = norms > 0  # a class no labelled reference row holds: the window says nothing of it, weight 0
    ridge = BBSE_RIDGE * norms[held]  # relative to each class's column: a rare class keeps its weight
    w = np.zeros(c.shape[1])
    if held.any():
        w[held], _ = nnls(np.vstack([c[:, held], np.diag(ridge)]), np.concatenate([mu, ridge]))
    prior_ref = c.sum(axis=0)
    implied = float(np.dot(w, prior_ref))
    if implied > 0:
        w = w / implied
    return w


def label_shift_accuracy(confusion: np.ndarray, weights: np.ndarray) -> float:
    """Accuracy expected under label shift with class weights ``w``: ``sum_j w_j C[j, j]``.

    Valid when only the class mix changed (the model's behaviour within each class did not).
    """
    return float(np.dot(np.asarray(weights, dtype=np.float64), np.diag(np.asarray(confusion, dtype=np.float64))))
