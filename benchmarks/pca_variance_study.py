"""How much variance the PCA drift detector should keep: false alarms and decorrelations found.

On benchmarks/eval_drift.py's datasets (reference: a random half of each dataset), with every
stream drawn with replacement from the *other* half only: rows the PCA was fitted on reconstruct
better, and the test is one-sided, so drawing them too (as eval_drift's streams do) would favour
silence, and more so the more components are kept. For each share of variance kept: alarms on
20,000 unshifted rows per dataset and seed, and, per dataset and seed, four "decorrelate" streams
(eval_drift's three single-feature shift features plus the feature of largest sd/mean; from row
2,000 the feature's value comes from another random row: every marginal unchanged) and one
stream with Gaussian noise (1 reference sd) on every feature of 25% of the rows from row 2,000.
Each stream runs the PCA drift detector alone with its defaults but the variance share.

Run: ``.venv/bin/python benchmarks/pca_variance_study.py [--seeds 6] [--variance 0.65 0.9]``
(about 10 s per variance share; numbers printed, not written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_drift as ed  # noqa: E402
from monitor import profile  # noqa: E402
from monitor.detectors.multivariate import PCADriftDetector  # noqa: E402
from monitor.reference import Reference  # noqa: E402


def held_out(d: ed.Data, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rows drawn with replacement from the rows outside the reference."""
    outside = np.setdiff1d(np.arange(d.x.shape[0]), d.ref_idx)
    return d.x[rng.choice(outside, n)].copy()


def decorrelated(d: ed.Data, feat: int, rng: np.random.Generator) -> np.ndarray:
    pre, post = held_out(d, rng, ed.ONSET), held_out(d, rng, ed.AFTER)
    post[:, feat] = held_out(d, rng, ed.AFTER)[:, feat]
    return np.concatenate([pre, post])


def noisy(d: ed.Data, rng: np.random.Generator) -> np.ndarray:
    pre, post = held_out(d, rng, ed.ONSET), held_out(d, rng, ed.AFTER)
    sd = d.ref.std(axis=0)
    hit = rng.random(ed.AFTER) < 0.25
    post[hit] += rng.normal(size=(int(hit.sum()), post.shape[1])) * np.where(sd > 0, sd, 1.0)
    return np.concatenate([pre, post])


def study(variance: float, seeds: int) -> tuple[int, int, int, int, int, list[int]]:
    """(false alarms, unshifted rows, decorrelations found, decorrelation streams, noise found, delays)."""
    kept = profile.PCA_VARIANCE
    profile.PCA_VARIANCE = variance
    try:
        alarms = rows = found = streams = noise = 0
        delays: list[int] = []
        for seed in range(seeds):
            for d in ed.load(seed):
                det = PCADriftDetector(Reference.from_arrays(d.ref, numeric_names=d.names))
                rng = np.random.default_rng(seed)
                alarms += ed.run_ours(det, held_out(d, rng, 20_000), d.names, None).false_alarms
                rows += 20_000
                spread = d.x.std(axis=0) / (np.abs(d.x.mean(axis=0)) + 1e-9)
                for feat in [*d.shift_features, int(np.argmax(spread))]:
                    det.reset()
                    delay = ed.run_ours(det, decorrelated(d, feat, rng), d.names, ed.ONSET).delay
                    streams += 1
                    if delay is not None:
                        found += 1
                        delays.append(delay)
                det.reset()
                noise += ed.run_ours(det, noisy(d, rng), d.names, ed.ONSET).delay is not None
        return alarms, rows, found, streams, noise, delays
    finally:
        profile.PCA_VARIANCE = kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--variance", type=float, nargs="+", default=[0.65, profile.PCA_VARIANCE])
    args = ap.parse_args()
    print("| variance kept | false alarms (unshifted rows) | decorrelations found | median delay | 25%-noise streams found |")
    print("|---|---|---|---|---|")
    for v in args.variance:
        alarms, rows, found, streams, noise, delays = study(v, args.seeds)
        median = f"{np.median(delays):.0f}" if delays else "-"
        print(f"| {v:.2f} | {alarms} ({rows:,}) | {found} of {streams} | {median} | {noise} of {3 * args.seeds} |", flush=True)


if __name__ == "__main__":
    main()
