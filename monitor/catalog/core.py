"""Metrics of the agent's foundation: traffic, latency, errors, shedding, and the agent's own cost."""

from __future__ import annotations

from monitor.catalog.spec import COUNTER, GAUGE, HISTOGRAM, MetricSpec

__all__ = ["METRICS", "LATENCY_BUCKETS", "BATCH_BUCKETS"]

#: Model latency in seconds: 0.5 ms to 10 s, dense where online models live.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
#: Rows per call: single-row calls and the batch sizes servers use.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
#: The worker's own processing time per drained batch.
PROCESSING_BUCKETS = (1e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("monitor_calls", COUNTER, "Calls to the monitored predict function (a batch call counts once).",
               concern="core", unit="short"),
    MetricSpec("monitor_predictions", COUNTER, "Rows predicted and processed by the monitor.",
               concern="core", unit="short"),
    MetricSpec("monitor_errors", COUNTER, "Calls where the model raised, by exception type (names cut to 100 characters; capped, overflow is 'other').",
               labels=("exception",), concern="core", max_series=50),
    MetricSpec("monitor_latency_seconds", HISTOGRAM, "Wall-clock latency of each predict call, measured around the model.",
               buckets=LATENCY_BUCKETS, concern="core", unit="s"),
    MetricSpec("monitor_batch_size_rows", HISTOGRAM, "Rows per predict call.",
               buckets=BATCH_BUCKETS, concern="core", unit="short"),
    MetricSpec("monitor_predicted_class", COUNTER, "Rows by predicted class (classifiers only; capped, overflow is 'other').",
               labels=("class",), concern="core", max_series=200),
    MetricSpec("monitor_rule_ticks_skipped", COUNTER,
               "Rule evaluations skipped across a gap in event time longer than 1,000 intervals (a timestamp "
               "of 0 or in milliseconds, a log resumed after months); the gap's last 1,000 are evaluated.",
               concern="agent"),
    MetricSpec("monitor_events_dropped", COUNTER,
               "Events the monitor shed instead of processing, by reason (queue_full, queue_bytes_full for large inputs or outputs or feedback of many labels over queue.max_bytes, closed, ...). The caller is never blocked.",
               labels=("reason",), concern="agent", max_series=20),
    MetricSpec("monitor_events_sampled_out", COUNTER, "Calls skipped by the configured sampling rate (by design, not a loss).",
               concern="agent"),
    MetricSpec("monitor_queue_depth", GAUGE, "Events waiting in the bounded queue between the caller and the worker.",
               concern="agent"),
    MetricSpec("monitor_queue_capacity", GAUGE, "Capacity of the bounded queue; events beyond it are shed and counted.",
               concern="agent"),
    MetricSpec("monitor_rows_rejected", COUNTER,
               "Rows the worker could not read (wrong shape, wrong type, NaN in outputs...), by reason. Never silently dropped.",
               labels=("reason",), concern="agent", max_series=50),
    MetricSpec("monitor_rows_outside_window", COUNTER,
               "Prediction rows whose event time lay more than the model's window behind the newest event time (or the "
               "idle agent's clock) when the worker took them: counted in monitor_predictions_total, but no windowed figure "
               "(confidence, drift, calibration, segments) holds them. A sender whose clock or buffer lags by more than the "
               "window, or a log replayed out of order: fix its timestamps, or raise window.",
               concern="agent"),
    MetricSpec("monitor_internal_errors", COUNTER,
               "Exceptions inside the monitor itself, caught and counted so that the model is never affected, by stage.",
               labels=("stage",), concern="agent", max_series=50),
    MetricSpec("monitor_processing_seconds", HISTOGRAM, "Worker time spent per drained batch (conversion, detectors, export).",
               buckets=PROCESSING_BUCKETS, concern="agent", unit="s"),
    MetricSpec("monitor_worker_rows_per_batch", HISTOGRAM, "Rows per batch drained by the worker.",
               buckets=BATCH_BUCKETS, concern="agent"),
    MetricSpec("monitor_last_event_timestamp_seconds", GAUGE, "Event time of the newest event processed (Unix seconds).",
               concern="agent", unit="dateTimeAsIso"),
    MetricSpec("monitor_feedback_labels", COUNTER,
               "Delayed labels received through feedback, by outcome (joined; late: joined more than the longest window "
               "of the detectors that read labels (the model's window, 1 h by default, unless one sets its own) after "
               "its prediction, so that no figure of the current window counts it (the previous window's, which ModelErrorRateRose compares with, does up to two windows late): set window above the labelling delay; unknown_id: no prediction is held under "
               "that id (its call was sampled out by queue.sample_rate or shed, or refused before the last labels.early ids refused, or it was forgotten: "
               "monitor_labels_evicted_total), or it was labelled already, or its id is none (None, NaN, empty text) or over 1,024 characters (no prediction keeps such an id: counted at once), or the label came before its prediction and waited for it in vain (labels.early_wait: while it waits it is in monitor_labels_early, not here); "
               "prediction_refused: the prediction under that id came and was refused (monitor_rows_rejected_total, by reason), "
               "counted at once, or for a label held for it when the refused prediction comes (the ids of the last labels.early, "
               "10,000 by default, refused rows are remembered, across a restart too); expired: the label came more than 7 days of event time after its "
               "prediction; invalid).",
               labels=("outcome",), concern="core", max_series=10),
    MetricSpec("monitor_row_arguments_dropped", COUNTER,
               "Rows processed without a request_id, segment or client that their call gave as a per-row list of another "
               "length than its rows (a request_id also when it is over 1,024 characters), or without an embedding that could not be read as numbers, one row per input row, as "
               "long as the other calls', by argument (the log says the fix once): feedback for them cannot join, they "
               "count as segment unset, or as the anonymous client, or the embedding drift detector (pca_drift_embedding, "
               "monitor_drift_rows_unread_total) and the probing detector in embedding space leave them out; "
               "reserved_key: rows carrying a key named as a derived feature's column (output, output.length... of an "
               "output.kind: text model's answers; review.length beside the text feature review), whose value is not "
               "monitored as an input; latency_s: calls (one each, not their rows) whose latency_s is not a finite, "
               "non-negative number of seconds, left out of monitor_latency_seconds.",
               labels=("argument",), concern="core", max_series=6),
    MetricSpec("monitor_labels_pending", GAUGE,
               "Predictions with a request id held for their delayed label (at most labels.pending, 100,000 by default).",
               concern="core"),
    MetricSpec("monitor_labels_early", GAUGE,
               "Delayed labels that came before their prediction and are held for it (at most labels.early, 10,000 by "
               "default, each at most labels.early_wait, 10 minutes on the agent's clock from when it came; one whose "
               "prediction does not come counts as unknown_id when it leaves, one whose prediction comes refused as "
               "prediction_refused): a prediction forwarded by another replica, "
               "or sent late by the KServe logger.",
               concern="core"),
    MetricSpec("monitor_labels_evicted", COUNTER,
               "Predictions with a request id forgotten before their label came, because labels.pending were held: a label "
               "that comes for one later counts as unknown_id. Fix: raise labels.pending above (predictions per second with "
               "an id) x (labelling delay in seconds); each costs about 100 bytes plus 4 per class.",
               concern="core"),
    MetricSpec("monitor_labels_clock_outliers", COUNTER,
               "Events (monitor replay and batch jobs, where held labels wait in event time) stamped more than "
               "labels.early_wait ahead of the events around them, which the held labels' clock did not follow: it "
               "follows the median time of the latest 32 events, and taken as it one such event let go of every held "
               "label at once. Fix: the clock of the sender of such events (the log names one).",
               concern="core"),
    MetricSpec("monitor_labels_replaced", COUNTER,
               "Predictions with a request id replaced, before their label came, by a later prediction under the same id "
               "(a retry): the label joins the newest. Many mean the ids are not unique per prediction (a constant, a "
               "session id): fix the id the caller sends, else labels join the wrong predictions.",
               concern="core"),
    MetricSpec("monitor_series_refused", COUNTER,
               "Label combinations refused because a metric reached its series cap, by metric.",
               labels=("metric",), concern="agent", max_series=500),
    MetricSpec("monitor_detector_errors", COUNTER,
               "Exceptions raised inside a detector, caught and counted, by detector.",
               labels=("detector",), concern="agent", max_series=100),
)
