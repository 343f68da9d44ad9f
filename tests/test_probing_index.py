"""The hash family's inverted index (:mod:`monitor.detectors.probing.fpindex`) against the
brute-force scan it replaces: same answers on seeded and generated streams full of
near-duplicates and bucket collisions, under-counting only when a cap binds, bounded memory
under eviction, rebuilt identically from a checkpoint; and the detector giving the same verdicts
with either lookup."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.detectors.probing import ProbingDetector
from monitor.detectors.probing.clients import ClientRing
from monitor.detectors.probing import fpindex
from monitor.detectors.probing.fpindex import FingerprintIndex, close_from_pairs, group_close_counts
from monitor.detectors.probing.hashing import shared_counts
from tests import probing_streams as S


# -- a client's ring and index driven as the detector drives them ---------------------------------------
class Client:
    """One client's ring of fingerprints with its index, stored group by group."""

    def __init__(self, history: int, n_segments: int, cap: int) -> None:
        self.ring = ClientRing(history, dim=1, n_fps=n_segments, prada_window=3)
        self.index = FingerprintIndex(n_segments, history, cap)

    def store(self, rows: np.ndarray) -> None:
        ring, f = self.ring, self.ring.filled
        ring.reserve(len(rows))
        self.index.reserve(ring.cap, ring.fps, f)
        pos = ring.positions(len(rows))
        self.index.insert(rows)
        ring.fps[pos] = rows
        ring.commit(len(rows))

    def scan(self, q: np.ndarray, t: int) -> np.ndarray:
        f = self.ring.filled
        return (shared_counts(q, self.ring.fps[:f]) >= t).sum(axis=1) if f else np.zeros(len(q), dtype=np.int64)

    def lookup(self, q: np.ndarray, t: int) -> np.ndarray:
        return self.index.close_counts(q, self.ring.fps, self.ring.filled, t)


def scan_group(q: np.ndarray, t: int) -> np.ndarray:
    return ((shared_counts(q, q) >= t) & np.tri(len(q), k=-1, dtype=bool)).sum(axis=1)


def near_duplicate_stream(rng: np.random.Generator, n: int, n_segments: int, alphabet: int, n_buckets: int = 1024) -> np.ndarray:
    """Fingerprints of a stream full of near-duplicates: each segment takes one of ``alphabet``
    values most of the time (so many queries share 1..all segments), a fresh random value
    otherwise; the shared values all fall in one bucket of every table size up to ``n_buckets``
    (multiples of it), so that chains mix real matches with collisions."""
    common = (rng.integers(0, 1000, size=(n_segments, alphabet)) * n_buckets).astype(np.uint32)
    pick = common[np.arange(n_segments)[None, :], rng.integers(0, alphabet, size=(n, n_segments))]
    fresh = rng.integers(0, 2**32, size=(n, n_segments), dtype=np.uint64).astype(np.uint32)
    return np.where(rng.random((n, n_segments)) < 0.8, pick, fresh).astype(np.uint32)


def run_stream(client: Client, fps: np.ndarray, groups: list[int], ts: list[int]) -> tuple[int, int]:
    """Feed ``fps`` in groups; at each group compare index and scan for every threshold.
    Returns (groups checked, queries that had at least one stored match)."""
    checked = matched = 0
    start = 0
    for g in groups:
        q = fps[start:start + g]
        start += g
        if len(q) == 0:
            break
        for t in ts:
            expected = client.scan(q, t)
            assert client.lookup(q, t).tolist() == expected.tolist(), (start, t)
            assert group_close_counts(q, t, cap=len(q)).tolist() == scan_group(q, t).tolist()
        matched += int((client.scan(q, 1) > 0).sum())
        checked += 1
        client.store(q)
    return checked, matched


# -- index == scan ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("count_by", ["product", "pairs"])
@pytest.mark.parametrize("seed", range(6))
def test_index_answers_exactly_as_the_scan_on_seeded_near_duplicate_streams(seed: int, count_by: str, monkeypatch) -> None:
    """Rings that grow, wrap many times, and chains mixing real matches and collisions: with the
    cap at the history the index never truncates, and every count equals the scan's (shared
    counts from the small 0/1 matrix product, or from the sorted pairs used above its budget)."""
    monkeypatch.setattr(fpindex, "_MATMUL_MNK", 1 << 40 if count_by == "product" else -1)
    rng = np.random.default_rng(seed)
    history = int(rng.integers(20, 90))
    n_segments = int(rng.integers(2, 9))
    fps = near_duplicate_stream(rng, 8 * history, n_segments, alphabet=int(rng.integers(1, 4)))
    groups = rng.integers(1, history + 1, size=200).tolist()
    client = Client(history, n_segments, cap=history)
    checked, matched = run_stream(client, fps, groups, ts=list(range(1, n_segments + 1)))
    assert checked >= 10 and matched > 4 * history  # the stream really was full of shared fingerprints
    assert client.ring.filled == history and client.index.total == len(fps)


@settings(max_examples=60, deadline=None)
@given(
    history=st.integers(2, 40),
    n_segments=st.integers(1, 6),
    alphabet=st.integers(1, 5),
    groups=st.lists(st.integers(1, 40), min_size=1, max_size=25),
    seed=st.integers(0, 2**31 - 1),
)
def test_index_answers_exactly_as_the_scan_on_generated_streams(history: int, n_segments: int, alphabet: int,
                                                                groups: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = [min(g, history) for g in groups]
    fps = near_duplicate_stream(rng, sum(groups), n_segments, alphabet)
    run_stream(Client(history, n_segments, cap=history), fps, groups, ts=list(range(1, n_segments + 1)))


def test_large_groups_use_the_sorted_path_and_still_match_the_scan() -> None:
    """Groups above the dense size are matched by sorting their fingerprints per segment."""
    rng = np.random.default_rng(7)
    q = near_duplicate_stream(rng, 600, 5, alphabet=2)
    for t in range(1, 6):
        assert group_close_counts(q, t, cap=600).tolist() == scan_group(q, t).tolist()
    capped = group_close_counts(q, 2, cap=8)
    assert (capped <= scan_group(q, 2)).all() and (capped < scan_group(q, 2)).any()


def test_a_binding_cap_only_ever_lowers_the_counts() -> None:
    """Beyond ``bucket_cap`` steps of a chain an old match may be missed: counts never exceed
    the scan's (no false positive); on this stream, built so that the cap binds, some are lower."""
    rng = np.random.default_rng(8)
    history, n_segments, k = 200, 4, 10
    fps = near_duplicate_stream(rng, 6 * history, n_segments, alphabet=2)
    client = Client(history, n_segments, cap=k)
    lower = 0
    start = 0
    for g in rng.integers(1, 64, size=60).tolist():
        q = fps[start:start + g]
        start += g
        for t in (1, 2, 3):
            exact, capped = client.scan(q, t), client.lookup(q, t)
            assert (capped <= exact).all()
            lower += int((capped < exact).sum())
        client.store(q)
    assert lower > 0  # the cap did bind on this stream


def test_close_from_pairs_counts_distinct_partners_with_enough_shared() -> None:
    rows = np.array([0, 0, 0, 0, 1, 1, 2])
    others = np.array([3, 3, 4, 3, 3, 4, 9])
    assert close_from_pairs(rows, others, m=4, t=1).tolist() == [2, 2, 1, 0]
    assert close_from_pairs(rows, others, m=4, t=2).tolist() == [1, 0, 0, 0]
    assert close_from_pairs(rows, others, m=4, t=3).tolist() == [1, 0, 0, 0]
    assert close_from_pairs(rows, others, m=4, t=4).tolist() == [0, 0, 0, 0]


# -- bounded memory, rebase, rebuild ----------------------------------------------------------------------
def test_eviction_keeps_the_index_bounded() -> None:
    """Lazy deletion: links live in one row per ring position and heads in a table sized by the
    ring, so after the ring is full the index stops growing, and at most ``n_segments x filled``
    buckets point at a stored query."""
    rng = np.random.default_rng(9)
    history, n_segments = 100, 6
    client = Client(history, n_segments, cap=32)
    sizes = []
    for rep in range(12):
        client.store(near_duplicate_stream(rng, 50, n_segments, alphabet=3))
        sizes.append(client.index.nbytes)
        assert client.index.live_heads(client.ring.filled) <= n_segments * client.ring.filled
    assert client.index.delta.shape == (history, n_segments)
    assert client.index.head.shape == (n_segments, FingerprintIndex.buckets_for(history))
    assert len(set(sizes[2:])) == 1 and sizes[0] < sizes[-1]  # grew with the ring, then flat
    assert sizes[-1] == FingerprintIndex.bytes_at_full(n_segments, history) == n_segments * (2 * history + 4 * 128)


def test_sequence_numbers_are_rebased_before_they_overflow() -> None:
    rng = np.random.default_rng(10)
    history, n_segments = 30, 4
    client = Client(history, n_segments, cap=history)
    client.index.REBASE_AT = 100  # instead of 2**31: rebase every few groups
    fps = near_duplicate_stream(rng, 40 * history, n_segments, alphabet=2)
    bases = set()
    start = 0
    while start < len(fps):
        q = fps[start:start + 17]
        start += 17
        for t in (1, 2, 4):
            assert client.lookup(q, t).tolist() == client.scan(q, t).tolist()
        client.store(q)
        bases.add(client.index.base)
        assert int(client.index.head.max()) <= 100
    assert len(bases) > 5


@pytest.mark.parametrize("n_stored", [7, 60, 500])
def test_index_rebuilt_from_a_restored_ring_answers_the_same(n_stored: int) -> None:
    """The index is never saved: rebuilt from the ring's fingerprints after a checkpoint (ring
    not yet wrapped, or wrapped many times), it gives the live index's answers from then on."""
    rng = np.random.default_rng(11)
    history, n_segments = 64, 5
    live = Client(history, n_segments, cap=history)
    fps = near_duplicate_stream(rng, n_stored + 300, n_segments, alphabet=3)
    for start in range(0, n_stored, 13):
        live.store(fps[start:min(start + 13, n_stored)])
    state = json.loads(json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v
                                   for k, v in live.ring.state_dict().items()}))
    restored = Client(history, n_segments, cap=history)
    restored.ring = ClientRing.from_state(history, state)
    restored.index.rebuild(restored.ring.fps, restored.ring.filled, restored.ring.head, restored.ring.cap)
    start = n_stored
    while start < len(fps):
        q = fps[start:start + 23]
        start += 23
        for t in (1, 2, 3, 5):
            expected = live.scan(q, t).tolist()
            assert live.lookup(q, t).tolist() == expected == restored.lookup(q, t).tolist()
        live.store(q)
        restored.store(q)


def test_bad_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="hash_bucket_cap"):
        FingerprintIndex(4, 100, 0)


# -- the detector: same verdicts with either lookup ---------------------------------------------------------
@pytest.fixture(scope="module")
def ref():
    return S.reference()


def make(ref, **kw) -> ProbingDetector:
    kw.setdefault("client_id_salt", "test-salt")
    kw.setdefault("raw_client_ids", True)
    kw.setdefault("near_duplicates", "hash")
    kw.setdefault("hash_step", 0.5)
    kw.setdefault("hash_window", 4)
    return ProbingDetector(ref, **kw)


def outcome(det: ProbingDetector, clients) -> tuple:
    verdicts = {c: (v.first_flagged_query, v.signal_names, [e.evidence_queries for e in v.signals])
                for c in clients if (v := det.verdict(c)) is not None}
    return verdicts, det._flag_totals.tolist()  # noqa: SLF001 - per-flag totals of every analysed query


def mixed_streams(rng: np.random.Generator) -> dict[str, np.ndarray]:
    streams = {f"b{i}": S.benign(rng, 260) for i in range(8)}
    streams.update({f"p{i}": S.probing(rng, 320) for i in range(4)})
    streams["mixed"] = np.concatenate([np.concatenate([S.natural(rng, 9), S.probing(rng, 1)]) for _ in range(40)])
    return streams


@pytest.mark.parametrize("scan_up_to", [0, 50])
def test_detector_verdicts_are_the_same_with_the_index_and_the_scan(ref, scan_up_to: int) -> None:
    """Probing walks, benign clients with retries and noisy resubmissions, a mixed attacker;
    rings of 120 queries that wrap; batches of 128 rows, so groups overwrite stored queries. With
    a cap that cannot bind (the history), the index is the scan."""
    streams = mixed_streams(np.random.default_rng(12))
    scan = make(ref, history=120, hash_lookup="scan")
    index = make(ref, history=120, hash_bucket_cap=120)
    index.hash_scan_up_to = scan_up_to
    for det in (scan, index):
        S.feed(det, streams, seed=3)
    assert outcome(index, streams) == outcome(scan, streams)
    assert all(flagged for c, (flagged, _, _) in outcome(index, streams)[0].items() if c.startswith("p"))
    built = [i for i in index._fp_index if i is not None]  # noqa: SLF001
    assert len(built) == len(streams) and all(i.total > 120 for i in built)  # the index path did run
    assert all(i is None for i in scan._fp_index)  # noqa: SLF001


def test_a_binding_cap_only_delays_or_drops_near_duplicate_signals(ref) -> None:
    """A cap of 4 steps per fingerprint binds on probing walks: fewer hits than the scan, the
    near-duplicate signal raised at the same query or later (never earlier, never on a client the
    scan spared), and every other signal unchanged."""
    streams = mixed_streams(np.random.default_rng(16))
    scan = make(ref, history=120, hash_lookup="scan")
    capped = make(ref, history=120, hash_bucket_cap=4)
    capped.hash_scan_up_to = 0
    for det in (scan, capped):
        S.feed(det, streams, seed=6)
    hits_scan, hits_capped = scan._flag_totals[0], capped._flag_totals[0]  # noqa: SLF001
    assert hits_capped < hits_scan
    assert (capped._flag_totals[1:] == scan._flag_totals[1:]).all()  # noqa: SLF001
    for c in streams:
        a, b = scan.verdict(c), capped.verdict(c)
        near_a = {e.signal: e.since_query for e in a.signals}.get("near_duplicates")
        near_b = {e.signal: e.since_query for e in b.signals}.get("near_duplicates")
        assert near_b is None or (near_a is not None and near_b >= near_a), c
        assert set(b.signal_names) - {"near_duplicates"} == set(a.signal_names) - {"near_duplicates"}, c


def test_detector_state_round_trip_rebuilds_the_index(ref) -> None:
    rng = np.random.default_rng(13)
    streams = mixed_streams(rng)
    first = {c: x[: len(x) // 2] for c, x in streams.items()}
    second = {c: x[len(x) // 2:] for c, x in streams.items()}
    a = make(ref, history=150, flush_rows=16)
    a.hash_scan_up_to = 40
    S.feed(a, first, seed=4, flush=False)
    state = a.state_dict()
    ring_fields = set(ClientRing.__slots__) - {"history"}
    assert all(set(r) == ring_fields for r in state["rings"].values())  # the index is not in the checkpoint
    b = make(ref, history=150, flush_rows=16)
    b.hash_scan_up_to = 40
    b.load_state_dict(state)
    assert [i is None for i in b._fp_index] == [i is None for i in a._fp_index]  # noqa: SLF001
    assert b._ring_bytes == a._ring_bytes  # noqa: SLF001
    for det in (a, b):
        S.feed(det, second, seed=5)
    assert outcome(a, streams) == outcome(b, streams)
    by_client = [sorted((v.to_dict() for v in d.suspicious_clients()), key=lambda v: v["client"]) for d in (a, b)]
    assert by_client[0] == by_client[1] and by_client[0]  # (ties in evidence may list in another order)


def test_detector_memory_stays_bounded_with_evictions(ref) -> None:
    """More clients than the LRU holds, each past its history: at most ``max_clients`` indexes
    exist, the byte count kept incrementally equals the full sum, and memory stops growing
    below the configured bound."""
    det = make(ref, history=100, max_clients=6)
    det.hash_scan_up_to = 10
    rng = np.random.default_rng(14)
    sizes = []
    for rep in range(4):
        S.feed(det, {f"c{(rep * 4 + i) % 10}": S.probing(rng, 180) for i in range(6)}, seed=rep)
        built = [i for i in det._fp_index if i is not None]  # noqa: SLF001
        rings = [r for r in det._rings if r is not None]  # noqa: SLF001
        assert len(built) <= 6 and len(rings) <= 6
        assert det._ring_bytes == sum(r.nbytes for r in rings) + sum(i.nbytes for i in built)  # noqa: SLF001
        assert all(i.live_heads(r.filled) <= det._n_fps * r.filled  # noqa: SLF001
                   for i, r in zip(det._fp_index, det._rings) if i is not None)  # noqa: SLF001
        assert det.state_nbytes <= det.memory_bound_bytes
        sizes.append(det.state_nbytes - det.population_waiting_bytes)  # those come and go with the periods
    assert det.evictions > 0
    assert sizes[-1] == sizes[-2]


@pytest.mark.parametrize("params, match", [
    ({"hash_lookup": "linear"}, "hash_lookup must be 'index' or 'scan'"),
    ({"hash_bucket_cap": 0}, "hash_bucket_cap must be >= 1"),
])
def test_bad_lookup_config_names_the_field(ref, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(ref, **params)


def test_module_examples_hold() -> None:
    import doctest

    result = doctest.testmod(fpindex)
    assert result.attempted >= 5 and result.failed == 0


def test_links_widen_past_a_uint16_history() -> None:
    """Links hold gaps below ``history``: 2 bytes each up to 65,535, 4 beyond; same answers."""
    rng = np.random.default_rng(15)
    for history, dtype in ((65_535, np.uint16), (70_000, np.int32)):
        client = Client(history, 3, cap=1000)
        run_stream(client, near_duplicate_stream(rng, 400, 3, alphabet=2), [37] * 11, ts=[1, 2, 3])
        assert client.index.delta.dtype == dtype
