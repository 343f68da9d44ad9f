"""Each alert sink is delivered to on its own: a hung or failing Alertmanager delays and counts
only its own deliveries, as Prometheus sends to each Alertmanager independently.

Before, one thread posted every batch to the sinks in turn: an Alertmanager that hangs (10 s
timeout x 5 attempts plus backoff, about a minute per batch) held every batch back from the
healthy second Alertmanager and from the log, a delay growing with each batch, past the alerts'
``endsAt``; and ``monitor_notifications`` had one series for all sinks
(``receiver="alertmanager+log"``), where the log's deliveries counted as sent while the
Alertmanager failed.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Sequence

from prometheus_client import CollectorRegistry

from monitor.core import Monitor
from monitor.rules.notifier import DeliveryError, Notifier, OutgoingAlert


def _alert(name: str) -> OutgoingAlert:
    return OutgoingAlert(labels={"alertname": name}, annotations={}, starts_at=1_700_000_000.0,
                         ends_at=1_700_000_240.0)


class HungSink:
    """An Alertmanager that never answers (until released at the end of the test)."""

    name = "alertmanager"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        self.entered.set()
        self.release.wait(30)
        raise DeliveryError("timed out")


class RecordingSink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[str] = []
        self.arrived = threading.Event()

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        self.got.extend(a.labels["alertname"] for a in alerts)
        self.arrived.set()


class DownSink:
    name = "alertmanager"

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        raise DeliveryError("connection refused")


def test_a_hung_alertmanager_does_not_hold_back_the_healthy_one() -> None:
    hung, healthy = HungSink(), RecordingSink("alertmanager")
    n = Notifier([hung, healthy], max_retries=0)
    try:
        n.send([_alert("ModelDown")])
        assert hung.entered.wait(10)  # the first Alertmanager's delivery is now stuck
        assert healthy.arrived.wait(10), "the healthy Alertmanager waited on the hung one"
        assert healthy.got == ["ModelDown"]
        s = dict(n.stats_by_sink())
        assert s["alertmanager"].queued == 0
    finally:
        hung.release.set()
        n.close()


def test_counters_are_kept_per_sink() -> None:
    log = RecordingSink("log")
    with Notifier([DownSink(), log], max_retries=1, backoff_initial_s=0.0) as n:
        n.send([_alert("A"), _alert("B")])
        assert n.flush(10)
        (am_name, am), (log_name, lg) = n.stats_by_sink()
        total = n.stats
    assert (am_name, am.sent, am.failed, am.errors) == ("alertmanager", 0, 2, 2)
    assert (log_name, lg.sent, lg.failed, lg.errors) == ("log", 2, 0, 0)
    assert (total.sent, total.failed, total.errors) == (2, 2, 2)


def test_monitor_notifications_says_which_receiver_failed(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(textwrap.dedent("""
        groups:
          - name: g
            rules:
              - alert: AlwaysOn
                expr: vector(1)
    """))
    cfg = {"model": "m", "features": ["a"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
           "rules": {"files": [str(rules)], "interval": "15s"}}
    log = RecordingSink("log")
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False,
                  notifiers=[DownSink(), log])
    try:
        mon.evaluate_rules(1_800_000_000.0)
        assert mon.notifier is not None and mon.notifier.flush(10)
        mon.evaluate_rules(1_800_000_015.0)  # the counters are synced at each evaluation
        value = mon.store.value
        assert value("monitor_notifications", ("alertmanager", "failed")) == 1.0
        assert value("monitor_notifications", ("log", "sent")) == 1.0
        assert not value("monitor_notifications", ("alertmanager", "sent"))
    finally:
        mon.close()
