"""Prometheus-compatible alerting and recording rules evaluated inside the agent.

Rule files in Prometheus 2.x format are loaded (:mod:`monitor.rules.loader`), evaluated on the
agent's own metrics with Prometheus's alert state machine (:mod:`monitor.rules.alerting`,
:mod:`monitor.rules.evaluator`), delivered to Alertmanager, a webhook or the log
(:mod:`monitor.rules.notifier`), and unit-tested with promtool's test-file format
(:mod:`monitor.rules.unittest`).

The main names are re-exported here but imported on first use, so ``import monitor`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "RuleGroup", "AlertingRule", "RecordingRule", "RuleError", "RuleLoadError",
    "load_rule_files", "parse_rule_file", "parse_rules_text",
    "Alert", "AlertState", "AlertTransition",
    "RuleEvaluator", "RuleHealth", "alerts_api_response",
    "Notifier", "NotifierStats", "OutgoingAlert", "AlertmanagerSink", "WebhookSink", "LogSink",
    "run_unit_tests",
]

_WHERE = {
    "RuleGroup": "model", "AlertingRule": "model", "RecordingRule": "model", "RuleError": "model",
    "RuleLoadError": "model",
    "load_rule_files": "loader", "parse_rule_file": "loader", "parse_rules_text": "loader",
    "Alert": "alerting", "AlertState": "alerting", "AlertTransition": "alerting",
    "RuleEvaluator": "evaluator", "RuleHealth": "evaluator", "alerts_api_response": "evaluator",
    "Notifier": "notifier", "NotifierStats": "notifier", "OutgoingAlert": "notifier",
    "AlertmanagerSink": "notifier", "WebhookSink": "notifier", "LogSink": "notifier",
    "run_unit_tests": "unittest",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'monitor.rules' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"monitor.rules.{module}"), name)
    globals()[name] = value
    return value
