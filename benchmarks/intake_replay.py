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


def feed(sidecar, payloads: list[bytes], drain_every: int) -> int:  # noqa: ANN001
    from monitor.server.intake import decode_events, parse_batch
    from monitor.server.payloads import unsafe_json

    mon = next(iter(sidecar.monitors.values()))
    n = 0
    for i, body in enumerate(payloads, 1):
        values = decode_events(body, "application/x-ndjson")
        assert unsafe_json(body, values) is None
        items = parse_batch(sidecar, values, default_model=None, endpoint="events")
        n += sidecar.enqueue(items, "events", admit=False)
        if i % drain_every == 0:
            mon.worker.drain_once()
    mon.worker.drain_once()
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
    n = feed(sidecar, seq[args.warm:], args.drain_every) if args.bodies else 0
    mon.export_for_scrape()
    if prof:
        prof.disable()
    cpu = time.process_time() - t0
    toggle()
    print(f"{args.config}: {n:,} events measured, CPU {cpu / max(n, 1) * 1e6:.2f} us per event")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()
