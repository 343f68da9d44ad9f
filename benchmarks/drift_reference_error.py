"""False alarms of ``input_drift`` on production drawn fresh from the reference's population.

Why: ``eval_drift.py``'s unshifted streams draw rows from the whole dataset, half of which *is*
the reference, so the stream sits halfway between the reference and its population and carries
only half of the reference's own sampling error; and its 180,000 unshifted rows cannot tell a rate
of one false alarm per 1,000,000 rows from one of ten. Here the population is known (seven
feature types: normal, log-normal, exponential, uniform, Poisson(3), Binomial(20, 0.3) and a
normal rounded to 0.1, the last three heavily tied), every reference is a fresh sample of
``--sizes`` rows, and production is a fresh draw from the same population, as in a deployment:
the reference's sampling error is a fixed offset for its whole stream.

For each reference size, ``--refs`` references each get ``--rows`` rows of production, fed in
batches of 1,000 rows to the detector's binning and sequential core (what ``update`` does, minus
the windowed figures, which raise no alarm). An alarm is an episode: the detector entering alarm
(``monitor_drift_detected`` rising, what ModelInputDrift pages on: the rule adds no condition).
Rates are per 1,000,000 rows with a 95% interval from a bootstrap over references (alarms of one
reference are not independent: its offset is shared), and the spread over references of each
one's own count says how much the reference drawn matters.

``--as-population`` is the counterfactual the calibration must beat: the same detector with the
reference treated as the population (its counts x10^4, so the Beta-binomial bands become
binomial ones, and no bootstrap correction of the score tests). ``--resample`` draws production
from the reference's own rows instead (what a benchmark that resamples the reference measures).
``--delays`` measures detection delays on shifted streams (onset at row 2,000) instead. Long
streams on few references (``--refs 10 --rows 10000000``) measure each reference's own rate
(``per_ref``: the largest counts), which varies around the mean with the reference's offset.

    .venv/bin/python benchmarks/drift_reference_error.py                 # ~8 min on 2 cores
    .venv/bin/python benchmarks/drift_reference_error.py --delays
"""

from __future__ import annotations

import argparse
import json
import sys
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.batch import Batch  # noqa: E402
from monitor.detectors.drift import FeatureDriftDetector  # noqa: E402
from monitor.reference import Reference  # noqa: E402
from monitor.stats.sequential import BinnedSequentialTest  # noqa: E402

NAMES = ("normal", "lognormal", "exponential", "uniform", "poisson3", "binom20", "rounded")
BATCH = 1000
ONSET = 2000
AFTER = 6000


def draw(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rows of the population (one column per :data:`NAMES`)."""
    return np.column_stack([
        rng.normal(size=n),
        rng.lognormal(0.0, 1.0, size=n),
        rng.exponential(2.0, size=n),
        rng.uniform(0.0, 10.0, size=n),
        rng.poisson(3.0, size=n).astype(np.float64),
        rng.binomial(20, 0.3, size=n).astype(np.float64),
        np.round(rng.normal(5.0, 2.0, size=n), 1),
    ])


#: Shifted streams for ``--delays``: (name, feature, transform of the post-onset rows).
SHIFTS: tuple[tuple[str, int, Any], ...] = (
    ("normal +0.3 sd", 0, lambda x, rng: x + 0.3),
    ("lognormal x1.3", 1, lambda x, rng: x * 1.3),
    ("poisson 3 -> 3.5", 4, lambda x, rng: rng.poisson(3.5, size=x.size).astype(np.float64)),
    ("uniform stuck 10% of rows", 3, lambda x, rng: np.where(rng.random(x.size) < 0.1, 5.0, x)),
)


def as_population(det: FeatureDriftDetector) -> None:
    """Recalibrate ``det`` as if its reference were the population (the counterfactual)."""
    core = det._core
    t = core.test
    core.test = BinnedSequentialTest(t.ref_counts * 1e4, ordered=t.ordered, ert=t.ert, step=t.step, scales=t.scales,
                                     correction=t.correction, min_effect=t.min_effect, scores=t.scores_,
                                     score_tails=t.score_tails if t.scores_ is not None else None,
                                     score_share=t.score_share)


def build(n_ref: int, seed: int, ert: float, population: bool) -> tuple[FeatureDriftDetector, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    ref = draw(rng, n_ref)
    det = FeatureDriftDetector(Reference.from_arrays(ref, numeric_names=NAMES), ert=ert)
    if population:
        as_population(det)
    return det, ref, rng


def feed(det: FeatureDriftDetector, x: np.ndarray, start: int) -> None:
    core = det._core
    b = Batch.from_arrays(x, numeric_names=NAMES, ts=1.7e9 + (start + np.arange(x.shape[0])) * 0.1)
    idx, vals = core.binner.bin(b)
    core.update(np.asarray(b.ts, dtype=np.float64), idx, vals)


def null_run(job: tuple[int, int, int, float, bool, bool]) -> dict[str, Any]:
    """Alarm episodes of one reference over ``rows`` rows of unshifted production."""
    n_ref, seed, rows, ert, population, resample = job
    det, ref, rng = build(n_ref, seed, ert, population)
    episodes, was = 0, False
    for s in range(0, rows, BATCH):
        x = ref[rng.integers(0, n_ref, BATCH)] if resample else draw(rng, BATCH)
        feed(det, x, s)
        now = det._core.in_alarm
        episodes += int(now and not was)
        was = now
    return {"n_ref": n_ref, "rows": rows, "episodes": episodes}


def delay_run(job: tuple[int, int, int, float, bool]) -> dict[str, Any]:
    """Rows after the onset until the first alarm (None: missed within :data:`AFTER`), and whether
    an alarm came before the onset."""
    n_ref, seed, which, ert, population = job
    det, _, rng = build(n_ref, seed, ert, population)
    name, feat, fn = SHIFTS[which]
    x = draw(rng, ONSET + AFTER)
    x[ONSET:, feat] = fn(x[ONSET:, feat], rng)
    early, delay = False, None
    for s in range(0, x.shape[0], 50):
        feed(det, x[s:s + 50], s)
        if det._core.in_alarm:
            if s + 50 <= ONSET:
                early = True
            else:
                delay = s + 50 - ONSET
                break
    return {"n_ref": n_ref, "shift": name, "delay": delay, "early": early}


def rate_ci(counts: np.ndarray, rows: int, seed: int = 0) -> tuple[float, float, float]:
    """Alarms per 1,000,000 rows and a 95% bootstrap interval over references."""
    rng = np.random.default_rng(seed)
    boot = counts[rng.integers(0, counts.size, (4000, counts.size))].mean(axis=1)
    scale = 1e6 / rows
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return float(counts.mean() * scale), float(lo * scale), float(hi * scale)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="500,3000,20000", help="reference sizes (rows), comma-separated")
    ap.add_argument("--refs", type=int, default=100, help="references per size")
    ap.add_argument("--rows", type=int, default=1_000_000, help="production rows per reference")
    ap.add_argument("--ert", type=float, default=1_000_000.0)
    ap.add_argument("--as-population", action="store_true", help="counterfactual: the reference taken as the population")
    ap.add_argument("--resample", action="store_true", help="production resampled from the reference's rows")
    ap.add_argument("--delays", action="store_true", help="detection delays on shifted streams instead")
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with Pool(args.processes) as pool:
        if args.delays:
            jobs = [(n, 7919 * n + r, w, args.ert, args.as_population) for n in sizes for w in range(len(SHIFTS))
                    for r in range(args.refs)]
            res = pool.map(delay_run, jobs, chunksize=1)
            for n in sizes:
                for name, _, _ in SHIFTS:
                    rs = [r for r in res if r["n_ref"] == n and r["shift"] == name]
                    ds = [r["delay"] for r in rs if r["delay"] is not None]
                    print(json.dumps({"n_ref": n, "shift": name, "runs": len(rs), "median_delay": float(np.median(ds)) if ds else None,
                                      "p90_delay": float(np.quantile(ds, 0.9)) if ds else None,
                                      "missed": len(rs) - len(ds), "early": sum(r["early"] for r in rs)}), flush=True)
            return 0
        jobs = [(n, 1000 * n + r, args.rows, args.ert, args.as_population, args.resample) for n in sizes for r in range(args.refs)]
        res = pool.map(null_run, jobs, chunksize=1)
    for n in sizes:
        counts = np.asarray([r["episodes"] for r in res if r["n_ref"] == n], dtype=np.float64)
        rate, lo, hi = rate_ci(counts, args.rows)
        print(json.dumps({"n_ref": n, "ert": args.ert, "population": args.as_population, "resample": args.resample,
                          "rows": int(counts.size * args.rows), "alarms": int(counts.sum()), "per_1M": round(rate, 3),
                          "ci95": [round(lo, 3), round(hi, 3)],
                          "per_ert": round(rate * args.ert / 1e6, 3),
                          "refs_with_alarms": int((counts > 0).sum()), "max_per_ref": int(counts.max()),
                          "refs_over_2x_ert": int((counts / args.rows * args.ert > 2).sum()),
                          "per_ref": sorted(counts.astype(int).tolist(), reverse=True)[:20]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
