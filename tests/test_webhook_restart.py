"""A restart does not post a still-firing alert to ``rules.webhook`` (or the alert log) again.

The webhook sink sends what an Alertmanager would send its receiver: a firing alert once, then
every repeat interval. Its memory of what it posted lived only in the process, so after every
restart (a deploy, a crash) the evaluator's first re-send of each firing alert was news again:
a chat or paging relay behind the webhook was paged anew for alerts it had been paged for minutes
before, and the log said the alert fired again. An Alertmanager keeps its notification log across
restarts; the sink's memory now travels in the checkpoint with the alert states.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import MonitorConfig, RulesConfig
from tests.test_rules_notifier import Receiver

RULES = """
groups:
  - name: g
    rules:
      - alert: AlwaysOn
        expr: vector(1)
        labels: {severity: page}
"""
T0 = 1_800_000_000.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _monitor(tmp_path: Path, url: str) -> Monitor:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=15.0, webhook_urls=(url,),
                                                      log_alerts=True))
    return Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)


def _firing_posts(receiver: Receiver) -> list[str]:
    return [a["status"] for _, _, body in receiver.requests for a in body["alerts"]]


@pytest.mark.parametrize("final", [True, False])
def test_a_firing_alert_is_not_posted_again_after_a_restart(tmp_path: Path, receiver: Receiver,
                                                            caplog: pytest.LogCaptureFixture, final: bool) -> None:
    caplog.set_level(logging.WARNING, logger="monitor.alerts")
    ckpt = tmp_path / "m.ckpt"
    mon = _monitor(tmp_path, receiver.url)
    try:
        mon.evaluate_rules(T0)
        assert mon.notifier is not None and mon.notifier.flush(10)
        mon.save_checkpoint(ckpt, final=final)
    finally:
        mon.close()
    assert _firing_posts(receiver) == ["firing"]
    logged = sum("AlwaysOn" in r.getMessage() for r in caplog.records)
    assert logged == 1

    again = _monitor(tmp_path, receiver.url)
    try:
        assert again.restore_checkpoint(ckpt)
        for k in range(1, 9):  # two minutes: the evaluator re-sends the firing alert (resend delay 1 m)
            again.evaluate_rules(T0 + 15 * k)
        assert again.notifier is not None and again.notifier.flush(10)
        assert again.notifier.stats.sent >= 2  # re-sent by the evaluator, absorbed by the sinks
    finally:
        again.close()
    assert _firing_posts(receiver) == ["firing"]
    assert sum("AlwaysOn" in r.getMessage() for r in caplog.records) == logged


def test_a_firing_alert_is_posted_again_after_a_restart_past_its_repeat_interval(tmp_path: Path,
                                                                                 receiver: Receiver) -> None:
    ckpt = tmp_path / "m.ckpt"
    mon = _monitor(tmp_path, receiver.url)
    try:
        mon.evaluate_rules(T0)
        assert mon.notifier is not None and mon.notifier.flush(10)
        state = mon.notifier.state_dict()
        mon.save_checkpoint(ckpt, final=True)
    finally:
        mon.close()
    again = _monitor(tmp_path, receiver.url)
    try:
        assert again.restore_checkpoint(ckpt)
        assert again.notifier is not None
        # as if the restart came 5 h after the post: the receiver is reminded, as an Alertmanager would
        state["sinks"][0]["delivered"] = [[fp, status, starts, age + 5 * 3600.0]
                                         for fp, status, starts, age in state["sinks"][0]["delivered"]]
        again.notifier.load_state_dict(state)
        for k in range(1, 9):
            again.evaluate_rules(T0 + 15 * k)
        assert again.notifier.flush(10)
    finally:
        again.close()
    assert _firing_posts(receiver) == ["firing", "firing"]
