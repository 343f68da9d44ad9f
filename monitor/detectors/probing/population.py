"""The spacing of the current population of clients, so that a population-wide input drift does
not make every client look like a prober.

Why. The near-duplicate threshold ``tau`` (and the near-duplicate radius) is a distance quantile of
the *reference*. When the whole population contracts (an input drift that squeezes the spread of
most features, an upstream unit change, a sensor saturating), every client's natural queries sit
closer together than the reference's and cross ``tau`` far more often than ``query_fpr``: on a
4-feature stream with 3 features scaled by 0.3 around their mean, all 40 benign clients of the
session-11 walkthrough's reproduction were flagged for near-duplicates (and 37 of them linked into
"campaigns"), which paged ModelProbingManySuspiciousClients. A prober differs from the population
it hides in, not only from the reference; the spacing of everybody else's queries says what
"natural" means right now.

How. A small ring keeps a sample of recent queries of all clients (every ``stride``-th analysed
query of each client group) with their owner. Each sampled query gets, when it arrives, the
distance to its ``k``-th nearest query of *other* owners in the ring: the local spacing of the
population around it, which a client's own near-duplicates cannot shrink (an attacker's walk is
compared with other accounts' queries only, so one account cannot move it). The scale is the
:data:`SPACING_QUANTILE` quantile of that statistic over the ring divided by the same quantile on
the reference (a ring-sized subsample, leave-one-out): 1 on reference-like traffic, about 0.4 when
three of four features are squeezed to 0.3. The detector divides each query's sketch by the scale
in force when it is analysed (the same as multiplying ``tau``, the near-duplicate radius and the campaign radius by it), so that
queries stored during a drift and queries sent after it compare in the same units: with the
thresholds scaled instead, the squeezed queries left in a client's history were a dense cluster
that natural queries near the mean found 10 neighbours in after the drift (up to 7 of 40 clients
flagged at 2 queries/s). The scale is at most 1 (a population that spreads out needs no larger
threshold), floored at :data:`MIN_SCALE`, and moves only when the measured ratio is more than
:data:`STEP` away from it (the ratio jitters by about 1% on unchanged traffic, and an exact retry
is recognised by a distance of 0 between its scaled copies: a scale that never moves on
reference-like traffic keeps that exact).

The same ring answers the rate signals' question: what share of a client's queries is small-margin,
out of distribution or a near-duplicate hit *now*, for a typical client. Each sampled query keeps
its flag bits; :attr:`PopulationScale.rates` is, per bit, the :data:`RATE_QUANTILE` quantile over the
ring's owners (at least :data:`MIN_OWNERS` of them with :data:`MIN_OWNER_ROWS` rows) of each owner's
share: a rate is the population's when three accounts in four show it (the median, tried on a
256-query ring, let the evaluation's attack accounts, about half of those active early in its run,
raise the OOD rate and hide the Jacobian stealing client). The detector tests each client against ``max(reference rate, population rate)``: a drift that pushes
everybody's inputs towards the decision boundary (digits squeezed towards the mean image: 13 of
15 benign clients flagged for boundary probing) raises the population's share with it, while
probing cannot move it unless three accounts in four (of those with enough sampled queries) probe.

The ring also gives PRADA its units once the population moved as a whole (:func:`population_stretch`,
used by :meth:`.ProbingDetector._population_stretch`): per sketch axis, how far three owners in four
spread along it beyond the reference.

Limits (stated in the README): moving the spacing quantile needs a tenth of the sampled traffic
to sit densely *across* accounts (a many-account flood of near-duplicates, which the campaign signal
is for; it can at most shrink the thresholds to :data:`MIN_SCALE`); one account alone (no client
ids: everything is ``anonymous``) has no other owner to compare with, and the scale stays 1; the scale follows a
change within about one ring of sampled queries (``size x stride`` analysed queries).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.detectors.probing.neighbours import pairwise_sq

__all__ = ["PopulationScale", "reference_spacing", "rate_quantile", "MIN_SCALE", "SPACING_QUANTILE", "STEP", "MIN_OWNERS",
           "MIN_OWNER_ROWS", "RATE_QUANTILE"]

#: the smallest factor the thresholds are multiplied by (an attacker who floods more than half of the
#: ring could at most shrink them tenfold; attacks' steps are orders of magnitude below natural spacing)
MIN_SCALE = 0.1
#: the quantile of the spacing statistic compared between the ring and the reference: a low one, as
#: ``tau`` itself is a low quantile (``query_fpr``) and a squeeze along some axes only changes the
#: shape of the distribution, not only its scale (the median left 5 of 15 noisy resubmitters of
#: the digits evaluation flagged under a drift squeezing 48 of 64 pixels, the 10% quantile 1)
SPACING_QUANTILE = 0.1
#: the relative change of the measured ratio below which the scale stays where it is
STEP = 0.1
#: owners the population rates need, and the sampled rows each of them needs to count
MIN_OWNERS = 5
MIN_OWNER_ROWS = 4
#: the quantile over owners of each owner's flagged share that is the population's rate
RATE_QUANTILE = 0.25
#: the spread along a sketch axis (beyond the reference's) three owners in four must show before
#: PRADA's distances are taken in the population's units, rows an owner needs, and the change of
#: the stretch that moves it
STRETCH_MIN = 2.0
STRETCH_ROWS = 8
STRETCH_STEP = 1.25


def rate_quantile(shares: np.ndarray, q: float = RATE_QUANTILE) -> "np.ndarray | np.floating[Any]":
    """The population's rate from its owners' shares (one owner a row, a rate per column): their
    ``q`` quantile (:data:`RATE_QUANTILE`: three owners in four show at least it), NaN with fewer
    than :data:`MIN_OWNERS` owners. The ring's rates (:class:`PopulationScale`) and the current
    ones (:class:`.current.CurrentRates`) are both read so.

    >>> float(rate_quantile(np.array([0.0, 0.1, 0.2, 0.3, 0.4]))), float(rate_quantile(np.array([0.5, 0.5])))
    (0.1, nan)
    """
    if shares.shape[0] < MIN_OWNERS:
        return np.full(shares.shape[1:], np.nan)
    return np.quantile(shares, q, axis=0)


def population_stretch(sketch: np.ndarray, owner: np.ndarray, ref_spread: np.ndarray) -> np.ndarray:
    """Per sketch axis, the RATE_QUANTILE quantile over owners (STRETCH_ROWS rows or more) of the
    owner's spread (median absolute deviation about its own median) over the reference's; 1 where
    below STRETCH_MIN or unknown."""
    owners, inv, n = np.unique(owner, return_inverse=True, return_counts=True)
    ratios = []
    for j in np.flatnonzero(n >= STRETCH_ROWS).tolist():
        rows = np.asarray(sketch[inv == j], dtype=np.float64)
        ratios.append(np.median(np.abs(rows - np.median(rows, axis=0)), axis=0) / ref_spread)
    if not ratios:
        return np.ones(ref_spread.shape[0])
    q = np.asarray(rate_quantile(np.stack(ratios)), dtype=np.float64)
    return np.where(np.isfinite(q) & (q >= STRETCH_MIN), q, 1.0)


def reference_spacing(sketches: np.ndarray, size: int, k: int, rng: np.random.Generator) -> float:
    """Median leave-one-out ``k``-th nearest-neighbour distance of a ``size``-row reference subsample:
    the statistic the live ring is compared with, at the same sample size."""
    s = np.asarray(sketches, dtype=np.float32)
    if s.shape[0] > size:
        s = s[rng.choice(s.shape[0], size, replace=False)]
    norm = (s * s).sum(axis=1)
    d2 = pairwise_sq(s, norm, s, norm).astype(np.float64)
    np.fill_diagonal(d2, np.inf)
    kk = min(k, s.shape[0] - 1)
    return float(np.quantile(np.sqrt(np.partition(d2, kk - 1, axis=1)[:, kk - 1]), SPACING_QUANTILE))


class PopulationScale:
    """A ring of sampled recent queries of all clients and the spacing scale it implies.

    Parameters
    ----------
    size
        Queries kept (the ring); the scale is computed once it is full.
    dim
        Sketch width.
    k
        Neighbour rank of the spacing statistic (the detector's ``k``).
    baseline
        :func:`reference_spacing` of the reference at ``size`` rows.
    every
        Recompute the scale and rates after this many new sampled queries.
    bits
        Flag bits whose population rates are kept (:attr:`rates`, in this order); ``near_bit``
        marks near-duplicates, left out of the denominator of ``distinct_bits`` (the detector
        counts small margins and OOD queries over queries that are not near-duplicates).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(2000, 4)).astype(np.float32)
    >>> pop = PopulationScale(256, 4, 5, reference_spacing(ref, 256, 5, rng))
    >>> for i in range(40):
    ...     pop.add(0.3 * rng.normal(size=(8, 4)).astype(np.float32), np.full(8, i))
    >>> bool(0.2 < pop.scale < 0.45), pop.generation > 0
    (True, True)
    """

    def __init__(self, size: int, dim: int, k: int, baseline: float, every: int = 32, bits: tuple[int, ...] = (),
                 distinct_bits: tuple[int, ...] = (), near_bit: int = 0) -> None:
        self.size, self.dim, self.k = int(size), int(dim), int(k)
        self.baseline = float(baseline)
        self.every = max(1, int(every))
        self.sketch = np.zeros((self.size, self.dim), dtype=np.float32)
        self.norm = np.zeros(self.size, dtype=np.float32)
        self.owner = np.full(self.size, -1, dtype=np.int64)
        self.spacing = np.full(self.size, np.nan)
        self.flags = np.zeros(self.size, dtype=np.uint8)
        self.bits, self.distinct_bits, self.near_bit = tuple(bits), tuple(distinct_bits), int(near_bit)
        #: population rate of each of ``bits`` (NaN: not enough owners yet)
        self.rates = np.full(len(self.bits), np.nan)
        #: refreshes so far (the detector recomputes its tests when it moves)
        self.generation = 0
        self.filled = 0
        self.head = 0
        self.fresh = 0
        self.scale = 1.0

    @property
    def nbytes(self) -> int:
        return int(self.sketch.nbytes + self.norm.nbytes + self.owner.nbytes + self.spacing.nbytes + self.flags.nbytes)

    def add(self, x: np.ndarray, owner: np.ndarray, flags: np.ndarray | None = None) -> None:
        """Sample rows ``x`` (sketches) of the given owners: their spacing against other owners'
        rows in the ring, then into the ring; the scale is refreshed every ``every`` rows."""
        x = np.asarray(x, dtype=np.float32)
        m = x.shape[0]
        if m == 0:
            return
        flags = np.zeros(m, dtype=np.uint8) if flags is None else np.asarray(flags, dtype=np.uint8)
        if m > self.size:
            x, owner, flags = x[-self.size:], owner[-self.size:], flags[-self.size:]
            m = self.size
        xn = np.einsum("ij,ij->i", x, x)
        f = self.filled
        sp = np.full(m, np.nan)
        if f > self.k:
            d2 = pairwise_sq(x, xn, self.sketch[:f], self.norm[:f])  # float32: a spacing needs no more
            np.copyto(d2, np.float32(np.inf), where=owner[:, None] == self.owner[None, :f])  # other owners only
            d2.partition(self.k - 1, axis=1)
            part = d2[:, self.k - 1].astype(np.float64)
            sp = np.where(np.isfinite(part), np.sqrt(part), np.nan)
        pos = (self.head + np.arange(m)) % self.size
        self.sketch[pos], self.norm[pos], self.owner[pos], self.spacing[pos], self.flags[pos] = x, xn, owner, sp, flags
        self.head = int((self.head + m) % self.size)
        self.filled = min(self.size, f + m)
        self.fresh += m
        if self.fresh >= self.every and self.filled == self.size:
            self.fresh = 0
            self._refresh()

    def _refresh(self) -> None:
        self.generation += 1
        self.rates = self._rates()
        known = self.spacing[np.isfinite(self.spacing)]
        if known.size < self.size // 2 or not self.baseline > 0:  # mostly one owner: nothing to compare with
            self.scale = 1.0
            return
        ratio = float(np.clip(np.quantile(known, SPACING_QUANTILE) / self.baseline, MIN_SCALE, 1.0))
        target = 1.0 if ratio >= 1.0 - STEP else ratio  # reference-like traffic: exactly 1
        if target == 1.0 or abs(target - self.scale) > STEP * self.scale:
            self.scale = target

    def _rates(self) -> np.ndarray:
        """Per bit, the RATE_QUANTILE quantile over owners (with at least MIN_OWNER_ROWS sampled rows) of their share."""
        out = np.full(len(self.bits), np.nan)
        if not self.bits:
            return out
        owners, inv, n = np.unique(self.owner[: self.filled], return_inverse=True, return_counts=True)
        ok = n >= MIN_OWNER_ROWS
        if int(ok.sum()) < MIN_OWNERS:
            return out
        fl = self.flags[: self.filled]
        distinct = np.bincount(inv, weights=(fl & self.near_bit) == 0, minlength=owners.size) if self.near_bit else n
        for j, bit in enumerate(self.bits):
            hits = np.bincount(inv, weights=(fl & bit) > 0, minlength=owners.size)
            den = distinct if bit in self.distinct_bits else n
            use = ok & (den > 0)
            out[j] = float(rate_quantile(hits[use] / den[use]))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"sketch": self.sketch[: self.filled].copy(), "norm": self.norm[: self.filled].copy(),
                "owner": self.owner[: self.filled].copy(), "spacing": self.spacing[: self.filled].copy(),
                "flags": self.flags[: self.filled].copy(), "rates": self.rates.copy(), "generation": self.generation,
                "head": self.head, "fresh": self.fresh, "scale": self.scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        f = int(np.asarray(state["owner"]).shape[0])
        if f > self.size:
            raise ValueError(f"probing state: population ring holds {f} rows, population_window is {self.size}")
        self.sketch[:f] = np.asarray(state["sketch"], dtype=np.float32).reshape(f, self.dim)
        self.norm[:f] = np.asarray(state["norm"], dtype=np.float32)
        self.owner[:f] = np.asarray(state["owner"], dtype=np.int64)
        self.spacing[:f] = np.asarray(state["spacing"], dtype=np.float64)
        self.flags[:f] = np.asarray(state["flags"], dtype=np.uint8)
        self.rates = np.asarray(state["rates"], dtype=np.float64).reshape(len(self.bits)).copy()
        self.generation = int(state["generation"])
        self.filled, self.head = f, int(state["head"]) % self.size
        self.fresh, self.scale = int(state["fresh"]), float(state["scale"])
