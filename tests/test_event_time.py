"""Event time: windows, ticks and rates follow the events' timestamps, not the wall clock."""

from __future__ import annotations

import numpy as np

from monitor import Monitor
from monitor.ingest import BatchBuilder
from monitor.pipeline import Pipeline
from monitor.schema import OutputSpec
from monitor.store import MetricStore


def test_ticks_see_exactly_the_events_before_them():
    store = MetricStore("m")
    seen = []
    pipe = Pipeline(store, BatchBuilder(None, OutputSpec()), tick_s=10.0,
                    on_tick=lambda t: seen.append((t, store.value("monitor_predictions"))))
    # out of order within the drain, spanning three ticks
    times = [3.0, 1.0, 12.0, 25.0, 9.5, 19.999, 20.0, 31.0]
    pipe.process([(0, t, np.ones(2), np.array([0.5, 0.5]), None, None, None, None, None) for t in times])
    assert seen == [(10.0, 3.0), (20.0, 5.0), (30.0, 7.0)]
    pipe.advance(45.0)
    assert seen[-1] == (40.0, 8.0)


def test_replayed_log_gives_the_same_metrics_as_live(registry):
    """Same events, once drained at once (replay) and once in small chunks (live): same figures."""
    rng = np.random.default_rng(0)
    events = [(float(1_700_000_000 + i * 0.5), rng.random(3), rng.dirichlet([1, 1, 1])) for i in range(600)]

    def run(chunk: int) -> dict:
        from prometheus_client import CollectorRegistry

        mon = Monitor(model="et", registry=CollectorRegistry(), start_worker=False, live=False)
        try:
            for i, (ts, x, p) in enumerate(events):
                mon.observe(x, p, timestamp=ts, request_id=str(i))
                if (i + 1) % chunk == 0:
                    mon.flush()
            mon.flush()
            return {name: v for name, labels, v in mon.store.samples() if "processing" not in name and "rows_per_batch" not in name}
        finally:
            mon.close()

    assert run(chunk=1000) == run(chunk=7)


def test_last_event_timestamp_is_event_time_not_wall_time(registry):
    mon = Monitor(model="ts", registry=registry, start_worker=False, live=False)
    try:
        mon.observe([1.0], [0.5, 0.5], timestamp=1234.5)
        mon.observe([1.0], [0.5, 0.5], timestamp=1000.0)
        mon.flush()
        assert mon.store.value("monitor_last_event_timestamp_seconds") == 1234.5
    finally:
        mon.close()
