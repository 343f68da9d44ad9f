"""Seeded synthetic query streams for the probing detector's tests.

One fixed "world": natural rows from a correlated Gaussian in 8 dimensions and a fixed linear
softmax model over 4 classes. Clients are built from it:

* benign: fresh natural rows, with exact retries, small variations and noisy resubmissions;
* probing: a random walk with tiny steps around one natural point (what decision-based and
  score-based attacks send: hundreds of near-identical queries);
* boundary: points bisected onto the decision boundary between two natural rows;
* OOD: uniform noise far outside the data.

Busy ``benign`` clients were flagged ``near_duplicates`` until session 34 (measured 2026-12-06, no
input shift): 40 clients at 5 queries/s for 1,560 s (the shift-onset test's stream with
``rates=(5, 5)``, ``everybody=False``, seed 2) left 15 of 40 flagged at the end and 37 of 40 at some
15-s scrape, none before its 1,621st query (a client's history of 1,000 distinct queries is full
after about 1,100); at 0.3-2 queries/s, 4 of 40 at the end (5 at some scrape).

It came from the stream's resubmissions, not from a small pool: every item is a fresh
:func:`natural` row, but each is sent 1 to 6 times with noise of 0.05 (3.5 copies on average), so
71% of the analysed queries have an earlier copy within the near-duplicate radius. A query's own
earlier copies (1.7 within ``tau`` on average) counted towards the ``k`` = 10 neighbours of the hit
test, and its neighbouring items came in clusters of copies as well: 2.8% of the analysed queries
were hits, against the reference's 1% and the count test's null of 2% (``null_slack`` x 1%).

The hit test now counts copies once (:func:`monitor.detectors.probing.neighbours.copy_aware_counts`:
the query's own copy cluster in full, every other cluster once): on the same streams 0 of 40 are
flagged at any scrape at either rate, and 0.05% of the analysed queries are hits (0.03% at
0.3-2 queries/s); fresh :func:`natural` rows were never flagged and are not
(tests/test_probing_busy_benign_s33f.py).
"""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.reference import Reference

D, K = 8, 4
_W = np.random.default_rng(99)
MIX = _W.normal(size=(D, D)) / np.sqrt(D) + np.eye(D)
SHIFT = _W.normal(size=D)
WEIGHTS = _W.normal(size=(D, K)) * 1.5


def natural(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, D)) @ MIX + SHIFT


def scores(x: np.ndarray) -> np.ndarray:
    logits = x @ WEIGHTS
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def reference(n: int = 1500, seed: int = 7) -> Reference:
    x = natural(np.random.default_rng(seed), n)
    return Reference.from_arrays(x, scores=scores(x))


def benign(rng: np.random.Generator, n: int, retry: float = 0.1, max_copies: int = 6, noise: float = 0.05) -> np.ndarray:
    """Natural rows; ``retry`` of requests repeat one of the last few exactly; items are
    resubmitted 1..``max_copies`` times with sensor noise (copies interleaved with other items).

    Past ~1,000 distinct queries per client, the default ``max_copies=6`` made clients
    ``near_duplicates`` suspects before the hit test counted copies once (see the module docstring)."""
    rows: list[np.ndarray] = []
    while len(rows) < n:
        items = natural(rng, 3)
        copies = [i for i in range(3) for _ in range(int(rng.integers(1, max_copies + 1)))]
        for j in rng.permutation(len(copies)).tolist():
            if rows and rng.random() < retry:
                rows.append(rows[-int(rng.integers(1, min(4, len(rows)) + 1))].copy())
            rows.append(items[copies[j]] + rng.normal(0.0, noise, D))
    return np.array(rows[:n])


def probing(rng: np.random.Generator, n: int, step: float = 0.02) -> np.ndarray:
    """A random walk with tiny steps around one natural point."""
    x0 = natural(rng, 1)[0]
    return x0 + np.cumsum(rng.normal(0.0, step, (n, D)), axis=0) * 0.3 + rng.normal(0.0, step, (n, D))


def boundary(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points bisected onto the boundary between pairs of natural rows predicted differently."""
    out = []
    while len(out) < n:
        a, b = natural(rng, 2)
        if scores(a[None])[0].argmax() == scores(b[None])[0].argmax():
            continue
        lo, hi = 0.0, 1.0
        ca = scores(a[None])[0].argmax()
        for _ in range(30):
            mid = (lo + hi) / 2
            if scores((a + mid * (b - a))[None])[0].argmax() == ca:
                lo = mid
            else:
                hi = mid
        out.append(a + lo * (b - a))
    return np.array(out)


def ood(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-15.0, 15.0, size=(n, D))


def interleave(streams: dict[str, np.ndarray], rng: np.random.Generator, t0: float = 1.7e9,
               rate_s: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge client streams in event time: (rows, clients, ts)."""
    xs, cs, ts = [], [], []
    for name, rows in streams.items():
        xs.append(rows)
        cs.append(np.full(len(rows), name, dtype=object))
        ts.append(t0 + rng.uniform(0, 30) + np.cumsum(rng.exponential(rate_s, len(rows))))
    x, c, t = np.concatenate(xs), np.concatenate(cs), np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    return x[order], c[order], t[order]


def timed_clients(rng: np.random.Generator, make, clients: int, rate: float, end: float,
                  prefix: str = "benign") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``clients`` clients each sending ``make(rng, n)``'s rows as a Poisson stream at ``rate``
    queries/s until ``end`` seconds, merged in event time: (rows, clients, ts)."""
    xs, cs, ts = [], [], []
    for i in range(clients):
        t = np.cumsum(rng.exponential(1.0 / rate, int(end * rate * 1.5)))
        t = t[t < end]
        xs.append(make(rng, len(t)))
        cs.append(np.full(len(t), f"{prefix}-{i}", dtype=object))
        ts.append(t)
    x, c, t = np.concatenate(xs), np.concatenate(cs), np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    return x[order], c[order], t[order]


def client_group(rng: np.random.Generator, make, names: list[str], rows: int, rate: float,
                 t0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clients ``names`` each sending ``make(rng, rows)``'s rows as a Poisson stream at ``rate``
    queries/s from ``t0``, merged in event time: (rows, clients, ts)."""
    xs, cs, ts = [], [], []
    for name in names:
        xs.append(make(rng, rows))
        cs.append(np.full(rows, name, dtype=object))
        ts.append(t0 + np.cumsum(rng.exponential(1.0 / rate, rows)))
    x, c, t = np.concatenate(xs), np.concatenate(cs), np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    return x[order], c[order], t[order]


def feed_in_time(det, x: np.ndarray, clients: np.ndarray, ts: np.ndarray, size: int = 2048) -> None:
    """Rows already in event-time order, in batches of ``size``."""
    for i in range(0, len(ts), size):
        part = slice(i, i + size)
        det.update(Batch.from_arrays(x[part], scores(x[part]), ts=ts[part], client=clients[part]))


def batches(x: np.ndarray, clients: np.ndarray, ts: np.ndarray, size: int = 128) -> list[Batch]:
    return [Batch.from_arrays(x[i:i + size], scores(x[i:i + size]), ts=ts[i:i + size], client=clients[i:i + size])
            for i in range(0, len(ts), size)]


def feed(det, streams: dict[str, np.ndarray], seed: int = 0, size: int = 128, flush: bool = True) -> None:
    rng = np.random.default_rng(seed)
    for b in batches(*interleave(streams, rng), size=size):
        det.update(b)
    if flush:
        det.flush()
