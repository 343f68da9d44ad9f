"""The population's out-of-distribution rate *now*, read at intake.

Why. The population ring (:mod:`.population`) raises the null rates of the per-client tests when
everybody's traffic moves, but a query is judged with the ring as it stood two periods
(``max_delay_s`` each) before its own, and the ring's owners' shares mix old and new traffic for
about one ring of samples more. At the onset of a population-wide shift (a new upstream
preprocessing: every client's inputs move at once) the busy clients reached their critical OOD
counts before the ring had moved: 7 to 14 benign clients flagged ``ood`` (and 20 of 40 on an offset
of two standard deviations, tests/test_probing_shift_onset_s33e.py) for one to two minutes, one
ModelProbingSuspiciousClient page each.

How. A flag known when a query arrives (OOD: no similarity step needed) is counted per client in
short bins of event time (:attr:`CurrentRates.bin_s`); a bin closes when a query arrives at or after
its end (arrival order decides, never the batching). Each arriving query is stamped with the rate
the last :attr:`CurrentRates.bins` closed bins show: the :data:`.population.RATE_QUANTILE` quantile
over clients of each client's share, the ring's statistic, counted only over clients seen in those
bins *and* in the ``bins`` before them (:data:`.population.MIN_OWNER_ROWS` queries in each, at least
:data:`.population.MIN_OWNERS` clients), and only when the same quantile of their *steps* (recent
share minus earlier share) is above 0: three clients in four sent more odd inputs than they did
a few minutes before. The detector tests the query against the larger of that and the periods'
rate (not held like the latter: :meth:`.ProbingDetector._live_crit`).

Why the step. Without it, the clients active early in the evaluation's run (benchmarks/
eval_probing.py: ten split-attack accounts and the single-account attacks, most of the active
clients then, sending OOD inputs from their first query) set the current rate and hid the Jacobian
stealing client. Accounts made for an attack have no earlier, natural share to step from; to move
the current rate, an attacker needs three in four of the established clients to send natural
traffic first and odd traffic together later. With the step, the evaluation's verdicts and
queries until detection are those of the periods' population alone. Only the OOD flag is read so:
the small-margin flag, read the same way in a first version (without the step), cost the
evaluation's HopSkipJump client its ``boundary`` signal, and no shift seen needed it.

Regimes (for PRADA, :mod:`.regimes`). The same bins say when the population's inputs moved as a
whole: a *regime* begins at the close of a bin where three established clients in four changed their
share of OOD inputs by at least :data:`REGIME_STEP` in the same direction (up at the onset of a
shift, down at its end) after a bin where they had not, and its onset is put at the start of the
closed bin that best splits the population's pooled share in two. Each query is stamped with the
number of regimes begun when it arrived (:meth:`CurrentRates.stamp_regimes`). On the seeded streams
of benchmarks/prada_shift_regimes.py (tests/test_probing_shift_onset_s33e.py's 40 clients, 0.3 to 5
queries/s, three seeds) no stream without a shift began one; x3 on one feature (39% of the queries OOD) began one 25 to 45 s
after its onset, x3 on three features and shifts of 2 or 4 sd 10 to 15 s after, x2 on one feature
(16% OOD) after 55 to 60 s or not at all; every onset was put at the true one.

Limits. A client's window holds up to ``history`` queries, most of them from before a shift; the
current rate counts only the last few bins. A client that sent almost all its window within the
shift while the others did not is still judged against them, as it should be. With fewer than
:data:`.population.MIN_OWNERS` established clients the current rate is unknown and the periods' (or
the reference's) stands alone; a shift that ends before the periods' population has followed it
leaves its OOD queries in the clients' windows judged against the reference again (as before).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.detectors.probing.population import MIN_OWNER_ROWS, MIN_OWNERS, RATE_QUANTILE, rate_quantile

__all__ = ["CurrentRates", "REGIME_STEP", "REGIME_STARTS_KEPT"]

#: the change of the OOD share (three clients in four, the same direction) that begins a regime: ten
#: times the OOD test's rate on the reference (1%), so that the few queries per client of a small
#: population do not begin one by chance (one OOD query more among 20 is a step of 0.05)
REGIME_STEP = 0.1
#: starts of the most recent regimes kept (what a test waiting for its regime needs: :mod:`.regimes`)
REGIME_STARTS_KEPT = 16
#: bytes one kept start costs (a tuple of three Python numbers in a list)
_START_BYTES = 136


class CurrentRates:
    """Per-client counts of intake flags in closed bins of event time, and the population's rates.

    Parameters
    ----------
    bin_s
        Length of a bin (event time).
    bins
        Closed bins the rates are read over.
    bits
        Flag bits whose rates are kept, in this order.
    max_owners
        Clients a bin counts at most: a bin with that many closes early (a stalled clock, a churn of
        client ids), and :attr:`bins` bins are kept at most, so the memory is bounded
        (:meth:`bound_bytes`).

    Examples
    --------
    Eight clients whose every query is flagged from t = 30 s on (a shift they all share), and
    eight others flagged all along (accounts made for an attack), in bins of 5 s:

    >>> cr = CurrentRates(bin_s=5.0, bins=3, bits=(4,))
    >>> ts = np.arange(0.0, 60.0, 0.25)
    >>> owner = np.arange(ts.size) % 8
    >>> r = cr.stamp(ts, owner, np.where(ts >= 30.0, 4, 0).astype(np.uint8))
    >>> bool(np.isnan(r[ts < 30.0]).all()), float(r[-1, 0])
    (True, 1.0)
    >>> other = CurrentRates(bin_s=5.0, bins=3, bits=(4,))
    >>> bool(np.isnan(other.stamp(ts, owner, np.full(ts.size, 4, dtype=np.uint8))).all())
    True

    The shift begins a regime (its first bit's share stepped by :data:`REGIME_STEP` or more) at
    the close of a bin after 30 s, the queries that arrive from then on are stamped with it, and its
    onset is put at 30 s:

    >>> cr = CurrentRates(bin_s=5.0, bins=3, bits=(4,))
    >>> _, regime = cr.stamp_regimes(ts, owner, np.where(ts >= 30.0, 4, 0).astype(np.uint8))
    >>> int(regime[0]), int(regime[-1]), cr.regime_starts
    (0, 1, [(1, 35.0, 30.0)])
    """

    def __init__(self, bin_s: float, bins: int, bits: tuple[int, ...], max_owners: int = 100_000) -> None:
        self.max_owners = max(1, int(max_owners))
        self.bin_s = float(bin_s)
        self.bins = max(1, int(bins))
        self.bits = tuple(bits)
        #: index of the open bin (None: nothing seen yet)
        self.bin: float | None = None
        #: the open bin's (owners, counts (rows, 1 + len(bits))) as they came, summed per owner once
        #: they reach ``max_owners`` rows; the closed bins' (index, owners, counts per owner)
        self._open: list[tuple[np.ndarray, np.ndarray]] = []
        self._open_rows = 0
        self._closed: list[tuple[float, np.ndarray, np.ndarray]] = []
        self.rates = np.full(len(self.bits), np.nan)
        #: regimes begun so far, whether the last closed bin showed the step that begins one, and
        #: the (number, start, estimated onset) in event time of the last :data:`REGIME_STARTS_KEPT`
        self.regime = 0
        self.moved = False
        self.regime_starts: list[tuple[int, float, float]] = []

    @property
    def closed_until(self) -> float:
        """Event time before which every bin is closed: no regime can begin before it any more
        (-inf before the first query)."""
        return -np.inf if self.bin is None else float(self.bin) * self.bin_s

    def stamp(self, ts: np.ndarray, owner: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """Count queries arriving in this order; return, for each, the rates in force when it arrived
        ``(m, len(bits))``, NaN where unknown."""
        return self.stamp_regimes(ts, owner, flags)[0]

    def stamp_regimes(self, ts: np.ndarray, owner: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`stamp`, and the number of regimes begun when each query arrived ``(m,)``."""
        ts = np.asarray(ts, dtype=np.float64)
        m = ts.shape[0]
        out = np.full((m, len(self.bits)), np.nan)
        regime = np.full(m, self.regime, dtype=np.int64)
        if m == 0:
            return out, regime
        with np.errstate(invalid="ignore"):
            idx = np.floor(ts / self.bin_s)
        idx = np.where(np.isfinite(idx), idx, -np.inf)
        start_bin = -np.inf if self.bin is None else self.bin
        b = np.maximum.accumulate(np.maximum(idx, start_bin))
        if self.bin is None:
            self.bin = float(b[0]) if np.isfinite(b[0]) else 0.0
            b = np.maximum(b, self.bin)
        cuts = np.flatnonzero(np.diff(b)) + 1
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), m]):
            if b[lo] > self.bin:
                self._close(float(b[lo]))
            out[lo:hi] = self.rates
            regime[lo:hi] = self.regime
            self._count(np.asarray(owner[lo:hi], dtype=np.int64), np.asarray(flags[lo:hi], dtype=np.uint8))
        return out, regime

    def _count(self, owner: np.ndarray, flags: np.ndarray) -> None:
        cols = [np.ones(owner.shape[0])] + [((flags & bit) > 0).astype(np.float64) for bit in self.bits]
        self._open.append((owner, np.stack(cols, axis=1)))
        self._open_rows += owner.shape[0]
        if self._open_rows >= self.max_owners:  # bounded memory: summed per owner, closed early when that is as long
            summed = self._summed_open()
            self._open, self._open_rows = [summed], summed[0].shape[0]
            if self._open_rows >= self.max_owners:
                self._close(float(self.bin))  # type: ignore[arg-type]

    def _summed_open(self) -> tuple[np.ndarray, np.ndarray]:
        return _per_owner(np.concatenate([o for o, _ in self._open]), np.concatenate([c for _, c in self._open]))

    def _close(self, new_bin: float) -> None:
        if self._open:
            self._closed.append((float(self.bin), *self._summed_open()))  # type: ignore[arg-type]
        self._open, self._open_rows = [], 0
        self.bin = new_bin
        self._closed = [c for c in self._closed if c[0] >= new_bin - 2 * self.bins][-2 * self.bins:]
        self.rates, moved = self._rates()
        if moved and not self.moved:
            self.regime += 1
            self.regime_starts = [*self.regime_starts, (self.regime, self.closed_until, self._onset())][-REGIME_STARTS_KEPT:]
        self.moved = moved

    def _onset(self) -> float:
        """When the regime just begun set in: the start of the closed bin that best splits the
        population's pooled share of the first bit into before and after (largest binomial z of
        the difference), so that the tests run between the onset and the regime's start, and only
        those, can be told apart (:mod:`.regimes`)."""
        bins = np.array([c[0] for c in self._closed])
        rows = np.array([float(c[2][:, 0].sum()) for c in self._closed])
        odd = np.array([float(c[2][:, 1].sum()) for c in self._closed])
        n_before, k_before = np.cumsum(rows)[:-1], np.cumsum(odd)[:-1]
        n_after, k_after = rows.sum() - n_before, odd.sum() - k_before
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (k_before + k_after) / (n_before + n_after)
            z = np.abs(k_after / n_after - k_before / n_before) / np.sqrt(p * (1 - p) * (1 / n_before + 1 / n_after))
        z = np.where(np.isfinite(z), z, -1.0)
        return float(bins[1 + int(np.argmax(z))]) * self.bin_s if z.size else self.closed_until

    def _rates(self) -> tuple[np.ndarray, bool]:
        """Per bit, the RATE_QUANTILE quantile of the recent shares of the clients seen in both the
        last ``bins`` closed bins and the ``bins`` before them (MIN_OWNER_ROWS queries in each),
        where the same quantile of their steps (recent share minus earlier share) is above 0; NaN
        elsewhere. The step is what a shift the population shares makes: clients that sent odd
        inputs all along (accounts made for an attack) step nowhere and move nothing.

        And whether the first bit moved as a regime's start does: the same quantile of the steps
        at least :data:`REGIME_STEP` up, or the opposite one as far down (three clients in four)."""
        out = np.full(len(self.bits), np.nan)
        cut = float(self.bin) - self.bins  # type: ignore[arg-type]
        if not self._closed or not (self._closed[0][0] < cut <= self._closed[-1][0]):
            return out, False
        counts = np.concatenate([c[2] for c in self._closed])
        recent = np.concatenate([np.full(c[1].shape[0], c[0] >= cut) for c in self._closed])
        # the recent and earlier sums in one grouping of the owners (one sort, not two)
        _, both = _per_owner(np.concatenate([c[1] for c in self._closed]),
                             np.hstack([counts * recent[:, None], counts * ~recent[:, None]]))
        rs, es = both[:, :counts.shape[1]], both[:, counts.shape[1]:]
        ok = (rs[:, 0] >= MIN_OWNER_ROWS) & (es[:, 0] >= MIN_OWNER_ROWS)
        if int(ok.sum()) < MIN_OWNERS or not self.bits:
            return out, False
        share = rs[ok, 1:] / rs[ok, :1]
        steps = share - es[ok, 1:] / es[ok, :1]
        step = rate_quantile(steps)
        down = float(rate_quantile(steps[:, 0], 1.0 - RATE_QUANTILE))
        moved = bool(step[0] >= REGIME_STEP or down <= -REGIME_STEP)
        return np.where(step > 0, rate_quantile(share), np.nan), moved

    @property
    def nbytes(self) -> int:
        parts = self._open + [c[1:] for c in self._closed]
        return int(sum(o.nbytes + c.nbytes for o, c in parts) + _START_BYTES * len(self.regime_starts))

    def bound_bytes(self) -> int:
        """The most :attr:`nbytes` can reach: ``2 x bins`` closed bins of ``max_owners`` clients, an
        open one of twice as many rows, and the regimes' starts kept."""
        return int((2 * self.bins + 1) * self.max_owners * 8 * (2 + len(self.bits)) + _START_BYTES * REGIME_STARTS_KEPT)

    def state_dict(self) -> dict[str, Any]:
        # the open bin's rows as they are held (summed only at its close): the same memory once loaded
        self_open = ((np.concatenate([o for o, _ in self._open]), np.concatenate([c for _, c in self._open])) if self._open
                     else (np.zeros(0, dtype=np.int64), np.zeros((0, 1 + len(self.bits)))))
        return {"bin": self.bin, "open_owner": self_open[0], "open_counts": self_open[1],
                "closed_bin": np.array([c[0] for c in self._closed], dtype=np.float64),
                "closed_owner": [c[1].copy() for c in self._closed], "closed_counts": [c[2].copy() for c in self._closed],
                "rates": self.rates.copy(), "regime": self.regime, "moved": self.moved,
                "regime_starts": np.array(self.regime_starts, dtype=np.float64).reshape(-1, 3)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bin = None if state["bin"] is None else float(state["bin"])
        width = 1 + len(self.bits)
        oo = np.asarray(state["open_owner"], dtype=np.int64)
        self._open = [(oo, np.asarray(state["open_counts"], dtype=np.float64).reshape(oo.shape[0], width))] if oo.size else []
        self._open_rows = int(oo.size)
        self._closed = [(float(b), np.asarray(o, dtype=np.int64), np.asarray(c, dtype=np.float64).reshape(-1, width))
                        for b, o, c in zip(np.asarray(state["closed_bin"]).tolist(), state["closed_owner"], state["closed_counts"])]
        self.rates = np.asarray(state["rates"], dtype=np.float64).reshape(len(self.bits)).copy()
        # states saved before regimes: none begun (every client's PRADA window in regime 0, as saved)
        self.regime, self.moved = int(state.get("regime", 0)), bool(state.get("moved", False))
        starts = np.asarray(state.get("regime_starts", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
        self.regime_starts = [(int(k), float(t), float(o)) for k, t, o in starts.tolist()]


def _per_owner(owner: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts summed per owner: (distinct owners, their summed rows)."""
    u, inv = np.unique(owner, return_inverse=True)
    return u, np.stack([np.bincount(inv, weights=counts[:, j], minlength=u.size) for j in range(counts.shape[1])], axis=1)
