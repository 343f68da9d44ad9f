"""``monitor_notifications_total{outcome="failed"}`` is exported at 0 from the start. It was born
at 1 at the first delivery that failed, and ``increase()`` (in a Prometheus scraping the agent and
in the agent's own rules alike) reads no increase from a series' first sample: the core pack's
MonitorAlertDeliveryFailing did not fire for it, and a page lost once was never said."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import MonitorConfig, RulesConfig
from monitor.rules.notifier import AlertmanagerSink, LogSink
from tests.conftest import REPO_ROOT, free_port
from tests.sidecar_support import sample, wait_until

T0 = 2_000_000_000.0


def test_a_first_failed_delivery_pages_monitor_alert_delivery_failing(tmp_path: Path) -> None:
    always = tmp_path / "always.yml"
    always.write_text("groups:\n  - name: a\n    rules:\n      - alert: Always\n        expr: vector(1)\n")
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(REPO_ROOT / "rules" / "core.yml"), str(always)),
                                                     interval_s=15.0, log_alerts=False))
    sinks = [AlertmanagerSink(f"http://127.0.0.1:{free_port()}"), LogSink()]  # nothing listens on the first
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, notifiers=sinks, clock=lambda: T0)
    try:
        text = mon.metrics_text()
        for receiver in ("alertmanager", "log"):
            for outcome in ("sent", "failed", "dropped"):
                assert sample(text, "monitor_notifications_total", model="m", receiver=receiver, outcome=outcome) == 0.0, \
                    (receiver, outcome)
        assert mon.notifier is not None
        mon.notifier.max_retries = 0  # one attempt: refused at once
        fired = []
        for k in range(4):  # Always fires at T0 and is sent once (resends come a minute later)
            fired += [tr.labels.get("receiver") for tr in mon.evaluate_rules(T0 + 15 * k)
                      if tr.alertname == "MonitorAlertDeliveryFailing" and tr.to_state == "firing"]
            if k == 0:
                assert wait_until(lambda: dict(mon.notifier.stats_by_sink())["alertmanager"].failed >= 1, 10)
                time.sleep(0.05)
        assert fired == ["alertmanager"], fired
    finally:
        mon.close()
