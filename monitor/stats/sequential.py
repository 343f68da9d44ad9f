"""Sequential drift detection over binned streams, with the false-alarm rate set analytically.

Why not re-test a sliding window with KS at p=0.05: each test has a 5% chance of a false alarm,
so on stable traffic a monitor that tests every few hundred events raises dozens of alarms a day.
Here the false-alarm budget is stated as an *expected run time* (ERT: mean number of events
between false alarms on undrifted data, as alibi-detect's online detectors) and split, by a union
bound, over every test the detector makes.

The test
--------
Each *channel* (a feature, or a model output) is a stream of bin indices: reference-quantile bins
for numeric values, reference categories for categorical ones, plus a bin for missing values and
(categorical) one for categories never seen in the reference. Every ``step`` events, for each
window length ``n`` in ``scales`` (the last ``n`` events), two families of counts are compared with
the band the reference allows:

* each bin's count (catches a value appearing too often or too rarely: stuck values, missing
  values, unseen categories, selection);
* for ordered (numeric) channels, each *cumulative* count -- rows at or below each reference
  quantile, the quantity behind the Kolmogorov-Smirnov statistic -- which catches location and
  scale shifts that spread over several bins.

Under "no drift", given the reference count ``r`` out of ``n_ref``, a window count ``x`` follows the
Beta-Binomial predictive ``BB(n, r + 1/2, n_ref - r + 1/2)`` (Jeffreys): this accounts for the
reference being a sample (a small reference widens the band instead of causing false alarms) and
is exact for discrete values and ties (bins hold whole values).

Calibration (no simulation, milliseconds)
-----------------------------------------
Tests happen every ``step`` events; for the expected number of false alarms per event to be at most
``1 / ert``, the per-test-time budget ``step / ert`` is split (Bonferroni) over the scales, the
channels, the counts and both tails; band limits are the corresponding quantiles of the predictive,
computed from its exact pmf with log-gamma. By the union bound the false-alarm rate is at most
``1 / ert`` per event, whatever the dependence between overlapping windows, averaged over the
references one may draw (the predictive carries the reference's sampling error). At these extreme
levels the bound is nearly tight: exceedances of overlapping windows and of different counts rarely
coincide, and production drawn fresh from a known population raises 0.3-0.5 alarms per ERT
(``benchmarks/drift_reference_error.py``); a given reference's own rate varies around that mean. With
``correction="fdr"`` the channel split follows Benjamini-Hochberg (bands at levels ``k alpha / d``
for ``k <= fdr_levels``): the same guarantee when nothing drifts, more power when several channels
drift together.

Linear score tests (optional, ``scores=``)
-----------------------------------------
Bin-by-bin bands are weak against a change that moves every quantile a little (a feature
multiplied by 1.3). Given per-bin scores, each window is also tested with linear statistics (the
window's mean score): a rank location test and likelihood-ratio scores against a rescaling, see
:mod:`monitor.stats.score_tests`. They share the same ERT: a fraction ``score_share`` of the
per-test-time budget goes to them (split over scales, channels, statistics and tails), the rest to
the counts, so the union bound still gives at most ``1 / ert`` false alarms per event. A score
alarm needs the mean score to move by ``min_score_effect`` standard deviations of one row's score.

An alarm also needs a *minimum effect*: the share of rows in the offending count must have moved by
at least ``min_effect`` (absolute), so that very long windows cannot turn trivial differences into
alarms.

Cost: windows are running sums updated per block of ``step`` events (an add and a subtract), so a
test costs a few vectorised comparisons of ``channels x bins`` integers. Memory is
``(max(scales) / step) x channels x bins`` counts, whatever the stream length.

Examples
--------
>>> import numpy as np
>>> ref = np.array([[250.0, 250.0, 250.0, 250.0]])
>>> test = BinnedSequentialTest(ref, ert=100_000, step=50, scales=(100, 400))
>>> rng = np.random.default_rng(0)
>>> alarms = [test.update(rng.integers(0, 4, size=(500, 1))).any() for _ in range(20)]
>>> any(alarms)
False
>>> bool(test.update(np.zeros((400, 1), dtype=np.int64)).any())
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from monitor.stats.score_tests import MAX_SKEW, cornish_fisher, linear_moments, predictive_sd, predictive_skew

__all__ = ["BinnedSequentialTest", "SequentialResult", "betabinom_bands", "moment_values", "per_test_alpha"]

#: Values of larger magnitude are left out of the running moments, as infinite ones are (they
#: still count in their bin): a square of 1e155 or more overflows to inf, and a window sum that
#: once held inf becomes inf - inf = NaN when that block leaves it, for good.
MOMENT_LIMIT = 1e100


def moment_values(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, values)``: where ``v`` enters the moments, and ``v`` with 0 elsewhere.

    >>> kept, values = moment_values(np.array([1.0, np.nan, 1e308, -2.0]))
    >>> kept.tolist(), values.tolist(), float((values * values).sum())
    ([True, False, False, True], [1.0, 0.0, 0.0, -2.0], 5.0)
    """
    with np.errstate(invalid="ignore"):
        kept = np.abs(v) < MOMENT_LIMIT  # NaN compares False
    return kept, np.where(kept, v, 0.0)


def per_test_alpha(ert: float, step: int, n_tests: int) -> float:
    """Significance of each of ``n_tests`` tests made every ``step`` events for an ERT of ``ert``."""
    if ert <= step:
        raise ValueError(f"ert ({ert}) must exceed step ({step}) events")
    return step / (float(ert) * max(n_tests, 1))


def betabinom_bands(n: int, ref_counts: np.ndarray, n_ref: np.ndarray, alpha: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Band ``[lo, up)`` of counts out of ``n`` allowed for each bin at two-sided level ``2 alpha``.

    A count ``x`` is significant when ``x < lo`` (``P(X < lo) <= alpha``) or ``x >= up``
    (``P(X >= up) <= alpha``), ``X ~ BetaBinomial(n, r + 1/2, n_ref - r + 1/2)``.

    Parameters
    ----------
    n
        Window length in events.
    ref_counts
        Reference count of each bin, any shape.
    n_ref
        Reference total of each bin's channel, broadcastable to ``ref_counts``.
    alpha
        One-sided level: a scalar, or a 1-D array of levels (bands get a leading axis).

    Examples
    --------
    >>> lo, up = betabinom_bands(100, np.array([500.0]), np.array([1000.0]), 1e-6)
    >>> int(lo[0]) < 50 < int(up[0])
    True
    """
    from scipy.special import betaln, gammaln

    r = np.asarray(ref_counts, dtype=np.float64)
    nr = np.broadcast_to(np.asarray(n_ref, dtype=np.float64), r.shape)
    a = (r + 0.5).reshape(-1, 1)
    b = (nr - r + 0.5).reshape(-1, 1)
    x = np.arange(n + 1, dtype=np.float64)
    logpmf = (gammaln(n + 1.0) - gammaln(x + 1.0) - gammaln(n - x + 1.0)
              + betaln(x + a, n - x + b) - betaln(a, b))
    pmf = np.exp(logpmf)
    cdf = np.cumsum(pmf, axis=1)  # P(X <= x)
    upper = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # P(X >= x), summed from the small tail
    al = np.asarray(alpha, dtype=np.float64)
    if al.ndim > 1:
        raise ValueError("alpha must be a scalar or a 1-D array of levels")
    levels = al.reshape(-1)
    lo = np.empty((levels.size, pmf.shape[0]), dtype=np.int64)
    up = np.empty_like(lo)
    for i, lev in enumerate(levels):
        lo[i] = (cdf <= lev).sum(axis=1)  # number of x with P(X <= x) <= alpha: flag x < lo
        up[i] = n + 1 - (upper <= lev).sum(axis=1)  # smallest x with P(X >= x) <= alpha: flag x >= up
    if al.ndim == 0:
        return lo[0].reshape(r.shape), up[0].reshape(r.shape)
    return lo.reshape((levels.size,) + r.shape), up.reshape((levels.size,) + r.shape)


@dataclass(frozen=True)
class SequentialResult:
    """What the last test that flagged saw (for explanation)."""

    event: int  # stream position (events seen) of the test
    scale: int  # window length that flagged
    counts: np.ndarray  # (channels, bins) window counts at that scale
    score: np.ndarray  # (channels,) deviation / band half-width (>= 1 where flagged)
    flagged: np.ndarray  # (channels,) bool
    moments: np.ndarray | None = None  # (channels, 3): finite count, sum, sum of squares in the window
    strength: np.ndarray | None = None  # (channels,) standardised chi-squared of the window (for ranking)


class BinnedSequentialTest:
    """Multi-scale windowed bin-count test with an ERT-calibrated false-alarm rate.

    Parameters
    ----------
    ref_counts
        Reference counts ``(channels, bins)``; channels with fewer bins pad with ``-1`` (never used).
    ordered
        Per channel, how many leading bins are ordered values (their cumulative counts are tested
        too); 0 for categorical channels. Default: none.
    ert
        Expected run time in events between false alarms on undrifted data.
    step
        Events between tests (the granularity of detection delays).
    scales
        Window lengths in events; each must be a multiple of ``step``. Short windows catch big
        shifts fast, long ones catch small shifts.
    correction
        ``"bonferroni"`` or ``"fdr"`` across channels (see the module docstring).
    min_effect
        Minimum absolute change of a count's share of rows for an alarm.
    fdr_levels
        How many Benjamini-Hochberg levels to precompute (``k alpha / d`` for ``k <= fdr_levels``).
    scores
        Optional per-bin scores ``(channels, bins, statistics)`` of linear score tests over each
        channel's ordered value bins (see the module docstring); zeros elsewhere. Channels with
        fewer than 3 ordered bins are not score-tested.
    score_tails
        Per statistic, 2 (both tails tested) or 1 (upper tail only). Default: both.
    score_share
        Share of the false-alarm budget given to the score tests (when any is usable).
    min_score_effect
        Minimum move of the window's mean score, in standard deviations of one row's score.
    score_offset, score_ref_var
        Optional ``(channels, statistics)`` corrections of the score tests' null: bias of the
        window mean score and the reference's share of its variance (see
        :func:`monitor.stats.score_tests.bootstrap_null`).
    """

    def __init__(
        self,
        ref_counts: np.ndarray,
        *,
        ordered: Sequence[int] | np.ndarray | None = None,
        ert: float = 1_000_000.0,
        step: int = 50,
        scales: Sequence[int] = (100, 300, 1000),
        correction: str = "bonferroni",
        min_effect: float = 0.02,
        fdr_levels: int = 8,
        scores: np.ndarray | None = None,
        score_tails: Sequence[int] | None = None,
        score_share: float = 0.5,
        min_score_effect: float = 0.1,
        score_offset: np.ndarray | None = None,
        score_ref_var: np.ndarray | None = None,
    ) -> None:
        ref = np.asarray(ref_counts, dtype=np.float64)
        if ref.ndim != 2:
            raise ValueError(f"ref_counts must be (channels, bins), got shape {ref.shape}")
        if step < 1:
            raise ValueError("step must be >= 1 event")
        scales = tuple(sorted(int(s) for s in scales))
        if not scales or any(s % step or s <= 0 for s in scales):
            raise ValueError(f"scales {scales} must be positive multiples of step={step}")
        if correction not in ("bonferroni", "fdr"):
            raise ValueError(f"correction must be 'bonferroni' or 'fdr', not {correction!r}")
        if not 0 <= min_effect < 1:
            raise ValueError("min_effect is a share of rows in [0, 1)")
        self.ref_counts = ref
        self.ordered = np.zeros(ref.shape[0], dtype=np.int64) if ordered is None else np.asarray(ordered, dtype=np.int64)
        if self.ordered.shape != (ref.shape[0],):
            raise ValueError("ordered must give one count of ordered bins per channel")
        self.ert = float(ert)
        self.step = int(step)
        self.scales = scales
        self.correction = correction
        self.min_effect = float(min_effect)
        self.fdr_levels = int(fdr_levels)
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64)
            if scores.ndim != 3 or scores.shape[:2] != ref.shape:
                raise ValueError(f"scores must be (channels, bins, statistics) = {ref.shape} x S, got shape {scores.shape}")
        self.scores_ = scores
        n_stats = 0 if scores is None else scores.shape[2]
        self.score_tails = tuple(int(t) for t in (score_tails if score_tails is not None else (2,) * n_stats))
        if len(self.score_tails) != n_stats or any(t not in (1, 2) for t in self.score_tails):
            raise ValueError(f"score_tails must give 1 or 2 per statistic ({n_stats}), got {self.score_tails}")
        if not 0 < score_share < 1:
            raise ValueError("score_share is a share of the false-alarm budget in (0, 1)")
        self.score_share = float(score_share)
        self.min_score_effect = float(min_score_effect)
        self.score_offset = None if score_offset is None else np.asarray(score_offset, dtype=np.float64)
        self.score_ref_var = None if score_ref_var is None else np.asarray(score_ref_var, dtype=np.float64)
        self._calibrate()
        self._reset()

    # -- calibration -------------------------------------------------------------------------------
    def _calibrate(self) -> None:
        ref = self.ref_counts
        d, b = ref.shape
        valid = ref >= 0
        r = np.where(valid, ref, 0.0)
        n_ref = r.sum(axis=1, keepdims=True)
        if (n_ref <= 0).any():
            raise ValueError("every channel needs reference data (a channel has no reference counts)")
        # cumulative counts: rows in the first k+1 ordered bins, k = 0..ordered-2
        c = max(int(self.ordered.max()) - 1, 0)
        cvalid = np.arange(c)[None, :] < (self.ordered[:, None] - 1)
        rc = np.where(cvalid, np.cumsum(r, axis=1)[:, :c], 0.0)
        self._c = c
        self._valid = np.concatenate([valid, cvalid], axis=1)
        rall = np.concatenate([r, rc], axis=1)
        self._n_ref = n_ref
        self._p_ref = rall / n_ref
        n_tests = len(self.scales) * int(self._valid.sum()) * 2
        n_score_tests = self._calibrate_scores(r, valid)
        share = self.score_share if n_score_tests else 0.0
        # one tail of one count, Bonferroni over all (the score tests take their share of the budget)
        alpha = per_test_alpha(self.ert, self.step, n_tests) * (1.0 - share)
        k = np.arange(1, (min(self.fdr_levels, d) if self.correction == "fdr" else 1) + 1, dtype=np.float64)
        levels = alpha * k
        if n_score_tests:
            from scipy.stats import norm

            self.score_alpha = per_test_alpha(self.ert, self.step, n_score_tests) * share
            self._score_z = norm.isf(self.score_alpha * k)  # (levels,)
            self._score_tables()
        self.alpha = alpha
        self._levels = levels
        self._lo: list[np.ndarray] = []
        self._up: list[np.ndarray] = []
        self._exp: list[np.ndarray] = []
        self._half_hi: list[np.ndarray] = []
        self._half_lo: list[np.ndarray] = []
        for n in self.scales:
            lo, up = betabinom_bands(n, rall, n_ref, levels)
            lo = np.where(self._valid[None], lo, -1)
            up = np.where(self._valid[None], up, n + 1)
            exp = n * self._p_ref
            self._lo.append(lo)
            self._up.append(up)
            self._exp.append(exp)
            self._half_hi.append(np.maximum(up[0] - exp, 1e-9))
            self._half_lo.append(np.maximum(exp - lo[0] + 1, 1e-9))

    def _calibrate_scores(self, r: np.ndarray, valid: np.ndarray) -> int:
        """Null moments of the score statistics and which ones are usable; returns how many
        one-tailed score tests are made per test time."""
        self.score_alpha = 0.0
        self._score_active = None
        if self.scores_ is None:
            return 0
        d, b = r.shape
        vmask = (np.arange(b)[None, :] < self.ordered[:, None]) & valid
        self._vmask = vmask
        s = np.where(vmask[..., None], self.scores_, 0.0)
        self._smat = s
        mom = linear_moments(np.where(vmask, r, 0.0), s, vmask)
        if self.score_offset is not None or self.score_ref_var is not None:
            zero = np.zeros_like(mom.mean)
            mom = mom.corrected(zero if self.score_offset is None else self.score_offset,
                                zero if self.score_ref_var is None else self.score_ref_var)
        self._smom = mom
        flat = (s.max(axis=1) - s.min(axis=1)) > 1e-12
        skew0 = predictive_skew(mom, float(self.scales[0]))
        active = (self.ordered >= 3)[:, None] & flat & (mom.c2 > 0) & (np.abs(skew0) <= MAX_SKEW)
        self._score_active = active
        self._score_sd1 = np.sqrt(np.maximum(mom.c2, 0.0))
        tails = np.asarray(self.score_tails, dtype=np.int64)[None, :]
        return int(len(self.scales) * (active * tails).sum())

    #: Window fill levels (share of the scale with a value) at which score thresholds are tabulated.
    _FILL = 0.5 + np.arange(9) / 16.0

    def _score_tables(self) -> None:
        """Thresholds of the window mean score, tabulated per scale at :attr:`_FILL` shares of
        non-missing rows: ``(fill, levels, d, S)`` deviations above (``up``) and below (``lo``) the
        null mean that flag, with the skewness correction and the minimum effect folded in, and
        ``inf`` where a test does not apply. A window is held to the table row at or below its
        fill (fewer rows: a wider, more skewed null), which is conservative."""
        mom = self._smom
        zl = self._score_z[None, :, None, None]
        two = (np.asarray(self.score_tails, dtype=np.int64) == 2)[None, None, None, :]
        floor = (self.min_score_effect * self._score_sd1)[None, None]
        self._s_up, self._s_lo, self._s_sd = [], [], []
        for n in self.scales:
            nn = (n * self._FILL)[:, None, None]
            sd = predictive_sd(mom, nn)  # (fill, d, S)
            skew = predictive_skew(mom, nn)
            up = np.maximum(cornish_fisher(zl, skew[:, None]) * sd[:, None], floor)
            lo = np.maximum(cornish_fisher(zl, -skew[:, None]) * sd[:, None], floor)
            act = self._score_active[None, None]
            self._s_up.append(np.where(act, up, np.inf))
            self._s_lo.append(np.where(act & two, lo, np.inf))
            self._s_sd.append(sd)

    def _score_eval(self, win: np.ndarray, si: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Deviation of the window mean score from its null mean ``(..., d, S)``, the upper and lower
        thresholds ``(levels, ..., d, S)`` it is held to, and its null standard deviation."""
        n = self.scales[si]
        n_eff = (win * self._vmask).sum(axis=-1)  # (..., d) rows with a value
        tot = np.matmul(win[..., None, :].astype(np.float64), self._smat)[..., 0, :]
        lead = win.ndim - 2
        if (n_eff == n).all():  # no missing value: the full-window row of the tables
            dev = tot / n - self._smom.mean
            up, lo, sd = self._s_up[si][-1], self._s_lo[si][-1], self._s_sd[si][-1]
            shape = (up.shape[0],) + (1,) * lead + up.shape[1:]
            return dev, up.reshape(shape), lo.reshape(shape), sd
        gi = np.clip(np.floor((n_eff / n - 0.5) * 16 + 1e-9), 0, self._FILL.size - 1).astype(np.int64)
        ok = (2 * n_eff >= n)[..., None]
        dev = np.where(ok, tot / np.maximum(n_eff, 1)[..., None] - self._smom.mean, 0.0)
        dix = np.arange(self.n_channels)
        up = np.moveaxis(self._s_up[si][gi, :, dix, :], -2, 0)
        lo = np.moveaxis(self._s_lo[si][gi, :, dix, :], -2, 0)
        return dev, up, lo, self._s_sd[si][gi, dix, :]

    def _score_reach(self, win: np.ndarray, si: int) -> np.ndarray:
        """Channels whose score statistics are beyond their threshold, per level ``(levels, ..., d)``."""
        dev, up, lo, _ = self._score_eval(win, si)
        return ((dev[None] >= up) | (-dev[None] >= lo)).any(axis=-1)

    def _score_ratio(self, win: np.ndarray, si: int) -> tuple[np.ndarray, np.ndarray]:
        """Per channel: the largest score statistic relative to its Bonferroni threshold, and the
        largest standardised deviation in a tested direction (0 where no score test applies)."""
        dev, up, lo, sd = self._score_eval(win, si)
        ratio = np.maximum(dev / up[0], -dev / lo[0])
        z = dev / np.maximum(sd, 1e-300)
        zabs = np.maximum(np.where(np.isfinite(up[0]), z, 0.0), np.where(np.isfinite(lo[0]), -z, 0.0))
        return ratio.max(axis=-1), zabs.max(axis=-1)

    def expected_score_ratio(self, shares: np.ndarray, n: float) -> np.ndarray:
        """Per channel, the largest score statistic relative to its Bonferroni threshold that a
        window of ``n`` rows would show *in expectation* if its bin shares were ``shares``
        ``(channels, bins)`` (rows of value bins; ``n`` may be huge): the power ceiling of the score
        tests against a known change, whatever the window's own noise. 0 without score tests."""
        if self._score_active is None or not self.score_tests:
            return np.zeros(self.n_channels)
        sh = np.asarray(shares, dtype=np.float64) * self._vmask
        with np.errstate(invalid="ignore", divide="ignore"):
            sh = sh / np.maximum(sh.sum(axis=1, keepdims=True), 1e-300)
        dev = np.einsum("db,dbs->ds", sh, self._smat) - self._smom.mean
        sd = predictive_sd(self._smom, float(n))
        skew = predictive_skew(self._smom, float(n))
        z = self._score_z[0]
        up = np.where(self._score_active, cornish_fisher(z, skew) * sd, np.inf)
        two = np.asarray(self.score_tails, dtype=np.int64) == 2
        lo = np.where(self._score_active & two, cornish_fisher(z, -skew) * sd, np.inf)
        return np.maximum(dev / up, -dev / lo).max(axis=1)

    @property
    def score_tests(self) -> int:
        """How many (channel, statistic) score tests are in use."""
        return 0 if self._score_active is None else int(self._score_active.sum())

    # -- state -----------------------------------------------------------------------------------
    def _reset(self) -> None:
        d, b = self.ref_counts.shape
        self._k_max = self.scales[-1] // self.step
        self._ring = np.zeros((self._k_max, d, b), dtype=np.int64)  # completed blocks (circular)
        self._mring = np.zeros((self._k_max, d, 3))  # per block: finite count, sum, sum of squares
        self._head = 0  # ring slot of the next block
        self._filled = 0  # completed blocks seen
        self._win = np.zeros((len(self.scales), d, b), dtype=np.int64)  # running window sums
        self._mwin = np.zeros((len(self.scales), d, 3))
        self._partial = np.zeros((d, b), dtype=np.int64)
        self._mpartial = np.zeros((d, 3))
        self._partial_n = 0
        self.n_seen = 0
        self.last: SequentialResult | None = None
        #: the earliest flagged test of the latest :meth:`update` call (the shortest window at
        #: that test time), None when it flagged nothing: where a drift that starts within a
        #: batch was first seen, whatever the batch size (:attr:`last` is the batch's latest)
        self.first: SequentialResult | None = None
        self.n_alarm_tests = 0

    @property
    def n_channels(self) -> int:
        return int(self.ref_counts.shape[0])

    def band(self, scale: int) -> tuple[np.ndarray, np.ndarray]:
        """Bonferroni band ``(lo, up)`` per (channel, bin) for window length ``scale`` (bins only)."""
        i = self.scales.index(scale)
        b = self.ref_counts.shape[1]
        return self._lo[i][0][:, :b], self._up[i][0][:, :b]

    def _extend(self, win: np.ndarray) -> np.ndarray:
        """Append the cumulative counts of the ordered bins to window counts ``(..., d, b)``."""
        if not self._c:
            return win
        cum = np.cumsum(win[..., : self._c], axis=-1)
        return np.concatenate([win, cum], axis=-1)

    def update(self, bins: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Consume bin indices ``(n, channels)`` (event order); return channels flagged in this batch.

        ``-1`` marks a value that goes to no bin (ignored). The returned mask is the union over
        every test made during the batch; :attr:`last` holds the details of the last flagged one.
        ``values`` (same shape, optional) are the raw values, whose window moments are kept so that
        an alarm can say "scaled x10" rather than only "drifted".
        """
        idx = np.asarray(bins, dtype=np.int64)
        if idx.ndim != 2 or idx.shape[1] != self.n_channels:
            raise ValueError(f"bins must be (rows, {self.n_channels}), got shape {idx.shape}")
        n = idx.shape[0]
        d, b = self.ref_counts.shape
        flagged_any = np.zeros(d, dtype=bool)
        self.first = None
        if n == 0:
            return flagged_any
        pos = self._partial_n + np.arange(n)
        blk = pos // self.step
        n_blocks = int(blk[-1]) + 1
        ok = idx >= 0
        if n_blocks == 1:
            flat = (np.arange(d) * b + idx)[ok]
            counts = np.bincount(flat, minlength=d * b).reshape(1, d, b)
        else:
            flat = ((blk[:, None] * d + np.arange(d)) * b + idx)[ok]
            counts = np.bincount(flat, minlength=n_blocks * d * b).reshape(n_blocks, d, b)
        counts[0] += self._partial
        mom = np.zeros((n_blocks, d, 3))
        if values is not None:
            fin, vz = moment_values(np.asarray(values, dtype=np.float64))
            if n_blocks == 1:
                mom[0, :, 0] = fin.sum(axis=0)
                mom[0, :, 1] = vz.sum(axis=0)
                mom[0, :, 2] = (vz * vz).sum(axis=0)
            else:
                starts = np.flatnonzero(np.r_[True, blk[1:] != blk[:-1]])
                mom[..., 0] = np.add.reduceat(fin, starts, axis=0)
                mom[..., 1] = np.add.reduceat(vz, starts, axis=0)
                mom[..., 2] = np.add.reduceat(vz * vz, starts, axis=0)
        mom[0] += self._mpartial
        complete = n_blocks if (self._partial_n + n) % self.step == 0 else n_blocks - 1
        event0 = self.n_seen - self._partial_n  # stream position where this batch's first block starts
        if complete > 2 and self.correction == "bonferroni":
            flagged_any |= self._many(counts[:complete], mom[:complete], event0)
        else:
            for i in range(complete):
                self._push(counts[i], mom[i])
                ev = event0 + (i + 1) * self.step
                for si, n_ev in enumerate(self.scales):
                    if self._filled < n_ev // self.step:
                        continue
                    fl = self._flags(self._win[si], si)
                    if fl.any():
                        flagged_any |= fl
                        self.n_alarm_tests += 1
                        if self.last is None or ev > self.last.event:  # same test time: keep the shortest window
                            self.last = self._result(ev, si, fl, self._win[si], self._mwin[si])
                        if self.first is None:
                            self.first = self.last
        if complete < n_blocks:
            self._partial = counts[-1].copy()
            self._mpartial = mom[-1].copy()
        else:
            self._partial = np.zeros((d, b), dtype=np.int64)
            self._mpartial = np.zeros((d, 3))
        self._partial_n = (self._partial_n + n) % self.step
        self.n_seen += n
        return flagged_any

    def _many(self, blocks: np.ndarray, mblocks: np.ndarray, event0: int) -> np.ndarray:
        """Test after each of several completed blocks at once (large batches), vectorised with
        cumulative sums over the ring and the new blocks; same results as pushing one by one."""
        kmax = self._k_max
        m = blocks.shape[0]
        chron = np.roll(self._ring, -self._head, axis=0)  # oldest first
        mchron = np.roll(self._mring, -self._head, axis=0)
        hist = np.concatenate([chron, blocks], axis=0)
        mhist = np.concatenate([mchron, mblocks], axis=0)
        cum = np.concatenate([np.zeros((1,) + hist.shape[1:], dtype=np.int64), np.cumsum(hist, axis=0)], axis=0)
        mcum = np.concatenate([np.zeros((1,) + mhist.shape[1:]), np.cumsum(mhist, axis=0)], axis=0)
        ends = kmax + 1 + np.arange(m)  # cum index after each new block
        flagged_any = np.zeros(self.n_channels, dtype=bool)
        for si, n_ev in enumerate(self.scales):
            k = n_ev // self.step
            wins = cum[ends] - cum[ends - k]
            avail = (self._filled + 1 + np.arange(m)) >= k
            fl = self._flags(wins, si) & avail[:, None]  # (m, d)
            hit = np.flatnonzero(fl.any(axis=1))
            if hit.size:
                flagged_any |= fl.any(axis=0)
                self.n_alarm_tests += int(hit.size)
                i0 = int(hit[0])
                ev0 = event0 + (i0 + 1) * self.step
                if self.first is None or ev0 < self.first.event:  # scales ascend: a tie keeps the shorter
                    self.first = self._result(ev0, si, fl[i0], wins[i0], mcum[ends[i0]] - mcum[ends[i0] - k])
                i = int(hit[-1])
                ev = event0 + (i + 1) * self.step
                if self.last is None or ev > self.last.event:
                    self.last = self._result(ev, si, fl[i], wins[i], mcum[ends[i]] - mcum[ends[i] - k])
            self._win[si] = cum[ends[-1]] - cum[ends[-1] - k]
            self._mwin[si] = mcum[ends[-1]] - mcum[ends[-1] - k]
        pos = (self._head + np.arange(m)) % kmax
        if m >= kmax:  # only the newest k_max blocks stay in the ring
            pos, blocks, mblocks = pos[-kmax:], blocks[-kmax:], mblocks[-kmax:]
        self._ring[pos] = blocks
        self._mring[pos] = mblocks
        self._head = (self._head + m) % kmax
        self._filled += m
        return flagged_any

    def _push(self, block: np.ndarray, mblock: np.ndarray) -> None:
        """Add a completed block to the ring and to every running window."""
        h = self._head
        for si, n_ev in enumerate(self.scales):
            k = n_ev // self.step
            self._win[si] += block
            self._mwin[si] += mblock
            if self._filled >= k:  # the block k back leaves the window
                old = (h - k) % self._k_max
                self._win[si] -= self._ring[old]
                self._mwin[si] -= self._mring[old]
        self._ring[h] = block
        self._mring[h] = mblock
        self._head = (h + 1) % self._k_max
        self._filled += 1

    def _flags(self, win: np.ndarray, si: int) -> np.ndarray:
        """Channels of window counts ``win`` ``(d, b)`` outside their band at scale index ``si``."""
        w = self._extend(win)
        lo, up = self._lo[si], self._up[si]
        big = np.abs(w - self._exp[si]) >= self.min_effect * self.scales[si]
        out0 = ((w < lo[0]) | (w >= up[0])) & big
        scored = self._score_active is not None and self.score_tests > 0
        if self.correction == "bonferroni" or lo.shape[0] == 1:
            if scored:
                return out0.any(axis=-1) | self._score_reach(win, si)[0]
            return out0.any(axis=-1)
        reach = (((w[None] < lo) | (w[None] >= up)) & big[None]).any(axis=2)  # (levels, d)
        if scored:
            reach = reach | self._score_reach(win, si)
        n_reach = reach.sum(axis=1)
        ok = np.flatnonzero(n_reach >= np.arange(1, lo.shape[0] + 1))
        if ok.size == 0:
            return np.zeros(w.shape[0], dtype=bool)
        return reach[ok[-1]]  # Benjamini-Hochberg: the largest level k reached by >= k channels

    def scores(self, si: int | None = None, win: np.ndarray | None = None) -> np.ndarray:
        """Per channel, the largest deviation relative to its band half-width in the current window
        (the shortest complete scale by default); >= 1 means beyond the Bonferroni threshold."""
        if si is None:
            avail = [i for i, s in enumerate(self.scales) if self._filled >= s // self.step]
            if not avail:
                return np.zeros(self.n_channels)
            si = avail[0]
        raw = self._win[si] if win is None else win
        w = self._extend(raw)
        exp = self._exp[si]
        # a count is flagged at w >= up or w < lo: over half-widths up - exp and exp - lo + 1 the
        # ratio reaches 1 exactly there (w - exp + 1 above reached it one count early, and a bin
        # holding the whole reference, whose band no count can leave, read 1 at every test)
        dev = np.where(w >= exp, (w - exp) / self._half_hi[si], (exp - w) / self._half_lo[si])
        out = np.where(self._valid, dev, 0.0).max(axis=1)
        if self._score_active is not None and self.score_tests > 0:
            out = np.maximum(out, self._score_ratio(raw, si)[0])
        # + 0.0 turns -0.0 into 0.0: a channel without score tests (a feature constant in the
        # reference) has a ratio of -0 / inf there, exported as "-0.0" beside every other feature's 0
        return out + 0.0

    def _strength(self, win: np.ndarray, si: int) -> np.ndarray:
        """Standardised chi-squared of each channel's window bins against the reference, with the
        reference's own sampling variance: ranks flagged channels by how much their whole
        distribution moved (a selected feature beats its correlated neighbours)."""
        n = self.scales[si]
        b = self.ref_counts.shape[1]
        p = self._p_ref[:, :b]
        valid = self._valid[:, :b]
        p = np.where(valid, np.maximum(p, 0.5 / self._n_ref), 1.0)
        var = n * p * (1 + n / self._n_ref)
        chi = np.where(valid, (win - n * p) ** 2 / var, 0.0).sum(axis=1)
        df = np.maximum(valid.sum(axis=1) - 1, 1)
        strength = (chi - df) / np.sqrt(2 * df)
        if self._score_active is not None and self.score_tests > 0:  # a rescaled feature may move no bin much
            strength = np.maximum(strength, self._score_ratio(win, si)[1])
        return strength

    def _result(self, ev: int, si: int, fl: np.ndarray, win: np.ndarray, mwin: np.ndarray) -> SequentialResult:
        win = win.copy()
        return SequentialResult(ev, self.scales[si], win, self.scores(si, win), fl.copy(), mwin.copy(),
                                self._strength(win, si))

    # -- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"ring": self._ring.copy(), "mring": self._mring.copy(), "head": int(self._head),
                "filled": int(self._filled), "win": self._win.copy(), "mwin": self._mwin.copy(),
                "partial": self._partial.copy(), "mpartial": self._mpartial.copy(), "partial_n": int(self._partial_n),
                "n_seen": int(self.n_seen), "n_alarm_tests": int(self.n_alarm_tests)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ring = np.asarray(state["ring"], dtype=np.int64)
        if ring.shape != self._ring.shape:
            raise ValueError(f"sequential state has shape {ring.shape}, expected {self._ring.shape} (different scales/bins?)")
        self._ring = ring.copy()
        self._mring = np.asarray(state["mring"], dtype=np.float64).copy()
        self._head = int(state["head"])
        self._filled = int(state["filled"])
        self._win = np.asarray(state["win"], dtype=np.int64).copy()
        self._mwin = np.asarray(state["mwin"], dtype=np.float64).copy()
        self._partial = np.asarray(state["partial"], dtype=np.int64).copy()
        self._mpartial = np.asarray(state["mpartial"], dtype=np.float64).copy()
        self._partial_n = int(state["partial_n"])
        self.n_seen = int(state["n_seen"])
        self.n_alarm_tests = int(state.get("n_alarm_tests", 0))
        self.last = None
        self.first = None
