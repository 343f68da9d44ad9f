"""The Overview dashboard: is each model serving, how fast, how often it fails, whether the monitor
keeps up, and which alerts fire. The first page on-call opens."""

from __future__ import annotations

from monitor.dashboards.dashboard import Dashboard
from monitor.dashboards.panels import Query, Row, stat, timeseries
from monitor.dashboards.promql import alert_counts, quantile, rate, zero_fill

__all__ = ["UID", "build"]

UID = "monitor-overview"


def _per_model(name: str, *matchers: str, by: str = "model") -> str:
    return f"sum by ({by}) ({rate(name, *matchers)})"


def build() -> Dashboard:
    """The Overview dashboard (core and rule metrics only)."""
    calls = _per_model("monitor_calls")
    errors = _per_model("monitor_errors", by="model, exception")
    firing = zero_fill(alert_counts(("model",), 'alertstate="firing"'))  # each series counts its alerts
    items = (
        Row("At a glance"),
        stat("Traffic now", Query(calls, "{{model}}"), metrics=("monitor_calls",), unit="reqps",
             note="Per-second rate over the rate interval.", width=6),
        stat("p99 latency", Query(quantile(0.99, "monitor_latency_seconds"), "{{model}}"),
             metrics=("monitor_latency_seconds",), note="99th percentile over the rate interval.", width=6,
             steps=((None, "green"), (0.5, "orange"), (1.0, "red"))),
        stat("Error ratio", Query(zero_fill(f"{_per_model('monitor_errors')} / {calls}"), "{{model}}"),
             metrics=("monitor_errors", "monitor_calls"), unit="percentunit",
             description="Share of predict calls that raised an exception.", width=6,
             steps=((None, "green"), (0.01, "orange"), (0.05, "red"))),
        stat("Firing alerts", Query(firing, "{{model}}"), metrics=("monitor_alerts",),
             description="Alerts currently firing, per model: the agent's own rule evaluation (monitor_alerts), "
                         "or Prometheus's (ALERTS) for the alerts the agent does not evaluate.", width=6,
             steps=((None, "green"), (1, "red"))),
        Row("Traffic"),
        timeseries("Calls per second", Query(calls, "{{model}}"), metrics=("monitor_calls",), unit="reqps",
                   note="Per-second rate."),
        timeseries("Rows predicted per second", Query(_per_model("monitor_predictions"), "{{model}}"),
                   metrics=("monitor_predictions",), unit="cps", note="Per-second rate."),
        timeseries("Latency quantiles",
                   Query(quantile(0.5, "monitor_latency_seconds"), "p50 {{model}}"),
                   Query(quantile(0.9, "monitor_latency_seconds"), "p90 {{model}}"),
                   Query(quantile(0.99, "monitor_latency_seconds"), "p99 {{model}}"),
                   metrics=("monitor_latency_seconds",), note="p50, p90 and p99 from the histogram buckets.",
                   threshold=1.0),
        timeseries("Mean rows per call",
                   Query(f"sum by (model) ({rate('monitor_batch_size_rows', suffix='_sum')})"
                         f" / sum by (model) ({rate('monitor_batch_size_rows', suffix='_count')})", "{{model}}"),
                   metrics=("monitor_batch_size_rows",), note="Mean over the rate interval."),
        Row("Errors and loss"),
        timeseries("Error ratio by exception",
                   Query(zero_fill(f"{errors} / on (model) group_left () {calls}"), "{{model}} {{exception}}"),
                   metrics=("monitor_errors", "monitor_calls"), unit="percentunit", stack=True,
                   description="Share of calls that raised, by exception type (0 when none did).", threshold=0.05),
        timeseries("Events shed per second",
                   Query(zero_fill(_per_model("monitor_events_dropped", by="model, reason")), "{{model}} {{reason}}"),
                   metrics=("monitor_events_dropped",), unit="cps", note="0 when nothing is shed.", stack=True),
        timeseries("Unreadable rows per second",
                   Query(zero_fill(_per_model("monitor_rows_rejected", by="model, reason")), "{{model}} {{reason}}"),
                   metrics=("monitor_rows_rejected",), unit="cps", note="0 when every row was read.", stack=True),
        timeseries("Predicted class share",
                   Query(f"{_per_model('monitor_predicted_class', by='model, class')}"
                         f" / on (model) group_left () {_per_model('monitor_predicted_class')}", "{{model}} {{class}}"),
                   metrics=("monitor_predicted_class",), unit="percentunit", stack=True, maximum=1,
                   description="Share of rows predicted as each class over the rate interval (classifiers)."),
        Row("Alerts"),
        timeseries("Alerts by name",
                   Query(zero_fill(alert_counts(("model", "alertname", "alertstate"))),
                         "{{model}} {{alertname}} {{alertstate}}"),
                   metrics=("monitor_alerts",), bars=True, width=24,
                   description="Pending and firing alerts of the agent's rule evaluation, or of Prometheus's for the "
                               "alerts the agent does not evaluate (0 when none)."),
    )
    return Dashboard(UID, "Model monitor / Overview",
                     "Traffic, latency, errors, shed events and firing alerts of every watched model.", items)
