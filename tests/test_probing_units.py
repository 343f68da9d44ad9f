"""The probing detector's parts: client LRU and rings, hashes, neighbours, Shapiro-Wilk and PRADA,
OOD score, margins, binomial critical counts, campaign index (seeded, with stated bounds)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.detectors.probing.boundary import calibrate_boundary, margins
from monitor.detectors.probing.clients import ClientRing, ClientTable, hash_client_id
from monitor.detectors.probing.hashing import Fingerprinter, exact_hash, shared_counts
from monitor.detectors.probing.neighbours import Sketcher, calibrate_knn, group_neighbours, row_counts
from monitor.detectors.probing.ood import fit_ood
from monitor.detectors.probing.stealing import calibrate_prada, prada_min_distances, shapiro_coefficients, shapiro_w
from monitor.detectors.probing.verdict import CampaignIndex, critical_counts
from tests import probing_streams as S


# -- clients -------------------------------------------------------------------------------------------
def test_client_table_is_an_lru_with_counted_evictions() -> None:
    t = ClientTable(3, salt="s")
    t.lookup(np.array(["a", "b", "c"], dtype=object))
    t.lookup(np.array(["a"], dtype=object))  # "b" is now the least recently seen
    r = t.lookup(np.array(["d", None], dtype=object))
    assert [e[2] for e in r.evicted] == [hash_client_id("b", "s"), hash_client_id("c", "s")]
    assert t.evictions == 2 and len(t) == 3
    assert t.slot_of("b") is None and t.slot_of("anonymous") is not None
    assert t.display(t.slot_of("a")) == hash_client_id("a", "s")
    serials = {int(t.serial[t.slot_of(c)]) for c in ("a", "d", "anonymous")}
    assert len(serials) == 3  # serials are never reused


def test_client_table_state_keeps_hashed_ids_and_adopts_them_back() -> None:
    t = ClientTable(4, salt="s")
    t.lookup(np.array(["alice", "bob"], dtype=object))
    state = t.state_dict()
    assert "alice" not in state["keys"] and hash_client_id("alice", "s") in state["keys"]
    u = ClientTable(4, salt="s")
    u.load_state_dict(state)
    slot = t.slot_of("alice")
    assert u.lookup(np.array(["alice"], dtype=object)).slots.tolist() == [slot]
    assert u.lookup(np.array(["carol"], dtype=object)).created  # a new client gets a free slot
    assert u.slot_of("bob") == t.slot_of("bob")


def test_client_ring_grows_then_wraps() -> None:
    ring = ClientRing(history=40, dim=2, n_fps=0, prada_window=5, start=4)
    seen = []
    for i in range(11):  # 11 groups of 5 = 55 rows > 40
        ring.reserve(5)
        pos = ring.positions(5)
        ring.norm[pos] = np.arange(5 * i, 5 * i + 5)
        ring.commit(5)
        seen.append(ring.cap)
    assert seen[:4] == [8, 16, 16, 32] and ring.cap == 40 and ring.filled == 40
    assert sorted(ring.norm.tolist()) == list(range(15, 55))  # the 40 newest rows
    ring.push_prada(np.arange(12, dtype=np.float32))
    assert sorted(ring.prada.tolist()) == [7, 8, 9, 10, 11] and ring.prada_n == 12


# -- hashes -----------------------------------------------------------------------------------------------
def test_exact_hash_sees_every_bit_but_not_the_sign_of_zero() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6))
    h = exact_hash(x)
    assert len(set(h.tolist())) == 2000
    y = x.copy()
    y[5, 3] = np.nextafter(y[5, 3], np.inf)
    assert (exact_hash(y) != h).sum() == 1
    z = np.zeros((2, 3))
    z[1, 1] = -0.0
    assert exact_hash(z)[0] == exact_hash(z)[1]
    cat = np.array([["a", None], ["a", "b"]], dtype=object)
    assert exact_hash(np.zeros((2, 1)), cat)[0] != exact_hash(np.zeros((2, 1)), cat)[1]


def test_fingerprint_threshold_holds_its_false_positive_rate_on_fresh_rows() -> None:
    ref = S.reference()
    sk = Sketcher(ref.numeric)
    fp = Fingerprinter(S.D, step=0.5, window=4, seed=1)
    t = fp.calibrate(fp.transform(sk.standardise(ref.numeric)), k=10, query_fpr=0.01)
    fresh = fp.transform(sk.standardise(S.natural(np.random.default_rng(3), 1500)))
    hits = ((shared_counts(fresh, fp.transform(sk.standardise(ref.numeric))) >= t).sum(axis=1) >= 10).mean()
    assert 1 <= t <= fp.n_segments and hits <= 0.03  # stated 1%, at most 3% on 1,500 fresh rows


# -- neighbours ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("statistic", ["kth", "mean"])
def test_group_neighbours_match_brute_force(statistic: str) -> None:
    rng = np.random.default_rng(1)
    stored = rng.normal(size=(50, 4)).astype(np.float32)
    x = np.concatenate([rng.normal(size=(6, 4)), stored[:3] + 0.001, stored[7:8]]).astype(np.float32)
    ex_stored = np.arange(50, dtype=np.uint32)
    ex = np.array([100, 101, 102, 103, 104, 101, 200, 201, 202, 7], dtype=np.uint32)  # row 5 repeats row 1, row 9 repeats stored 7
    g = group_neighbours(x, (x * x).sum(1), stored.T.copy(), (stored * stored).sum(1), k=3, tau=1.2, statistic=statistic,
                         exact=ex, stored_exact=ex_stored)
    assert g.repeat.tolist() == [False] * 5 + [True] + [False] * 3 + [True]
    for i in np.flatnonzero(~g.repeat):
        earlier = np.concatenate([stored, x[:i][~g.repeat[:i]]]).astype(np.float64)
        d = np.sqrt(((earlier - x[i]) ** 2).sum(axis=1))
        assert g.dmin[i] == pytest.approx(d.min(), abs=1e-3)
        kth = np.sort(d)[2]
        if statistic == "kth":
            assert g.hit[i] == (kth < 1.2)
        elif d.min() < 1.2:
            assert g.knn[i] == pytest.approx(np.sort(d)[:3].mean(), abs=1e-3)


@pytest.mark.parametrize("statistic", ["kth", "mean"])
@pytest.mark.parametrize("share", [0.0, 0.8, 1.0])
def test_large_group_with_repeats_matches_brute_force(statistic: str, share: float) -> None:
    """A group of 150 rows (past the cached triangle's first size, with one repeat, or with most
    or all rows retries of stored queries: the k-th statistic then compares with the non-repeat
    rows only) and a second, larger one (the cached triangle grows): each non-repeat row sees
    exactly the stored queries and the earlier non-repeat rows of its group."""
    rng = np.random.default_rng(3)
    stored = (rng.normal(size=(80, 3)) * 0.3).astype(np.float32)
    for m in (150, 300):
        x = (rng.normal(size=(m, 3)) * 0.3).astype(np.float32)
        ex = rng.integers(0, 2**31, size=m).astype(np.uint32)
        x[10], ex[10] = x[2], ex[2]
        retried = np.flatnonzero(rng.random(m) < share)
        retried = retried[retried != 2]
        pick = rng.integers(0, 80, size=retried.size)
        x[retried], ex[retried] = stored[pick], pick
        g = group_neighbours(x, (x * x).sum(1), stored.T.copy(), (stored * stored).sum(1), k=4, tau=0.25,
                             statistic=statistic, exact=ex, stored_exact=np.arange(80, dtype=np.uint32))
        assert g.repeat.tolist() == [i == 10 or i in set(retried.tolist()) for i in range(m)]
        for i in range(m):
            if g.repeat[i]:
                continue
            earlier = np.concatenate([stored, x[:i][~g.repeat[:i]]]).astype(np.float64)
            d = np.sqrt(((earlier - x[i]) ** 2).sum(axis=1))
            assert g.dmin[i] == pytest.approx(d.min(), abs=1e-3)
            kth = np.sort(d)[3]
            if statistic == "kth" and abs(kth - 0.25) > 1e-3:
                assert g.hit[i] == (kth < 0.25)


def test_upper_mask_is_the_complement_of_the_strict_lower_triangle() -> None:
    from monitor.detectors.probing import neighbours as nb

    for m in (1, 5, 64, 65, 200, 130, nb._UPPER_MAX + 3):
        assert np.array_equal(nb._upper(m), ~np.tri(m, k=-1, dtype=bool))


@pytest.mark.parametrize("shape", [(1, 1), (7, 255), (64, 1000), (3, 70_000)])
def test_row_counts_are_count_nonzero(shape: tuple[int, int]) -> None:
    """The byte-sum count of the kNN step gives count_nonzero's integers, also past 255 and past
    the uint16 bound (which falls back), and on masks that are not contiguous."""
    rng = np.random.default_rng(shape[1])
    mask = rng.random(shape) < 0.9
    for m, bound in ((mask, shape[1]), (mask, 1 << 16), (np.asfortranarray(mask), shape[1]), (mask[:, ::2], shape[1])):
        assert row_counts(m, bound).tolist() == np.count_nonzero(m, axis=1).tolist()


def test_knn_threshold_holds_its_false_positive_rate_on_fresh_rows() -> None:
    """tau at 1% on the reference (leave-one-out): fresh natural rows compared with the reference
    are hits at most 2% of the time over 2,000 rows."""
    ref = S.reference()
    sk = Sketcher(ref.numeric)
    s = sk.project(sk.standardise(ref.numeric))
    cal = calibrate_knn(s, 10, 0.01, np.random.default_rng(0))
    fresh = sk.project(sk.standardise(S.natural(np.random.default_rng(4), 2000)))
    g = group_neighbours(fresh[:1], (fresh[:1] ** 2).sum(1), s.T.copy(), (s * s).sum(1), 10, cal.tau)
    d = np.sqrt(np.maximum((fresh * fresh).sum(1)[:, None] + (s * s).sum(1)[None] - 2 * fresh @ s.T, 0))
    rate = float((np.sort(d, axis=1)[:, 9] < cal.tau).mean())
    assert rate <= 0.02 and cal.near < cal.tau and g.dmin.shape == (1,)


# -- Shapiro-Wilk and PRADA --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [3, 4, 5, 7, 12, 50, 100, 400])
def test_shapiro_w_reproduces_scipy(n: int) -> None:
    rng = np.random.default_rng(n)
    for sample in (rng.normal(size=n), rng.exponential(size=n), rng.uniform(size=n)):
        assert float(shapiro_w(sample)) == pytest.approx(stats.shapiro(sample).statistic, abs=1e-6)
    assert np.allclose(shapiro_coefficients(n), -shapiro_coefficients(n)[::-1])


def test_prada_threshold_false_alarms_and_power_on_synthetic_stealing() -> None:
    """delta at 1e-3 per test: over 300 simulated benign windows at most 1% below it; a
    Jacobian-style stealing client (seeds plus fixed-size sign steps) falls below it."""
    ref = S.reference()
    sk = Sketcher(ref.numeric)
    s = sk.project(sk.standardise(ref.numeric))
    cal = calibrate_knn(s, 10, 0.01, np.random.default_rng(0))
    pc = calibrate_prada(s, 100, 1000, cal.near, 1e-3, np.random.default_rng(1))
    assert 0.0 < pc.delta < 1.0
    rng = np.random.default_rng(2)
    a = shapiro_coefficients(100)
    benign = []
    for _ in range(300):
        seq = sk.project(sk.standardise(S.natural(rng, 400))).astype(np.float64)
        benign.append(float(shapiro_w(prada_min_distances(seq, 200, cal.near)[:100], a)))
    assert np.mean(np.array(benign) < pc.delta) <= 0.01
    x = S.natural(rng, 25)
    for _ in range(4):  # synthetic augmentation: step along the sign of the predicted class's weights
        grad = S.WEIGHTS[:, S.scores(x).argmax(axis=1)].T
        x = np.concatenate([x, x + 0.8 * np.sign(grad)])
    seq = sk.project(sk.standardise(x)).astype(np.float64)
    d = prada_min_distances(seq, 1, cal.near)
    assert len(d) >= 100 and float(shapiro_w(d[-100:], a)) < pc.delta


# -- OOD, margins, counts ----------------------------------------------------------------------------------------
def test_ood_threshold_holds_its_rate_on_fresh_rows_and_flags_noise() -> None:
    ref = S.reference()
    sk = Sketcher(ref.numeric)
    model = fit_ood(sk.standardise(ref.numeric), 0.01, np.random.default_rng(0))
    fresh = model.flags(sk.standardise(S.natural(np.random.default_rng(5), 20_000))).mean()
    assert 0.003 <= fresh <= 0.025  # stated 1%, from 750 held-out rows
    assert model.flags(sk.standardise(S.ood(np.random.default_rng(6), 500))).mean() >= 0.9


def test_boundary_calibration() -> None:
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(4), size=2000)
    cal = calibrate_boundary(p, rng.random(2000), rng.random(2000) < 0.9, margin_quantile=0.05)
    assert (margins(p) < cal.small_margin).mean() == pytest.approx(0.05, abs=0.002)
    assert cal.flip_rate == pytest.approx(0.1, abs=0.05)


def test_critical_counts_match_the_binomial_tail() -> None:
    c = critical_counts(300, 0.02, 1e-6, 3)
    for n in (0, 1, 10, 50, 300):
        k = int(c[n])
        assert k >= 3
        if k > 3:
            assert stats.binom.sf(k - 1, n, 0.02) <= 1e-6 < stats.binom.sf(k - 2, n, 0.02)


# -- campaigns ----------------------------------------------------------------------------------------------------
def _campaign(points: list[tuple[int, np.ndarray, bool]]) -> CampaignIndex:
    idx = CampaignIndex(size=256, dim=2, radius=0.5, min_queries=3, min_clients=3)
    for owner, x, hit in points:
        x = x.astype(np.float32)[None]
        idx.update(x, (x * x).sum(1), np.array([owner]), np.array([float(len(points))]), lambda o: f"acct-{o}",
                   np.array([hit]))
    return idx


def test_campaign_needs_several_probing_accounts() -> None:
    rng = np.random.default_rng(8)
    near = lambda: rng.normal(0, 0.05, 2)  # noqa: E731
    three = [(a, near(), True) for _ in range(4) for a in (1, 2, 3)]
    assert [c.n_accounts for c in _campaign(three).reported()] == [3]
    one = [(1, near(), True) for _ in range(30)]
    assert _campaign(one).reported() == []  # one account alone is not a campaign
    no_probe = [(a, near(), False) for _ in range(4) for a in (1, 2, 3)]
    assert _campaign(no_probe).reported() == []  # resubmissions that never made a per-client hit
    spread = [(a, rng.normal(0, 5, 2), True) for _ in range(4) for a in (1, 2, 3)]
    assert _campaign(spread).reported() == []


def test_campaign_state_round_trip() -> None:
    rng = np.random.default_rng(9)
    idx = _campaign([(a, rng.normal(0, 0.05, 2), True) for _ in range(4) for a in (1, 2, 3)])
    copy = CampaignIndex(size=256, dim=2, radius=0.5, min_queries=3, min_clients=3)
    copy.load_state_dict(idx.state_dict())
    assert copy.reported() == idx.reported() and copy.filled == idx.filled


# -- copy clusters (session 34) --------------------------------------------------------------------------------
def _copy_aware_one_by_one(rows: np.ndarray, k: int, tau: float, near: float) -> tuple[list[bool], list[int]]:
    """The definition, one query at a time: each query joins the cluster of its nearest earlier
    query when that lies within ``near``; a hit has ``k`` earlier queries within ``tau`` counting
    its own cluster's in full and every other cluster once."""
    hits, clusters = [], []
    for i, row in enumerate(rows.astype(np.float64)):
        d = np.sqrt(((rows[:i].astype(np.float64) - row) ** 2).sum(axis=1))
        own = clusters[int(d.argmin())] if i and d.min() < near else -1
        ids = np.array(clusters, dtype=np.int64)[d < tau]
        hits.append(int((ids == own).sum()) + len(set(ids[ids != own].tolist())) >= k)
        clusters.append(own if own >= 0 else i)
    return hits, clusters


@pytest.mark.parametrize("cut", [0, 1, 37, 120, 199])
def test_copy_aware_hits_match_the_definition_however_the_queries_are_grouped(cut: int) -> None:
    """Resubmitted items (1-6 noisy copies each) and a probe (a walk of tiny steps) in one stream,
    analysed as two groups cut at ``cut``: the hits and the cluster partition are those of the
    definition applied query by query (clusters are compared as partitions: their numbers differ)."""
    rng = np.random.default_rng(8)
    items = rng.normal(size=(40, 3))
    copies = np.repeat(items, rng.integers(1, 7, size=40), axis=0)
    copies = copies[rng.permutation(len(copies))] + rng.normal(0.0, 0.02, copies.shape)
    walk = items[0] + 2.0 + np.cumsum(rng.normal(0.0, 0.01, (60, 3)), axis=0)
    rows = np.concatenate([copies, walk])[:200].astype(np.float32)
    k, tau, near = 4, 0.6, 0.1
    want_hits, want_clusters = _copy_aware_one_by_one(rows, k, tau, near)
    first, second = rows[:cut], rows[cut:]
    got_hits: list[bool] = []
    got_clusters = np.zeros(0, dtype=np.int64)
    nxt = 0
    for part, stored in ((first, rows[:0]), (second, first)):
        if not len(part):
            continue
        g = group_neighbours(part, (part * part).sum(1), stored.T.copy(), (stored * stored).sum(1), k=k, tau=tau,
                             near=near, stored_cluster=got_clusters.astype(np.uint32), next_cluster=nxt)
        got_hits += g.hit.tolist()
        got_clusters = np.concatenate([got_clusters, g.cluster])
        nxt = g.next_cluster
    plain = group_neighbours(rows, (rows * rows).sum(1), np.zeros((3, 0), np.float32), np.zeros(0, np.float32), k=k, tau=tau)
    # the probe's steps are hits; copies of neighbouring items made more hits counted one by one
    assert got_hits == want_hits and sum(want_hits) > 20 and int(plain.hit.sum()) > sum(want_hits)
    same = np.equal.outer(got_clusters, got_clusters)
    assert np.array_equal(same, np.equal.outer(want_clusters, want_clusters))


def test_copies_of_neighbouring_items_count_once() -> None:
    """Three neighbouring items sent four times each surround a new query: twelve earlier queries
    within tau, but three items, so no hit at k = 4; the same query with four copies of its own
    item earlier is a hit (its own cluster counts in full)."""
    rng = np.random.default_rng(2)
    centres = np.array([[0.3, 0.0], [0.0, 0.3], [-0.3, 0.0]])
    stored = (np.repeat(centres, 4, axis=0) + rng.normal(0.0, 0.005, (12, 2))).astype(np.float32)
    x = np.zeros((1, 2), dtype=np.float32)
    kw = dict(k=4, tau=0.5, near=0.05)
    g = group_neighbours(x, (x * x).sum(1), stored.T.copy(), (stored * stored).sum(1), **kw,
                         stored_cluster=np.repeat(np.arange(3), 4).astype(np.uint32), next_cluster=3)
    plain = group_neighbours(x, (x * x).sum(1), stored.T.copy(), (stored * stored).sum(1), k=4, tau=0.5)
    assert plain.hit.tolist() == [True] and g.hit.tolist() == [False] and g.cluster.tolist() == [3]
    own = np.concatenate([stored, rng.normal(0.0, 0.005, (4, 2)).astype(np.float32)])
    g = group_neighbours(x, (x * x).sum(1), own.T.copy(), (own * own).sum(1), **kw,
                         stored_cluster=np.repeat(np.arange(4), 4).astype(np.uint32), next_cluster=4)
    assert g.hit.tolist() == [True] and g.cluster.tolist() == [3]
