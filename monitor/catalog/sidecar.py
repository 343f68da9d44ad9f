"""Metrics of the sidecar (``monitor serve``): intake, CloudEvents joins, the reverse proxy,
checkpoints and forwarding from multi-worker servers.

Series that belong to one model carry its name; process-level series (a payload refused before
its model was known, HTTP request durations, forwarding datagrams) carry ``model="_sidecar"``.
"""

from __future__ import annotations

from monitor.catalog.spec import COUNTER, GAUGE, HISTOGRAM, MetricSpec

__all__ = ["METRICS", "SIDECAR_MODEL", "HTTP_BUCKETS"]

#: The ``model`` label value of process-level sidecar series.
SIDECAR_MODEL = "_sidecar"

#: HTTP handler durations: 100 us (a cached /healthz) to 10 s (a slow upstream behind the proxy).
HTTP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("monitor_intake_events_accepted", COUNTER,
               "Events the sidecar accepted into a model's queue, by endpoint (events, feedback, cloudevents, proxy, forward). "
               "Every accepted event is later processed or counted in monitor_events_dropped_total.",
               labels=("endpoint",), concern="sidecar", max_series=20),
    MetricSpec("monitor_intake_events_refused", COUNTER,
               "Events or payloads the sidecar refused (answered 4xx/5xx or ignored), by endpoint and reason "
               "(bad_json, too_large, queue_full, unauthorized, unknown_model, a field's reason...); endpoint http, reason "
               "malformed_request: a request that is not valid HTTP/1.1 (no Host, a broken header line), answered 400 before any route.",
               labels=("endpoint", "reason"), concern="sidecar", max_series=300),
    MetricSpec("monitor_http_request_duration_seconds", HISTOGRAM,
               "Time the sidecar spent answering an HTTP request, by handler and status code.",
               labels=("handler", "code"), buckets=HTTP_BUCKETS, concern="sidecar", unit="s", max_series=200),
    MetricSpec("monitor_cloudevents_pending", GAUGE,
               "CloudEvents requests or responses held while waiting for their other half (joined by ce-requestid when the event has one, as Seldon's, else ce-id, as KServe's), "
               "the requests of output.kind: none models, recorded at once, included (bounded by server.cloudevents.max_pending).",
               concern="sidecar"),
    MetricSpec("monitor_cloudevents_pending_bytes", GAUGE,
               "Memory of the CloudEvents halves held, their decoded payloads estimated, and of their table entries and request ids when held without a body (output.kind: none) (bounded by server.cloudevents.max_pending_bytes).",
               concern="sidecar", unit="bytes"),
    MetricSpec("monitor_cloudevents_unmatched", COUNTER,
               "CloudEvents whose other half never came, by part (request, response) and reason (timeout, overflow, shutdown).",
               labels=("part", "reason"), concern="sidecar", max_series=20),
    MetricSpec("monitor_proxy_requests", COUNTER,
               "Requests forwarded by the reverse proxy, by route kind (oip_v2; v1: KServe v1 and TF Serving predict, classify and regress; predict: a "
               "configured route; other; error: answered 502/504 by the "
               "proxy itself, see monitor_proxy_upstream_errors_total) and status class (2xx...).",
               labels=("route", "code"), concern="sidecar", max_series=30),
    MetricSpec("monitor_proxy_upstream_errors", COUNTER,
               "Requests the proxy could not forward to the model server, by reason (connect, timeout, disconnect); "
               "answered 502/504 to the client.",
               labels=("reason",), concern="sidecar", max_series=20),
    MetricSpec("monitor_proxy_upstream_info", GAUGE,
               "1 while the reverse proxy forwards to a model server: upstream, its URL (server.proxy.upstream or --proxy, "
               "without credentials); models, the config's models whose requests it taps, comma-separated. One series, "
               "which MonitorProxyUpstreamFailing's page reads to name the failing model server and its models.",
               labels=("upstream", "models"), concern="sidecar", max_series=2),
    MetricSpec("monitor_proxy_process_restarts", COUNTER,
               "Times the proxy's data path process (server.proxy.process) exited unasked and was started again.",
               concern="sidecar"),
    MetricSpec("monitor_proxy_upstream_seconds", HISTOGRAM,
               "Time from forwarding a request to the model server until its full response arrived.",
               buckets=HTTP_BUCKETS, concern="sidecar", unit="s"),
    MetricSpec("monitor_checkpoint_last_success_timestamp_seconds", GAUGE,
               "Wall-clock time of the last checkpoint written (Unix seconds); age = time() minus this.",
               concern="sidecar", unit="dateTimeAsIso"),
    MetricSpec("monitor_checkpoint_size_bytes", GAUGE, "Size of the last checkpoint written.",
               concern="sidecar", unit="bytes"),
    MetricSpec("monitor_config_reloads", COUNTER,
               "Reads of monitor.yaml at a reload (SIGHUP or POST /-/reload) by outcome (success, failure): a file that no "
               "longer loads is a failure, and the config in force stays. A reload applies each model's rules: section "
               "(rule files and packs, interval, receivers, external labels and URL); its answer's warnings and the log "
               "name the other keys of monitor.yaml changed since start, which take effect at a restart.",
               labels=("outcome",), concern="sidecar", max_series=2),
    MetricSpec("monitor_config_last_reload_successful", GAUGE,
               "1 when monitor.yaml loaded at start and at the last reload, 0 when the last reload found it invalid: the "
               "file on disk would not start the sidecar, whose next restart then fails.",
               concern="sidecar"),
    MetricSpec("monitor_checkpoint_failures", COUNTER,
               "Checkpoints that could not be written or restored, by operation (save, restore) and reason. "
               "A checkpoint that cannot be restored is moved aside and the model starts fresh.",
               labels=("operation", "reason"), concern="sidecar", max_series=20),
    MetricSpec("monitor_checkpoint_restored", GAUGE,
               "1 when this model's state was restored from a checkpoint at start, else 0.",
               concern="sidecar"),
    MetricSpec("monitor_forward_events_received", COUNTER,
               "Events received from forwarding workers (decorators in other processes), by transport (unix, udp).",
               labels=("transport",), concern="sidecar", max_series=5),
    MetricSpec("monitor_forward_events_dropped", COUNTER,
               "Events forwarding workers dropped before they reached the sidecar, by reason, as the workers "
               "report it (queue_full, sidecar_unavailable, too_large, socket_full).",
               labels=("reason",), concern="sidecar", max_series=20),
    MetricSpec("monitor_forward_datagrams_lost", COUNTER,
               "Forwarding datagrams missing from a worker's sequence (lost in the kernel or on the network between "
               "worker and sidecar), counted once 5 s have passed without them: one arriving within that time "
               "after a later one is processed.",
               concern="sidecar"),
    MetricSpec("monitor_forward_datagrams_discarded", COUNTER,
               "Forwarding datagrams not processed because their sequence number was processed already (a copy made "
               "on the way) or counted lost already (more than 5 s late): their events are processed once, or "
               "counted in monitor_forward_datagrams_lost_total.",
               concern="sidecar"),
    MetricSpec("monitor_forward_senders", GAUGE,
               "Distinct forwarding worker processes heard from in the last five minutes.",
               concern="sidecar"),
)
