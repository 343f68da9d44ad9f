"""A live agent's rule ticks wait for its clock. Events stamped up to 10 minutes ahead are taken
(MAX_FUTURE_S, for senders whose clock drifts); one of them moved the ticks to its time at once:
every tick up to it was evaluated in a moment, so an alert's ``for: 3m`` passed in a second (a
page sent with a startsAt minutes in the future), and then no tick came until the wall clock
caught up, minutes in which a firing alert could not resolve nor a new one fire (and with them
the sidecar's own alerts, when that model reads the ``_sidecar`` series). A replay (``live=False``)
and an explicit ``advance()`` still move the ticks as their times say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import MonitorConfig, RulesConfig
from monitor.ingest import BatchBuilder
from monitor.pipeline import Pipeline
from monitor.schema import OutputSpec
from monitor.store import MetricStore

NOW = 2_000_000_000.0  # the fake clock, ahead of the real one (the agent judges by the later of both)


def _ev(t: float) -> tuple:
    return (0, t, np.ones(2), np.array([0.5, 0.5]), None, None, None, None, None)


def test_a_live_pipeline_ticks_no_further_than_its_clock() -> None:
    clock = [NOW]
    seen: list[float] = []
    pipe = Pipeline(MetricStore("m"), BatchBuilder(None, OutputSpec()), tick_s=15.0, on_tick=seen.append,
                    now=lambda: clock[0], live_ticks=True)
    pipe.process([_ev(NOW)])
    pipe.process([_ev(NOW + 5), _ev(NOW + 500)])  # a sender 500 s ahead, within the grace: taken
    assert pipe.clock == NOW + 500 and seen == [], seen  # no tick beyond NOW
    assert pipe.store.value("monitor_predictions") == 3
    for k in range(1, 5):  # the clock goes on: one tick every 15 s, as before the event came
        clock[0] = NOW + 15 * k
        pipe.advance(clock[0])
    assert [t - NOW for t in seen] == [10.0, 25.0, 40.0, 55.0], [t - NOW for t in seen]


def test_a_replay_pipeline_ticks_through_its_events() -> None:
    seen: list[float] = []
    pipe = Pipeline(MetricStore("m"), BatchBuilder(None, OutputSpec()), tick_s=15.0, on_tick=seen.append,
                    now=lambda: NOW)
    pipe.process([_ev(NOW), _ev(NOW + 500)])
    assert len(seen) == 33 and seen[-1] <= NOW + 500, seen


def test_an_event_stamped_minutes_ahead_does_not_cut_an_alerts_for(tmp_path: Path) -> None:
    rules = tmp_path / "r.yml"
    rules.write_text("""groups:
  - name: g
    rules:
      - alert: Errors
        expr: sum by (model) (monitor_errors_total) > 0
        for: 3m
""")
    clock = [NOW]
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=15.0, log_alerts=False))
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, clock=lambda: clock[0])
    try:
        mon.observe_error("ValueError", timestamp=NOW)
        mon.observe([[1.0, 2.0]], [[0.5, 0.5]], timestamp=NOW + 1)
        mon.flush()
        clock[0] = NOW + 20
        mon.advance(clock[0])
        assert [a.state for a in mon.alerts()] == ["pending"]
        mon.observe([[1.0, 2.0]], [[0.5, 0.5]], timestamp=NOW + 500)  # 8 minutes ahead of the clock
        mon.flush()
        assert [a.state for a in mon.alerts()] == ["pending"], "for: 3m passed in no time"
        fired_at = None
        for k in range(2, 16):  # the wall clock goes on: evaluated every 15 s, fires after 3 minutes
            clock[0] = NOW + 15 * k
            mon.advance(clock[0])
            if fired_at is None and [a.state for a in mon.alerts()] == ["firing"]:
                fired_at = clock[0] - NOW
        assert fired_at is not None and 180 <= fired_at <= 210, fired_at
    finally:
        mon.close()
