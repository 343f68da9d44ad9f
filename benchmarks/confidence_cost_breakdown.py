"""Where the issue-3 detectors' cost per event goes at one traffic rate (a companion of section 5
of ``eval_confidence.py``, which only gives the total).

At low traffic the cost added per event is not only the rows' own work: every export (a rule
tick, a scrape, the ``queue.export_interval`` timer) hands the held rows over to the detectors,
which costs something whatever the number of rows, and at every rule tick every windowed figure
is recomputed. This script runs the cost benchmark's agents (the same traffic, clock and
configuration, see ``_confidence_cost.py``) and splits the CPU time the detectors add into

* hand-overs (:meth:`monitor.pipeline.Pipeline.settle`), and what one costs as a fixed part
  plus a part per event handed over (from hand-overs of two sizes);
* the detectors' exports at rule ticks (every windowed figure recomputed) and at the other
  exports (histogram flushes, labelled rows folded into windows, figures recomputed when a
  window slid or grew by 5%), per detector;
* the rest (holding the batches at each drain, collector work), by difference with the total;

and measures the CPU of one recomputation of each detector on its own (its export after a
tick, on windows filled by the same traffic), which is what a tick costs when nothing else
runs. Every figure is CPU time (``time.process_time``), the total as in the cost table: the best
of ``--reps`` alternating runs of the worker alone and with the detectors.

Run: ``python benchmarks/confidence_cost_breakdown.py`` (about 30 s; ``--rate``, ``--phase``; ``--write``
also writes ``benchmarks/results/confidence_cost_breakdown.md``).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _confidence_cost import WINDOW_S, Agent, Setup, _Traffic, heading, report_args, write_report  # noqa: E402
from eval_confidence import ISSUE_DETECTORS  # noqa: E402

__all__ = ["breakdown"]

RESULTS = Path(__file__).resolve().parent / "results" / "confidence_cost_breakdown.md"


def _fresh(setup: Setup, kinds: tuple[str, ...], rate: float, phase: str, events: int) -> tuple[Agent, _Traffic]:
    """An agent past its warm-up: the first hour (windows filling) or the steady state."""
    a = setup.agent(kinds)
    traffic = _Traffic(rate, np.random.default_rng(1), setup.output)
    if phase == "steady":
        traffic.prefill(a.worker.pipeline, WINDOW_S)
    setup.measure(a, traffic, max(int(rate * setup.config.poll_s), 1), events)
    return a, traffic


class _Recorder:
    """CPU of the pipeline's hand-overs and of every detector export of one agent."""

    def __init__(self, a: Agent) -> None:
        self.handovers: list[tuple[int, float]] = []
        self.exports: dict[tuple[str, str], float] = defaultdict(float)
        self.ticks = 0
        pipe = a.worker.pipeline
        settle, export = pipe.settle, pipe.export
        self._at_tick = False

        def timed_settle() -> None:
            rows = len(pipe._held)
            c0 = time.process_time()
            settle()
            if rows:
                self.handovers.append((rows, time.process_time() - c0))

        def timed_export(now: float | None) -> None:
            self._at_tick = now is not None
            self.ticks += self._at_tick
            export(now)

        pipe.settle, pipe.export = timed_settle, timed_export  # type: ignore[method-assign]
        for det in pipe.detectors:
            self._wrap(det)

    def _wrap(self, det: object) -> None:
        export = det.export  # type: ignore[attr-defined]

        def timed(out: object) -> None:
            c0 = time.process_time()
            export(out)
            self.exports[(det.kind, "tick" if self._at_tick else "other")] += time.process_time() - c0  # type: ignore[attr-defined]

        det.export = timed  # type: ignore[attr-defined]


def _recomputation(setup: Setup, kinds: tuple[str, ...], rate: float, phase: str, events: int, reps: int = 200) -> dict[str, float]:
    """Median CPU of one export after a tick, per detector, on windows filled by the traffic."""
    a, _ = _fresh(setup, kinds, rate, phase, events)
    pipe = a.worker.pipeline
    pipe.export(None)
    out: dict[str, float] = {}
    for det in pipe.detectors:
        spent = []
        for _ in range(reps):
            det.on_tick(0.0)
            c0 = time.process_time()
            det.export(pipe.store)
            spent.append(time.process_time() - c0)
        out[det.kind] = float(np.median(spent))
    return out


def _handover_fit(setup: Setup, kinds: tuple[str, ...], rate: float, sizes: tuple[int, int] = (64, 2048), reps: int = 30) -> tuple[float, float]:
    """CPU of one hand-over to ``kinds`` as a fixed part plus a part per event, from hand-overs of
    two sizes (the predictions and their labelled fifth, as the traffic makes them): within a
    run the hand-overs are all about the same size, so their own costs cannot be split."""
    a, traffic = _fresh(setup, kinds, rate, "first", 20_000)
    pipe = a.worker.pipeline
    pipe.tick_s = 0.0  # no rule tick (which would hand the rows over itself) while the batches are held
    median = []
    for size in sizes:
        spent = []
        for _ in range(reps):
            pipe.process(traffic.drain(size))  # held for the detectors, not timed
            c0 = time.process_time()
            pipe.settle()
            spent.append(time.process_time() - c0)
        median.append(float(np.median(spent)))
    per_event = (median[1] - median[0]) / (sizes[1] - sizes[0])
    return median[0] - per_event * sizes[0], per_event


def breakdown(rate: float, phase: str, reps: int, events: int, kinds: tuple[str, ...] = ISSUE_DETECTORS) -> str:
    """The markdown report of one rate and phase."""
    setup = Setup.default()
    per_poll = max(int(rate * setup.config.poll_s), 1)
    best: dict[bool, float] = {False: np.inf, True: np.inf}
    rec: _Recorder | None = None
    for _ in range(reps):
        for with_dets in (False, True):
            a, traffic = _fresh(setup, kinds if with_dets else (), rate, phase, events)
            recorder = _Recorder(a) if with_dets else None
            spent = setup.measure(a, traffic, per_poll, events)[0]
            if spent < best[with_dets]:
                best[with_dets], rec = spent, (recorder if with_dets else rec)
    assert rec is not None
    added = best[True] - best[False]
    n = events
    handed = sum(c for _, c in rec.handovers)
    rows = float(np.mean([r for r, _ in rec.handovers])) if rec.handovers else 0.0
    fixed, per_event = _handover_fit(setup, kinds, rate)
    tick = sum(v for (_, where), v in rec.exports.items() if where == "tick")
    other = sum(v for (_, where), v in rec.exports.items() if where == "other")
    us = 1e6 / n
    lines = [
        heading(rate, phase),
        "",
        f"Added by the detectors: **{added * 1e6:.2f} us/event** (worker alone {best[False] * 1e6:.2f}, with them "
        f"{best[True] * 1e6:.2f}; best of {reps}; the parts below are those of the best run with them). Over {n:,} events: "
        f"{len(rec.handovers)} hand-overs of {rows:,.0f} rows (predicted and labelled) on average, {rec.ticks} rule ticks. "
        f"A hand-over costs {fixed * 1e3:.3f} ms plus {per_event * 1e9:.0f} ns per event handed over (its labelled fifth "
        f"included), from hand-overs of 64 and 2,048 events: at this rate the fixed part is "
        f"{fixed * len(rec.handovers) * us:.3f} us/event.",
        "",
        "| part | us/event | share of the added cost |",
        "|---|---|---|",
    ]

    def row(name: str, seconds: float) -> None:
        lines.append(f"| {name} | {seconds * us:.3f} | {seconds * us / (added * 1e6):.0%} |")

    row("hand-overs of the held rows to the detectors", handed)
    row(f"exports at rule ticks (every figure recomputed; {tick / max(rec.ticks, 1) * 1e3:.3f} ms per tick)", tick)
    row("other exports (histogram flushes, label folds, figures of slid windows)", other)
    row("the rest (holding at each drain, collection, noise between runs), by difference", added * n - handed - tick - other)
    iso = _recomputation(setup, kinds, rate, phase, events)
    lines += ["", "| detector | exports at ticks (us/event) | other exports (us/event) | one recomputation alone (ms CPU) |",
              "|---|---|---|---|"]
    for kind in kinds:
        lines.append(f"| {kind} | {rec.exports[(kind, 'tick')] * us:.3f} | {rec.exports[(kind, 'other')] * us:.3f} | {iso[kind] * 1e3:.3f} |")
    lines.append(f"| all | {tick * us:.3f} | {other * us:.3f} | {sum(iso.values()) * 1e3:.3f} |")
    return "\n".join(lines)


def main() -> None:
    args = report_args(__doc__, RESULTS, ("first", "steady"))
    start = time.monotonic()
    parts = []
    for phase in args.phase:
        parts.append(breakdown(args.rate, phase, args.reps, args.events))
        print(parts[-1], end="\n\n", flush=True)
    if args.write:
        write_report(RESULTS, "Where the issue-3 detectors' cost per event goes",
                     "Generated by `python benchmarks/confidence_cost_breakdown.py --write` (see its docstring): the agents, "
                     "traffic and configuration of the cost section of `benchmarks/results/confidence.md`, the detectors' "
                     "added CPU split by where it is spent.", parts, start)


if __name__ == "__main__":
    main()
