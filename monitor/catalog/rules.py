"""Metrics of the in-agent rule evaluation and alert delivery."""

from __future__ import annotations

from monitor.catalog.spec import COUNTER, GAUGE, HISTOGRAM, MetricSpec

__all__ = ["METRICS"]

EVAL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("monitor_alerts", GAUGE,
               "Number of alerts of the in-agent rule evaluation by name and state (pending, firing): unlike Prometheus's "
               "ALERTS (1 per alert), one series counts every alert of that name and state (sum it, do not count it).",
               labels=("alertname", "alertstate", "severity"), concern="rules", max_series=500),
    MetricSpec("monitor_rule_evaluation_seconds", HISTOGRAM, "Time one evaluation of all rule groups took.",
               buckets=EVAL_BUCKETS, concern="rules", unit="s"),
    MetricSpec("monitor_rule_evaluations", COUNTER, "Rule evaluations run (one per interval of event time).",
               concern="rules"),
    MetricSpec("monitor_rule_evaluation_failures", COUNTER,
               "Rule evaluations that failed (an expression error at run time), by rule group; the log (logger monitor) names "
               "the rule and its error once per error.",
               labels=("rule_group",), concern="rules", max_series=200),
    MetricSpec("monitor_rule_template_errors", COUNTER,
               "Alert label and annotation templates that failed to expand (sent as '<error expanding template: ...>', "
               "as Prometheus sends them), by rule group: a broken summary or runbook link on a page.",
               labels=("rule_group",), concern="rules", max_series=200),
    MetricSpec("monitor_rule_reloads", COUNTER,
               "Reloads of the rule files (SIGHUP or POST /-/reload) by outcome (success, failure); a failed reload "
               "keeps the rules evaluated before it.",
               labels=("outcome",), concern="rules", max_series=2),
    MetricSpec("monitor_rule_last_reload_successful", GAUGE,
               "1 when the rule files loaded at start and at the last reload, 0 when a file did not: the files on disk "
               "are not the rules evaluated (at start the broken files are left out; at a reload the rules from before "
               "stay), as Prometheus's prometheus_config_last_reload_successful.",
               concern="rules"),
    MetricSpec("monitor_rule_file_errors", GAUGE,
               "Errors found in a rule file by the last load of the files that failed (at start or at a reload), by "
               "file; absent once the files load. MonitorRuleReloadFailed pages once per file, however many models "
               "list it (their alerts carry the file, and model \"_sidecar\").",
               labels=("file",), concern="rules", max_series=50),
    MetricSpec("monitor_notifications", COUNTER,
               "Alert notifications by receiver kind and outcome (sent, failed, dropped); failures are retried with backoff, "
               "except a 4xx answer (the receiver refused them: not retried, its answer is logged).",
               labels=("receiver", "outcome"), concern="rules", max_series=30),
    MetricSpec("monitor_notification_queue_length", GAUGE, "Alert notifications waiting to be delivered.",
               concern="rules"),
)
