"""Every failed rule evaluation is counted in ``monitor_rule_evaluation_failures_total``.

The counter is what on-call reads to learn that a rule has stopped evaluating (its alerts can
no longer fire). It was derived from the rules' health after each tick, keeping only rules whose
last evaluation time was at or after the tick: a group whose interval is not a multiple of the
tick (20 s under a 15 s tick) evaluates at times before the tick that runs it, and a tick that
catches up several evaluations of a group counted one; 9 failed evaluations were counted 3.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import MonitorConfig, RulesConfig

# A recording rule whose two series become one label set once its labels are applied: a run-time
# error at every evaluation (the file loads).
RULES = """
groups:
  - name: twenty
    interval: 20s
    rules:
      - record: collides
        expr: label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "b", "y", "", "")
        labels: {a: "", b: ""}
  - name: fine
    rules:
      - record: one
        expr: vector(1)
"""
T0 = 1_800_000_000.0


def _monitor(tmp_path: Path) -> Monitor:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=15.0, log_alerts=False))
    return Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)


def test_failures_of_a_group_off_the_tick_are_each_counted(tmp_path: Path) -> None:
    mon = _monitor(tmp_path)
    try:
        for k in range(12):  # 165 s of 15 s ticks: the 20 s group evaluates 9 times
            mon.evaluate_rules(T0 + 15 * k)
        failed = mon.rules.failed_evaluations
        assert failed == 9
        assert mon.store.value("monitor_rule_evaluation_failures", labels=("twenty",)) == failed
        assert mon.store.value("monitor_rule_evaluation_failures", labels=("fine",)) in (None, 0.0)
    finally:
        mon.close()


def test_failures_of_a_catch_up_are_each_counted(tmp_path: Path) -> None:
    mon = _monitor(tmp_path)
    try:
        mon.evaluate_rules(T0)
        mon.evaluate_rules(T0 + 200)  # one call runs the 10 evaluations of the 20 s group since
        assert mon.rules.failed_evaluations == 11
        assert mon.store.value("monitor_rule_evaluation_failures", labels=("twenty",)) == 11
    finally:
        mon.close()


def test_a_failing_rule_is_logged_once_naming_it_and_its_error(tmp_path: Path, caplog) -> None:
    """Its health was kept but shown nowhere (the sidecar serves no /api/v1/rules): on-call saw a
    counter by group and could not learn which rule failed, or why."""
    caplog.set_level(logging.INFO, logger="monitor")
    mon = _monitor(tmp_path)
    try:
        for k in range(12):
            mon.evaluate_rules(T0 + 15 * k)
    finally:
        mon.close()
    said = [r for r in caplog.records if r.levelno >= logging.WARNING and "evaluation failed" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
    text = said[0].getMessage()
    for part in ("rules.yml", '"twenty"', '"collides"', "same labelset", "monitor_rule_evaluation_failures_total"):
        assert part in text, (part, text)
