"""A label or annotation template that fails at run time is sent as Prometheus sends it and
counted, so that on-call sees a broken page text before it matters."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import MonitorConfig, RulesConfig

RULES = """
groups:
  - name: broken-texts
    rules:
      - alert: AlwaysOn
        expr: vector(1)
        labels: {severity: info}
        annotations:
          summary: 'value {{ "not a number" | humanize }}'
          description: fine
  - name: fine-texts
    rules:
      - alert: AlsoOn
        expr: vector(2)
        annotations: {summary: 'value {{ $value }}'}
"""


def test_failing_templates_are_rendered_and_counted_by_group(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=15.0, log_alerts=False))
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        t0 = 1_700_000_000.0
        for i in range(5):  # four evaluation ticks between the first and the last event
            mon.observe(np.ones((1, 2)), np.array([[0.5, 0.5]]), timestamp=t0 + 15.0 * i)
        mon.flush()
        (broken,) = [a for a in mon.rules.alerts() if a.name == "AlwaysOn"]
        assert broken.annotations["summary"].startswith("<error expanding template:")
        assert broken.annotations["description"] == "fine"
        evaluations = mon.store.value("monitor_rule_evaluations")
        assert evaluations >= 4
        assert mon.store.value("monitor_rule_template_errors", labels=("broken-texts",)) == evaluations
        assert mon.store.value("monitor_rule_template_errors", labels=("fine-texts",)) is None
    finally:
        mon.close()


def test_groups_of_one_name_in_two_files_add_up(tmp_path):
    for name in ("a.yml", "b.yml"):
        (tmp_path / name).write_text(RULES)
    files = (str(tmp_path / "a.yml"), str(tmp_path / "b.yml"))
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=files, interval_s=15.0, log_alerts=False))
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        t0 = 1_700_000_000.0
        for i in range(3):
            mon.observe(np.ones((1, 2)), np.array([[0.5, 0.5]]), timestamp=t0 + 15.0 * i)
        mon.flush()
        evaluations = mon.store.value("monitor_rule_evaluations")
        assert mon.store.value("monitor_rule_template_errors", labels=("broken-texts",)) == 2 * evaluations
    finally:
        mon.close()
