"""The README's runbook of MonitorAlertDeliveryFailing says how soon a failed alert is sent
again; it said "every minute" while at the defaults a firing alert is re-sent every 75 s (the
first evaluation, every 15 s, more than the 1 minute resend delay after the last send, as in
Prometheus), and every 2 minutes at a 1 m interval. The periods are measured here."""

from __future__ import annotations

from pathlib import Path

from monitor.config import RulesConfig
from monitor.promql import Engine, SeriesStore
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.loader import load_rule_files

README = Path(__file__).resolve().parents[1] / "README.md"


def resend_period(tmp_path: Path, interval_s: float) -> float:
    rules = tmp_path / "r.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: vector(1)\n")
    now = [0.0]
    sent: list[float] = []

    class Capture:
        def send(self, alerts: list) -> None:
            sent.append(now[0])

    engine = Engine()
    evaluator = RuleEvaluator(load_rule_files([str(rules)], engine=engine), engine=engine,
                              storage=SeriesStore(retention_s=3600.0), notifier=Capture(), default_interval_s=interval_s)
    for t in range(0, 1201, 5):
        now[0] = float(t)
        evaluator.evaluate(float(t))
    gaps = {b - a for a, b in zip(sent, sent[1:])}
    assert len(gaps) == 1, sent
    return gaps.pop()


def test_the_documented_resend_periods_are_the_measured_ones(tmp_path: Path) -> None:
    default = RulesConfig().interval_s
    text = README.read_text()
    assert f"every {resend_period(tmp_path, default):g} s at the default {default:g} s interval" in text
    assert resend_period(tmp_path, 60.0) == 120.0
    assert "every 2 minutes at a 1 m interval" in text
    assert "(every minute while firing)" not in text
