"""The Agent health dashboard: is the monitor itself healthy? Queue, worker cost, what it sheds or
cannot read, rule evaluation, alert delivery, and the sidecar's intake and checkpoints."""

from __future__ import annotations

from monitor.dashboards.dashboard import Dashboard
from monitor.dashboards.panels import Query, Row, stat, timeseries
from monitor.dashboards.promql import quantile, rate, selector, zero_fill

__all__ = ["UID", "build"]

UID = "monitor-agent"


def _sum_rate(name: str, by: str, *matchers: str, process: bool = False) -> str:
    return f"sum by ({by}) ({rate(name, *matchers, process=process)})"


def build() -> Dashboard:
    """The Agent health dashboard (core, rules and sidecar metrics)."""
    depth, capacity = selector("monitor_queue_depth"), selector("monitor_queue_capacity")
    failed = 'outcome=~"failed|dropped"'
    items = (
        Row("Queue and worker"),
        timeseries("Queue fill", Query(f"max by (model) ({depth} / {capacity})", "{{model}}"),
                   metrics=("monitor_queue_depth", "monitor_queue_capacity"), unit="percentunit", minimum=0, maximum=1,
                   description="Events waiting between the caller and the worker, as a share of the queue's capacity; "
                               "beyond it events are shed. The dashed line is the MonitorQueueNearlyFull bound.",
                   threshold=0.8),
        timeseries("Queue depth", Query(f"max by (model) ({depth})", "{{model}}"),
                   metrics=("monitor_queue_depth",)),
        timeseries("Worker time per batch",
                   Query(quantile(0.5, "monitor_processing_seconds"), "p50 {{model}}"),
                   Query(quantile(0.99, "monitor_processing_seconds"), "p99 {{model}}"),
                   metrics=("monitor_processing_seconds",), note="p50 and p99 from the histogram buckets."),
        timeseries("Worker busy share",
                   Query(f"sum by (model) ({rate('monitor_processing_seconds', suffix='_sum')})", "{{model}}"),
                   metrics=("monitor_processing_seconds",), unit="percentunit",
                   description="Seconds of worker time per second of wall time: the share of one core the monitor uses."),
        timeseries("Rows per drained batch",
                   Query(f"sum by (model) ({rate('monitor_worker_rows_per_batch', suffix='_sum')})"
                         f" / sum by (model) ({rate('monitor_worker_rows_per_batch', suffix='_count')})", "{{model}}"),
                   metrics=("monitor_worker_rows_per_batch",), note="Mean over the rate interval."),
        timeseries("Event-time lag",
                   Query(f"time() - max by (model) ({selector('monitor_last_event_timestamp_seconds')})", "{{model}}"),
                   metrics=("monitor_last_event_timestamp_seconds",), unit="s",
                   description="Wall-clock time now minus the event time of the newest event processed: grows when "
                               "traffic stops or the worker falls behind (replays show their own event time)."),
        Row("Loss and failures"),
        timeseries("Events shed per second",
                   Query(zero_fill(_sum_rate("monitor_events_dropped", "model, reason")), "{{model}} {{reason}}"),
                   metrics=("monitor_events_dropped",), unit="cps", stack=True, note="0 when nothing is shed."),
        timeseries("Sampled out per second",
                   Query(zero_fill(_sum_rate("monitor_events_sampled_out", "model")), "{{model}}"),
                   metrics=("monitor_events_sampled_out",), unit="cps", note="0 without sampling."),
        timeseries("Unreadable rows per second",
                   Query(zero_fill(_sum_rate("monitor_rows_rejected", "model, reason")), "{{model}} {{reason}}"),
                   metrics=("monitor_rows_rejected",), unit="cps", stack=True, note="0 when every row was read."),
        timeseries("Internal and detector errors",
                   Query(zero_fill(_sum_rate("monitor_internal_errors", "model, stage")), "internal {{model}} {{stage}}"),
                   Query(zero_fill(_sum_rate("monitor_detector_errors", "model, detector")), "detector {{model}} {{detector}}"),
                   metrics=("monitor_internal_errors", "monitor_detector_errors"), unit="cps", note="Per second; 0 when none."),
        timeseries("Series refused at the cap",
                   Query(zero_fill(_sum_rate("monitor_series_refused", "model, metric")), "{{model}} {{metric}}"),
                   metrics=("monitor_series_refused",), unit="cps", note="Per second; 0 when none."),
        Row("Rules and alert delivery"),
        timeseries("Rule evaluation time",
                   Query(quantile(0.99, "monitor_rule_evaluation_seconds"), "p99 {{model}}"),
                   Query(f"sum by (model) ({rate('monitor_rule_evaluation_seconds', suffix='_sum')})"
                         f" / sum by (model) ({rate('monitor_rule_evaluation_seconds', suffix='_count')})", "mean {{model}}"),
                   metrics=("monitor_rule_evaluation_seconds",)),
        timeseries("Rule evaluations and failures per second",
                   Query(_sum_rate("monitor_rule_evaluations", "model"), "evaluations {{model}}"),
                   Query(zero_fill(_sum_rate("monitor_rule_evaluation_failures", "model, rule_group")),
                         "failures {{model}} {{rule_group}}"),
                   metrics=("monitor_rule_evaluations", "monitor_rule_evaluation_failures"), unit="cps"),
        timeseries("Last reload successful",
                   Query(f"min by (model) ({selector('monitor_rule_last_reload_successful')})", "rule files {{model}}"),
                   # the sidecar's series (model _sidecar): with $model alone it was gone once a model was chosen
                   Query(f"min ({selector('monitor_config_last_reload_successful', process=True)})", "monitor.yaml"),
                   metrics=("monitor_rule_last_reload_successful", "monitor_config_last_reload_successful"),
                   minimum=0, maximum=1,
                   description="1 while the rule files and monitor.yaml in force are the ones on disk; 0 after a reload "
                               "(SIGHUP or POST /-/reload) whose rule files did not load (the rules from before it are "
                               "still evaluated), or whose monitor.yaml does not load (a restart would fail)."),
        timeseries("Notifications per second",
                   Query(zero_fill(_sum_rate("monitor_notifications", "model, receiver, outcome")),
                         "{{model}} {{receiver}} {{outcome}}"),
                   metrics=("monitor_notifications",), unit="cps", note="0 when nothing was sent."),
        timeseries("Delivery failures per second",
                   Query(zero_fill(_sum_rate("monitor_notifications", "model, receiver", failed)), "{{model}} {{receiver}}"),
                   metrics=("monitor_notifications",), unit="cps", threshold=0.0001,
                   description="Alert notifications that failed (retried with backoff) or were dropped; 0 when delivery works."),
        stat("Notifications waiting",
             Query(zero_fill(f"max by (model) ({selector('monitor_notification_queue_length')})"), "{{model}}"),
             metrics=("monitor_notification_queue_length",), width=12, steps=((None, "green"), (10, "orange"), (100, "red")),
             note="0 when nothing waits or no receiver is configured."),
        Row("Sidecar"),
        timeseries("Intake accepted per second",
                   Query(_sum_rate("monitor_intake_events_accepted", "model, endpoint"), "{{model}} {{endpoint}}"),
                   metrics=("monitor_intake_events_accepted",), unit="cps", stack=True, note="Per second, by endpoint."),
        timeseries("Intake refused per second",
                   Query(zero_fill(_sum_rate("monitor_intake_events_refused", "model, endpoint, reason", process=True)),
                         "{{model}} {{endpoint}} {{reason}}"),
                   metrics=("monitor_intake_events_refused",), unit="cps", stack=True, note="Per second; 0 when none."),
        timeseries("Forwarding drops per second",
                   # the workers report their drops to the sidecar as a whole (model _sidecar): a 0 line per
                   # watched model (zero_fill) would name models these series never carry
                   Query(f'{_sum_rate("monitor_forward_events_dropped", "reason", process=True)} or vector(0)', "{{reason}}"),
                   metrics=("monitor_forward_events_dropped",), unit="cps",
                   note="By reason, as the workers report them; 0 when none."),
        timeseries("Proxy: requests answered 502/504 by the proxy",
                   # the proxy's series are the sidecar's (model _sidecar); 0 while requests pass and none fails,
                   # "No data" only when nothing was proxied
                   Query(f"{_sum_rate('monitor_proxy_upstream_errors', 'reason', process=True)}"
                         f" / on () group_left () sum ({rate('monitor_proxy_requests', process=True)})"
                         f' or on () label_replace(0 * sum ({rate("monitor_proxy_requests", process=True)}),'
                         ' "reason", "none", "", "")', "{{reason}}"),
                   metrics=("monitor_proxy_upstream_errors", "monitor_proxy_requests"), unit="percentunit", minimum=0,
                   threshold=0.05,
                   description="Share of the proxied requests that the reverse proxy answered itself, by reason: "
                               "connect (502: nothing listens at server.proxy.upstream, the model server is down or on "
                               "another port), timeout (504: no answer within server.proxy.timeout), disconnect (502: "
                               "the model server broke off mid-answer). Those clients got no prediction, and these "
                               "requests are not the model's errors. The dashed line is MonitorProxyUpstreamFailing's "
                               "5%; 0 (reason none) while requests pass, no data without a proxy."),
        timeseries("HTTP p99 by handler",
                   Query(quantile(0.99, "monitor_http_request_duration_seconds", by=("handler",), process=True), "{{handler}}"),
                   metrics=("monitor_http_request_duration_seconds",), note="99th percentile over the rate interval."),
        stat("Checkpoint age",
             Query(f"time() - max by (model) ({selector('monitor_checkpoint_last_success_timestamp_seconds')})", "{{model}}"),
             metrics=("monitor_checkpoint_last_success_timestamp_seconds",), unit="s", width=12,
             description="Seconds since the last checkpoint was written; a restart loses at most this much state.",
             steps=((None, "green"), (300, "orange"), (900, "red"))),
    )
    return Dashboard(UID, "Model monitor / Agent health",
                     "The monitor's own health: queue, worker cost, shed and unreadable events, rule evaluation, "
                     "alert delivery, sidecar intake and checkpoints.", items)
