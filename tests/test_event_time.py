"""Event time: windows, ticks and rates follow the events' timestamps, not the wall clock."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_replayed_log_gives_the_same_metrics_as_live():
    """Same events with the default detectors and the rule packs, once drained in one go (replay)
    and once in small chunks (live): every figure the rules see at every evaluation tick is the
    same, and so are the alert transitions."""
    from prometheus_client import CollectorRegistry

    from monitor.config import MonitorConfig, RulesConfig
    from monitor.reference import Reference
    from tests.conftest import REPO_ROOT

    rng = np.random.default_rng(0)
    ref_x = rng.normal(size=(2000, 3))
    ref_p = rng.dirichlet([1, 1, 1], size=2000)
    reference = Reference.from_arrays(ref_x, scores=ref_p, labels=ref_p.argmax(1))
    t0 = 1_700_000_000.0
    events = [(t0 + i * 0.5, rng.normal(size=3) * (1.0 if i < 1200 else 1.8), rng.dirichlet([1, 1, 1])) for i in range(2400)]
    packs = tuple(str(p) for p in sorted((REPO_ROOT / "rules").glob("*.yml")))
    batching_dependent = ("processing", "rows_per_batch", "rule_evaluation_seconds", "queue_depth")

    def run(chunk: int) -> tuple[list, list]:
        cfg = MonitorConfig(model="et", rules=RulesConfig(files=packs, interval_s=15.0, log_alerts=False), client_id_salt="s")
        mon = Monitor(config=cfg, reference=reference, registry=CollectorRegistry(), start_worker=False, live=False)
        seen: list = []
        transitions: list = []
        scrape = mon._scrape

        def recording_scrape(t: float) -> None:
            scrape(t)
            seen.append((t, {(n, tuple(sorted(labels.items()))): v for n, labels, v in mon.store.samples()
                             if not any(word in n for word in batching_dependent)}))

        mon._scrape = recording_scrape  # type: ignore[method-assign]
        mon.transition_listeners.append(lambda tr: transitions.append(tr.to_dict()))
        try:
            for i, (ts, x, p) in enumerate(events):
                mon.observe(x, p, timestamp=ts, request_id=str(i), client=f"c{i % 7}")
                if i % 10 == 9:
                    mon.feedback([str(i - 5)], [int(i % 3)], timestamp=ts)
                if (i + 1) % chunk == 0:
                    mon.flush()
            mon.flush()
            return seen, transitions
        finally:
            mon.close()

    replayed, replayed_alerts = run(chunk=5000)
    live, live_alerts = run(chunk=7)
    assert len(replayed) == len(live) > 70
    for (t1, a), (t2, b) in zip(replayed, live):
        assert t1 == t2
        assert a.keys() == b.keys(), f"series differ at tick {t1 - t0:.0f} s: {set(a) ^ set(b)}"
        # equal up to the order of floating-point summation
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), f"figures differ at tick {t1 - t0:.0f} s"
    assert replayed_alerts == live_alerts
    assert {t["alertname"] for t in replayed_alerts if t["to"] == "firing"} >= {"ModelInputDrift"}


def test_last_event_timestamp_is_event_time_not_wall_time(registry):
    mon = Monitor(model="ts", registry=registry, start_worker=False, live=False)
    try:
        mon.observe([1.0], [0.5, 0.5], timestamp=1234.5)
        mon.observe([1.0], [0.5, 0.5], timestamp=1000.0)
        mon.flush()
        assert mon.store.value("monitor_last_event_timestamp_seconds") == 1234.5
    finally:
        mon.close()
