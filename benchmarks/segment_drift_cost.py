"""What ``by_segment: true`` adds to the confidence_drift and prediction_drift detectors, per event.

Runs the cost benchmark's agents (``_confidence_cost.py``: the same traffic, clock, queue and
export cadence, 10 classes, 8 segments, the reference's 5,000 rows) with only these two
detectors, their per-segment figures off and on, alternating in the same run, and reports the
best CPU time per event of each (``time.process_time``: the worker's whole cost with them,
hand-overs, exports at rule ticks and scrapes included) and their difference (the off row also
pays the rows' output features, max probability and entropy, that a full agent shares with the
confidence and segments detectors). It also times
one recomputation of each detector's figures on filled windows (what a rule tick or a slid
window costs), off and on, which is where the per-segment tests go.

Run: ``python benchmarks/segment_drift_cost.py`` (about a minute; ``--rate``, ``--phase``, ``--reps``).
The figures are CPU time, but on a machine shared with other work they still move by tens of
percent between runs: read the difference against the worker-alone column of the same run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _confidence_cost as cost  # noqa: E402
from confidence_cost_breakdown import _fresh, _recomputation  # noqa: E402

from monitor.detectors import registry  # noqa: E402

KINDS = ("confidence_drift", "prediction_drift")
RESULTS = Path(__file__).resolve().parent / "results" / "segment_drift_cost.md"


def _by_segment(on: bool) -> None:
    """Make the cost benchmark's agents build the two detectors with ``by_segment`` set to ``on``."""
    def create(kind: str, *, reference: Any = None, params: dict[str, Any] | None = None, context: Any = None) -> Any:
        return registry.create(kind, reference=reference, context=context,
                               params={**(params or {}), "by_segment": on} if kind in KINDS else params)

    cost.create = create  # type: ignore[attr-defined]


def run(rate: float, phase: str, reps: int, events: int) -> str:
    setup = cost.Setup.default()
    per_poll = max(int(rate * setup.config.poll_s), 1)
    variants = {"worker alone": (), "off": KINDS, "on": KINDS}
    best = {name: np.inf for name in variants}
    for _ in range(reps):
        for name, kinds in variants.items():
            _by_segment(name == "on")
            a, traffic = _fresh(setup, kinds, rate, phase, events)
            best[name] = min(best[name], setup.measure(a, traffic, per_poll, events)[0])
    iso = {}
    for on in (False, True):
        _by_segment(on)
        iso[on] = _recomputation(setup, KINDS, rate, phase, events, reps=100)
    alone = best["worker alone"]
    lines = [
        f"{cost.heading(rate, phase)} ({cost.SEGMENTS} segments, "
        f"{cost.CLASSES} classes; best of {reps}, {events:,} events per run)",
        "",
        "| variant | us/event (whole worker) | added to the worker alone |",
        "|---|---|---|",
    ]
    for name in variants:
        lines.append(f"| {name} | {best[name] * 1e6:.2f} | {(best[name] - alone) * 1e6:+.2f} |")
    lines += ["", f"by_segment adds **{(best['on'] - best['off']) * 1e6:+.2f} us/event** (on minus off, same run).", "",
              "| detector | one recomputation, off (ms CPU) | on (ms CPU) |", "|---|---|---|"]
    for kind in KINDS:
        lines.append(f"| {kind} | {iso[False][kind] * 1e3:.3f} | {iso[True][kind] * 1e3:.3f} |")
    return "\n".join(lines)


def main() -> None:
    args = cost.report_args(__doc__, RESULTS, ("first",))
    start = time.monotonic()
    parts = []
    for phase in args.phase:
        parts.append(run(args.rate, phase, args.reps, args.events))
        print(parts[-1], end="\n\n", flush=True)
    if args.write:
        cost.write_report(RESULTS, "Cost of by_segment on confidence_drift and prediction_drift",
                          "`python benchmarks/segment_drift_cost.py --write` (CPU time, but a shared machine still moves "
                          "it). The off row includes the rows' output features (max probability, entropy), which a full "
                          "agent computes once for these and the confidence and segments detectors; the on minus off "
                          "difference is what the option adds.", parts, start)


if __name__ == "__main__":
    main()
