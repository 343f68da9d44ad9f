"""Alerts pending at a restart resume as Prometheus's ``RestoreForState`` resumes them: the time the
agent was down does not count towards ``for``, a long outage starts them over, and none fires
sooner than the grace period after the restart. A live agent does not evaluate the outage's ticks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import ConfigError, load_config
from monitor.rules.alerting import AlertState
from tests.test_rules_alerting import THRESHOLD, feed, make, run, states

MIN = 60


def _saved_after(pending_for_s: int, for_: str, *, fired: bool = False) -> tuple[dict, int]:
    """The rule state of an agent whose alert turned pending at 0 and that stopped
    ``pending_for_s`` seconds later (its last evaluation)."""
    ev, store, n = make(THRESHOLD.format(for_=for_, keep="0s"))
    tr = run(ev, store, n, {0: 20.0}, until=pending_for_s)
    assert ("firing" in [to for _, _, to in states(tr)]) is fired
    return json.loads(json.dumps(ev.state_dict())), pending_for_s


def _resume(saved: dict, rules_for: str, restart_at: int, until: int, *, restarted: bool = True,
            **kw: object) -> list[tuple[float, str, str]]:
    """Restart at ``restart_at`` with the condition holding throughout; the transitions."""
    ev, store, n = make(THRESHOLD.format(for_=rules_for, keep="0s"), **kw)
    assert ev.load_state_dict(saved, restarted=restarted) == 1
    out = []
    for t in range(restart_at, until + 1, MIN):
        feed(store, t, 20.0)
        n.now = t
        out.extend(ev.evaluate(t))
    return states(out)


def _fired_at(transitions: list[tuple[float, str, str]]) -> float | None:
    return next((t for t, _, to in transitions if to == "firing"), None)


def test_a_long_outage_starts_a_pending_alert_over() -> None:
    # pending 1 minute of `for: 30m`, then down 2 hours: before, the first evaluation after the
    # restart fired it (active since 0, so "held 2 hours"), with 1 minute of it ever watched
    saved, down_at = _saved_after(1 * MIN, "30m")
    restart = down_at + 2 * 3600
    tr = _resume(saved, "30m", restart, restart + 40 * MIN)
    assert tr[0] == (restart, "inactive", "pending")  # started over: a new pending alert
    assert _fired_at(tr) == restart + 30 * MIN


def test_a_short_outage_is_left_out_of_for() -> None:
    # pending 10 minutes of `for: 30m`, down 5 minutes: 20 minutes still to hold after the restart
    saved, down_at = _saved_after(10 * MIN, "30m")
    restart = down_at + 5 * MIN
    tr = _resume(saved, "30m", restart, restart + 40 * MIN)
    assert _fired_at(tr) == restart + 20 * MIN
    assert [to for _, _, to in tr] == ["firing"]  # it stayed pending across the restart


def test_no_alert_fires_sooner_than_the_grace_period_after_a_restart() -> None:
    # pending 25 minutes of `for: 30m`, down 5: 5 minutes left, but the grace period is 10
    saved, down_at = _saved_after(25 * MIN, "30m")
    restart = down_at + 5 * MIN
    assert _fired_at(_resume(saved, "30m", restart, restart + 20 * MIN)) == restart + 10 * MIN
    # a shorter grace period, as Prometheus's --rules.alert.for-grace-period
    assert _fired_at(_resume(saved, "30m", restart, restart + 20 * MIN, for_grace_period_s=2 * MIN)) == restart + 5 * MIN


def test_a_for_shorter_than_the_grace_period_waits_its_whole_for() -> None:
    saved, down_at = _saved_after(2 * MIN, "5m")
    restart = down_at + 1 * MIN
    assert _fired_at(_resume(saved, "5m", restart, restart + 10 * MIN)) == restart + 5 * MIN


def test_the_outage_tolerance_is_a_setting() -> None:
    saved, down_at = _saved_after(10 * MIN, "30m")
    restart = down_at + 20 * MIN
    assert _fired_at(_resume(saved, "30m", restart, restart + 40 * MIN)) == restart + 20 * MIN  # 20 < 1h
    tr = _resume(saved, "30m", restart, restart + 40 * MIN, for_outage_tolerance_s=15 * MIN)
    assert tr[0] == (restart, "inactive", "pending") and _fired_at(tr) == restart + 30 * MIN


def test_a_firing_alert_stays_firing_across_any_outage() -> None:
    # resolving it at the restart and firing it again `for` later would page the on-call twice
    saved, down_at = _saved_after(10 * MIN, "5m", fired=True)
    restart = down_at + 3 * 3600
    ev, store, n = make(THRESHOLD.format(for_="5m", keep="0s"))
    ev.load_state_dict(saved)
    feed(store, restart, 20.0)
    assert ev.evaluate(restart) == []
    (a,) = ev.alerts()
    assert (a.state, a.active_at, a.fired_at) == (AlertState.FIRING, 0.0, 5 * MIN)


def test_a_resumed_replay_keeps_its_timers() -> None:
    # a replay going on in the event time it stopped at has no outage to leave out
    saved, down_at = _saved_after(25 * MIN, "30m")
    assert _fired_at(_resume(saved, "30m", down_at + MIN, down_at + 20 * MIN, restarted=False)) == 30 * MIN


def test_states_saved_before_the_last_evaluation_was_recorded_resume_as_they_were() -> None:
    saved, down_at = _saved_after(25 * MIN, "30m")
    for g in saved["groups"]:
        del g["last_evaluation"]
    assert _fired_at(_resume(saved, "30m", down_at + 5 * MIN, down_at + 20 * MIN)) == 30 * MIN


def test_a_reload_before_the_first_evaluation_keeps_the_outage() -> None:
    saved, down_at = _saved_after(1 * MIN, "30m")
    ev, store, n = make(THRESHOLD.format(for_="30m", keep="0s"))
    ev.load_state_dict(saved)
    ev.replace_groups(ev.groups)
    restart = down_at + 2 * 3600
    feed(store, restart, 20.0)
    assert states(ev.evaluate(restart)) == [(restart, "inactive", "pending")]


# ---------------------------------------------------------------------------------- the agent
RULES = """
groups:
  - name: g
    rules:
      - alert: Busy
        expr: vector(1)
        for: 30m
"""


class Clock:
    """The live agent's wall clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _agent(tmp_path: Path, clock: Clock) -> Monitor:
    (tmp_path / "rules.yml").write_text(RULES)
    config = {"model": "m", "rules": {"files": [str(tmp_path / "rules.yml")], "interval": "15s", "log": False}}
    return Monitor(model="m", config=config, start_worker=False, clock=clock, registry=CollectorRegistry())


def _evaluations(mon: Monitor) -> float:
    return mon.store.value("monitor_rule_evaluations") or 0.0


def test_a_restarted_live_agent_does_not_evaluate_its_outage(tmp_path: Path) -> None:
    t0 = 1_700_000_000.0
    clock = Clock(t0)
    mon = _agent(tmp_path, clock)
    for t in range(0, 301, 15):  # 5 minutes pending
        clock.now = t0 + t
        mon.flush()
    (before,) = mon.rules.alerts()
    assert before.state is AlertState.PENDING
    saved = copy.deepcopy(mon.state_dict())

    clock.now = restart = t0 + 300 + 2 * 3600
    again = _agent(tmp_path, clock)
    again.load_state_dict(saved)
    again.flush()
    clock.now += 15
    again.flush()
    # the 480 ticks of the two hours down were evaluated at restart (with the metrics of now) and
    # the alert fired in them; now one evaluation, and the alert started over
    assert _evaluations(again) == 1
    (after,) = again.rules.alerts()
    assert after.state is AlertState.PENDING and after.active_at >= restart


def test_a_replayed_monitor_still_catches_up(tmp_path: Path) -> None:
    t0 = 1_700_000_000.0
    (tmp_path / "rules.yml").write_text(RULES)
    config = {"model": "m", "rules": {"files": [str(tmp_path / "rules.yml")], "interval": "15s", "log": False}}
    mon = Monitor(model="m", config=config, start_worker=False, live=False, registry=CollectorRegistry())
    mon.advance(t0)
    mon.advance(t0 + 60)
    saved = copy.deepcopy(mon.state_dict())
    again = Monitor(model="m", config=config, start_worker=False, live=False, registry=CollectorRegistry())
    again.load_state_dict(saved)
    again.advance(t0 + 60 + 3600)
    assert _evaluations(again) == 240  # every tick of the replayed hour, as before the restart
    (a,) = again.rules.alerts()
    assert a.state is AlertState.FIRING


def test_config_reads_the_restart_settings(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("model: m\nrules:\n  for_outage_tolerance: 2h\n  for_grace_period: 5m\n")
    cfg = load_config(path).model()
    assert (cfg.rules.for_outage_tolerance_s, cfg.rules.for_grace_period_s) == (7200.0, 300.0)
    path.write_text("model: m\nrules:\n  for_grace_period: soon\n")
    with pytest.raises(ConfigError, match=r"rules\.for_grace_period"):
        load_config(path)


def test_a_second_restart_before_the_first_evaluation_keeps_the_first_outage() -> None:
    # the checkpoint written between the two restarts (SIGTERM's, or a crash loop) had no last
    # evaluation: the next restart resumed the timers as they were and the alert fired at once
    saved, down_at = _saved_after(1 * MIN, "30m")
    ev, store, n = make(THRESHOLD.format(for_="30m", keep="0s"))
    ev.load_state_dict(saved)
    again = json.loads(json.dumps(ev.state_dict()))  # saved before any evaluation
    assert [g["last_evaluation"] for g in again["groups"]] == [down_at]
    restart = down_at + 2 * 3600
    tr = _resume(again, "30m", restart, restart + 40 * MIN)
    assert tr[0] == (restart, "inactive", "pending") and _fired_at(tr) == restart + 30 * MIN
