"""What the Monte-Carlo chi-squared p-value adds to one recomputation of prediction_drift's figures.

A sparse table (an expected count under 10) whose asymptotic p-value is under 0.05 gets a
Monte-Carlo p-value conditional on its margins (:func:`monitor.stats.univariate.chi2_test`).
This script times one recomputation (a rule tick's: ``on_tick`` then ``export``) of the detector
as shipped ("new") and of the same detector with no draws ("old": the asymptotic p-value
everywhere), alternating in one process, CPU time (``time.process_time``), and prints new, old
and new / old for:

* the whole window, 50 Zipf classes, 200 rows against 2,000 reference rows, unshifted (the mean
  over fresh windows: most get no draws, a few with small p-values get thousands); shifted among
  frequent classes (the first and the third trade places: those classes reject on their own, no
  draws, in most windows); shifted among rare classes only (the classes after the fifth in reverse order: no
  drawn table is as extreme, so all 9,999 are drawn, the worst case of one test);
* ``by_segment`` with the default ``segment_cap`` 20, 21 segments of 200 rows each (20 learned
  and ``other``), unshifted, all shifted among frequent classes, and all shifted among rare
  classes: the worst case of one refresh, 21 tests of 26,249 draws (the resolution for their
  Bonferroni level) beside the whole window's (4,200 rows: no draws);
* 10 classes, 1,000 rows (every expected count above 10), shifted: no draws, the same cost.

Run: ``python benchmarks/prediction_drift_pvalue_cost.py`` (about a minute; ``--write`` also writes
``benchmarks/results/prediction_drift_pvalue_cost.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.batch import Batch  # noqa: E402
from monitor.detectors.prediction_drift import PredictionDriftDetector  # noqa: E402
from monitor.reference import Reference  # noqa: E402
from monitor.store import MetricStore  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "prediction_drift_pvalue_cost.md"
T0 = 1_700_000_000.0


def zipf(k: int) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1)
    return p / p.sum()


def head_swapped(k: int) -> np.ndarray:
    """Zipf with the most frequent class and the third trading places."""
    p = zipf(k)
    p[[0, 2]] = p[[2, 0]]
    return p


def tail_reversed(k: int) -> np.ndarray:
    """Zipf with the classes after the fifth in reverse order (rare classes only)."""
    p = zipf(k)
    p[5:] = p[5:][::-1]
    return p


def rows(rng: np.random.Generator, k: int, n: int, prior: np.ndarray) -> np.ndarray:
    probs = np.full((n, k), 0.2 / (k - 1))
    probs[np.arange(n), rng.choice(k, size=n, p=prior)] = 0.8
    return probs


def reference(k: int, n: int, seed: int) -> Reference:
    return Reference.from_arrays(np.zeros((n, 1)), scores=rows(np.random.default_rng(seed), k, n, zipf(k)))


def filled(ref: Reference, rng: np.random.Generator, k: int, n: int, prior: np.ndarray, segments: int) -> PredictionDriftDetector:
    """A detector (``by_segment`` when ``segments``) whose window holds ``n`` rows (per segment)."""
    det = PredictionDriftDetector(ref, window_s=1e6, by_segment=segments > 0, segment_cap=max(segments - 1, 1))
    total = n * max(segments, 1)
    seg = np.repeat(np.array([f"s{i}" for i in range(max(segments, 1))], dtype=object), n) if segments else None
    det.update(Batch.from_arrays(np.zeros((total, 1)), rows(rng, k, total, prior), ts=T0 + np.arange(total) * 0.01, segment=seg))
    return det


def cpu(det: PredictionDriftDetector, draws: bool) -> float:
    """CPU seconds of one recomputation, with the Monte-Carlo draws or without (the old path)."""
    if not draws:
        det.draws = lambda tests: 0  # type: ignore[method-assign]
    else:
        det.__dict__.pop("draws", None)
    det.on_tick(0.0)
    det._memo.clear()  # as if the window had new rows (an unchanged one is not drawn again)
    store = MetricStore("m")
    c0 = time.process_time()
    det.export(store)
    return time.process_time() - c0


def measure(make: Callable[[np.random.Generator], PredictionDriftDetector], windows: int, seed: int) -> tuple[float, float]:
    """Mean CPU of one recomputation, new and old, over ``windows`` fresh windows (each timed both
    ways, alternating which goes first)."""
    rng = np.random.default_rng(seed)
    new, old = [], []
    for i in range(windows):
        det = make(rng)
        cpu(det, True)  # warm: the first export also builds the store's series
        pair = [(True, new), (False, old)]
        for draws, out in (pair if i % 2 else pair[::-1]):
            out.append(cpu(det, draws))
    return float(np.mean(new)), float(np.mean(old))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="also write benchmarks/results/prediction_drift_pvalue_cost.md")
    args = ap.parse_args()
    start = time.monotonic()
    ref50, ref10 = reference(50, 2000, 1), reference(10, 2000, 2)
    cases = [
        ("whole window, 50 classes, 200 rows, unshifted", lambda r: filled(ref50, r, 50, 200, zipf(50), 0), 400),
        ("whole window, 50 classes, 200 rows, frequent classes shifted", lambda r: filled(ref50, r, 50, 200, head_swapped(50), 0), 20),
        ("whole window, 50 classes, 200 rows, rare classes shifted", lambda r: filled(ref50, r, 50, 200, tail_reversed(50), 0), 20),
        ("21 segments, 50 classes, 200 rows each, unshifted", lambda r: filled(ref50, r, 50, 200, zipf(50), 21), 40),
        ("21 segments, 50 classes, 200 rows each, frequent classes shifted", lambda r: filled(ref50, r, 50, 200, head_swapped(50), 21), 10),
        ("21 segments, 50 classes, 200 rows each, rare classes shifted", lambda r: filled(ref50, r, 50, 200, tail_reversed(50), 21), 3),
        ("whole window, 10 classes, 1,000 rows, shifted", lambda r: filled(ref10, r, 10, 1000, head_swapped(10), 0), 100),
    ]
    lines = ["| recomputation | new (ms CPU) | old (ms CPU) | new / old |", "|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for i, (name, make, windows) in enumerate(cases):
        new, old = measure(make, windows, seed=10 + i)
        lines.append(f"| {name} (mean of {windows}) | {new * 1e3:.3f} | {old * 1e3:.3f} | {new / old:.1f} |")
        print(lines[-1], flush=True)
    if args.write:
        RESULTS.write_text(
            "# Cost of the Monte-Carlo chi-squared p-value in prediction_drift\n\n"
            "`python benchmarks/prediction_drift_pvalue_cost.py --write`: one recomputation of the detector's figures "
            "(a rule tick's), with the Monte-Carlo p-value for sparse tables (new) and with the asymptotic one "
            "everywhere (old), alternating in one process; CPU time, which a shared machine still moves. Reference "
            "2,000 rows. The rows shifted among rare classes are the worst case: no drawn table is as extreme, so "
            "every draw is made (9,999 for the whole window, 26,249 for each of 21 segments); a shift among frequent "
            "classes is mostly rejected by those classes alone, without draws (at 200 rows only the few most frequent "
            "classes have expected counts of 10; the rest of those windows are drawn).\n\n" + "\n".join(lines)
            + f"\n\n_Run time {time.monotonic() - start:.0f} s; load average at the end {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores._\n")


if __name__ == "__main__":
    main()
