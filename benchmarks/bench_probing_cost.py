"""Cost and memory of the probing detector at 64 features.

1. **Cost per query at a 1,000-query history per client** (target: at most 20 us): ``clients``
   clients are filled to their full history first, then a further stream interleaving all of them
   is timed around ``update()``, in worker-sized batches. Printed with the ratio to a baseline
   measured in the same run: appending each row to a per-client Python list (the least any
   stateful per-client detector must do).
2. **Memory bounded by the caps** (10,000 clients x history): 10,000 clients are filled, then
   2,000 more arrive; the LRU stays at 10,000 (evictions counted), the state's array memory stays
   below :attr:`ProbingDetector.memory_bound_bytes`, and tracemalloc agrees with the accounting.
   A smaller table filled to its full history checks that memory stops growing at the cap.
3. **The hash family's lookup against the history** (``near_duplicates: hash``): clients filled to
   a full history of 100, 1,000 and 10,000 queries, then a further stream timed; the CPU spent in
   the hash step (finding, for each new query, the stored queries that share fingerprints, and
   keeping the per-client index up to date) per query, with the inverted index
   (``hash_lookup: index``, forced at every ring size) and with the brute-force scan it replaced
   (``hash_lookup: scan``), on natural traffic and on near-duplicate probing walks; each with its
   ratio to the 100-query case of the same run. The index's cost must not grow with the history.

Run: ``python benchmarks/bench_probing_cost.py`` (about two minutes on 2 cores; ``--quick`` for less).
BLAS is limited to one thread, as a background worker beside a model server should be.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.batch import Batch  # noqa: E402
from monitor.detectors.probing import ProbingDetector  # noqa: E402
from monitor.detectors.probing.fpindex import FingerprintIndex  # noqa: E402
from monitor.reference import Reference  # noqa: E402

D, K = 64, 10


_MODEL = np.random.default_rng(99)
_MIX = _MODEL.normal(size=(D, D)) / np.sqrt(D)
_SHIFT = _MODEL.normal(size=D)
_W = {"w": _MODEL.normal(size=(D, K))}


def natural(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fresh rows of one correlated Gaussian distribution (the traffic and the reference alike)."""
    return rng.normal(size=(n, D)) @ _MIX + _SHIFT


def reference(rng: np.random.Generator, n: int = 2000) -> Reference:
    """Natural rows with softmax outputs of a fixed random linear model."""
    x = natural(rng, n)
    return Reference.from_arrays(x, scores=_scores(x, rng))


def _scores(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    w = _W["w"]
    logits = x @ w / 4
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def stream(ref: Reference, rng: np.random.Generator, clients: np.ndarray, n: int, t0: float, spread: bool = False) -> list[Batch]:
    """Natural rows from the given clients, 256 per batch (``spread``: every client equally often)."""
    x = natural(rng, n)
    sc = _scores(x, rng)
    who = np.resize(clients, n)[rng.permutation(n)] if spread else clients[rng.integers(len(clients), size=n)]
    ts = t0 + np.arange(n) * 1e-3
    return [Batch.from_arrays(x[i:i + 256], sc[i:i + 256], ts=ts[i:i + 256], client=who[i:i + 256]) for i in range(0, n, 256)]


def timed(det: ProbingDetector, batches: list[Batch]) -> float:
    t0 = time.process_time()
    for b in batches:
        det.update(b)
    return time.process_time() - t0


def baseline(batches: list[Batch]) -> float:
    """Append each row to its client's list (the floor of any per-client state)."""
    state: dict[object, list[np.ndarray]] = {}
    t0 = time.process_time()
    for b in batches:
        for c, row in zip(b.client.tolist(), b.numeric):
            state.setdefault(c, []).append(row)
    return time.process_time() - t0


LINES: list[str] = []


def say(line: str) -> None:
    print(line)
    LINES.append(line)


def cost(args: argparse.Namespace) -> bool:
    rng = np.random.default_rng(0)
    ref = reference(rng)
    det = ProbingDetector(ref, history=1000, max_clients=10_000, client_id_salt="bench", seed=0)
    clients = np.array([f"client-{i}" for i in range(args.clients)], dtype=object)
    fill = stream(ref, rng, clients, args.clients * 1000 + args.clients * 50, 0.0)
    t_fill = timed(det, fill)
    det.flush()
    full = sum(1 for r in det._rings if r is not None and r.filled == det.history)  # noqa: SLF001 - benchmark introspection
    batches = stream(ref, rng, clients, args.measure, 1e6)
    n = sum(len(b) for b in batches)
    state = det.state_dict()
    runs = []
    for _ in range(args.repeats):  # the same work from the same state; contention only ever adds time
        copy = ProbingDetector(ref, history=1000, max_clients=10_000, client_id_salt="bench", seed=0)
        copy.load_state_dict(state)
        runs.append(timed(copy, batches))
    secs = min(runs)
    base = baseline(batches)
    us = 1e6 * secs / n
    say(f"cost: {args.clients} clients, {full} with a full 1,000-query history; fill {1e6 * t_fill / sum(len(b) for b in fill):.1f} us/query")
    say(f"cost: {us:.1f} us of CPU per query at 64 features over {n} queries in batches of 256, least of {len(runs)} runs "
          f"(baseline per-client list append: {1e6 * base / n:.2f} us, ratio {secs / base:.1f}x); target <= 20 us: "
          f"{'met' if us <= 20 else 'NOT met'}")
    return us <= 20


def memory(args: argparse.Namespace) -> bool:
    rng = np.random.default_rng(1)
    ref = reference(rng)
    ok = True
    # (a) 10,000 clients, then 2,000 more: the LRU and the memory stay bounded
    det = ProbingDetector(ref, history=1000, max_clients=10_000, client_id_salt="bench", seed=0, top_k=20)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    clients = np.array([f"c{i}" for i in range(10_000)], dtype=object)
    for b in stream(ref, rng, clients, 10_000 * args.per_client, 0.0, spread=True):
        det.update(b)
    more = np.array([f"new{i}" for i in range(2_000)], dtype=object)
    for b in stream(ref, rng, more, 2_000 * args.per_client, 1e6, spread=True):
        det.update(b)
    det.flush()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    nbytes, bound = det.state_nbytes, det.memory_bound_bytes
    say(f"memory: {det.clients_tracked} clients tracked (cap 10,000), {det.evictions} evicted; state arrays "
          f"{nbytes / 2**20:.1f} MiB, all allocations still held {traced / 2**20:.1f} MiB "
          f"({(traced - nbytes) / 10_000:.0f} bytes of Python objects per client); bound at full history "
          f"{bound / 2**30:.2f} GiB ({det.bytes_per_query} bytes per stored query)")
    ok &= det.clients_tracked == 10_000 and det.evictions == 2_000 and nbytes <= traced <= bound
    # (b) a table filled past its full history: memory stops at the cap
    small = ProbingDetector(ref, history=1000, max_clients=50, client_id_salt="bench", seed=0)
    cl = np.array([f"s{i}" for i in range(50)], dtype=object)
    sizes, rings = [], []
    for rep in range(3):
        for b in stream(ref, rng, cl, 50 * 700, 2e6 + rep * 1e5, spread=True):
            small.update(b)
        small.flush()
        sizes.append(small.state_nbytes)
        rings.append(small._ring_bytes)
    say(f"memory: 50 clients (history 1,000) after 700, 1,400, 2,100 queries each: "
          f"{[round(s / 2**20, 2) for s in sizes]} MiB of arrays (bound {small.memory_bound_bytes / 2**20:.2f} MiB), "
          f"of which the clients' rings {[round(r / 2**20, 2) for r in rings]} MiB")
    # the rings stop at the cap; the rest moves a little with event time (population samples waiting
    # for their period to close, the current rates' bins), always within the bound
    ok &= rings[1] == rings[2] and max(sizes) <= small.memory_bound_bytes
    say(f"memory: bounded by the caps: {'yes' if ok else 'NO'}")
    return ok


def walks(rng: np.random.Generator, n: int, step: float = 0.02) -> np.ndarray:
    """A probing walk: tiny random steps around one natural point (near-duplicates all along)."""
    x0 = natural(rng, 1)[0]
    return x0 + np.cumsum(rng.normal(0.0, step, (n, D)), axis=0) * 0.3 + rng.normal(0.0, step, (n, D))


def interleaved(streams: dict[str, np.ndarray], rng: np.random.Generator, t0: float) -> list[Batch]:
    """Clients' streams interleaved at random (each client's rows in order), 256 rows per batch."""
    who = np.concatenate([np.full(len(x), c, dtype=object) for c, x in streams.items()])[rng.permutation(sum(map(len, streams.values())))]
    x = np.empty((len(who), D))
    for c, rows in streams.items():
        x[who == c] = rows
    ts = t0 + np.arange(len(who)) * 1e-3
    sc = _scores(x, rng)
    return [Batch.from_arrays(x[i:i + 256], sc[i:i + 256], ts=ts[i:i + 256], client=who[i:i + 256]) for i in range(0, len(who), 256)]


class HashClock:
    """CPU time spent in the hash step of one detector: the fingerprint lookup (``_hash_close``)
    and the index upkeep (built when a ring passes ``hash_scan_up_to``, grown, appended to)."""

    def __init__(self, det: ProbingDetector) -> None:
        self.seconds = 0.0
        for name in ("_hash_close", "_index_of"):
            setattr(det, name, self._timed(getattr(det, name)))

    def _timed(self, fn):  # noqa: ANN001, ANN202 - a thin timing wrapper
        def run(*args):  # noqa: ANN002, ANN202
            t0 = time.process_time()
            try:
                return fn(*args)
            finally:
                self.seconds += time.process_time() - t0
        return run

    def __enter__(self) -> "HashClock":
        self._saved = FingerprintIndex.insert, FingerprintIndex.reserve
        FingerprintIndex.insert = self._timed(FingerprintIndex.insert)  # type: ignore[method-assign]
        FingerprintIndex.reserve = self._timed(FingerprintIndex.reserve)  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        FingerprintIndex.insert, FingerprintIndex.reserve = self._saved  # type: ignore[method-assign]


HISTORIES = (100, 1000, 10_000)
TABLE: list[str] = []


def hash_history(args: argparse.Namespace) -> bool:
    rng = np.random.default_rng(2)
    ref = reference(rng)
    kinds = {"natural": natural, "near-duplicates": walks}
    cols = [(lookup, kind) for lookup in ("index", "scan") for kind in kinds]
    cost: dict[tuple[int, str, str], float] = {}
    total: dict[int, float] = {}
    for h in HISTORIES:
        for kind, gen in kinds.items():
            streams = {f"{kind}-{i}": gen(rng, h + 60 + args.hash_measure) for i in range(args.hash_clients)}
            fill = interleaved({c: x[: h + 60] for c, x in streams.items()}, rng, 0.0)
            measured = interleaved({c: x[h + 60:] for c, x in streams.items()}, rng, 1e6)
            n = sum(len(b) for b in measured)

            def detector(lookup: str) -> ProbingDetector:
                det = ProbingDetector(ref, near_duplicates="hash", hash_lookup=lookup, history=h, max_clients=64,
                                      client_id_salt="bench", seed=0)
                det.hash_scan_up_to = 0  # the index at every ring size, to see how its own cost scales
                return det

            filler = detector("index")
            for b in fill:
                filler.update(b)
            filler.flush()
            state = filler.state_dict()
            for lookup in ("index", "scan"):
                hash_runs, all_runs = [], []
                for _ in range(args.repeats):  # the same work from the same state; contention only ever adds time
                    det = detector(lookup)
                    det.load_state_dict(state)
                    with HashClock(det) as clock:
                        all_runs.append(timed(det, measured))
                        t0 = time.process_time()
                        det.flush()
                        all_runs[-1] += time.process_time() - t0
                    hash_runs.append(clock.seconds)
                cost[h, lookup, kind] = 1e6 * min(hash_runs) / n
                if lookup == "index" and kind == "natural":
                    total[h] = 1e6 * min(all_runs) / n
    TABLE.extend([
        "| history per client | " + " | ".join(f"{lookup}, {kind}" for lookup, kind in cols) + " | whole `update()` per query, index, natural |",
        "|---|" + "---|" * (len(cols) + 1),
    ])
    for h in HISTORIES:
        cells = [f"{cost[h, lookup, kind]:.1f} us ({cost[h, lookup, kind] / cost[HISTORIES[0], lookup, kind]:.1f}x)"
                 for lookup, kind in cols]
        TABLE.append(f"| {h:,} | " + " | ".join(cells) + f" | {total[h]:.1f} us ({total[h] / total[HISTORIES[0]]:.1f}x) |")
    for line in TABLE:
        print(line)
    worst = max(cost[HISTORIES[-1], "index", kind] / cost[HISTORIES[0], "index", kind] for kind in kinds)
    say(f"hash family: CPU of the hash step per query at histories {', '.join(f'{h:,}' for h in HISTORIES)} in the table "
        f"below ({args.hash_clients} clients per traffic kind, {args.hash_measure} timed queries each, least of "
        f"{args.repeats} runs); index at 10,000 vs 100: {worst:.1f}x at most (scan: "
        f"{cost[HISTORIES[-1], 'scan', 'natural'] / cost[HISTORIES[0], 'scan', 'natural']:.0f}x); "
        f"flat with the history (at most 2x): {'yes' if worst <= 2.0 else 'NO'}")
    bound = ProbingDetector(ref, near_duplicates="hash", history=1000, max_clients=10_000, client_id_salt="bench", seed=0)
    plain = ProbingDetector(ref, near_duplicates="hash", hash_lookup="scan", history=1000, max_clients=10_000,
                            client_id_salt="bench", seed=0)
    say(f"hash family memory: {bound.bytes_per_query} bytes per stored query at 64 features with the index "
        f"({bound.bytes_per_query - plain.bytes_per_query} of them the index: links and bucket heads), bound at full "
        f"history for 10,000 clients x 1,000 queries {bound.memory_bound_bytes / 2**30:.2f} GiB "
        f"(scan: {plain.memory_bound_bytes / 2**30:.2f} GiB)")
    return worst <= 2.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=100, help="clients filled to a full history for the cost run")
    p.add_argument("--measure", type=int, default=50_000, help="queries timed after the fill")
    p.add_argument("--per-client", type=int, default=5, help="queries per client in the memory run")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of the measured stream (the least is reported)")
    p.add_argument("--hash-clients", type=int, default=6, help="clients per traffic kind in the hash-history run")
    p.add_argument("--hash-measure", type=int, default=600, help="queries per client timed in the hash-history run")
    p.add_argument("--only-hash", action="store_true", help="run the hash-history section only")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "probing_cost.md"))
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.measure, args.per_client, args.repeats = 30, 20_000, 5, 1
        args.hash_clients, args.hash_measure = 3, 300
    ok = True
    if not args.only_hash:
        ok = cost(args)
        ok = memory(args) and ok
    ok = hash_history(args) and ok
    if not args.quick and not args.only_hash:
        load = os.getloadavg()[0]
        busy = (" The machine was busy (shared with other jobs): absolute figures are inflated; the ratios "
                "within the run are the figures to read.") if load > 0.75 * (os.cpu_count() or 1) else ""
        Path(args.out).write_text(
            "# Probing detector: cost and memory\n\nGenerated by `python benchmarks/bench_probing_cost.py` "
            f"(one BLAS thread, CPU time; load average {load:.1f} on {os.cpu_count()} cores during the run).{busy}\n\n"
            + "\n".join(f"- {line}" for line in LINES) + "\n\n"
            "CPU of the hash family's hash step per query (ratio to the 100-query history in the same run):\n\n"
            + "\n".join(TABLE) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
