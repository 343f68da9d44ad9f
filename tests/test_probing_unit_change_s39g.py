"""A lasting unit change upstream (one of the session-11 world's four features read x40 by every client)
and the ``ood`` signal (session 39g, from on-call walkthrough s39c).

The defect: the OOD test's null follows the population's rate (``population_null``: twice it, at most
halfway to 1), recomputed only when it moved by more than 10% *of the null*. Under x40 on feature 3,
96% of the inputs are out of distribution; the population ring's rate reached 0.86 at its first
refresh after the onset (null 0.928) and then 0.96 (null 0.98): a move of 0.05, within 10% of 0.928,
so the null stayed at 0.928 for as long as the shift lasted. A benign client's window of 1,000 queries
then holds about 964 OOD queries against a critical count of about 967: once the windows had filled
with shifted queries (about 370 s after the onset at 2.7 queries/s), half the benign clients crossed it
and stayed flagged ``ood`` (hysteresis lowers a count signal at half its critical count), which
paged ModelProbingSuspiciousClient for each of them and ModelProbingManySuspiciousClients (critical).

The null now moves when it changed by 10% of the smaller of the null and its complement (unchanged
below one half: every reference-like stream keeps its critical counts).

Stated bounds (12 benign clients at 2.7 queries/s for 30 minutes, feature 3 read x40 from minute 10,
seeds 2-6, the detector's defaults; measured at the fix):

* benign clients flagged ``ood`` at any 15-s scrape: at most 1 over the five seeds (was 12, 0, 0, 8 and
  12: 32 of 60; now 0);
* a client sending uniform noise (every query out of distribution) into that population from t = 700 s
  at 2 queries/s is still flagged ``ood`` under x10 (85% of the benign inputs OOD) within 200 of its
  queries and under x20 (92%) within 600 (measured 147 and 139, 491 and 532; with the stale null 105 and
  123, 180 and 169). Under x40 (96%) it is no longer flagged ``ood`` (it was, at its 186th and 238th
  query, when 12 and 8 of the 12 benign clients were too): 998 of its 1,000 queries are OOD, the benign
  clients' 964 to 975, and the null, halfway from the population's rate to 1 (0.975 to 0.987 as the
  rate's estimate moves, the highest held over a client's window), leaves 2 in-distribution queries of
  1,000 short of 1e-6. The OOD score is the reference's: a population that far from it leaves the
  signal almost nothing to tell apart; PRADA and the other signals are unchanged.

Not addressed here (see the session's report): PRADA's ``stealing`` flags under the same shift. They
come from steady shifted windows (16% of the tests 6 to 20 minutes after the onset fail ``delta``,
none before it), not from windows straddling the onset, and repeat and resolve within a minute because
the next test, 50 distances later, passes.
"""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.detectors.probing.detector import population_null
from tests import probing_streams as ps
from tests import test_probing_drift_robust_session11 as s11

ONSET, END = 600.0, 1800.0


def _replay(seed: int, factor: float = 40.0, noise: bool = False):
    """The stream through the detector, scraped every 15 s: (detector, {signal: clients flagged at
    some scrape}, with ``noise`` the noise client's ``ood`` evidence at the end or None)."""
    x, clients, ts = ps.timed_clients(np.random.default_rng(seed), s11.natural, 12, 2.7, END)
    after = ts >= ONSET
    x[after, 3] = s11.MEAN[3] + factor * (x[after, 3] - s11.MEAN[3])
    if noise:
        rng = np.random.default_rng(seed + 100)
        odd = rng.uniform(-15.0, 15.0, size=(2000, s11.D))
        x = np.vstack([x, odd])
        clients = np.concatenate([clients, np.full(2000, "noise", dtype=object)])
        ts = np.concatenate([ts, 700.0 + np.arange(2000) / 2.0])
        order = np.argsort(ts, kind="stable")
        x, clients, ts = x[order], clients[order], ts[order]
    det = s11.ProbingDetector(s11.reference(), client_id_salt="s39g", raw_client_ids=True, seed=0)
    flagged: dict[str, set[str]] = {}
    for now in np.arange(15.0, END + 15.0, 15.0):
        sel = (ts >= now - 15.0) & (ts < now)
        det.update(Batch.from_arrays(x[sel], s11.scores(x[sel]), ts=ts[sel], client=clients[sel]))
        det.advance(float(now))
        for v in det.suspicious_clients():
            for s in v.signals:
                flagged.setdefault(s.signal, set()).add(v.client)
    ood = None
    if noise:  # the noise client's ``ood`` evidence at the end, if raised
        v = next((v for v in det.suspicious_clients() if v.client == "noise"), None)
        ood = None if v is None else next((s for s in v.signals if s.signal == "ood"), None)
    return det, flagged, ood


def test_a_lasting_x40_unit_change_does_not_flag_benign_clients_ood() -> None:
    per_seed = {}
    for seed in (2, 3, 4, 5, 6):
        det, flagged, _ = _replay(seed)
        per_seed[seed] = sorted(c for c in flagged.get("ood", ()) if c.startswith("benign"))
        # the null followed the population: halfway from its rate to 1, not the rate of the first refresh
        rate = float(det._pop.rates[2])
        assert rate > 0.9 and det._null[4] >= float(population_null(rate, det.null_slack)) - 0.01, (rate, det._null[4])
    assert sum(len(v) for v in per_seed.values()) <= 1, per_seed


def test_an_all_noise_client_in_a_shifted_population_is_still_flagged_ood() -> None:
    # x10 (85% of the benign inputs OOD) and x20 (92%): flagged within 200 and 600 of its queries
    # (measured: 147 and 139, 491 and 532; with the stale null 105 and 123, 180 and 169)
    for factor, within in ((10.0, 200), (20.0, 600)):
        for seed in (2, 5):
            _, flagged, ood = _replay(seed, factor=factor, noise=True)
            assert not {c for c in flagged.get("ood", ()) if c.startswith("benign")}, flagged
            assert ood is not None and ood.since_query <= within, (factor, seed, ood)
