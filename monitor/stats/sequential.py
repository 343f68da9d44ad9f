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
window length ``n`` in ``scales`` (the last ``n`` events), each bin's count ``x`` is compared with
the band its reference count allows. Under "no drift", given the reference count ``r`` out of
``n_ref``, ``x`` follows the Beta-Binomial predictive ``BB(n, r + 1/2, n_ref - r + 1/2)`` (Jeffreys):
this accounts for the reference being a sample (a small reference widens the band instead of
causing false alarms) and is exact for discrete values and ties (bins hold whole values).

Calibration (no simulation, milliseconds)
-----------------------------------------
Tests happen every ``step`` events; for the expected number of false alarms per event to be at most
``1 / ert``, the per-test-time budget ``step / ert`` is split (Bonferroni) over the scales, the
channels, the bins and both tails; band limits are the corresponding quantiles of the predictive,
computed from its exact pmf with log-gamma. By the union bound the false-alarm rate is at most
``1 / ert`` per event, whatever the dependence between overlapping windows; in practice it is far
below (the bound is conservative, by design: the target is zero false alarms). With
``correction="fdr"`` the channel split follows Benjamini-Hochberg (bands at levels ``k alpha / d``
for ``k <= fdr_levels``): the same guarantee when nothing drifts, more power when several channels
drift together. ``alarms_per_day`` with ``events_per_day`` is the same budget stated per day.

An alarm also needs a *minimum effect*: the share of rows in the offending bin must have moved by at
least ``min_effect`` (absolute), so that very long windows cannot turn trivial differences into
alarms.

Memory is ``(max(scales) / step + 1) x channels x bins`` counts, whatever the stream length.

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

__all__ = ["BinnedSequentialTest", "SequentialResult", "betabinom_bands", "per_test_alpha"]


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
        One-sided level, scalar or broadcastable; an array with a leading extra axis gives bands at
        several levels at once.
    """
    from scipy.special import betaln, gammaln

    r = np.asarray(ref_counts, dtype=np.float64)
    nr = np.broadcast_to(np.asarray(n_ref, dtype=np.float64), r.shape)
    a = r + 0.5
    b = nr - r + 0.5
    x = np.arange(n + 1, dtype=np.float64)
    shape = r.shape
    a_, b_ = a.reshape(-1, 1), b.reshape(-1, 1)
    logpmf = (gammaln(n + 1.0) - gammaln(x + 1.0) - gammaln(n - x + 1.0)
              + betaln(x + a_, n - x + b_) - betaln(a_, b_))
    pmf = np.exp(logpmf)
    cdf = np.cumsum(pmf, axis=1)  # P(X <= x)
    upper = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # P(X >= x), summed from the small tail
    al = np.asarray(alpha, dtype=np.float64)
    levels = al.reshape(-1) if al.ndim <= 1 else None
    if levels is None:
        raise ValueError("alpha must be a scalar or a 1-D array of levels")
    lo = np.empty((levels.size, pmf.shape[0]), dtype=np.int64)
    up = np.empty_like(lo)
    for i, lev in enumerate(levels):
        lo[i] = (cdf <= lev).sum(axis=1)  # number of x with P(X <= x) <= alpha: flag x < lo
        up[i] = n + 1 - (upper <= lev).sum(axis=1)  # smallest x with P(X >= x) <= alpha: flag x >= up
    if al.ndim == 0:
        return lo[0].reshape(shape), up[0].reshape(shape)
    return lo.reshape((levels.size,) + shape), up.reshape((levels.size,) + shape)


@dataclass(frozen=True)
class SequentialResult:
    """What the last test that flagged saw, per channel (for explanation)."""

    event: int  # stream position (events seen) of the test
    scale: int  # window length that flagged
    counts: np.ndarray  # (channels, bins) window counts at that scale
    score: np.ndarray  # (channels,) deviation / band half-width (>= 1 where flagged)
    flagged: np.ndarray  # (channels,) bool
    moments: np.ndarray | None = None  # (channels, 3): finite count, sum, sum of squares in the window


class BinnedSequentialTest:
    """Multi-scale windowed bin-count test with an ERT-calibrated false-alarm rate.

    Parameters
    ----------
    ref_counts
        Reference counts ``(channels, bins)``; channels with fewer bins pad with ``-1`` (never used).
    ert
        Expected run time in events between false alarms on undrifted data (default 100,000).
    step
        Events between tests (the granularity of detection delays).
    scales
        Window lengths in events; each must be a multiple of ``step``. Short windows catch big
        shifts fast, long ones catch small shifts.
    correction
        ``"bonferroni"`` or ``"fdr"`` across channels (see the module docstring).
    min_effect
        Minimum absolute change of a bin's share of rows for an alarm.
    fdr_levels
        How many Benjamini-Hochberg levels to precompute (``k alpha / d`` for ``k <= fdr_levels``).
    """

    def __init__(
        self,
        ref_counts: np.ndarray,
        *,
        ert: float = 100_000.0,
        step: int = 50,
        scales: Sequence[int] = (100, 300, 1000),
        correction: str = "bonferroni",
        min_effect: float = 0.02,
        fdr_levels: int = 8,
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
        self.ert = float(ert)
        self.step = int(step)
        self.scales = scales
        self.correction = correction
        self.min_effect = float(min_effect)
        self.fdr_levels = int(fdr_levels)
        self._calibrate()
        self._reset()

    # -- calibration -------------------------------------------------------------------------------
    def _calibrate(self) -> None:
        ref = self.ref_counts
        valid = ref >= 0
        self._valid = valid
        r = np.where(valid, ref, 0.0)
        self._n_ref = r.sum(axis=1, keepdims=True)
        if (self._n_ref <= 0).any():
            raise ValueError("every channel needs reference data (a channel has no reference counts)")
        self._p_ref = r / self._n_ref
        d = ref.shape[0]
        bins_per_channel = valid.sum(axis=1)
        n_tests_total = len(self.scales) * int(bins_per_channel.sum()) * 2
        alpha = per_test_alpha(self.ert, self.step, n_tests_total)  # one tail of one bin, Bonferroni over all
        if self.correction == "fdr":
            k = np.arange(1, min(self.fdr_levels, d) + 1, dtype=np.float64)
            levels = alpha * k  # level k of BH: k * alpha_total / d, split over bins/tails/scales as above
        else:
            levels = np.array([alpha])
        self.alpha = alpha
        self._levels = levels
        self._lo = []
        self._up = []
        for n in self.scales:
            lo, up = betabinom_bands(n, r, self._n_ref, levels)
            lo = np.where(valid[None], lo, -1)
            up = np.where(valid[None], up, n + 1)
            self._lo.append(lo)
            self._up.append(up)

    # -- state -----------------------------------------------------------------------------------
    def _reset(self) -> None:
        d, b = self.ref_counts.shape
        self._k_max = self.scales[-1] // self.step
        self._ring = np.zeros((self._k_max, d, b), dtype=np.int64)  # completed blocks, oldest first
        self._mring = np.zeros((self._k_max, d, 3))  # per block: finite count, sum, sum of squares
        self._mpartial = np.zeros((d, 3))
        self.last_score = np.zeros(d)  # channel scores of the newest test at the shortest available scale
        self._filled = 0  # completed blocks seen (capped at k_max for window availability)
        self._partial = np.zeros((d, b), dtype=np.int64)
        self._partial_n = 0
        self.n_seen = 0
        self.last: SequentialResult | None = None
        self.n_alarm_tests = 0

    @property
    def n_channels(self) -> int:
        return int(self.ref_counts.shape[0])

    def band(self, scale: int) -> tuple[np.ndarray, np.ndarray]:
        """Bonferroni band ``(lo, up)`` per (channel, bin) for window length ``scale``."""
        i = self.scales.index(scale)
        return self._lo[i][0], self._up[i][0]

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
        flagged_any = np.zeros(self.n_channels, dtype=bool)
        if n == 0:
            return flagged_any
        d, b = self.ref_counts.shape
        # block number of each row relative to the current partial block
        pos = self._partial_n + np.arange(n)
        blk = pos // self.step
        n_blocks = int(blk[-1]) + 1
        ch = np.broadcast_to(np.arange(d), (n, d))
        ok = idx >= 0
        flat = ((blk[:, None] * d + ch) * b + idx)[ok]
        counts = np.bincount(flat, minlength=n_blocks * d * b).reshape(n_blocks, d, b)
        counts[0] += self._partial
        mom = np.zeros((n_blocks, d, 3))
        if values is not None:
            v = np.asarray(values, dtype=np.float64)
            fin = np.isfinite(v)
            vz = np.where(fin, v, 0.0)
            starts = np.flatnonzero(np.r_[True, blk[1:] != blk[:-1]])  # first row of each block
            mom[..., 0] = np.add.reduceat(fin, starts, axis=0)
            mom[..., 1] = np.add.reduceat(vz, starts, axis=0)
            mom[..., 2] = np.add.reduceat(vz * vz, starts, axis=0)
        mom[0] += self._mpartial
        complete = n_blocks if (self._partial_n + n) % self.step == 0 else n_blocks - 1
        if complete:
            new = counts[:complete]
            hist = np.concatenate([self._ring, new], axis=0)  # (k_max + complete, d, b)
            cum = np.concatenate([np.zeros((1, d, b), dtype=np.int64), np.cumsum(hist, axis=0)], axis=0)
            mhist = np.concatenate([self._mring, mom[:complete]], axis=0)
            mcum = np.concatenate([np.zeros((1, d, 3)), np.cumsum(mhist, axis=0)], axis=0)
            first_scored = False
            total_blocks = self._filled + complete
            for si, n_ev in enumerate(self.scales):
                k = n_ev // self.step
                ends = np.arange(self._k_max + 1, self._k_max + complete + 1)  # cum index after each new block
                avail = (self._filled + np.arange(1, complete + 1)) >= k
                if not avail.any():
                    continue
                ends = ends[avail]
                win = cum[ends] - cum[ends - k]  # (m, d, b)
                fl, score = self._decide(win, si, n_ev)
                if not first_scored:
                    self.last_score = score[-1].copy()
                    first_scored = True
                if fl.any():
                    flagged_any |= fl.any(axis=0)
                    last = int(np.flatnonzero(fl.any(axis=1))[-1])
                    self.n_alarm_tests += int(fl.any(axis=1).sum())
                    ev = self.n_seen - self._partial_n + int(np.flatnonzero(avail)[last] + 1) * self.step
                    if self.last is None or ev > self.last.event:  # same test time: keep the shortest window
                        e = ends[last]
                        self.last = SequentialResult(ev, n_ev, win[last].copy(), score[last], fl[last],
                                                     mcum[e] - mcum[e - k])
            self._ring = hist[-self._k_max:].copy()
            self._mring = mhist[-self._k_max:].copy()
            self._filled = min(total_blocks, 10**9)
        if complete < n_blocks:
            self._partial = counts[-1].copy()
            self._mpartial = mom[-1].copy()
        else:
            self._partial = np.zeros((d, b), dtype=np.int64)
            self._mpartial = np.zeros((d, 3))
        self._partial_n = (self._partial_n + n) % self.step
        self.n_seen += n
        return flagged_any

    def _decide(self, win: np.ndarray, si: int, n_ev: int) -> tuple[np.ndarray, np.ndarray]:
        """Flag channels of windows ``win`` ``(m, d, b)`` at scale index ``si``."""
        lo, up = self._lo[si], self._up[si]  # (levels, d, b)
        expected = n_ev * self._p_ref
        big = np.abs(win - expected) >= self.min_effect * n_ev
        out0 = ((win < lo[0]) | (win >= up[0])) & big
        # score: deviation relative to the Bonferroni band half-width, per channel (>= 1 when outside)
        half_hi = np.maximum(up[0] - expected, 1e-9)
        half_lo = np.maximum(expected - lo[0] + 1, 1e-9)
        dev = np.where(win >= expected, (win - expected + 1) / half_hi, (expected - win) / half_lo)
        score = np.where(self._valid, dev, 0.0).max(axis=2)
        if self.correction == "bonferroni" or lo.shape[0] == 1:
            return out0.any(axis=2), score
        # Benjamini-Hochberg over channels: reject channels reaching level k when >= k channels do
        d = win.shape[1]
        reach = np.stack([(((win < lo[k]) | (win >= up[k])) & big).any(axis=2) for k in range(lo.shape[0])], axis=1)  # (m, K, d)
        n_reach = reach.sum(axis=2)  # (m, K)
        ks = np.arange(1, lo.shape[0] + 1)
        ok = n_reach >= ks[None, :]
        # largest k that passes -> reject the channels reaching that level
        kbest = np.where(ok.any(axis=1), lo.shape[0] - 1 - np.argmax(ok[:, ::-1], axis=1), -1)
        out = np.zeros((win.shape[0], d), dtype=bool)
        for i in np.flatnonzero(kbest >= 0):
            out[i] = reach[i, kbest[i]]
        return out, score

    # -- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"ring": self._ring.copy(), "mring": self._mring.copy(), "mpartial": self._mpartial.copy(),
                "filled": int(self._filled), "partial": self._partial.copy(),
                "partial_n": int(self._partial_n), "n_seen": int(self.n_seen), "n_alarm_tests": int(self.n_alarm_tests)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ring = np.asarray(state["ring"], dtype=np.int64)
        if ring.shape != self._ring.shape:
            raise ValueError(f"sequential state has shape {ring.shape}, expected {self._ring.shape} (different scales/bins?)")
        self._ring = ring.copy()
        self._mring = np.asarray(state["mring"], dtype=np.float64).copy()
        self._mpartial = np.asarray(state["mpartial"], dtype=np.float64).copy()
        self._filled = int(state["filled"])
        self._partial = np.asarray(state["partial"], dtype=np.int64).copy()
        self._partial_n = int(state["partial_n"])
        self.n_seen = int(state["n_seen"])
        self.n_alarm_tests = int(state.get("n_alarm_tests", 0))
        self.last = None
