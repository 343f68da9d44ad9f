"""The core pack pages when rules fail to evaluate or alerts are not delivered.

A rule that fails at every evaluation can never fire, and alerts the notifier gave up on (after
its retries) or dropped never reached on-call; both were counted (monitor_rule_evaluation_failures_total,
monitor_notifications_total) but no shipped alert read them, as Prometheus's own mixin does for
its rule failures and notification errors. Each alert is run by the real promtool and by the
agent's engine (the same unit test must pass in both).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_oncall_session7 import _run_unit_test


def test_rule_evaluation_failing_pages_after_five_minutes_and_resolves(tmp_path: Path) -> None:
    _run_unit_test(tmp_path, "core.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_rule_evaluation_failures_total{model="iris",rule_group="mine"}'
                values: '1+4x10 41x20'
            alert_rule_test:
              - eval_time: 4m
                alertname: MonitorRuleEvaluationFailing
                exp_alerts: []
              - eval_time: 6m
                alertname: MonitorRuleEvaluationFailing
                exp_alerts:
                  - exp_labels: {severity: warning, model: iris, rule_group: mine}
                    exp_annotations:
                      summary: "Rules of group mine of iris fail to evaluate: their alerts cannot fire."
                      description: "25 evaluations of rule group mine failed in 10 minutes (monitor_rule_evaluation_failures_total): the failing rules neither fire nor write their series. The agent's log names each rule and its error."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorruleevaluationfailing"
              - eval_time: 22m
                alertname: MonitorRuleEvaluationFailing
                exp_alerts: []
    """)


def test_alert_delivery_failing_names_the_receiver(tmp_path: Path) -> None:
    _run_unit_test(tmp_path, "core.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_notifications_total{model="iris",receiver="alertmanager",outcome="failed"}'
                values: '0x5 2x30'
              - series: 'monitor_notifications_total{model="iris",receiver="alertmanager",outcome="sent"}'
                values: '0+3x35'
              - series: 'monitor_notifications_total{model="iris",receiver="webhook",outcome="dropped"}'
                values: '0x35'
            alert_rule_test:
              - eval_time: 5m
                alertname: MonitorAlertDeliveryFailing
                exp_alerts: []
              - eval_time: 7m
                alertname: MonitorAlertDeliveryFailing
                exp_alerts:
                  - exp_labels: {severity: warning, model: iris, receiver: alertmanager}
                    exp_annotations:
                      summary: "Alerts of iris are not delivered to its alertmanager receiver."
                      description: "2 alert notifications to alertmanager failed after their retries or were dropped in 15 minutes (monitor_notifications_total): pages may not have reached on-call. Alerts still firing are sent again at their next resend (the first evaluation a minute or more after the last send) and reach it once it works; alerts that fired and resolved in between were never paged: the agent's log has every transition (logger monitor.alerts)."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitoralertdeliveryfailing"
              - eval_time: 25m
                alertname: MonitorAlertDeliveryFailing
                exp_alerts: []
    """)
