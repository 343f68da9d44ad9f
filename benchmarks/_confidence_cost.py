"""What the issue-3 detectors add to the worker per event, at live cadence (section 5 of
``eval_confidence.py``).

The worker wakes once per ``queue.poll`` (0.25 s) and drains when ``queue.batch_min`` events
wait or events have waited ``queue.linger``; the detectors export their figures when a scrape
asks (every 15 s here), at every rule tick, where every windowed figure is made exact, and at
most every ``queue.export_interval`` while events flow. The
benchmark runs the worker's own step once per poll with that poll's arrivals queued, moving the
wall clock and event time as live traffic at the row's rate would, so that drains, exports and
recomputations are paid exactly as often as there.

Two phases are measured, because what an export costs depends on how full the windows are: the
figures are recomputed when a window slides or grows by more than 5% since the last computation
(``refresh``). In the **first hour** after a start the windows (1 h) are filling, so they grow by
more than 5% between most exports and every export recomputes; in the **steady state** the
windows hold an hour of traffic, so recomputation happens when they slide (every 5 min) and at
rule ticks. The steady state is reached by first feeding the detectors one hour of event time at
the row's rate in large batches (the measured phase then continues that stream).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitor.batch import Batch, LabeledBatch
from monitor.config import QueueConfig, RulesConfig
from monitor.detectors.context import DetectorContext
from monitor.detectors.registry import create
from monitor.events import FEEDBACK, PREDICTION
from monitor.ingest import BatchBuilder
from monitor.pipeline import Pipeline
from monitor.queue import EventQueue
from monitor.reference import Reference
from monitor.schema import OutputSpec, Schema
from monitor.store import MetricStore
from monitor.worker import Worker

__all__ = ["Agent", "COST_INTRO", "Setup", "cost_table", "heading", "report_args", "write_report"]

FEATURES, CLASSES, SEGMENTS = 32, 10, 8
LABELLED = 0.2
POOL = 20_000
T0 = 1_700_000_000.0
WINDOW_S = 3600.0  # the detectors' default window
SCRAPE_S = 15.0  # a Prometheus scrape interval (its exports are counted with the worker's)

COST_INTRO = (
    "CPU time per event of the worker (Pipeline: conversion, label join, detectors, exports, rule ticks every "
    "{tick:g} s with an empty rule set, a scrape every 15 s) with and without the {n} classifier detectors this issue adds by default "
    "({kinds}); 32 features, 10 classes, 8 segments, delayed labels for 20% of the rows (drawn from the "
    "model's probabilities and named as its classes, so that the calibration and per-segment label paths do "
    "their full work); best of {reps} alternating runs.")


@dataclass
class _Wall:
    """The worker's wall clock, moved one queue poll per drain as live traffic would move it."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


class _Traffic:
    """An endless stream at ``rate`` events/s of event time, cut into drains of ``chunk`` events.

    Rows cycle through a pool (inputs, probabilities, a label drawn from the probabilities); every
    event has its own request id, a fifth of them get their label at the end of their drain.
    """

    def __init__(self, rate: float, rng: np.random.Generator, output: OutputSpec) -> None:
        self.rate = rate
        self.xs = rng.normal(size=(POOL, FEATURES))
        self.ps = rng.dirichlet(np.ones(CLASSES) * 0.3, size=POOL)
        cum = self.ps.cumsum(axis=1)
        self.labels = np.minimum((cum < rng.random((POOL, 1))).sum(axis=1), CLASSES - 1)
        self.label_names = [output.classes[int(c)] for c in self.labels]
        self.labelled = rng.random(POOL) < LABELLED
        self.segments = np.array([f"s{i % SEGMENTS}" for i in range(POOL)], dtype=object)
        self.classes = output.classes
        self.next = 0

    def ts(self, j: int) -> float:
        return T0 + j / self.rate

    def drain(self, chunk: int) -> list[tuple]:
        """The next ``chunk`` events as the queue would hand them to the worker."""
        i0, self.next = self.next, self.next + chunk
        xs, ps, segs = self.xs, self.ps, self.segments
        events: list[tuple] = [(PREDICTION, self.ts(j), xs[j % POOL], ps[j % POOL], 0.001, "anonymous", f"r{j}",
                                segs[j % POOL], None) for j in range(i0, self.next)]
        ids = [j for j in range(i0, self.next) if self.labelled[j % POOL]]
        if ids:
            events.append((FEEDBACK, self.ts(self.next), [f"r{j}" for j in ids], [self.label_names[j % POOL] for j in ids]))
        return events

    def prefill(self, pipe: Pipeline, seconds: float, batch_rows: int = 65_536) -> None:
        """Feed ``pipe``'s detectors ``seconds`` of event time directly, in large batches (the
        conversion and join a live worker would pay on the way are not what is measured here)."""
        end = self.next + int(seconds * self.rate)
        while self.next < end:
            i0 = self.next
            n = min(batch_rows, end - i0)
            self.next += n
            rows = np.arange(i0, i0 + n) % POOL
            ts = T0 + np.arange(i0, i0 + n) / self.rate
            batch = Batch.from_arrays(self.xs[rows], self.ps[rows], ts=ts, segment=self.segments[rows], classes=self.classes)
            lab = rows[self.labelled[rows]]
            labeled = LabeledBatch(ts=ts[self.labelled[rows]], label_ts=np.full(len(lab), ts[-1]), label=self.labels[lab],
                                   segment=self.segments[lab], scores=self.ps[lab], predicted=self.ps[lab].argmax(axis=1),
                                   classes=self.classes)
            for det in pipe.detectors:
                det.update(batch)
                det.update_labels(labeled)
                det.advance(float(ts[-1]))
        pipe.advance(self.ts(self.next))
        pipe.export(None)


@dataclass
class Agent:
    """A worker as a live agent runs it, without its thread: the benchmark calls
    :meth:`Worker.step` once per queue poll, with a wall clock it moves."""

    worker: Worker
    queue: EventQueue
    wall: _Wall
    next_scrape: float = SCRAPE_S


@dataclass(frozen=True)
class Setup:
    """What every agent of the cost benchmark shares: schema, outputs, reference, configuration."""

    schema: Schema
    output: OutputSpec
    reference: Reference
    context: DetectorContext
    config: QueueConfig
    tick: float

    @classmethod
    def default(cls) -> "Setup":
        rng = np.random.default_rng(0)
        schema = Schema.numeric([f"x{i}" for i in range(FEATURES)])
        output = OutputSpec("probabilities", tuple(f"c{i}" for i in range(CLASSES)))
        ref_p = rng.dirichlet(np.ones(CLASSES) * 0.3, size=5000)
        reference = Reference.from_arrays(rng.normal(size=(5000, FEATURES)), numeric_names=schema.numeric_names, scores=ref_p,
                                          labels=ref_p.argmax(1), classes=output.classes)
        return cls(schema, output, reference, DetectorContext(schema, output), QueueConfig(), RulesConfig().interval_s)

    def agent(self, kinds: tuple[str, ...]) -> Agent:
        """A fresh agent running detectors ``kinds`` (none: the worker alone)."""
        wall = _Wall()
        config = self.config
        dets = [create(kind, reference=self.reference, context=self.context) for kind in kinds]
        pipe = Pipeline(MetricStore("bench"), BatchBuilder(self.schema, self.output), dets, export_interval_s=config.export_interval_s,
                        wall=wall, tick_s=self.tick, on_tick=lambda t: None)
        events = EventQueue(config.capacity)
        worker = Worker(events, pipe, lock=threading.RLock(), poll_s=config.poll_s, batch_max=config.batch_max,
                        batch_min=config.batch_min, linger_s=config.linger_s, live=False, wall=wall)
        return Agent(worker, events, wall)

    def measure(self, a: Agent, traffic: _Traffic, per_poll: int, events: int) -> tuple[float, float]:
        """CPU per event handled by the worker, and events per drain, over ``events`` events."""
        poll_s = self.config.poll_s
        arrivals = [traffic.drain(per_poll) for _ in range(max(events // per_poll, 8))]
        spent, handled, drains = 0.0, 0, 0
        for queued in arrivals:
            a.wall.now += poll_s
            for e in queued:  # the callers' side, not timed
                a.queue.put(e)
            c0 = time.process_time()
            n = a.worker.step()
            if a.wall.now >= a.next_scrape:  # what Monitor.export_for_scrape does before a scrape reads
                a.worker.pipeline.export_pending()
                a.next_scrape += SCRAPE_S
            spent += time.process_time() - c0
            handled, drains = handled + n, drains + (n > 0)
        return spent / max(handled, 1), handled / max(drains, 1)


def cost_table(quick: bool, kinds: tuple[str, ...], table: Callable[[list[tuple[str, ...]], tuple[str, ...]], str]) -> tuple[str, str]:
    """The introduction and the markdown table (made by ``table(rows, header)``) of the cost of
    detectors ``kinds``."""
    setup = Setup.default()
    output, config, tick = setup.output, setup.config, setup.tick
    reps = 3 if quick else 5
    measured_events = 20_000 if quick else 60_000

    def agent(with_dets: bool) -> Agent:
        return setup.agent(kinds if with_dets else ())

    def measure(a: Agent, traffic: _Traffic, per_poll: int) -> tuple[float, float]:
        return setup.measure(a, traffic, per_poll, measured_events)

    rows: list[tuple[str, ...]] = []
    for per_poll in ((64, 256) if quick else (64, 256, 1024, 8192)):
        rate = per_poll / config.poll_s
        cells = [f"{rate:,.0f}"]
        # first hour: fresh agents, the windows filling
        best = {False: np.inf, True: np.inf}
        size = 0.0
        for _ in range(reps):
            for with_dets in (False, True):  # alternated so that machine load hits both alike
                a = agent(with_dets)
                traffic = _Traffic(rate, np.random.default_rng(1), output)
                measure(a, traffic, per_poll)  # warm-up: imports, first allocations
                spent, size = measure(a, traffic, per_poll)
                best[with_dets] = min(best[with_dets], spent)
        cells += [f"{size:,.0f}", f"{best[False] * 1e6:.2f}", f"{best[True] * 1e6:.2f}", f"**{(best[True] - best[False]) * 1e6:.2f}**"]
        # steady state: an hour of traffic in the windows, then the same measurement
        states = {}
        for with_dets in (False, True):
            a = agent(with_dets)
            traffic = _Traffic(rate, np.random.default_rng(1), output)
            traffic.prefill(a.worker.pipeline, WINDOW_S)
            measure(a, traffic, per_poll)
            states[with_dets] = (a, traffic)
        best = {False: np.inf, True: np.inf}
        for _ in range(reps):
            for with_dets in (False, True):
                best[with_dets] = min(best[with_dets], measure(*states[with_dets], per_poll)[0])
        added = best[True] - best[False]
        cells += [f"{best[False] * 1e6:.2f}", f"{best[True] * 1e6:.2f}", f"**{added * 1e6:.2f}**", f"{added * rate * 1e3:.2f}"]
        rows.append(tuple(cells))
        print(" | ".join(cells), flush=True)
    header = ("events/s", "events per drain",
              "first hour: worker alone (us/event)", "with issue-3 detectors", "added (target < 2)",
              "steady state: worker alone (us/event)", "with issue-3 detectors", "added (target < 2)",
              "added, steady state (ms of CPU per s)")
    intro = COST_INTRO.format(tick=tick, n=len(kinds), kinds=", ".join(f"`{k}`" for k in kinds), reps=reps)
    note = (f"The worker wakes every {config.poll_s:g} s (`queue.poll`) and drains when {config.batch_min:,} events wait "
            f"(`queue.batch_min`) or events have waited {config.linger_s:g} s (`queue.linger`). The detectors export "
            f"their figures when a scrape asks (every {SCRAPE_S:g} s here, its CPU counted with the worker's), at every rule "
            f"tick, and at most every {config.export_interval_s:g} s while events flow (`queue.export_interval`). The benchmark runs the worker's own loop step (`Worker.step`) once per poll, with the events of "
            "that poll queued and the wall clock moved by one poll, event time at the row's rate: drains, exports and "
            "recomputations happen as often as live traffic at that rate makes them. First hour: the windows (1 h) are "
            "filling, so most exports recompute every windowed figure; steady state: the windows hold an hour of "
            "traffic (fed to the detectors first), and figures are recomputed when a window slides (every 5 minutes), "
            "grows by 5%, or a rule tick comes.")
    return intro, table(rows, header) + "\n\n" + note


def report_args(doc: str, results: "os.PathLike[str]", phases: tuple[str, ...], reps: int = 5) -> argparse.Namespace:
    """The command line shared by the cost reports that split or vary this benchmark at one rate
    (``confidence_cost_breakdown.py``, ``segment_drift_cost.py``): ``--rate``, ``--phase`` (default
    ``phases``), ``--reps``, ``--events``, ``--write`` (to ``results``)."""
    from pathlib import Path

    results = Path(results)
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--rate", type=float, default=256.0, help="events per second (a multiple of 4: events per 0.25 s poll)")
    ap.add_argument("--phase", choices=("first", "steady"), action="append",
                    help=f"first hour, steady state (default {' and '.join(phases)})")
    ap.add_argument("--reps", type=int, default=reps, help="alternating runs (best of)")
    ap.add_argument("--events", type=int, default=60_000, help="events per measured run")
    ap.add_argument("--write", action="store_true", help=f"also write the report to {results.relative_to(results.parents[2])}")
    args = ap.parse_args()
    args.phase = tuple(args.phase or phases)
    return args


def heading(rate: float, phase: str) -> str:
    """A report section's title: the rate and the phase."""
    return f"## {rate:,.0f} events/s, {'first hour' if phase == 'first' else 'steady state'}"


def write_report(results: "os.PathLike[str]", title: str, intro: str, parts: list[str], started: float) -> None:
    """Write a report: its title, introduction, the sections of each phase, and the run's time and
    the machine's load (CPU time still moves when the machine is shared)."""
    from pathlib import Path

    Path(results).write_text(
        f"# {title}\n\n{intro}\n\n" + "\n\n".join(parts)
        + f"\n\n_Run time {time.monotonic() - started:.0f} s; load average at the end {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores (timings are inflated when the machine is shared)._\n")
