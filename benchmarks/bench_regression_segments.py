"""CPU cost of the regression detector's update path with and without ``by_segment``.

Slicing by segment adds a slot lookup and a second window update per batch; with the option off
the update path must cost what it did before the option existed. Each variant runs in a child
process (so that a variant can import ``monitor`` from another checkout: ``--baseline-tree`` a
``git worktree`` of an older commit), the variants alternate, and each figure is the best of
``--reps`` runs of CPU time (``time.process_time``) per event for the predictions and their labels
(labels joined to every prediction, 4 segments, a (value, lower, upper) interval per row).

Run: ``python benchmarks/bench_regression_segments.py [--baseline-tree /tmp/old] [--batch 32]``.
Prints one line per variant: ns/event and the ratio to ``off`` measured in the same run.
``--instructions`` counts instructions instead (valgrind's callgrind, deterministic whatever the
machine's load): each variant runs twice, with ``--batches`` and twice as many, and the
difference divided by the added events is the update path's instructions per event (start-up
and imports cancel out). A few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import numpy as np
from monitor.batch import Batch, LabeledBatch
from monitor.detectors.regression import RegressionDetector
on, n_batches, batch = sys.argv[1] == "on", int(sys.argv[2]), int(sys.argv[3])
det = RegressionDetector(window_s=3600.0, interval_level=0.9, **({"by_segment": True} if on else {}))
rng = np.random.default_rng(0)
batches = []
for i in range(64):
    ts = 1.7e9 + i * 1.0 + np.arange(batch) * 1e-3
    pred = rng.normal(size=batch)
    seg = np.array(["eu", "us", "apac", "latam"], dtype=object)[rng.integers(0, 4, batch)]
    iv = np.column_stack([pred - 1.6, pred + 1.6])
    b = Batch.from_arrays(np.zeros((batch, 1)), pred, ts=ts, segment=seg)
    b.intervals = iv
    lab = LabeledBatch(ts=ts, label_ts=ts + 5.0, label=pred + rng.normal(size=batch), segment=seg, scores=pred, intervals=iv)
    batches.append((b, lab))
import gc
gc.collect()
gc.disable()  # collections at run-length-dependent moments made the callgrind difference swing by 10%
t0 = time.process_time()
for k in range(n_batches):
    b, lab = batches[k % 64]
    det.update(b)
    det.update_labels(lab)
print(json.dumps((time.process_time() - t0) / (n_batches * batch) * 1e9))
"""


def run(tree: Path, on: bool, n_batches: int, batch: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, "on" if on else "off", str(n_batches), str(batch)],
                         env=env, cwd=str(tree), capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def instructions(tree: Path, on: bool, n_batches: int, batch: int) -> float:
    """Instructions per event of the update path under callgrind (two run lengths, differenced)."""
    counts = []
    for n in (n_batches, 2 * n_batches):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", CHILD,
                            "on" if on else "off", str(n), str(batch)],
                           env={**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}, cwd=str(tree), capture_output=True, text=True, check=True)
            total = next(line for line in out.read_text().splitlines() if line.startswith("summary:") or line.startswith("totals:"))
            counts.append(float(total.split()[1]))
    return (counts[1] - counts[0]) / (n_batches * batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-tree", type=Path, help="checkout of an older commit: its update path, option off")
    ap.add_argument("--batch", type=int, default=32, help="rows per batch (default 32)")
    ap.add_argument("--batches", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--instructions", action="store_true", help="callgrind instructions per event (deterministic)")
    args = ap.parse_args()
    variants: list[tuple[str, Path, bool]] = [("off", ROOT, False), ("on", ROOT, True)]
    if args.baseline_tree is not None:
        variants.insert(0, ("baseline (older tree)", args.baseline_tree.resolve(), False))
    if args.instructions:
        n = min(args.batches, 2000)
        counted = {name: instructions(tree, on, n, args.batch) for name, tree, on in variants}
        for name, _, _ in variants:
            print(f"{name:24s} {counted[name]:10.0f} instructions/event  ratio to off {counted[name] / counted['off']:.4f}")
        return
    best = {name: float("inf") for name, _, _ in variants}
    for _ in range(args.reps):
        for name, tree, on in variants:
            best[name] = min(best[name], run(tree, on, args.batches, args.batch))
    for name, _, _ in variants:
        print(f"{name:24s} {best[name]:8.1f} ns/event  ratio to off {best[name] / best['off']:.3f}")


if __name__ == "__main__":
    main()
