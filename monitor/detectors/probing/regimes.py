"""PRADA across a population-wide input shift: a client's window judged within one regime.

Why. PRADA (:mod:`.stealing`) compares each query with the client's own earlier queries. When every
client's inputs move at once (a new upstream preprocessing, a unit change), a client's first shifted
queries are far from its whole history, and the next ones close again once a few shifted queries are
stored: the window of minimum distances becomes a mixture, and W falls below ``delta`` as it does for
a Jacobian thief. On 40 seeded benign clients (tests/test_probing_prada_shift_onset_s34b.py) a shift
of four reference standard deviations flagged 36 of them ``stealing`` at 0.3-2 queries/s (37 at 2-5),
a unit change (x3) of three features 12 (10), of one feature 3 (3), and the end of a shift again
nearly as many: one ModelProbingSuspiciousClient page each (over three seeds and 0.3 to 5
queries/s, 0 to 8, 6 to 14 and 27 to 37 of 40: benchmarks/prada_shift_regimes.py; none since, but
a client that a stream without a shift flags too). A single distance far from every earlier
one is enough: a test 0.1 s after the onset flagged a client (W 0.47 against ``delta`` 0.72).

How. :class:`.current.CurrentRates` begins a *regime* when three established clients in four changed
their share of out-of-distribution inputs by at least :data:`.current.REGIME_STEP` together (up at a
shift's onset, down at its end: 10 to 45 s after these onsets), estimates when it set in (the bin
that best splits the population's pooled share), and stamps every arriving query with the regimes
begun so far.

* A client's window restarts when its first query of a new regime is analysed: it is emptied, and
  the distances of the regime's first :attr:`PradaRegimes.warm` queries (``prada_window``) are left
  out of it. They are taken to a history that holds few queries like them, in a distribution that
  need not be the reference's (x3 on one feature: 6.9% of such windows below ``delta`` at once,
  0.2% after 100 queries); after them the nearest earlier queries are the regime's own. The
  minimum distances are still taken over the whole history, so a thief whose own queries did not
  move keeps the structure PRADA sees (its synthetic queries' parents).
* Tests run between the onset and the regime's start have mixed windows. A test whose W is below
  ``delta`` is therefore held (:meth:`PradaRegimes.result`) until the current rates' bins have closed
  :attr:`PradaRegimes.hold_s` (a minute) of event time after it, and dropped if it ran after the
  estimated onset of a regime begun in that time; otherwise it raises ``stealing`` then, at its own
  query (queries until detection are unchanged; the page comes a minute later). A test that passes
  is applied at once, unless one held is waiting before it (order is kept).

Units (session 39g). Along a feature every client's inputs stretched (a unit change upstream, one
feature read x10 or x40) the minimum distances of natural queries are heavy-tailed: 14% of the benign
windows of a lasting x40 fell below ``delta`` long after the onset, each a page that the next test
lowered within a minute. Once a regime has begun, the detector takes PRADA's distances in the
population's units (:meth:`.ProbingDetector._population_stretch`: each sketch axis divided by the
spread three clients in four of the population ring show along it beyond the reference, from 2x),
recorded per period like the population's scale; a new stretch empties the windows (:meth:`enter`'s
``units``) without leaving queries out. Without a regime the units are the reference's, as before.

What an attacker can do with it. Sending a few far queries first (or at any time) begins no regime:
the population must step, three established clients in four, and accounts made for an attack have
no earlier share to step from (:mod:`.current`); a far query stays in the client's window, one more
odd distance, and can only lower W (a thief sending five far queries first is flagged at its 201st
query instead of its 376th, as before). What a regime costs: every client's window restarts, so a
thief active when one begins is tested again only after ``prada_window`` queries of the regime and
``prada_window`` distances more; a short one can be missed (400 queries, 115 of them distinct, started two minutes before a 4-sd onset: flagged
at its 376th before, not now), and a test of its that failed before the onset stands (a longer
thief found then stays flagged). An attacker who controls three in four of the established clients
(:data:`.population.MIN_OWNERS` of them suffice in a small population) can begin regimes, and so
postpone its test, not avoid it: 6 accounts of 8 switching to noise for a minute every three minutes
began 14 regimes and moved a thief's first flag from 450 s to 570 s.

Limits. A shift that moves the inputs without changing how many look out of distribution begins no
regime (none such was seen to disturb PRADA: a squeeze, 4 sd on one feature), and one whose regime
begins more than ``hold_s`` after its onset (a small shift among slow clients) leaves the tests in
between applied. Held tests are decided as bins close, that is as any client's queries arrive: a
``stealing`` raise waits for a minute of traffic, and at the end of a replay the last minute's
failing tests are not decided. A client evicted while a test is held has it decided with what is
known then. Without the population (``population_window: 0``) there are no regimes and every test
applies at once, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from monitor.detectors.probing.clients import ClientRing

__all__ = ["PradaRegimes"]

#: a held test's fields: (W, failed, query number, event time, regime)
_Held = tuple[float, bool, int, float, int]


class PradaRegimes:
    """Per client: the regime its PRADA window is in, and test results held until the population's
    regimes are known around them.

    Parameters
    ----------
    max_clients
        Slots (the detector's LRU).
    hold_s
        Event time a failing test waits for a regime to begin after it (the span the current rates
        are read over: a regime begins within it of an onset).
    slack_s
        A test is dropped when it ran after a regime's estimated onset less this (one bin of the
        current rates: the onset is known to a bin).
    warm
        Queries of a new regime left out of a restarted window (see :attr:`warm`).
    cap
        Results held per client at most; beyond, the oldest is decided with what is known (tests
        run every ``prada_every`` distances: 16 within ``hold_s`` and the lag of a regime take some
        15 distinct queries/s).

    Examples
    --------
    A failing test at t = 100 s in regime 0 is held; a regime begun at 130 s with its onset put at
    95 s drops it. A test at t = 200 s raises once the bins are closed past 260 s (no regime within a
    minute after it), and one at 300 s, before the onset (340 s) of a regime begun at 350 s, raises:

    >>> r = PradaRegimes(max_clients=2, hold_s=60.0, slack_s=5.0, warm=100)
    >>> r.result(0, 0.5, True, 150, 100.0, 0, 0, []), r.result(0, 0.9, False, 200, 120.0, 0, 0, [])
    ([], [])
    >>> starts = [(1, 130.0, 95.0)]
    >>> r.due(closed_until=135.0, regime=1, starts=starts)
    []
    >>> r.result(1, 0.5, True, 300, 200.0, 1, 1, starts), r.due(closed_until=250.0, regime=1, starts=starts)
    ([], [])
    >>> r.due(closed_until=265.0, regime=1, starts=starts)
    [(1, 0.5, True, 300, 200.0)]
    >>> r.result(1, 0.6, True, 400, 300.0, 1, 1, starts), r.due(closed_until=355.0, regime=2, starts=[(2, 350.0, 340.0)])
    ([], [(1, 0.6, True, 400, 300.0)])
    """

    #: bytes one held result costs (a tuple of five Python numbers in a list)
    held_bytes = 168

    def __init__(self, max_clients: int, hold_s: float, slack_s: float, warm: int, cap: int = 16) -> None:
        self.hold_s = float(hold_s)
        self.slack_s = float(slack_s)
        #: distances of a new regime's first queries left out of a restarted window: they are taken
        #: to a history that holds few queries like them, in a distribution that need not be the
        #: reference's, where W's tail is far heavier than the calibration's (x3 on one feature:
        #: 6.9% of cold windows below ``delta``, 0.2% after 100 queries; natural rows 0.4% and 0.0%:
        #: benchmarks/prada_shift_regimes.py)
        self.warm = max(0, int(warm))
        self.cap = max(1, int(cap))
        mc = int(max_clients)
        #: the regime of each client's window (-1: none yet), and the queries still to be left out
        self.regime = np.full(mc, -1, dtype=np.int64)
        self.cold = np.zeros(mc, dtype=np.int64)
        self.units = np.zeros(mc, dtype=np.int64)
        self.held: dict[int, list[_Held]] = {}

    # -- the window's regime -------------------------------------------------------------------------
    def reset(self, slot: int) -> None:
        """The slot is given to a new client (its held results are dropped: see :meth:`take`)."""
        self.regime[slot] = -1
        self.cold[slot] = 0
        self.units[slot] = 0
        self.held.pop(slot, None)

    def enter(self, slot: int, ring: "ClientRing", regime: int, units: int = 0) -> None:
        """The client's queries of ``regime`` are about to be analysed: a new one empties its window
        and, if the client has queries stored, leaves the regime's first :attr:`warm` out (a new
        client starts cold, as before). New ``units`` (PRADA's distances taken in another stretch)
        empty the window too."""
        if regime != self.regime[slot]:
            self.cold[slot] = self.warm if (ring.filled and self.regime[slot] >= 0) else 0
            self.regime[slot] = regime
            ring.prada_n = ring.prada_new = 0
        if units != self.units[slot]:
            self.units[slot] = units
            ring.prada_n = ring.prada_new = 0

    def keep(self, slot: int, m: int) -> np.ndarray:
        """Which of the next ``m`` analysed queries of the client count in its window (False for
        those left out while its regime warms up)."""
        cold = int(self.cold[slot])
        out = np.ones(m, dtype=bool)
        if cold:
            out[:cold] = False
            self.cold[slot] = max(0, cold - m)
        return out

    # -- tests held ------------------------------------------------------------------------------------
    def result(self, slot: int, w: float, failed: bool, qn: int, ts: float, regime: int, now: int,
               starts: list[tuple[int, float, float]]) -> list[tuple[float, bool, int, float]]:
        """A test's result (W, below ``delta``, its query number and time, its regime): what to apply
        now, in order (``(W, failed, query number, time)``); a failing one, or one after it, is held.
        ``now`` and ``starts`` (the regimes begun and the recent ones' starts, as :meth:`due` takes
        them): what is known if one more than :attr:`cap` are held and the oldest must be decided at once."""
        queue = self.held.get(slot)
        if queue is None and not failed:
            return [(w, failed, qn, ts)]
        queue = self.held.setdefault(slot, [])
        queue.append((float(w), bool(failed), int(qn), float(ts), int(regime)))
        out: list[tuple[float, bool, int, float]] = []
        onsets = _onsets(starts)
        while len(queue) > self.cap:  # bounded: the oldest decided with what is known now
            w0, f0, q0, t0, r0 = queue.pop(0)
            if not self._void(t0, r0, now, onsets):
                out.append((w0, f0, q0, t0))
        return out

    def _void(self, ts: float, regime: int, now: int, onsets: dict[int, float]) -> bool | None:
        """Whether a result of ``regime`` at ``ts`` ran after the onset of the regime that followed
        (True), not (False), or not known yet (None: no regime after it so far)."""
        if regime >= now:
            return None
        return ts >= onsets.get(regime + 1, -np.inf) - self.slack_s  # a regime too old to be kept: long before

    def due(self, closed_until: float, regime: int, starts: list[tuple[int, float, float]]) -> list[tuple[int, float, bool, int, float]]:
        """Held results now decided, in each client's order: ``(slot, W, failed, query number, time)``
        for those that ran before the (estimated) onset of any regime begun within ``hold_s`` after
        them; those that ran after it are dropped. ``closed_until``: the event time before which no
        regime can begin any more; ``regime``: regimes begun; ``starts``: the (number, start,
        onset) of the recent ones."""
        out: list[tuple[int, float, bool, int, float]] = []
        if not self.held:
            return out
        onsets = _onsets(starts)
        for slot in list(self.held):
            queue = self.held[slot]
            while queue:
                w, failed, qn, ts, r = queue[0]
                void = self._void(ts, r, regime, onsets)
                if void is None and not closed_until > ts + self.hold_s:
                    break  # not known yet
                queue.pop(0)
                if not void:
                    out.append((slot, w, failed, qn, ts))
            if not queue:
                del self.held[slot]
        return out

    def take(self, slot: int, regime: int, starts: list[tuple[int, float, float]]) -> list[tuple[float, bool, int, float]]:
        """The client is leaving (evicted): its held results decided with what is known now (dropped
        where they ran after the onset of a regime begun since, applied otherwise)."""
        queue = self.held.pop(slot, [])
        onsets = _onsets(starts)
        return [(w, failed, qn, ts) for w, failed, qn, ts, r in queue if not self._void(ts, r, regime, onsets)]

    # -- memory and state ------------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return int(self.regime.nbytes + self.cold.nbytes + self.units.nbytes + self.held_bytes * sum(len(q) for q in self.held.values()))

    def bytes_per_client(self) -> int:
        """The most one client costs here (its slot's three counters and a full queue of held results)."""
        return 24 + self.held_bytes * self.cap

    def state_dict(self) -> dict[str, Any]:
        rows = [(slot, *h) for slot, queue in self.held.items() for h in queue]
        held = np.array(rows, dtype=np.float64).reshape(-1, 6)
        return {"regime": self.regime.copy(), "cold": self.cold.copy(), "units": self.units.copy(), "held": held}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """``state`` None (saved before regimes): every client's window is of regime 0, as the
        queries waiting in that state are stamped."""
        if state is None:
            self.regime[:] = 0
            self.cold[:] = 0
            self.units[:] = 0
            self.held = {}
            return
        fields = [np.asarray(state[name], dtype=np.int64) for name in ("regime", "cold")]
        if any(f.shape != self.regime.shape for f in fields):
            raise ValueError(f"probing state field 'prada_regimes' has {fields[0].shape[0]} slots, expected "
                             f"{self.regime.shape[0]} (same max_clients)")
        self.regime, self.cold = (f.copy() for f in fields)
        # saved before PRADA's stretch: every window in the reference's units (number 0)
        units = np.asarray(state.get("units", np.zeros_like(self.regime)), dtype=np.int64)
        if units.shape != self.regime.shape:
            raise ValueError(f"probing state field 'prada_regimes' has {units.shape[0]} units, expected {self.regime.shape[0]}")
        self.units = units.copy()
        self.held = {}
        for slot, w, failed, qn, ts, r in np.asarray(state["held"], dtype=np.float64).reshape(-1, 6).tolist():
            self.held.setdefault(int(slot), []).append((float(w), bool(failed), int(qn), float(ts), int(r)))


def _onsets(starts: list[tuple[int, float, float]]) -> dict[int, float]:
    """The estimated onset of each regime in ``starts`` (``(number, start, onset)``), by its number."""
    return {k: onset for k, _, onset in starts}
