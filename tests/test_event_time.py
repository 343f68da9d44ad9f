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


@pytest.mark.timeout(60)
def test_a_gap_of_decades_in_event_time_costs_a_bounded_number_of_ticks():
    """A first event stamped 0 (or in milliseconds) before real ones must not make the worker
    evaluate the rules every 15 s across the whole gap (10^8 ticks: a hang): a gap beyond
    MAX_CATCH_UP_TICKS evaluates only its last ticks and counts the ones it skipped."""
    from monitor.pipeline import MAX_CATCH_UP_TICKS

    store = MetricStore("m")
    seen: list[float] = []
    pipe = Pipeline(store, BatchBuilder(None, OutputSpec()), tick_s=15.0, on_tick=seen.append)
    ev = lambda t: (0, t, np.ones(2), np.array([0.5, 0.5]), None, None, None, None, None)  # noqa: E731
    pipe.process([ev(0.0)])
    pipe.process([ev(1_700_000_000.0)])
    assert len(seen) == MAX_CATCH_UP_TICKS
    assert seen[-1] == 1_700_000_000.0 - 1_700_000_000.0 % 15.0 and np.all(np.diff(seen) == 15.0)
    skipped = 1_700_000_000.0 // 15.0 - MAX_CATCH_UP_TICKS
    assert store.value("monitor_rule_ticks_skipped") == skipped
    assert store.value("monitor_predictions") == 2  # nothing lost: both events are processed
    # ordinary gaps are evaluated tick by tick, as before
    pipe.process([ev(1_700_000_000.0 + 15.0 * 100)])
    assert len(seen) == MAX_CATCH_UP_TICKS + 100


def test_events_stamped_more_than_ten_minutes_ahead_are_refused_and_counted():
    """Milliseconds sent as seconds put an event 50,000 years ahead, a client whose time zone is
    read as UTC an hour ahead: either would move event time there and expire every window (an
    hour ahead blinded every windowed figure for an hour). Such events are refused, counted, and
    the others processed; a clock a few minutes ahead is within the grace."""
    import time as _time

    store = MetricStore("m")
    pipe = Pipeline(store, BatchBuilder(None, OutputSpec()), tick_s=15.0, on_tick=lambda t: None)
    now = _time.time()
    ev = lambda t: (0, t, np.ones(2), np.array([0.5, 0.5]), None, None, None, None, None)  # noqa: E731
    pipe.process([ev(now), ev(now * 1000), ev(now + 3600), ev(now + 300)])
    assert store.value("monitor_predictions") == 2
    assert store.value("monitor_rows_rejected", labels=("future_timestamp",)) == 2
    assert pipe.clock == now + 300


def test_refused_timestamps_are_logged_once_per_reason_with_an_example_and_counted(caplog):
    """Rows refused for a time ahead of the clock or not finite were only counted: the runbook of
    ModelInputsUnreadable sends on-call to the agent's log for the fix, where nothing was said. The
    first refusal of each reason is logged with an example and the fix; the rest, in this batch or
    later ones, are counted without a line."""
    import logging
    import time as _time

    store = MetricStore("m")
    pipe = Pipeline(store, BatchBuilder(None, OutputSpec()), tick_s=15.0, on_tick=lambda t: None)
    now = _time.time()
    ev = lambda t: (0, t, np.ones(2), np.array([0.5, 0.5]), None, None, None, None, None)  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="monitor"):
        for _ in range(3):
            pipe.process([ev(now), ev(now * 1000), ev(now * 1000), ev(float("nan")), ev(float("inf"))])
    lines = [r.getMessage() for r in caplog.records if "row(s) refused" in r.getMessage()]
    assert len(lines) == 2, lines
    future = next(m for m in lines if "(future_timestamp)" in m)
    assert "2 row(s)" in future and f"timestamp {now * 1000!r}" in future and "milliseconds" in future, future
    invalid = next(m for m in lines if "(invalid_timestamp)" in m)
    assert "2 row(s)" in invalid and "timestamp nan" in invalid, invalid
    assert store.value("monitor_rows_rejected", labels=("future_timestamp",)) == 6
    assert store.value("monitor_rows_rejected", labels=("invalid_timestamp",)) == 6
    assert store.value("monitor_predictions") == 3


def test_a_monitor_whose_clock_runs_ahead_accepts_its_own_events():
    """A simulation passes its own clock to the Monitor (the demo runs event time 30 times faster):
    the future bound is judged against that clock when it is ahead of the wall clock, or the
    monitor refused its own rows (40 of 150 after 15 s of a clock 60 times faster, review)."""
    import time as _time

    from prometheus_client import CollectorRegistry

    ahead = _time.time() + 7200.0
    mon = Monitor(config={"model": "m"}, registry=CollectorRegistry(), clock=lambda: ahead, live=False,
                  start_worker=False)
    try:
        mon.observe(np.ones((3, 2)), np.array([[0.3, 0.7]] * 3))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 3
        assert mon.store.value("monitor_rows_rejected", labels=("future_timestamp",)) is None
    finally:
        mon.close()


def test_replay_of_a_growing_log_moves_its_future_bound_with_the_wall_clock(monkeypatch):
    """``monitor replay -`` reads a log still being written: an event written 20 minutes after the
    replay started is not 'ahead' (the bound was computed once at the start, review)."""
    import json
    import time as _time

    from monitor import replay

    start = _time.time()
    now = [start]
    monkeypatch.setattr(replay.time, "time", lambda: now[0])

    def growing():
        for minutes in (0, 20, 40):
            now[0] = start + 60.0 * minutes
            yield json.dumps({"type": "prediction", "model": "m", "timestamp": now[0], "inputs": [[1.0, 2.0]],
                              "outputs": [[0.4, 0.6]]})

    summary = replay.ReplaySummary()
    events = list(replay.read_events(growing(), "m", summary))
    assert len(events) == 3 and not summary.refused, summary


def test_unreadable_timestamps_of_every_call_are_logged_once_each_and_counted(caplog):
    """``Monitor.observe`` said once that its ``timestamp=`` was not a time; ``observe_error`` and
    the ``ForwardingMonitor`` of a multi-worker server dropped such calls with a counter and no line."""
    import logging

    from prometheus_client import CollectorRegistry

    from monitor.forwarding import ForwardingMonitor

    mon = Monitor(config={"model": "m"}, registry=CollectorRegistry(), live=False, start_worker=False)
    fwd = ForwardingMonitor("f", "unix:///nonexistent/monitor.sock", start=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for m in (mon, fwd):
                for _ in range(3):
                    assert m.observe([1.0, 2.0], [0.5, 0.5], timestamp="yesterday") is False
                    assert m.observe_error(ValueError("x"), timestamp=[1]) is False
        lines = [r.getMessage() for r in caplog.records if "is not a time" in r.getMessage()]
        assert len(lines) == 4, lines
        for model in ("'m'", "'f'"):
            assert any(model in m and "observe(timestamp='yesterday')" in m for m in lines), lines
            assert any(model in m and "observe_error(timestamp=[1])" in m for m in lines), lines
        for m in (mon, fwd):
            dropped, _ = m.queue.counters()
            assert dropped["invalid_timestamp"] == 6
    finally:
        mon.close()
        fwd.close()
