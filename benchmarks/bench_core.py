"""Foundation benchmarks: the decorator's hot path, the worker's throughput, memory over a long stream.

Every figure is a ratio against a baseline measured in the same process, in the same run:

* hot path: added cost per call of ``@watch`` around a trivial single-row predict, against the same
  function bare and against one prometheus-client ``Histogram.observe`` per call (the least a user
  would otherwise add), and against a bare wrapper that timestamps and appends to a deque (the floor);
* worker: rows per second of one core at 32 features and 10 classes, with the default detectors;
* memory: RSS after 10 million events against RSS after 100,000.

Run: ``.venv/bin/python benchmarks/bench_core.py [--quick]``
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import per_call_ns, per_call_samples_ns, rss_mib, table  # noqa: E402


def hot_path(n: int) -> list[tuple[str, ...]]:
    from prometheus_client import CollectorRegistry, Histogram

    from monitor import Monitor
    from monitor.config import MonitorConfig, QueueConfig

    row = np.ones(32)
    probs = np.full(10, 0.1)

    def predict(x):
        return probs

    hist = Histogram("bench_latency_seconds", "x", registry=CollectorRegistry())

    def predict_with_histogram(x):
        t0 = time.perf_counter()
        out = predict(x)
        hist.observe(time.perf_counter() - t0)
        return out

    dq: collections.deque = collections.deque()

    def predict_floor(x):
        t0 = time.perf_counter()
        out = predict(x)
        dq.append((time.time(), x, out, time.perf_counter() - t0))
        return out

    # The worker is not started while timing: the figure is what the caller's thread pays. The
    # worker's own cost is measured separately (rows/s of CPU below); on a multi-core machine it
    # runs beside the caller, sharing only the GIL.
    mon = Monitor(config=MonitorConfig(model="bench", queue=QueueConfig(capacity=20_000_000)),
                  registry=CollectorRegistry(), detectors=[], start_worker=False)
    watched = mon.watch(predict)

    bare_ns = per_call_ns(lambda: predict(row), n)
    hist_ns = per_call_ns(lambda: predict_with_histogram(row), n)
    dq.clear()
    floor_ns = per_call_ns(lambda: predict_floor(row), n)
    dq.clear()
    watch_ns = per_call_ns(lambda: watched(row), n)
    samples_bare = per_call_samples_ns(lambda: predict(row), n)
    samples_watch = per_call_samples_ns(lambda: watched(row), n)
    mon.flush()
    processed = mon.store.value("monitor_predictions") or 0.0
    mon.close()
    base_med = statistics.median(samples_bare)
    added_p50 = statistics.median(samples_watch) - base_med
    added_p99 = float(np.percentile(samples_watch, 99)) - base_med
    hist_added = hist_ns - bare_ns
    rows = [
        ("bare predict (baseline)", f"{bare_ns:.0f}", "-", "-"),
        ("+ Histogram.observe (what a user would add)", f"{hist_ns:.0f}", f"{hist_added:.0f}", "1.00"),
        ("+ timestamp & deque.append (floor)", f"{floor_ns:.0f}", f"{floor_ns - bare_ns:.0f}", f"{(floor_ns - bare_ns) / hist_added:.2f}"),
        ("@watch", f"{watch_ns:.0f}", f"{watch_ns - bare_ns:.0f}", f"{(watch_ns - bare_ns) / hist_added:.2f}"),
    ]
    print(table(rows, ("per call", "ns/call", "added ns", "added / Histogram.observe")))
    print(f"\n@watch added cost per call, timed one by one: p50 {added_p50 / 1000:.2f} us, p99 {added_p99 / 1000:.2f} us "
          f"({processed:.0f} events queued and then processed)")
    return rows


def _worker_setup(per_event_rows: int, n_rows: int):
    from monitor.detectors.context import DetectorContext
    from monitor.detectors.defaults import default_detectors
    from monitor.detectors.registry import create
    from monitor.reference import Reference
    from monitor.schema import OutputSpec, Schema

    rng = np.random.default_rng(0)
    d, k = 32, 10
    schema = Schema.numeric([f"x{i}" for i in range(d)])
    output = OutputSpec("probabilities", tuple(f"c{i}" for i in range(k)))
    ref_x = rng.normal(size=(5000, d))
    ref_p = rng.dirichlet(np.ones(k) * 0.3, size=5000)
    reference = Reference.from_arrays(ref_x, numeric_names=schema.numeric_names, scores=ref_p,
                                      labels=ref_p.argmax(1), classes=output.classes)
    ctx = DetectorContext(schema, output)

    def detectors(kinds):
        return [create(c.kind, reference=reference, params=dict(c.params), context=ctx)
                for c in default_detectors(output, reference) if c.kind in kinds]

    all_kinds = [c.kind for c in default_detectors(output, reference)]
    n_events = n_rows // per_event_rows
    xs = rng.normal(size=(n_events, per_event_rows, d)) if per_event_rows > 1 else rng.normal(size=(n_events, d))
    ps = rng.dirichlet(np.ones(k) * 0.3, size=(n_events, per_event_rows) if per_event_rows > 1 else n_events)
    events = [(0, 1_700_000_000.0 + i * 0.001, xs[i], ps[i], 0.001, f"c{i % 50}", str(i), None, None) for i in range(n_events)]
    return schema, output, detectors, all_kinds, events


def _rows_per_cpu_second(schema, output, dets, events, per_event_rows: int) -> float:
    from monitor.ingest import BatchBuilder
    from monitor.pipeline import Pipeline
    from monitor.store import MetricStore

    pipe = Pipeline(MetricStore("bench"), BatchBuilder(schema, output), dets)
    chunk = 8192 if per_event_rows == 1 else max(1, 8192 // per_event_rows)
    pipe.process(events[:chunk])  # warm-up (imports, first allocations)
    t0 = time.process_time()
    for s in range(chunk, len(events), chunk):
        pipe.process(events[s:s + chunk])
    cpu = time.process_time() - t0
    return (len(events) - chunk) * per_event_rows / cpu


def worker_throughput(n_rows: int, per_event_rows: int) -> list[tuple[str, ...]]:
    """Rows per CPU-second of the worker: the foundation alone, then with each default detector
    added one at a time (its marginal cost), then with all of them."""
    schema, output, detectors, all_kinds, events = _worker_setup(per_event_rows, n_rows)
    bare = _rows_per_cpu_second(schema, output, [], events, per_event_rows)
    rows = [("foundation (queue, batches, core metrics, label joins)", f"{bare:,.0f}", "-", f"{1e6 / bare:.2f}")]
    for kind in all_kinds:
        r = _rows_per_cpu_second(schema, output, detectors([kind]), events, per_event_rows)
        rows.append((f"+ {kind}", f"{r:,.0f}", f"{1e6 / r - 1e6 / bare:.2f}", f"{1e6 / r:.2f}"))
    no_probe = [k for k in all_kinds if k != "probing"]
    r = _rows_per_cpu_second(schema, output, detectors(no_probe), events, per_event_rows)
    rows.append(("all defaults but probing", f"{r:,.0f}", f"{1e6 / r - 1e6 / bare:.2f}", f"{1e6 / r:.2f}"))
    r = _rows_per_cpu_second(schema, output, detectors(all_kinds), events, per_event_rows)
    rows.append(("all defaults", f"{r:,.0f}", f"{1e6 / r - 1e6 / bare:.2f}", f"{1e6 / r:.2f}"))
    try:  # control: the same with BLAS held to one thread in this process only (never in the library)
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        # equal to "all defaults" when no product wakes BLAS threads; these threads spin after each
        # product and once doubled the detectors' CPU (see monitor.stats.matmul)
        with threadpool_limits(1, "blas"):
            r = _rows_per_cpu_second(schema, output, detectors(all_kinds), events, per_event_rows)
        rows.append(("all defaults, BLAS held to 1 thread (control)", f"{r:,.0f}", f"{1e6 / r - 1e6 / bare:.2f}",
                     f"{1e6 / r:.2f}"))
    print(f"worker, {per_event_rows} row(s) per call, 32 features, 10 classes, drains of up to 8,192 events:")
    print(table(rows, ("configuration", "rows/s of one core", "added us/row", "us/row")))
    return rows


def memory(total_events: int) -> list[tuple[int, float]]:
    """RSS at checkpoints of a long stream (every event with a request id and one of 5,000 clients).

    The bounded structures (the label joiner's 100,000 remembered predictions, per-client state)
    fill during the first ~10^5-10^6 events; after that RSS must stay flat whatever the length."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.config import MonitorConfig, QueueConfig

    rng = np.random.default_rng(1)
    mon = Monitor(config=MonitorConfig(model="mem", queue=QueueConfig(capacity=200_000)), registry=CollectorRegistry(),
                  start_worker=False, live=False)
    xs = rng.normal(size=(1000, 32))
    ps = rng.dirichlet(np.ones(10), size=1000)
    marks = {100_000, 1_000_000, total_events // 2, total_events}
    points: list[tuple[int, float]] = []
    t = 1_700_000_000.0
    for i in range(total_events):
        mon.observe(xs[i % 1000], ps[i % 1000], timestamp=t + i * 0.01, request_id=str(i), client=f"c{i % 5000}")
        if i % 10_000 == 9_999:
            mon.flush()
            if i + 1 in marks:
                points.append((i + 1, rss_mib()))
    mon.close()
    base = points[0][1]
    print("memory: RSS " + ", ".join(f"{rss:.1f} MiB after {n:,} events ({(rss / base - 1) * 100:+.1f}%)" for n, rss in points))
    if len(points) > 2:
        print(f"        from 1,000,000 to {points[-1][0]:,} events: {(points[-1][1] / points[1][1] - 1) * 100:+.1f}%")
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer calls and 1M instead of 10M events")
    args = ap.parse_args()
    hot_path(50_000 if args.quick else 300_000)
    print()
    worker_throughput(60_000 if args.quick else 200_000, 1)
    print()
    worker_throughput(60_000 if args.quick else 200_000, 100)
    print()
    memory(1_000_000 if args.quick else 10_000_000)


if __name__ == "__main__":
    main()
