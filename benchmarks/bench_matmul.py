"""Cost of ``monitor.stats.matmul.matmul`` (products kept on the calling thread) against
``np.matmul`` run in the same process, and of profiling a wide reference.

``matmul`` cuts products into blocks OpenBLAS runs on one thread (see its module docstring). Each
shape below is timed as CPU seconds per call (every thread of the process counted, so BLAS threads
woken by a baseline show in its figure) and compared with, in the same run:

* ``np.matmul`` as the process has it (OpenBLAS's threads: on a machine whose other cores are
  busy they wait on each other, and their CPU is the cost the monitor must not add beside a model);
* ``np.matmul`` with BLAS held to one thread (``threadpoolctl``, in this process only): what one
  thread of the same library does, the fair floor for ``matmul``.

``CPU / wall`` of ``matmul`` stays near 1 when it ran on the calling thread only. ``max rel diff``
is the largest difference from ``np.matmul`` relative to the largest element.

The shapes: the scatter ``z.T @ z`` of a profile's PCA (50,000 x 300 reference rows, and
20,000 x 64), and the worker's products (a drained batch of 8,192 rows times a 32 x 20 PCA basis;
a group of 256 probing sketches of width 16 against 1,000 stored ones). Then
``Profile.from_reference`` of a 50,000 x 300 reference (the entry point a Reference is profiled
through: its PCA and fold PCAs take four scatter products over the rows).

Run: ``.venv/bin/python benchmarks/bench_matmul.py [--quick] [--no-profile]``. Before/after
figures of the split-``k`` change are in ``benchmarks/results/matmul.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine, table  # noqa: E402

from monitor.stats.matmul import matmul  # noqa: E402

#: OpenBLAS's threads spin this long after a threaded product before sleeping; waited out before
#: every timing, so that one measurement's threads do not bill the next.
SETTLE_S = 0.5


@contextlib.contextmanager
def one_blas_thread() -> Iterator[bool]:
    """BLAS held to one thread in this process while inside; yields False (and holds nothing)
    without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(1, "blas"):
        yield True


def cost(fn: Callable[[], object], budget_s: float) -> tuple[float, float]:
    """Least over three rounds of the CPU seconds per call, and that round's CPU / wall."""
    time.sleep(SETTLE_S)
    best = (float("inf"), 0.0)
    for _ in range(3):
        calls, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
        while True:
            fn()
            calls += 1
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if wall >= budget_s / 3:
                break
        if cpu / calls < best[0]:
            best = (cpu / calls, cpu / wall)
    return best


def shapes() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50_000, 300))
    z64 = rng.normal(size=(20_000, 64))
    return [
        ("scatter z.T @ z, z 50,000 x 300", z.T, z),
        ("scatter z.T @ z, z 20,000 x 64", z64.T, z64),
        ("worker: 8,192 x 32 @ 32 x 20", rng.normal(size=(8192, 32)), rng.normal(size=(32, 20))),
        ("worker: 256 x 16 @ 16 x 1,000", rng.normal(size=(256, 16)), rng.normal(size=(16, 1000))),
    ]


def products(budget_s: float) -> list[tuple[str, ...]]:
    rows = []
    for name, a, b in shapes():
        ours, ratio = cost(lambda: matmul(a, b), budget_s)
        threaded, _ = cost(lambda: np.matmul(a, b), budget_s)
        with one_blas_thread() as held:
            single, _ = cost(lambda: np.matmul(a, b), budget_s) if held else (float("nan"), 0.0)
        want = np.matmul(a, b)
        diff = float(np.abs(matmul(a, b) - want).max() / max(np.abs(want).max(), 1e-300))
        rows.append((name, f"{ours * 1e3:.3f}", f"{ratio:.2f}", f"{threaded * 1e3:.3f}", f"{ours / threaded:.2f}",
                     f"{single * 1e3:.3f}", f"{ours / single:.2f}", f"{diff:.1e}"))
    return rows


def profile_build(n_rows: int, n_features: int) -> tuple[float, float]:
    """CPU seconds and CPU / wall of ``Profile.from_reference`` on ``n_rows x n_features``
    correlated rows (a 20-dimensional signal plus noise: a PCA keeps a few dozen directions)."""
    from monitor.profile import Profile
    from monitor.reference import Reference

    rng = np.random.default_rng(1)
    x = rng.normal(size=(n_rows, 20)) @ rng.normal(size=(20, n_features)) + 0.3 * rng.normal(size=(n_rows, n_features))
    ref = Reference.from_arrays(x, numeric_names=[f"x{i}" for i in range(n_features)])
    time.sleep(SETTLE_S)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    prof = Profile.from_reference(ref)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert prof.pca is not None
    return cpu, cpu / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter timing rounds")
    ap.add_argument("--no-profile", action="store_true", help="products only")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    header = ("product", "matmul ms (CPU)", "matmul CPU / wall", "np.matmul ms", "matmul / np.matmul",
              "np.matmul 1 thread ms", "matmul / 1 thread", "max rel diff")
    print(table(products(1.5 if args.quick else 6.0), header))
    if not args.no_profile:
        cpu, ratio = profile_build(50_000, 300)
        print(f"\nProfile.from_reference, 50,000 x 300 reference: {cpu:.2f} s of CPU (CPU / wall {ratio:.2f})")


if __name__ == "__main__":
    main()
