"""How few reference rows pca_drift can run on without ``pca_fit``: sight and false alarms.

Populations of ``d`` correlated features: ``d // 4 + 1`` standard normal factors with random
loadings, plus independent noise of sd 0.5 on each feature. For each reference size, seeded:

* sight: ``--streams`` references of 8 features, each followed by a stream of 5,000 rows of
  its population with noise of one sd (the feature's population sd) added to every feature of
  65% of the rows from row 1,000 (the onset; at that share the half split below found it in 15
  of its first 20 streams at 40 rows, as in the measurement that set the former bound of 40:
  16 of 20): found if pca_drift (defaults, alone) alarms after the onset, the delay counted in
  rows from it; an alarm before the onset is a false alarm;
* false alarms: references of 2, 4, 8 and 16 features (``--healthy`` each), each followed by
  20,000 unshifted rows of its population; the default ERT of 1,000,000 rows expects about
  ``rows / 1,000,000`` alarms.

``--calibration half`` runs the calibration before the fold PCAs instead, as a control: the
directions fitted on a random half of the reference and the other half's errors (the reference's
first half given as ``pca_fit``). The profile's row bound (``PCA_MIN_ROWS``) is lowered to 2 for
the run so that every size builds a PCA.

Run: ``.venv/bin/python benchmarks/pca_small_reference.py [--sizes 20 21 22 23 25 30 40 80]
[--calibration fold|half] [--streams 100] [--healthy 20]`` (about four minutes; a table printed,
not written). The README and :func:`monitor.profile.pca_min_rows` cite its default run and
``--calibration half --sizes 40``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor import profile  # noqa: E402
from monitor.batch import Batch  # noqa: E402
from monitor.detectors.multivariate import PCADriftDetector  # noqa: E402
from monitor.reference import Reference  # noqa: E402

ONSET = 1_000
SHIFTED = 5_000
HEALTHY = 20_000
BATCH = 50
#: Share of the rows after the onset that the noise is added to.
SHARE = 0.65
ERT = 1_000_000


def population(d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Loadings ``(factors, d)`` of a population of ``d`` correlated features, and each feature's sd."""
    load = np.random.default_rng(10_000 + seed).normal(size=(d // 4 + 1, d))
    return load, np.sqrt((load * load).sum(axis=0) + 0.25)


def draw(load: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(n, load.shape[0])) @ load + 0.5 * rng.normal(size=(n, load.shape[1]))


def detector(ref: np.ndarray, calibration: str) -> PCADriftDetector:
    names = tuple(f"f{j}" for j in range(ref.shape[1]))
    if calibration == "half":
        half = ref.shape[0] // 2
        return PCADriftDetector(Reference.from_arrays(ref[half:], numeric_names=names, pca_fit=ref[:half]))
    return PCADriftDetector(Reference.from_arrays(ref, numeric_names=names))


def alarms(det: PCADriftDetector, x: np.ndarray, onset: int | None) -> tuple[int, int | None]:
    """(alarms before ``onset`` -- all of them when None --, delay of the first one after it)."""
    names = tuple(det.profile.pca.names)
    before, delay, was = 0, None, False
    for s in range(0, x.shape[0], BATCH):
        end = min(s + BATCH, x.shape[0])
        det.update(Batch.from_arrays(x[s:end], numeric_names=names, ts=1.7e9 + np.arange(s, end) * 0.1))
        now = det.drift_detected
        if now and not was:
            if onset is None or end <= onset:
                before += 1
            else:
                return before, end - onset
        was = now
    return before, delay


def sight(rows: int, calibration: str, streams: int) -> tuple[int, list[int], int]:
    """(streams found, their delays, alarms before the onset)."""
    found, delays, early = 0, [], 0
    for seed in range(streams):
        load, sd = population(8, seed)
        rng = np.random.default_rng(seed)
        det = detector(draw(load, rows, rng), calibration)
        x = draw(load, SHIFTED, rng)
        hit = ONSET + np.flatnonzero(rng.random(SHIFTED - ONSET) < SHARE)
        x[hit] += rng.normal(size=(hit.size, 8)) * sd
        before, delay = alarms(det, x, ONSET)
        early += before
        if delay is not None:
            found += 1
            delays.append(delay)
    return found, delays, early


def false_alarms(rows: int, calibration: str, per_width: int) -> tuple[int, int, int]:
    """(alarms, streams that alarmed, rows fed)."""
    total = alarmed = fed = 0
    for d in (2, 4, 8, 16):
        for seed in range(per_width):
            load, _ = population(d, 100 + seed)
            rng = np.random.default_rng(100_000 + 100 * d + seed)
            det = detector(draw(load, rows, rng), calibration)
            n, _ = alarms(det, draw(load, HEALTHY, rng), None)
            total += n
            alarmed += n > 0
            fed += HEALTHY
    return total, alarmed, fed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 21, 22, 23, 25, 30, 40, 80])
    ap.add_argument("--calibration", choices=["fold", "half"], default="fold")
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--healthy", type=int, default=20, help="healthy streams per width (4 widths)")
    args = ap.parse_args()
    profile.PCA_MIN_ROWS = 2
    print(f"calibration: {args.calibration}; noise of one sd on 8 features of {SHARE:.0%} of the rows from row "
          f"{ONSET:,} of {SHIFTED:,}; healthy streams of {HEALTHY:,} rows, 2/4/8/16 features")
    print("| reference rows | noise found | median delay (range) | alarms before onset | false alarms (streams) "
          "| healthy rows | expected at the ERT |")
    print("|---|---|---|---|---|---|---|")
    for rows in args.sizes:
        found, delays, early = sight(rows, args.calibration, args.streams)
        fa, streams, fed = false_alarms(rows, args.calibration, args.healthy)
        span = f"{np.median(delays):.0f} ({min(delays)}-{max(delays)})" if delays else "-"
        print(f"| {rows} | {found} of {args.streams} | {span} | {early} | {fa} ({streams} of {4 * args.healthy}) "
              f"| {fed:,} | {fed / ERT:.1f} |", flush=True)


if __name__ == "__main__":
    main()
