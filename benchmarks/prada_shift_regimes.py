"""PRADA at a population-wide input shift: when regimes begin, whom the shift flags, how W behaves after.

Two tables, on the seeded world of ``tests/probing_streams.py`` (reference of 1,500 rows, the
detector's defaults: PRADA's window 100, ``delta`` at 1e-4 per test):

* ``regimes``: the stream of tests/test_probing_shift_onset_s33e.py (40 benign clients whose inputs
  all shift at t = 1,200 s; rates 0.3-0.6, 0.3-2 and 2-5 queries/s; seeds 2, 3, 4) replayed in 15-s
  scrapes: when the current rates began a regime and where they put its onset (s after the true
  one), and how many clients were flagged ``stealing`` after the onset (with this code: run it at
  another commit for the figures before a change; monitor/detectors/probing/regimes.py cites both);
* ``warm``: the share of PRADA windows whose W falls below ``delta`` when the window's 100 minimum
  distances come after ``warm`` queries of one regime, for clients sending natural rows or natural
  rows shifted. ``warm`` 0 is a cold start (what a new client does, and what a restarted window did
  before the regime's first ``prada_window`` queries were left out).

Run: ``.venv/bin/python benchmarks/prada_shift_regimes.py [regimes|warm|both] [--sims 2000]``
(about two minutes for both; tables printed, not written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.detectors.probing import ProbingDetector  # noqa: E402
from monitor.detectors.probing.stealing import prada_min_distances, shapiro_coefficients, shapiro_w  # noqa: E402
from tests import probing_streams as ps  # noqa: E402
from tests.test_probing_shift_onset_s33e import ONSET, benign_stream, replay  # noqa: E402

SD = ps.natural(np.random.default_rng(0), 4000).std(axis=0)
_F0, _F012 = np.arange(ps.D) == 0, np.arange(ps.D) < 3
SHIFTS = {
    "none": lambda x: x,
    "x3 on feature 0": lambda x: x * np.where(_F0, 3.0, 1.0),
    "x3 on features 0-2": lambda x: x * np.where(_F012, 3.0, 1.0),
    "x2 on feature 0": lambda x: x * np.where(_F0, 2.0, 1.0),
    "+2 sd": lambda x: x + 2.0 * SD,
    "+4 sd": lambda x: x + 4.0 * SD,
}
RATES = ((0.3, 0.6), (0.3, 2.0), (2.0, 5.0))


def regimes(seeds: tuple[int, ...] = (2, 3, 4)) -> None:
    print("regime begun (s after the onset) / onset put at (s after the true one) / clients flagged `stealing` after the onset, per seed")
    print("| inputs from t = 1,200 s | " + " | ".join(f"{lo}-{hi} queries/s" for lo, hi in RATES) + " |")
    print("|---|" + "---|" * len(RATES))
    for name, shift in SHIFTS.items():
        cells = []
        for rates in RATES:
            runs = []
            for seed in seeds:
                det, flagged = replay(*benign_stream(seed=seed, rates=rates, shift=shift, everybody=name != "none"),
                                      signal="stealing")
                after = set().union(*(f for now, f in flagged.items() if now > ONSET))
                starts = getattr(getattr(det, "_current", None), "regime_starts", [])
                when = ",".join(f"{start - ONSET:.0f}/{onset - ONSET:+.0f}" for _, start, onset in starts) or "-"
                runs.append(f"{when} / {len(after)}")
            cells.append("; ".join(runs))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def warm(sims: int, warms: list[int], seed: int) -> None:

    det = ProbingDetector(ps.reference(), client_id_salt="warm", seed=0)
    window = det.prada_window
    a = shapiro_coefficients(window)
    delta = det.calibration_.prada.delta  # type: ignore[union-attr]
    rng = np.random.default_rng(seed)
    print(f"delta {delta:.3f} (window {window}); share of windows with W < delta, median W, {sims} clients per cell")
    print("| inputs | " + " | ".join(f"after {w} queries" for w in warms) + " |")
    print("|---|" + "---|" * len(warms))
    for name, shift in SHIFTS.items():
        cells = []
        for warm_ in warms:
            ws = []
            for _ in range(sims):
                x = shift(ps.natural(rng, warm_ + window + 20))  # room for near-duplicates left out
                s = det._sketcher.project(det._sketcher.standardise(x)).astype(np.float64)
                d = prada_min_distances(s, max(warm_, 1), det.near_radius)[:window]
                if d.size == window:
                    ws.append(float(shapiro_w(d, a)))
            w = np.asarray(ws)
            cells.append(f"{np.mean(w < delta):.1%} (W {np.median(w):.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", choices=("regimes", "warm", "both"), default="both")
    parser.add_argument("--sims", type=int, default=2000, help="simulated clients per cell of the warm table")
    parser.add_argument("--warm", type=int, nargs="+", default=[0, 100, 200, 900])
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    if args.table in ("regimes", "both"):
        regimes()
    if args.table in ("warm", "both"):
        warm(args.sims, args.warm, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
