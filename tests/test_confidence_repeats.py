"""Repeated outputs (canned or memorised answers): exact semantics, bounded memory, checkpoints,
and seeded streams with stated false-alarm and detection-delay bounds."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.registry import create
from monitor.detectors.repetition import OutputRepeatDetector, RepeatTable, input_fingerprints, output_fingerprints
from monitor.reference import Reference
from monitor.store import MetricStore

K = 10
LEAVES = np.random.default_rng(100).dirichlet(np.full(K, 0.5), 2000)
CANNED = LEAVES[:20] * 0.5 + 0.05  # 20 answers outside the model's 2000 leaves


def tree_model(x: np.ndarray, rng: np.random.Generator, memorised: float = 0.0) -> np.ndarray:
    """A tree-like model: 2000 leaves, so outputs repeat legitimately; with ``memorised`` > 0 that
    share of rows gets one of 20 canned answers whatever the input."""
    leaf = (np.floor(x[:, 0] * 37) + np.floor(x[:, 1] * 53) * 37).astype(np.int64) % len(LEAVES)
    out = LEAVES[leaf].copy()
    if memorised:
        m = rng.random(len(x)) < memorised
        out[m] = CANNED[rng.integers(0, len(CANNED), int(m.sum()))]
    return out


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(101)
    x = rng.random((5000, 4)) * 10
    return Reference.from_arrays(x, scores=tree_model(x, rng))


def test_repeat_needs_different_inputs_and_a_recent_output() -> None:
    table = RepeatTable(size=64, horizon=3)
    out = output_fingerprints(np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5], [0.9, 0.1]]))
    x = np.array([[1.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0]])
    rep = table.repeats(out, input_fingerprints(x))
    # row 1: same input as row 0 (a retry), not a repeat; row 2: new input; row 7: last seen 5 rows ago > horizon 3
    assert rep.tolist() == [False, False, True, False, False, False, False, False]
    # rounding to 1e-6: float noise of the same answer is still the same answer
    a, b = output_fingerprints(np.array([[0.3, 0.7]])), output_fingerprints(np.array([[0.3 + 1e-9, 0.7 - 1e-9]]))
    assert a[0] == b[0] and a[0] != output_fingerprints(np.array([[0.3 + 1e-5, 0.7 - 1e-5]]))[0]


@pytest.mark.parametrize("size", [1 << 20, 16, 24])  # 1 << 20: ~200 outputs share no slot (P of a shared one ~2%)
def test_batches_give_the_same_flags_as_rows_one_by_one(size: int) -> None:
    """Whatever the batching (one drain in a replay, many small ones live, batches held for the
    detectors and handed over together), every row gets the flag it gets alone, also when
    outputs share table slots and evict each other (the 16-slot table)."""
    rng = np.random.default_rng(1)
    n = 3000
    x = np.floor(rng.random((n, 3)) * 4)  # 64 distinct inputs
    p = tree_model(rng.random((n, 2)) * 0.3, rng, memorised=0.3)  # few distinct outputs
    out, inp = output_fingerprints(p), input_fingerprints(x)
    collide = len(np.unique((out & np.uint64((1 << 63) - 1)) % np.uint64(size))) < len(np.unique(out))
    assert collide == (size < 100)
    whole = RepeatTable(size, 50).repeats(out, inp)
    one = RepeatTable(size, 50)
    rows = np.concatenate([one.repeats(out[i:i + 1], inp[i:i + 1]) for i in range(n)])
    chunks = RepeatTable(size, 50)
    cuts = np.sort(rng.choice(np.arange(1, n), 40, replace=False))
    parts = np.concatenate([chunks.repeats(o, i) for o, i in zip(np.split(out, cuts), np.split(inp, cuts))])
    assert (0.1 if size > 100 else 0.02) < whole.mean() < 0.99  # evictions in the small tables miss repeats
    assert np.array_equal(whole, rows) and np.array_equal(whole, parts)


def test_memory_is_bounded_and_the_state_round_trips(reference: Reference) -> None:
    rng = np.random.default_rng(2)
    det = create("output_repeats", reference=reference, params={"window_s": 1e6, "table_size": 512, "min_rows": 10})
    clone = create("output_repeats", reference=reference, params={"window_s": 1e6, "table_size": 512, "min_rows": 10})
    for i in range(20):
        x = rng.random((500, 4)) * 10
        det.update(Batch.from_arrays(x, tree_model(x, rng, 0.2), ts=i * 500.0 + np.arange(500.0)))
        if i == 9:
            clone.load_state_dict(det.state_dict())
        elif i > 9:
            clone.update(Batch.from_arrays(x, tree_model(x, rng, 0.2), ts=i * 500.0 + np.arange(500.0)))
    state = det.state_dict()
    assert all(np.asarray(state[k]).shape == (512,) for k in ("keys", "inputs", "positions"))
    # the clone saw other rows after the copy (different draws), so compare a fresh copy
    copy = create("output_repeats", reference=reference, params={"window_s": 1e6, "table_size": 512, "min_rows": 10})
    copy.load_state_dict(state)
    x = rng.random((300, 4)) * 10
    b = Batch.from_arrays(x, tree_model(x, rng, 0.5), ts=1e4 + np.arange(300.0))
    det.update(b)
    copy.update(b)
    s1, s2 = MetricStore("m"), MetricStore("m")
    det.export(s1)
    copy.export(s2)
    assert s1.samples() == s2.samples() and s1.value(names.OUTPUT_REPEAT) is not None
    with pytest.raises(ValueError, match="table_size"):
        create("output_repeats", params={"window_s": 1e6, "table_size": 256}).load_state_dict(state)
    with pytest.raises(ValueError, match="unknown parameter"):
        create("output_repeats", params={"horizon": 5})


def test_figures_absent_below_minimums(reference: Reference) -> None:
    rng = np.random.default_rng(3)
    small = Reference.from_arrays(reference.numeric[:500], scores=reference.scores[:500])
    det = OutputRepeatDetector(small, min_rows=200)  # reference shorter than the horizon: no baseline
    x = rng.random((100, 4)) * 10
    det.update(Batch.from_arrays(x, tree_model(x, rng)))
    store = MetricStore("m")
    det.export(store)
    assert det.reference_ratio is None and store.value(names.OUTPUT_REPEAT_REFERENCE) is None
    assert store.value(names.OUTPUT_REPEAT) is None  # 100 rows < min_rows


def stream_excess(reference: Reference, rng: np.random.Generator, memorised: float, onset: float = 3600.0,
                  hours: float = 3.0) -> list[tuple[float, float]]:
    """1 row/s in 30-row batches, 30-min window; (time, window share minus reference share) every 30 s."""
    det = create("output_repeats", reference=reference, params={"window_s": 1800.0})
    out = []
    for t0 in range(0, int(hours * 3600), 30):
        x = rng.random((30, 4)) * 10
        det.update(Batch.from_arrays(x, tree_model(x, rng, memorised if t0 >= onset else 0.0), ts=t0 + np.arange(30.0)))
        det.advance(t0 + 30.0)
        r = det.repeat_ratio  # type: ignore[attr-defined]
        if r is not None:
            out.append((t0 + 30.0, r - det.reference_ratio))  # type: ignore[attr-defined]
    return out


def test_no_false_alarm_on_a_model_whose_outputs_repeat_legitimately(reference: Reference) -> None:
    """Unshifted tree-like model (its reference share of repeats is about 0.38): over 10 seeded
    3-hour streams (3,600 evaluations) the excess over the reference never reaches the
    alert's 0.1."""
    assert 0.2 < reference_share(reference) < 0.6
    rng = np.random.default_rng(4)
    worst = max(e for _ in range(10) for _, e in stream_excess(reference, rng, memorised=0.0))
    assert worst < 0.1


def reference_share(reference: Reference) -> float:
    r = OutputRepeatDetector(reference).reference_ratio
    assert r is not None
    return r


def test_canned_answers_are_detected_within_twenty_minutes(reference: Reference) -> None:
    """From the moment half of the answers are canned: the excess passes 0.1 within 20 minutes
    (1,200 rows) in all 10 seeded streams."""
    rng = np.random.default_rng(5)
    for _ in range(10):
        excess = stream_excess(reference, rng, memorised=0.5, hours=2.0)
        first = min(t for t, e in excess if e > 0.1)
        assert 3600.0 < first <= 3600.0 + 1200.0


def test_outputs_sharing_a_slot_evict_each_other_in_row_order() -> None:
    # one slot: within a batch of different outputs the later row is the one remembered
    table = RepeatTable(size=1, horizon=100)
    a, b = np.uint64(11), np.uint64(22)
    assert table.repeats(np.array([a, b]), np.array([1, 2], dtype=np.uint64)).tolist() == [False, False]
    assert table.repeats(np.array([a]), np.array([3], dtype=np.uint64)).tolist() == [False]  # a was evicted by b
    assert table.repeats(np.array([a]), np.array([4], dtype=np.uint64)).tolist() == [True]  # a given to input 3 just before
    # a batch whose rows share a slot takes the sorting path: same eviction rule, row by row
    # (b evicts a before the first a of the batch comes: only the second a repeats)
    assert table.repeats(np.array([b, a, a]), np.array([5, 6, 7], dtype=np.uint64)).tolist() == [False, False, True]


def test_input_fingerprints_are_the_multilinear_hash_of_the_exact_bits_with_one_nan() -> None:
    """Fingerprints are kept in checkpointed tables, so their values must not change with how
    they are computed: each is the splitmix64 finaliser of the wrapping sum of the words (each
    with its high half folded into its low one) times fixed odd constants (written out here in
    Python integers). NaN payloads
    are one NaN; 0.0 and -0.0 are one value; infinities are values like any other."""
    from monitor.detectors.repetition import _MULTIPLIERS

    x = np.array([[1.0, np.nan, 3.0], [1.0, -np.nan, 3.0], [0.0, np.inf, -1.0], [-0.0, np.inf, -1.0], [1e308, 1e308, 2.0]])
    payload = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]  # another NaN
    x[1, 1] = payload
    fp = input_fingerprints(x)
    assert fp[0] == fp[1] and fp[2] == fp[3] and len(set(fp.tolist())) == 3
    mult = [int(m) for m in _MULTIPLIERS[3]]
    mask = (1 << 64) - 1

    def mix(h: int) -> int:
        h ^= h >> 30
        h = (h * 0xBF58476D1CE4E5B9) & mask
        h ^= h >> 27
        h = (h * 0x94D049BB133111EB) & mask
        return h ^ (h >> 31)

    canonical = (np.where(np.isnan(x), np.nan, x) + 0.0).view(np.uint64)
    for row, got in zip(canonical, fp.tolist()):
        h = sum((int(w) ^ (int(w) >> 32)) * m for w, m in zip(row.tolist(), mult)) & mask
        assert got == mix(h ^ 0x1A9) | 1
