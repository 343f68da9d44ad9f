"""What the segments detector's calibration-error p-values cost when every segment is miscalibrated.

Each segment's p-value (:func:`monitor.stats.calibration.debiased_l2_pvalue`) is drawn finely
enough for ModelSegmentCalibrationErrorHigh's Bonferroni level: 2,624 draws at 21 segments tracked,
24,999 at 200. A calibrated segment stops after a few dozen draws; a miscalibrated one used to make
them all whenever its window slid. Since Chernoff's bound stops the draws of a window far in the
tail (after 992 draws, where 4,000 or more remain), this benchmark times one export of a freshly
filled segments detector (every figure, every p-value drawn anew, as after a slide) with the bound
and without it (``_BOUND_WORTH`` set out of reach), alternating in the same process, and prints
the ratio: 500 labels per segment, a 10-class model (confidence 0.1 + 0.9 Beta(20, 1.5)), right
20 points less often than confident (every segment far in the tail) or calibrated.

Run: ``python benchmarks/segment_calibration_pvalue_cost.py [--reps 3] [--write]`` (a minute or two).
CPU time of the whole export; read the ratio, not the milliseconds, on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.batch import LabeledBatch  # noqa: E402
from monitor.detectors.segments import SegmentDetector  # noqa: E402
from monitor.stats import calibration as cal  # noqa: E402
from monitor.store import MetricStore  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "segment_calibration_pvalue_cost.md"
CLASSES, LABELS = 10, 500


def labelled(rng: np.random.Generator, segments: int, gap: float) -> LabeledBatch:
    """``LABELS`` labelled rows per segment: the top class's probability ``conf``, the rest spread
    evenly; the label is the predicted class with probability ``conf - gap``, else another."""
    n = segments * LABELS
    conf = 0.1 + 0.9 * rng.beta(20.0, 1.5, n)
    scores = np.repeat(((1.0 - conf) / (CLASSES - 1))[:, None], CLASSES, axis=1)
    predicted = rng.integers(0, CLASSES, n)
    scores[np.arange(n), predicted] = conf
    right = rng.random(n) < np.clip(conf - gap, 0.0, 1.0)
    label = np.where(right, predicted, (predicted + rng.integers(1, CLASSES, n)) % CLASSES)
    ts = np.arange(n) * 0.001
    segment = np.array([f"s{i % segments}" for i in range(n)], dtype=object)
    return LabeledBatch(ts=ts, label_ts=ts + 1.0, label=label, segment=segment, scores=scores, predicted=predicted)


def export_cpu(batch: LabeledBatch, segments: int, bound: bool) -> float:
    """CPU seconds of the first export of a detector holding ``batch`` (its p-values all drawn)."""
    saved = cal._BOUND_WORTH
    cal._BOUND_WORTH = saved if bound else 10**12
    try:
        det = SegmentDetector(window_s=1e6, segment_cap=segments - 1, seed=0)
        det.update_labels(batch)
        start = time.process_time()
        det.export(MetricStore("m"))
        return time.process_time() - start
    finally:
        cal._BOUND_WORTH = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="alternating runs of each variant (best kept)")
    parser.add_argument("--write", action="store_true", help=f"write the table to {RESULTS.relative_to(RESULTS.parents[2])}")
    args = parser.parse_args()
    lines = ["| segments tracked | draws per p-value | segments' gap | export without the bound, ms CPU "
             "| with it, ms CPU | ratio |", "|---|---|---|---|---|---|"]
    for segments in (21, 50, 200):
        for gap in (0.2, 0.0):
            batch = labelled(np.random.default_rng(segments), segments, gap)
            best = {True: np.inf, False: np.inf}
            for _ in range(args.reps):
                for bound in (False, True):
                    best[bound] = min(best[bound], export_cpu(batch, segments, bound))
            draws = SegmentDetector(window_s=1e6, segment_cap=segments - 1).draws(segments)
            lines.append(f"| {segments} | {draws:,} | {gap:.2f} | {best[False] * 1e3:.1f} | {best[True] * 1e3:.1f} "
                         f"| {best[True] / best[False]:.2f} |")
            print(lines[-1], flush=True)
    text = "\n".join(["# Segments' calibration p-values: the cost of an export with every p-value drawn", "",
                      "`benchmarks/segment_calibration_pvalue_cost.py` (see its docstring): best of "
                      f"{args.reps} alternating runs, {LABELS} labels per segment, {CLASSES} classes.", ""] + lines) + "\n"
    print(text)
    if args.write:
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
