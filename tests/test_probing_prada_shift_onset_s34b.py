"""Benign clients flagged ``stealing`` (PRADA) at the onset of a population-wide input shift.

The defect: PRADA (monitor/detectors/probing/stealing.py) tests the distances from each query of a
client to the nearest of its own earlier queries. When every client's inputs move at once, a
client's first shifted queries are far from its whole history and the next ones close again once a
few shifted queries are stored: its window of minimum distances is a mixture, W falls below
``delta`` as it does for a Jacobian thief, and ModelProbingSuspiciousClient pages once per client.

Reproduction, on the stream of tests/test_probing_shift_onset_s33e.py (40 benign clients, seed 2,
every client's inputs shifted from t = 1,200 s; clients flagged ``stealing`` at some 15-s scrape
after the onset, before the fix / with it):

==========================================  ===================  ===================
shift                                       0.3-2 queries/s      2-5 queries/s
==========================================  ===================  ===================
x3 on feature 0 (a unit change)             3 / 0                3 / 0
x3 on features 0-2                          12 / 0               10 / 0
+2 reference sd on every feature            0 / 0                0 / 0
+4 reference sd on every feature            36 / 0               37 / 0
+4 sd for 180 s, then back (after the end)  31 / 0               7 / 0
no shift                                    0 / 0                0 / 0
==========================================  ===================  ===================

(Seed 3 gives 2, 6, 0, 35 and 34 at 0.3-2 queries/s, and at 2-5 queries/s 5, 13, 4, 36 and 8,
one of them a client flagged with no shift as well; 0 with the fix but that one.) A single
distance far from every earlier one is enough: one client was flagged by a test 0.1 s after the
onset, W 0.47 against ``delta`` 0.72.

The fix (monitor/detectors/probing/regimes.py): the current rates (:mod:`.current`) begin a regime
when three established clients in four changed their OOD share by at least 0.1 together (10 to
45 s after these onsets, and at the shift's end; the onset estimated to the bin); a client's window
restarts at its first query of a new regime, leaving out that regime's first ``prada_window``
queries; a test whose W is below ``delta`` raises only once the bins have closed a minute after
it, and is dropped if it ran after the onset of a regime begun in that minute.

Stated bounds (seed 2): at most 1 of 40 flagged ``stealing`` after the onset for each shift above
(0 seen); no regime in the stream without a shift; a regime within 60 s of the onset and its onset
estimated within one bin (5 s).

The attacks considered, on the same world (PRADA runs: the reference has 1,500 rows):

* a Jacobian thief (50 seeds, 4 rounds of sign steps, 800 queries) among the 40 with no shift is
  flagged at its 200th query, a minute of event time later (the 25-seed thief of 400 queries, 115
  distinct, flagged at its 376th until session 37, is no longer tested enough: PRADA now leaves out
  the distances to a client's first ``prada_window / 2`` queries, see
  monitor/detectors/probing/stealing.py);
* the same thief sending five far queries (+6 sd) first is flagged no later (its 200th query):
  its far queries do not begin a regime (one client is not three in four) and only lower W;
* a longer thief (100 seeds, 1,600 queries) found before a shift's onset stays found through it.

Known costs (measured, not bounded here): a thief active when a regime begins has its window
restarted; the 400-query thief of 25 seeds, started 120 s before a 4-sd onset, is no longer found by
PRADA (its restarted window never fills with its 115 distinct queries; before the fix it was found
at its 376th among 18 of 20 benign clients flagged). An attacker who controls three in four of the
established clients can begin regimes: 6 accounts among 8 switching to noise for a minute every
three minutes began 14 regimes and delayed the long thief's first flag from 450 s to 570 s (it was
still flagged at 67 of 104 scrapes, 75 without the switching). A raise waits for a minute of
traffic after its test: at the end of a replay the last minute's tests are not decided.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.probing import ProbingDetector
from monitor.detectors.probing.regimes import PradaRegimes
from tests import probing_streams as ps
from tests.test_probing_shift_onset_s33e import END, ONSET, SD, benign_stream, replay, with_client

#: event time a failing test waits before it raises (the current rates' span: 12 bins of 5 s)
HOLD_S = 60.0


def unit_change(x: np.ndarray) -> np.ndarray:
    return x * np.where(np.arange(ps.D) < 3, 3.0, 1.0)


def four_sd(x: np.ndarray) -> np.ndarray:
    return x + 4.0 * SD


def jacobian(rng: np.random.Generator, seeds: int = 50, rounds: int = 4) -> np.ndarray:
    """Jacobian-style synthetic augmentation: each round adds a sign step along the predicted
    class's weights to every query so far (tests/test_probing_detector.py's thief)."""
    x = ps.natural(rng, seeds)
    for _ in range(rounds):
        grad = ps.WEIGHTS[:, ps.scores(x).argmax(axis=1)].T
        x = np.concatenate([x, x + 0.8 * np.sign(grad)])
    return x


def flagged_after(flagged: dict[float, set[str]], after: float = ONSET) -> set[str]:
    return set().union(*(f for now, f in flagged.items() if now > after))


def stealing_query(det: ProbingDetector, client: str) -> int | None:
    v = det.verdict(client)
    return None if v is None else next((e.since_query for e in v.signals if e.signal == "stealing"), None)


@pytest.mark.parametrize("rates", [(0.3, 2.0), (2.0, 5.0)])
@pytest.mark.parametrize("shift", [unit_change, four_sd], ids=["x3_on_three_features", "four_sd"])
def test_benign_clients_are_not_flagged_stealing_at_the_onset_of_a_shift(shift, rates) -> None:
    det, flagged = replay(*benign_stream(rates=rates, shift=shift), signal="stealing")
    assert not set().union(*(f for now, f in flagged.items() if now <= ONSET))
    after = flagged_after(flagged)
    assert len(after) <= 1, sorted(after)  # 12 / 10 (x3) and 36 / 37 (4 sd) before the fix
    assert det._current.regime == 1


@pytest.mark.parametrize("rates", [(0.3, 2.0), (2.0, 5.0)])
def test_benign_clients_are_not_flagged_stealing_when_a_shift_ends(rates) -> None:
    """Four sd for three minutes, then the inputs as before: the end begins a regime of its own."""
    det, flagged = replay(*benign_stream(rates=rates, shift=four_sd, until=ONSET + 180.0), signal="stealing")
    after = flagged_after(flagged)
    assert len(after) <= 1, sorted(after)  # before the fix: 36 / 37 after the onset, 31 / 7 after the end
    assert det._current.regime == 2


def test_regimes_begin_at_a_shift_and_not_without_one() -> None:
    det, _ = replay(*benign_stream(everybody=False), signal="stealing")
    assert det._current.regime == 0
    det, _ = replay(*benign_stream(shift=four_sd), signal="stealing")
    ((k, start, onset),) = det._current.regime_starts
    assert k == 1 and ONSET < start <= ONSET + HOLD_S and abs(onset - ONSET) <= det._current.bin_s


def test_a_jacobian_thief_is_found_and_far_queries_first_do_not_hide_it() -> None:
    rng = np.random.default_rng(21)
    thief = jacobian(rng)
    far_first = np.concatenate([ps.natural(rng, 5) + 6.0 * SD, thief])
    found = {}
    for name, rows in (("thief", thief), ("far_first", far_first)):
        det, flagged = replay(*with_client(benign_stream(everybody=False), name, rows, 300.0), signal="stealing")
        q = stealing_query(det, name)
        assert q is not None and det.prada_window <= q <= len(rows), (name, q)
        ts = 300.0 + (q - 1)  # one query a second
        first = min(now for now, f in flagged.items() if name in f)
        assert ts + HOLD_S < first <= ts + HOLD_S + 30.0, (name, ts, first)  # raised a minute after its test
        assert det._current.regime == 0  # the far queries began nothing
        assert not flagged_after(flagged, 0.0) - {name}
        found[name] = q
    assert found["far_first"] <= found["thief"] + 5, found


def test_a_thief_found_before_an_onset_stays_found() -> None:
    thief = jacobian(np.random.default_rng(22), seeds=100)  # 1,600 queries, 500 distinct
    start, rate = ONSET - 120.0, 4.0
    quiet, _ = replay(*with_client(benign_stream(everybody=False), "thief", thief, start, rate), signal="stealing")
    det, flagged = replay(*with_client(benign_stream(shift=four_sd), "thief", thief, start, rate), signal="stealing")
    q = stealing_query(quiet, "thief")
    assert q is not None and start + q / rate < ONSET  # found before the onset
    assert stealing_query(det, "thief") == q  # and still raised at that query at the end
    assert all("thief" in f for now, f in flagged.items() if now >= start + q / rate + HOLD_S + 15.0)
    assert not flagged_after(flagged, 0.0) - {"thief"}


@pytest.mark.parametrize("scenario", ["thief", "onset"])
def test_held_tests_and_regimes_survive_a_checkpoint(scenario) -> None:
    """Saved while a test is held (the thief's, raised a minute later; one run just after the onset,
    dropped when the regime begins) and restored into a new detector, the replay (1-s batches)
    flags what the one without the restart flags."""
    if scenario == "thief":
        x, c, t = with_client(benign_stream(everybody=False), "thief", jacobian(np.random.default_rng(21)), 300.0)
        after = 600.0
    else:
        x, c, t = benign_stream(shift=four_sd)
        after = ONSET
    order = np.argsort(t, kind="stable")
    x, c, t = x[order], c[order], t[order]

    def make() -> ProbingDetector:
        return ProbingDetector(ps.reference(), client_id_salt="onset", raw_client_ids=True, seed=0)

    def run(save_at: float | None) -> tuple[dict[float, set[str]], float | None]:
        det, flagged, first_held = make(), {}, None
        for now in np.arange(1.0, END + 1.0, 1.0):
            sel = (t >= now - 1.0) & (t < now)
            det.update(Batch.from_arrays(x[sel], ps.scores(x[sel]), ts=t[sel], client=c[sel]))
            det.advance(float(now))
            held = sum(len(q) for q in det._regimes.held.values())
            if first_held is None and now > after and held:
                first_held = float(now)
            if now == save_at:
                state = det.state_dict()
                det = make()
                det.load_state_dict(state)
                assert sum(len(q) for q in det._regimes.held.values()) == held > 0
            if now % 15.0 == 0.0:
                flagged[float(now)] = {v.client for v in det.suspicious_clients(100) if "stealing" in v.signal_names}
        return flagged, first_held

    straight, save_at = run(None)
    assert save_at is not None
    restored, _ = run(save_at)
    assert restored == straight
    assert bool(flagged_after(straight, 0.0)) == (scenario == "thief")


def test_a_state_saved_before_regimes_loads_with_every_window_as_it_was() -> None:
    x, c, t = with_client(benign_stream(everybody=False), "thief", jacobian(np.random.default_rng(21)), 300.0)
    order = np.argsort(t, kind="stable")
    x, c, t = x[order], c[order], t[order]
    det = ProbingDetector(ps.reference(), client_id_salt="onset", raw_client_ids=True, seed=0)
    first = t < 600.0
    det.update(Batch.from_arrays(x[first], ps.scores(x[first]), ts=t[first], client=c[first]))
    state = det.state_dict()
    del state["prada_regimes"]  # what the version before regimes saved
    state["current_rates"] = {k: v for k, v in state["current_rates"].items() if k not in ("regime", "moved", "regime_starts")}
    state["pending"]["live"] = np.asarray(state["pending"]["live"])[:, :1]
    old = ProbingDetector(ps.reference(), client_id_salt="onset", raw_client_ids=True, seed=0)
    old.load_state_dict(state)
    assert (old._regimes.regime == 0).all() and not old._regimes.cold.any()
    rest = ~first
    old.update(Batch.from_arrays(x[rest], ps.scores(x[rest]), ts=t[rest], client=c[rest]))
    det.update(Batch.from_arrays(x[rest], ps.scores(x[rest]), ts=t[rest], client=c[rest]))
    old.flush()
    det.flush()
    assert stealing_query(old, "thief") == stealing_query(det, "thief") is not None


def test_held_results_are_bounded_per_client() -> None:
    """One more than ``cap`` held: the oldest is decided with what is known (applied, or dropped if
    it ran after the onset of a regime begun since), so a client's queue never grows past ``cap``,
    passing results queued behind a failing one included, and the held results never cost more
    than the detector's memory bound budgets for them (``bytes_per_client`` per slot)."""
    r = PradaRegimes(max_clients=2, hold_s=60.0, slack_s=5.0, warm=100, cap=16)
    starts = [(1, 30.0, 12.0)]  # regime 1 begun at 30 s, set in at 12 s: tests from 7 s on are void
    # client 0: failing tests; client 1: one failing then passing ones queued behind it, three caps'
    # worth, in regime 1 with no regime after it (the oldest are applied as they are pushed out)
    times = [1.0, 8.0] + [40.0 + i for i in range(16)]
    results = [(0, 0.5, True, i + 1, ts, 0 if ts < 30 else 1) for i, ts in enumerate(times)]
    results += [(1, 0.4 if i % r.cap == 0 else 0.9, i % r.cap == 0, i + 1, 100.0 + i, 1) for i in range(3 * r.cap)]
    applied: dict[int, list[tuple[float, bool, int, float]]] = {0: [], 1: []}
    for slot, w, failed, qn, ts, regime in results:
        applied[slot] += r.result(slot, w, failed, qn, ts, regime, 1, starts)
        assert len(r.held[slot]) <= r.cap, (slot, qn)
        assert r.nbytes <= r.regime.shape[0] * r.bytes_per_client(), (slot, qn)
    assert applied[0] == [(0.5, True, 1, 1.0)]  # the test at 8 s ran after the onset: dropped
    assert applied[1] == [(w, failed, qn, ts) for _, w, failed, qn, ts, _ in results[18:18 + 2 * r.cap]]
    assert [len(r.held[slot]) for slot in (0, 1)] == [r.cap, r.cap]
