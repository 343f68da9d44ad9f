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

from monitor.detectors.probing.population import MIN_OWNER_ROWS, MIN_OWNERS, RATE_QUANTILE

__all__ = ["CurrentRates"]


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

    def stamp(self, ts: np.ndarray, owner: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """Count queries arriving in this order; return, for each, the rates in force when it arrived
        ``(m, len(bits))``, NaN where unknown."""
        ts = np.asarray(ts, dtype=np.float64)
        m = ts.shape[0]
        out = np.full((m, len(self.bits)), np.nan)
        if m == 0:
            return out
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
            self._count(np.asarray(owner[lo:hi], dtype=np.int64), np.asarray(flags[lo:hi], dtype=np.uint8))
        return out

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
        self.rates = self._rates()

    def _rates(self) -> np.ndarray:
        """Per bit, the RATE_QUANTILE quantile of the recent shares of the clients seen in both the
        last ``bins`` closed bins and the ``bins`` before them (MIN_OWNER_ROWS queries in each),
        where the same quantile of their steps (recent share minus earlier share) is above 0; NaN
        elsewhere. The step is what a shift the population shares makes: clients that sent odd
        inputs all along (accounts made for an attack) step nowhere and move nothing."""
        out = np.full(len(self.bits), np.nan)
        cut = float(self.bin) - self.bins  # type: ignore[arg-type]
        if not self._closed or not (self._closed[0][0] < cut <= self._closed[-1][0]):
            return out
        counts = np.concatenate([c[2] for c in self._closed])
        recent = np.concatenate([np.full(c[1].shape[0], c[0] >= cut) for c in self._closed])
        _, rs = _per_owner(np.concatenate([c[1] for c in self._closed]), counts * recent[:, None])
        _, es = _per_owner(np.concatenate([c[1] for c in self._closed]), counts * ~recent[:, None])
        ok = (rs[:, 0] >= MIN_OWNER_ROWS) & (es[:, 0] >= MIN_OWNER_ROWS)
        if int(ok.sum()) < MIN_OWNERS:
            return out
        share = rs[ok, 1:] / rs[ok, :1]
        step = np.quantile(share - es[ok, 1:] / es[ok, :1], RATE_QUANTILE, axis=0)
        return np.where(step > 0, np.quantile(share, RATE_QUANTILE, axis=0), np.nan)

    @property
    def nbytes(self) -> int:
        parts = self._open + [c[1:] for c in self._closed]
        return int(sum(o.nbytes + c.nbytes for o, c in parts))

    def bound_bytes(self) -> int:
        """The most :attr:`nbytes` can reach: ``2 x bins`` closed bins of ``max_owners`` clients, and
        an open one of twice as many rows."""
        return int((2 * self.bins + 1) * self.max_owners * 8 * (2 + len(self.bits)))

    def state_dict(self) -> dict[str, Any]:
        # the open bin's rows as they are held (summed only at its close): the same memory once loaded
        self_open = ((np.concatenate([o for o, _ in self._open]), np.concatenate([c for _, c in self._open])) if self._open
                     else (np.zeros(0, dtype=np.int64), np.zeros((0, 1 + len(self.bits)))))
        return {"bin": self.bin, "open_owner": self_open[0], "open_counts": self_open[1],
                "closed_bin": np.array([c[0] for c in self._closed], dtype=np.float64),
                "closed_owner": [c[1].copy() for c in self._closed], "closed_counts": [c[2].copy() for c in self._closed],
                "rates": self.rates.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bin = None if state["bin"] is None else float(state["bin"])
        width = 1 + len(self.bits)
        oo = np.asarray(state["open_owner"], dtype=np.int64)
        self._open = [(oo, np.asarray(state["open_counts"], dtype=np.float64).reshape(oo.shape[0], width))] if oo.size else []
        self._open_rows = int(oo.size)
        self._closed = [(float(b), np.asarray(o, dtype=np.int64), np.asarray(c, dtype=np.float64).reshape(-1, width))
                        for b, o, c in zip(np.asarray(state["closed_bin"]).tolist(), state["closed_owner"], state["closed_counts"])]
        self.rates = np.asarray(state["rates"], dtype=np.float64).reshape(len(self.bits)).copy()


def _per_owner(owner: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts summed per owner: (distinct owners, their summed rows)."""
    u, inv = np.unique(owner, return_inverse=True)
    return u, np.stack([np.bincount(inv, weights=counts[:, j], minlength=u.size) for j in range(counts.shape[1])], axis=1)
