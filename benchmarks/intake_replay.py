"""In-process replay of ``bench_intake.py``'s traffic, for profiles and instruction counts.

The same NDJSON bodies and the same sidecar configuration as ``bench_intake.py`` (``light`` or
``full``) go through the intake's code without HTTP: :func:`~monitor.server.intake.decode_events`,
:func:`~monitor.server.payloads.unsafe_json`, :func:`~monitor.server.intake.parse_batch`,
``Sidecar.enqueue``; the worker is not started, the replay drains it itself after every
``--drain-every`` bodies (the live worker drains what has come since its last wake-up), and
exports the figures once at the end as a scrape would. Deterministic apart from the wall clock
(event times), so instruction counts compare two versions of the code on a shared machine: the
instructions of ``--bodies N`` minus those of ``--bodies 0`` (start-up, imports, calibration and
the warm-up are the same in both) are the instructions of N bodies::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out .venv/bin/python benchmarks/intake_replay.py --bodies 200

or, counting the measured bodies alone, with a two-line library whose ``cg_toggle`` is callgrind's
``CALLGRIND_TOGGLE_COLLECT`` (``#include <valgrind/callgrind.h>`` / ``void cg_toggle(void) {
CALLGRIND_TOGGLE_COLLECT; }``, built with ``gcc -shared -fPIC -o /tmp/libcg.so cg.c``)::

    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python benchmarks/intake_replay.py --bodies 100 --toggle /tmp/libcg.so

``--profile`` prints cProfile's cumulative shares of the measured part; without it the replay
prints the CPU time per event of the measured part.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_intake import _configs, bodies  # noqa: E402


def build(which: str):  # noqa: ANN201 - a Sidecar, imported lazily
    import os

    import yaml

    from monitor.config import load_config
    from monitor.server import build_sidecar

    cfg, folder = _configs()[which]
    folder = folder or Path(__import__("tempfile").mkdtemp(prefix="monitor-replay-"))
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        sidecar = build_sidecar(load_config(path), monitor_factory=_factory)
        sidecar.load()
    finally:
        os.chdir(cwd)
    if sidecar.load_error:
        raise SystemExit(sidecar.load_error)
    return sidecar


def _factory(cfg):  # noqa: ANN001, ANN202
    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor

    return Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False), live=True, start_worker=False)


class Stages:
    """CPU time (``time.process_time``) per stage of the replay: the intake's four steps, and in
    the worker each detector's calls through the pipeline's guard (update, advance, export...),
    the rest of the worker being the conversion, the queue and the pipeline's own work."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def watch_detectors(self, pipeline) -> None:  # noqa: ANN001
        guard = pipeline._guard

        def timed(det, fn, arg):  # noqa: ANN001, ANN202
            t0 = time.process_time()
            try:
                return guard(det, fn, arg)
            finally:
                self.add(f"worker: detector {det.kind}", time.process_time() - t0)
        pipeline._guard = timed

    def table(self, events: int) -> str:
        total = self.cpu.get("total", 0.0)
        rows = ["| stage | CPU us per event | share |", "|---|---|---|"]
        for name, sec in sorted(self.cpu.items(), key=lambda kv: -kv[1]):
            if name != "total":
                rows.append(f"| {name} | {sec / events * 1e6:.2f} | {sec / total:.1%} |")
        rows.append(f"| total | {total / events * 1e6:.2f} | 100% |")
        return "\n".join(rows)


def feed(sidecar, payloads: list[bytes], drain_every: int, stages: Stages | None = None) -> int:  # noqa: ANN001
    from monitor.server.intake import decode_events, parse_batch
    from monitor.server.payloads import unsafe_json

    mon = next(iter(sidecar.monitors.values()))
    clock = time.process_time
    add = stages.add if stages is not None else (lambda name, seconds: None)
    n = 0
    for i, body in enumerate(payloads, 1):
        t0 = clock()
        values = decode_events(body, "application/x-ndjson")
        t1 = clock()
        assert unsafe_json(body, values) is None
        t2 = clock()
        items = parse_batch(sidecar, values, default_model=None, endpoint="events")
        t3 = clock()
        n += sidecar.enqueue(items, "events", admit=False)
        t4 = clock()
        add("intake: JSON decode", t1 - t0)
        add("intake: unsafe_json", t2 - t1)
        add("intake: validation (parse_batch)", t3 - t2)
        add("intake: enqueue (columnar, queue)", t4 - t3)
        if i % drain_every == 0:
            mon.worker.drain_once()
            add("worker", clock() - t4)
    t4 = clock()
    mon.worker.drain_once()
    add("worker", clock() - t4)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=("light", "full"), default="full")
    ap.add_argument("--bodies", type=int, default=400, help="bodies of 100 events measured")
    ap.add_argument("--warm", type=int, default=100, help="bodies fed before measuring (clients' histories fill)")
    ap.add_argument("--drain-every", type=int, default=80,
                    help="bodies between two drains of the worker (the live worker drains ~7,400 events at a time "
                         "when bench_intake saturates it: monitor_worker_rows_per_batch)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's cumulative shares of the measured part")
    ap.add_argument("--stages", action="store_true", help="print the CPU time per intake stage and per detector")
    ap.add_argument("--toggle", metavar="LIB", help="a library whose cg_toggle() toggles callgrind's collection, "
                                                    "called around the measured bodies")
    args = ap.parse_args()
    toggle = __import__("ctypes").CDLL(args.toggle).cg_toggle if args.toggle else (lambda: None)
    sidecar = build(args.config)
    mon = next(iter(sidecar.monitors.values()))
    all_bodies = bodies(200)
    seq = [all_bodies[i % len(all_bodies)] for i in range(args.warm + args.bodies)]
    feed(sidecar, seq[:args.warm], args.drain_every)
    prof = cProfile.Profile() if args.profile else None
    toggle()
    t0 = time.process_time()
    if prof:
        prof.enable()
    stages = Stages() if args.stages else None
    if stages is not None:
        stages.watch_detectors(mon.pipeline)
    n = feed(sidecar, seq[args.warm:], args.drain_every, stages) if args.bodies else 0
    t_export = time.process_time()
    mon.export_for_scrape()
    if stages is not None:
        stages.add("worker", time.process_time() - t_export)
    if prof:
        prof.disable()
    cpu = time.process_time() - t0
    toggle()
    print(f"{args.config}: {n:,} events measured, CPU {cpu / max(n, 1) * 1e6:.2f} us per event")
    if stages is not None:
        worker = stages.cpu.get("worker", 0.0)
        dets = sum(v for k, v in stages.cpu.items() if k.startswith("worker: detector"))
        stages.cpu["worker"] = worker - dets
        stages.cpu = {("worker: the rest (batch build, labels, queue, pipeline)" if k == "worker" else k): v
                      for k, v in stages.cpu.items()}
        stages.cpu["total"] = cpu
        print(stages.table(max(n, 1)))
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()
