"""Runbooks of the shipped alerts: the first steps on-call takes, rendered into the README.

Every alert of ``rules/*.yml`` links here through its ``runbook_url`` (a README anchor); a test
fails when an alert has no runbook or a runbook has no alert.
"""

from __future__ import annotations

import re

__all__ = ["RUNBOOKS", "RESOLVES", "RUNBOOK_BASE", "runbook_url", "markdown", "readable"]

RUNBOOK_BASE = "https://github.com/model-monitor/model-monitor/blob/main/README.md#"

#: alert name -> what to check first, in order.
RUNBOOKS: dict[str, str] = {
    # core
    "ModelErrorRateHigh": "Look at `monitor_errors_total` by `exception` to see which error dominates; check the model server's logs and recent deploys; a burst of one client's bad inputs shows in `monitor_rows_rejected_total`.",
    "ModelLatencyHigh": "Compare `monitor_latency_seconds` quantiles with `monitor_batch_size_rows` (bigger batches?) and the host's CPU; check whether the monitor itself sheds (`monitor_events_dropped_total`), which would mean the host is saturated.",
    "MonitorShedsEvents": "The worker does not keep up: check `monitor_processing_seconds` and `monitor_queue_depth`; raise `queue.capacity`, lower `queue.sample_rate`, disable costly detectors (probing) or give the agent a core. The model itself is not slowed. Reason extractor_error is not a capacity problem: an extractor given to `watch()` (`inputs=`, `outputs=`, `request_id=`, `segment=`, `client=`, `embedding=`) raises on the calls; the agent's log names it and its exception.",
    "MonitorRuleReloadFailed": "The alert names the file (one alert per file, whichever models list it). Run `monitor rules check FILE` on it, or on the files the reload's 400 answer or the agent's log (`model 'NAME': the rule files were not reloaded`, or at start `model 'NAME': rule files not loaded`) names: it prints promtool's messages with the line. Fix them (or roll the ConfigMap back) and reload again (`POST /-/reload` or SIGHUP); `monitor_rule_last_reload_successful` returns to 1 and the alert resolves. Until then, after a failed reload the rules from before the edit are evaluated, but the edit is not in force; after a start, the broken files' rules are not evaluated at all (the model and the other files' rules run: a typo in an alert rule does not stop the sidecar, its readiness or the predictions it proxies).",
    "MonitorConfigReloadFailed": "Run `monitor config check monitor.yaml` on the file the sidecar reads (`monitor serve --config`; in Kubernetes the mounted ConfigMap): it names the key and the fix, as do the reload's answer (`warnings`) and the agent's log (`reload: ... the config in force stays in force`, logger `monitor.server`). Fix the file (or roll the ConfigMap back) and reload (`POST /-/reload` or SIGHUP); `monitor_config_last_reload_successful` returns to 1 and the alert resolves. Until then do not restart the sidecar: the config in force keeps running, but a restart reads the broken file and the sidecar stays not ready (`/readyz` 503: the pod out of its Service, no events taken).",
    "MonitorForwardingDrops": "`monitor_forward_events_dropped_total` by `reason` (model `_sidecar`: the workers report drops in aggregate) and the workers' log (`monitor.forwarding`) say why. socket_full: the sidecar's intake does not keep up with the datagrams (see MonitorIntakeOverloaded's steps: the sidecar's CPU, its queues; `monitor_forward_datagrams_lost_total` counts datagrams lost in between). queue_full (and the other reasons of MonitorShedsEvents): a worker's own queue, whose forwarding thread does not keep up. unserializable: the workers' log names the event that could not be written as JSON. sidecar_unavailable: the workers reached this sidecar before and then found nothing listening (it was down or restarting for minutes: see its restarts and log). A worker aimed at another socket path never reaches this sidecar, so its drops are not counted here: that shows as `monitor_forward_senders` at 0 and a warning in the worker's own log naming the target. too_large: one event is larger than 64 datagrams, the most it is sent in (large inputs: send them over `POST /v1/events` instead).",
    "MonitorRuleEvaluationFailing": "The agent's log (logger `monitor`) names each failing rule, its file and its error (`group \"G\", rule \"R\": evaluation failed: ...`), once per error. Reproduce it with `monitor rules test` on a few input series; the usual causes: two series that become one after the rule's labels or an aggregation (`vector contains metrics with the same labelset`: keep the label that tells them apart), a many-to-many match (add `on (...)`/`group_left`), or more alerts than the group's `limit`. Fix the file and reload (`POST /-/reload`).",
    "MonitorAlertDeliveryFailing": "`monitor_notifications_total` by `receiver` and `outcome`, and the agent's log (`alert delivery to RECEIVER failed (attempt N/5): URL: reason`, logger `monitor.rules.notifier`: said when a receiver starts failing, then at most every 5 minutes with the failures since, and `works again` when it recovers) say which receiver fails and why: connection refused or a timeout (the Alertmanager or webhook is down, or `rules.alertmanager`/`rules.webhook` names a wrong host or port), a 4xx (a wrong path or missing credentials: put them in the URL, `http://user:pass@host`), a 5xx (the receiver's own fault). `dropped`: more than 10,000 alerts waited for one receiver. Failed alerts are sent again at the next resend while firing (the first rule evaluation more than 1 minute after the last send, as Prometheus's resend delay: every 75 s at the default 15 s interval, every 2 minutes at a 1 m interval); check the Alertmanager's own alerts (`amtool alert query`) for what reached it. With one receiver, this page reaches you through the receiver it names only once that receiver works again (the log's `works again`): it stays 15 minutes after the last failure and resolves by itself. What the outage cost: alerts still firing were sent again and are in Alertmanager; alerts that fired and resolved in between were never paged (Alertmanager, given only their resolution, notifies nothing): find them in the agent's log (logger `monitor.alerts`, one JSON line per transition while `rules.log` is on) or in `monitor_alerts` on the Prometheus that scrapes the agent, and act on those still relevant. To hear of an outage while it lasts, give the agent a second receiver (`rules.webhook`: each receiver is delivered to on its own) or let that Prometheus evaluate this rule and send it through an Alertmanager of its own.",
    "MonitorQueueNearlyFull": "As for MonitorShedsEvents, before events are lost: check the worker's processing time per batch and the traffic rate.",
    "MonitorIntakeOverloaded": "The intake turns events away because the worker does not keep up. Look at the Agent health dashboard: \"Intake refused per second\" by reason (queue_full: that model's queue; overloaded: all models together), \"Queue fill\", \"Worker busy share\" and \"Worker time per batch\". A busy share near 100% means the worker is CPU-bound: give the sidecar a core, lower `queue.sample_rate`, or disable costly detectors (probing). Short bursts (a batch job, a backfill) need room, not CPU: raise `queue.capacity` or `server.max_queued_events` (memory grows with them), or have the sender spread its batches. Check whether the senders retry after `Retry-After`: events refused to a sender that does not retry are lost.",
    "MonitorIntakeRefused": "The sidecar answered 4xx/5xx to (or, for the proxy and CloudEvents, did not monitor) this traffic; each refused request also named the field and the fix in its JSON answer (for the proxy, CloudEvents and forwarding, whose senders do not read answers, the first refusal of each reason is also logged). Common reasons: missing_outputs (the proxied model's answer lacks the tensor `server.proxy.oip_output` names: a client asking MLServer for `predict` only, or a renamed output; or it holds several TF Serving named outputs, none named as output.kind reads; set oip_output to the output holding the scores), missing_inputs, bad_json, unsafe JSON (too deep or too large numbers), too_large (raise server.max_body_bytes or send smaller batches), unauthorized (a client without the write token), unknown_model (a model name no config serves: a model the model server hosts that you do not want monitored goes in server.unmonitored_models, whose traffic is counted as unmonitored and pages nobody), load_failed (the models did not load: see /readyz and the log). Back-pressure reasons are excluded.",
    "ModelInputsUnreadable": "`monitor_rows_rejected_total` by `reason` says what is wrong, and the agent's log (logger `monitor`) names the fix at the first refusal of each reason. Inputs: wrong_shape, wrong_type (a client sends other features than the config lists, or calls of which no value is a number: find the client or deploy, or fix the features in `monitor.yaml` if the model's inputs really changed; one value that is no number in a call costs that value alone, counted in ModelFeatureInvalidValues' metric). Outputs: output_shape, non_numeric_output, labels_as_probabilities (a decorated `predict` where `predict_proba` was meant), nan_output, output_too_large (a regression value beyond 1e150 in size), probabilities_not_normalised, probability_out_of_range, too_many_classes, rows_mismatch, reversed_interval (what the model returns does not match `output.kind` / `output.classes`: a model returning labels needs `output.kind: labels`, raw scores `output.kind: logits`, one independent probability per label (rows of values in [0, 1] that do not sum to 1, refused as probabilities_not_normalised) `output.kind: multilabel`, answers that are no scores at all (generated text, lists of boxes, top-k ids, embeddings) `output.kind: none`, whose inputs alone are monitored, or, for one generated text per row, `output.kind: text`, whose answers are watched as the text feature `output`). Event times: invalid_timestamp, future_timestamp (more than 10 minutes ahead of the agent's clock: the sender's clock, its time zone read as UTC, or a timestamp in milliseconds; refused because one such row would move event time ahead and empty every window). internal_error: see MonitorInternalErrors.",
    "MonitorProxyUpstreamFailing": "`monitor_proxy_upstream_errors_total` by `reason` says which: connect (nothing listens at `--proxy` / `server.proxy.upstream`: a wrong port or host, or the model server is down or restarting: check its container and its readiness), timeout (no answer head within `server.proxy.timeout`: the model server is stuck or overloaded; check its CPU and queue; or every one of the proxy's `server.proxy.max_connections` (100) connections to it was busy, each long stream holding one, and requests waited for one: raise it), disconnect (it closed the connection mid-answer, or its body went silent for `server.proxy.timeout` after the head: a crash, an OOM kill or a stuck stream; the client got a truncated answer; see its log and restarts). The page names the model server (its URL, `server.proxy.upstream`) and the models it serves, from `monitor_proxy_upstream_info`, for each sidecar failing now; the sidecar's log (logger `monitor.server`, `proxy: ...`) names the upstream URL too, at the first failure of each reason and once a minute while they go on. With several sidecars in one Prometheus the share is over all of them (the rule sums by `model`, all `_sidecar`): `monitor_proxy_upstream_errors_total` by `instance` says which pods fail.",
    "MonitorCheckpointFailing": "`monitor_checkpoint_failures_total{operation=\"save\"}` by `reason` and the sidecar's log (`checkpoint of MODEL failed (...)`, logger `monitor.server`) say why: a folder that cannot be created or written (`checkpoint.path` on a read-only, missing or other user's volume: the image runs as non-root), a full disk (`io`); a state that cannot be serialised (`unserializable`) or any other exception (`unexpected`, its type and traceback in the log): a bug, file it with the traceback; `shared`: the file was written by another process in between (two replicas or sidecars on one volume with the same path; the log names the other writer's host and pid): each overwrites the other's state and a restart restores the other's, so give each replica its own `checkpoint.path` on its own volume (a StatefulSet's volumeClaimTemplates). Fix the volume or the path (`monitor_checkpoint_last_success_timestamp_seconds` moves again once a save succeeds); until then avoid restarting the sidecar.",
    "MonitorInternalErrors": "Read the agent's log (logger `monitor`) for the traceback of the stage named in the alert; the model is unaffected, the figures may be incomplete. File a bug with the traceback.",
    "MonitorDetectorFailing": "The named detector raised; its metrics are stale. Read the agent's log for the traceback; a reference that does not match the live schema is the usual cause.",
    "MonitorSeriesCapReached": "A label has more values than expected (a segment, an exception type, a class): check `monitor_series_refused_total` by `metric` and cap the source (segments.cap) or fix the label.",
    # confidence and calibration
    "ModelOverconfident": "The model's confidence exceeds its measured accuracy significantly: check `monitor_reliability_*` bins in the Confidence dashboard, the recalibration temperature (`monitor_recalibration_temperature` > 1 means soften), and whether input drift started at the same time.",
    "ModelCalibrationErrorHigh": "The error is above the bound and beyond chance (`monitor_calibration_error_pvalue` < 0.01: a calibrated model with these confidences and labels rarely reaches it), so it is the model, not the sample. Compare the debiased L2 calibration error with the 15-bin ECE (an L1 gap: a different quantity, not the same figure debiased), look at which reliability bins deviate (over-confident at the top and under-confident below leaves the mean gap, and ModelOverconfident, silent), and refit the temperature (`monitor_recalibration_temperature`) on recent labelled data if the gap persists.",
    "ModelAccuracyDrop": "Measured accuracy on delayed labels fell: check the drift dashboards for the cause (input drift, label shift), the segment view for a single affected group, and recent model or feature-pipeline deploys. The rule allows for the reference's own sampling error (`monitor_reference_accuracy_rows`): against a reference of a few dozen labelled rows only a large drop can page (ModelErrorRateRose, against the window before, needs no reference).",
    "ModelErrorRateRose": "The model errs more than it did in the window before (an hour by default), on labels that are many enough to tell: something changed in the last hour or two. The two windows are read off the calibration detector (`monitor_accuracy_ratio` and `monitor_accuracy_previous_window_ratio`, with their label counts). Look there first: a deploy of the model or of its feature pipeline, a new client or traffic source (the segment view shows whether one group carries it), and the drift dashboards for inputs that moved at the same time. If the rise is a known daily pattern (night traffic of another population), it is a real difference in accuracy, and the segment of that traffic shows it. It does not page while the window is at least as accurate as the reference data (`monitor_reference_accuracy_ratio`): a return to that level after an easier hour is no fault.",
    "ModelEstimatedAccuracyDrop": "Accuracy estimated without labels fell: confirm with the labels that arrive (`monitor_accuracy_ratio`), check input drift and confidence drift; estimates are unreliable under strong noise (see the README's evaluation). The rule allows for the reference's own sampling error (`monitor_reference_accuracy_rows`): with a reference of a few dozen labelled rows only a large drop can page, and a bigger labelled reference lets a smaller one through.",
    "ModelConfidenceDrift": "The distribution of the model's confidence, of its entropy or of both (one alert: the page names which, each with its distance) moved away from the reference: check the input-drift dashboard for the features behind it and whether traffic mix changed (segments). If neither ModelInputDrift nor a data-quality alert fires for the model, its inputs are as before and the model itself changed: a deploy of another model version or of its serving preprocessing (a wrong scaler, a temperature or calibration step dropped); ModelOverconfident, ModelOutputCollapse and, with labels, ModelAccuracyDrop say how.",
    "ModelPredictionDrift": "Predicted-class frequencies moved (label shift as the model sees it): check `monitor_label_shift_weight` by class, upstream changes in who is scored, and whether the shift is real (a season, a campaign) before retraining.",
    "ModelMultilabelDrift": "One label's positive rate moved (the alert names it): compare `monitor_multilabel_positive_rate_ratio` with `monitor_multilabel_reference_positive_rate_ratio` for every label on the Confidence dashboard's multi-label panels (one label alone: its prevalence or its upstream source changed; many at once, or `monitor_multilabel_cardinality_mean` moving: the inputs or the model did), check the input-drift dashboard and recent deploys, and with delayed labels whether `monitor_multilabel_precision_ratio` / `monitor_multilabel_recall_ratio` of that label fell (a real change in the world keeps them; a broken model does not).",
    "ModelOutputCollapse": "The model answers one class far more than on the reference: check a broken feature (data-quality dashboard), a stuck input, or a deploy that ships the wrong model.",
    "ModelOutputsRepeated": "Identical outputs are being returned for different inputs: look for a cache or fallback in front of the model (a default answer on timeouts), a feature that arrives constant (data-quality dashboard), or a model that memorised its training answers; `monitor_output_top_class_share_ratio` says whether the answers also collapse onto one class.",
    "ModelSegmentGap": "One segment is treated very differently (positive rate or accuracy): look at the segment panels, whether the gap is new (compare with last week) and whether that segment's inputs drifted.",
    "ModelSegmentOverconfident": "One segment's confidence exceeds its measured accuracy significantly, even if the whole model looks calibrated: pick that segment in the segment selector of the Confidence dashboard and read its Segments row's panels \"Reliability diagram of the selected segments\" and \"Recalibration temperature by segment\" (`segments` detector with `reliability_bins: true` / `temperature_rows: N`), check whether its inputs drifted, and recalibrate for that segment (its own temperature) or route it to a human until retraining.",
    "ModelSegmentCalibrationErrorHigh": "One segment's probabilities disagree with its accuracy beyond chance (`monitor_segment_calibration_error_pvalue` times the segments tracked < 0.01), even if the whole model looks calibrated: pick that segment in the Confidence dashboard's segment selector and read its reliability diagram (`segments` detector with `reliability_bins: true`), whether it is over-confident (`monitor_segment_overconfidence_gap_ratio`, ModelSegmentOverconfident) or miscalibrated both ways, and whether its inputs drifted; recalibrate for that segment (its own temperature, `temperature_rows: N`) or route it to a human until retraining.",
    "ModelSegmentConfidenceDrift": "The distribution of one segment's confidence, of its entropy or of both (one alert per segment: the page names which, each with its distance) differs from the whole reference's. The reference is not sliced by segment, so first look at the p-value's history (`monitor_segment_confidence_drift_pvalue`): low since the segment's first full window means a standing difference (the model was validated on a population unlike this segment: build a reference that includes its rows, or accept and silence it for that segment); low from some time on means a change: check that segment's inputs (input-drift dashboard filtered on its traffic), a new client or device in it, and whether its accuracy moved (`monitor_segment_accuracy_ratio`, `monitor_segment_estimated_accuracy_ratio`).",
    "ModelSegmentPredictionDrift": "One segment's predicted classes come in different proportions than on the whole reference: read `monitor_segment_output_top_class_share_ratio` against `monitor_segment_output_top_class_share_reference_ratio` (one class taking over: a collapse, see ModelOutputCollapse's steps for that segment) and `monitor_segment_output_diversity_ratio`. As for ModelSegmentConfidenceDrift, a segment whose class mix always differed (low p-value since its first window) is a standing difference, not a change; a new one points at that segment's inputs or who is scored in it.",
    "RegressionPredictionDrift": "The regression model's output distribution moved: check input drift and the MAE/RMSE once labels arrive.",
    "RegressionErrorHigh": "The labelled window's mean absolute error is well above the reference's: check input drift for the cause and `monitor_regression_bias` for a systematic offset (a unit change upstream shows as a large bias); retrain or recalibrate if the shift is real. The rule allows for the reference MAE's own sampling error (`monitor_regression_reference_mae_rows`, the labelled reference rows): against a reference of a few dozen rows with heavy-tailed errors only a large rise can page (errors doubled against a 50-row t(3) reference: 87% of references), and below 20 rows the bare 3x bound is not used; a bigger labelled reference lets a smaller rise through.",
    "RegressionQuantileMiscalibrated": "A predicted quantile no longer covers its level (the alert names it): below zero the quantile is too low. Recalibrate the quantiles on recent labelled data (conformalised quantile regression) or widen them until retraining.",
    "RegressionIntervalTooNarrow": "The prediction intervals cover fewer targets than they claim: decisions that trust them take more risk than stated. Widen them (conformal calibration on recent labels) and check input drift.",
    "RegressionSegmentErrorGap": "One segment's errors are much larger than another's: read `monitor_regression_segment_mae` and `monitor_regression_segment_bias` for the segments named (a bias means a systematic offset for that group: a unit or feature change in its traffic), whether the gap is new (compare with last week) and whether that segment's inputs drifted; a segment the model was never trained on shows a gap from its first window. Retrain with that segment's rows or route it elsewhere until then.",
    # drift
    "ModelInputDrift": "The alert names the top features and what changed (scaled, shifted, missing). Check the upstream source of those features (unit changes, a new pipeline, a broken sensor); if the change is real and lasting, rebuild the reference and consider retraining. A healthy model raises it about once per 2,000,000 rows on average (the ERT, 1,000,000 by default, is a bound averaged over the references one may draw; a given reference can run somewhat above it): when the named feature's effect (monitor_drift_feature_effect) is small, the panel shows no lasting change and ModelFeaturesDriftedOverWindow stays silent, treat it as the calibrated false alarm and let it clear.",
    "ModelOutputDrift": "The model's outputs drifted: read the channel named (predicted_class, max_score, value) and correlate with input drift.",
    "ModelMultivariateDrift": "The joint distribution of the inputs changed even if each feature alone looks normal (pca_drift: the PCA reconstruction error; alibi_drift: the alibi-detect test configured): the Drift & data quality dashboard's \"Multivariate score against its threshold\" panel shows since when. Look for broken correlations between features (a join that mixes rows, a feature from another entity). pca_drift_embedding: the embeddings given with the predictions moved; a component_N named means a shift along the reference's main directions (new topics, another mix of inputs), reconstruction_error rows unlike any reference row (a new language or kind of input, or embeddings of another layer or model version).",
    "ModelFeaturesDriftedOverWindow": "Several features differ significantly and materially over the window: check the per-feature effect sizes in the Drift dashboard and the common upstream of those features. For the `pca_drift` and `pca_drift_embedding` detectors the names are not features but the detector's own statistics: `reconstruction_error` (how badly the PCA fitted on the reference rebuilds a row: for `pca_drift` rows breaking the correlations between features, e.g. a join mixing rows, so find the features at fault in ModelInputDrift or the per-feature effects; for embeddings, inputs unlike the reference's or another encoder making them) and `component_N` (embeddings shifted along the reference's N-th main direction: another mix of inputs or topics; rebuild the reference if it is expected).",
    # data quality
    "ModelFeatureMissingValues": "Missing values rose for the named feature: check its upstream source or join; the model may be imputing silently.",
    "ModelFeatureOutOfRange": "The alert's `reason` says which: out_of_range (numeric values outside the reference's range: a unit change, a new population, or a bug upstream) or unseen_category (categorical values the reference never had: a new code, a renamed category, a changed encoding). The Drift & data quality dashboard's \"Missing and out-of-range rates\" panel shows the feature against the reference's expected rate.",
    "ModelFeatureInvalidValues": "The alert's `reason` says which: inf (an infinite value in a numeric feature: a division by zero or an overflow upstream) or wrong_type (a value of a numeric feature that is no number, such as `N/A`, `?` or a list: its row is monitored with the value missing, and the log names the feature and the first such value; or a categorical value that is not text, in rows handed to the detectors in code: the agent's intake reads a number sent for a categorical feature as its text, so a changed encoding shows as unseen categories, ModelFeatureOutOfRange). Check the feature pipeline and the feature's kind in `monitor.yaml`; the Drift & data quality dashboard's \"Invalid values per second\" panel shows since when. Missing values and unseen categories have their own alerts (ModelFeatureMissingValues, ModelFeatureOutOfRange).",
    "ModelFeatureStuck": "The named feature repeats one value: a frozen sensor, a default filled in by a failing join, or a cache that stopped refreshing.",
    # probing
    "ModelProbingSuspiciousClient": "Before blocking anyone on a `stealing` or `ood` page, rule out a change of the whole traffic: when ModelInputDrift, ModelMultivariateDrift, ModelFeatureOutOfRange or ModelProbingOutOfDistributionTraffic fire for the model (the page names those firing), or several clients are paged in turn, each page resolving within a minute or two while the client goes on sending, the inputs moved for everyone and the `stealing` and `ood` signals, which measure each client's queries against the reference, follow them: a unit change of one feature (read x40) paged all 12 benign clients of a walkthrough 29 times in 12 minutes before the detector learnt to measure a moved population in its own units (none since in that replay; such a change can still flag a benign client now and then). Follow the drift alerts' steps instead and leave the clients alone. A `near_duplicates`, `boundary`, `label_flips` or `campaign` page stands with drift alerts too (the population's rates already allow for a shift there), and a prober's own queries can move the inputs: one client sending 70% of the walkthrough's traffic as near-copies of one row fired ModelInputDrift by itself. A page resolved that way had its signal lowered (the client's recent queries no longer support it), and the clients API no longer lists the client. Otherwise `GET /api/v1/clients` (or `Monitor.suspicious_clients()`) lists the evidence: which signal, how many queries, since when. The id is a salted hash: `POST /api/v1/clients/lookup` with `{\"client\": \"<raw id>\"}` (write token) gives the hash and verdict of an account from the access logs (or `ProbingDetector.client_key(raw_id)` in-process), to confirm which account it is; rate-limit or block the account rather than changing answers, so the attacker learns nothing. The alert resolves once the account has sent nothing for the monitor's window (`window`, an hour by default), and the clients API keeps its verdict; or, as above, when its signal is lowered.",
    "ModelProbingCampaign": "Near-duplicate queries spread over several accounts: list the accounts in the campaign via `/api/v1/clients`, look for a common origin (IP ranges, sign-up time), and act on all of them together.",
    "ModelProbingManySuspiciousClients": "Many clients raise probing signals at once: rule out a benign cause first (a new client library retrying with jitter, a batch job) before treating it as an attack.",
    "ModelProbingClientChurn": "Clients are evicted from the bounded client table quickly: either a flood of new accounts (Sybil) or `max_clients` is too small for the traffic.",
    "ModelProbingOutOfDistributionTraffic": "A large share of queries is unlike anything in the reference: model stealing with synthetic queries, or a new legitimate population (then rebuild the reference).",
}


_WINDOWED = ("once the rows behind it have left the window (`window`, an hour by default): after a fix, up to a window "
             "later, its figure falling on its panel meanwhile says the fix took (a feature read x40 for 17 minutes at 5 rows "
             "a second: ModelFeatureOutOfRange resolved 58 minutes after the inputs were mended; a `for:` delays firing, "
             "not resolving).")
_SEQUENTIAL = ("once the detector's test has gone its largest scale of rows (1,000 by default) without a flag: about "
               "twice that many rows after the inputs return, as measured, so sooner at higher traffic (6.5 minutes, some "
               "1,950 rows, at 5 rows a second; about one minute at 32).")

#: alert name -> when it resolves once its cause is fixed (the README's **Resolves:** line), where measured.
RESOLVES: dict[str, str] = {
    "ModelFeatureMissingValues": _WINDOWED,
    "ModelFeatureOutOfRange": _WINDOWED,
    "ModelFeatureInvalidValues": _WINDOWED,
    "ModelFeaturesDriftedOverWindow": ("once no feature differs over the window (`window`, an hour by default) any more: "
                                       "within a window of the fix; with its `for:` of 30 minutes it can first fire after the "
                                       "fix (18 minutes after a 17-minute unit change was mended, resolving 35 minutes later)."),
    "ModelOverconfident": ("once the window's labelled predictions are no longer significantly over-confident: by a "
                           "window (`window`, an hour by default) after the fix, plus the labelling delay; with its `for:` "
                           "of 10 minutes it can first fire after the fix (15 points over-confident for 17 minutes at "
                           "20,000 labels an hour: fired 3 minutes after the fix, resolved 48 minutes after it)."),
    "ModelErrorRateRose": ("once the window's error rate is no longer significantly above the window before's: within "
                           "a window (`window`, an hour by default) of the fix; it can first fire after the fix (a model "
                           "15 points worse for 17 minutes at 20,000 labels an hour: fired 6 minutes after the fix, "
                           "resolved 43 minutes after it)."),
    "ModelCalibrationErrorHigh": ("once the window's calibration error is back under its bound or within chance: by a "
                                  "window (`window`, an hour by default) after the fix, plus the labelling delay; with "
                                  "its `for:` of 30 minutes it can first fire after the fix (the walkthrough: 4 minutes "
                                  "after its over-confident model was replaced)."),
    "ModelInputDrift": _SEQUENTIAL,
    "ModelMultivariateDrift": _SEQUENTIAL,
}

#: what the placeholders of the alerts' texts (:func:`readable`) stand for, said once above them
LEGEND = ("Each alert's text reads as its page does, with a placeholder for what the alert fills in: ‹value› is the "
          "alert's value (what its expression returned), ‹x› its label `x` (or that of a series it queries), "
          "‹metric_name› the value of a figure it queries when it fires (‹1 - metric_name›: of that expression), "
          "with % after it when the page writes it as a percentage; a text followed by … is repeated for each "
          "series found, and ‹given in the alert› is a part only the page carries.")


def runbook_url(alert: str) -> str:
    return RUNBOOK_BASE + alert.lower()


def readable(description: str) -> str:
    """An alert's description template as on-call reads it in the README, not as Go templates:
    the text the page carries, with ``‹x›`` for label ``x``, ``‹value›`` for the alert's value and
    ``‹metric›`` for a figure the alert queries (see :func:`monitor.rules.template_outline.outline`).
    A block it cannot follow reads ``‹given in the alert›``: the page itself carries the text.
    Guillemets, not ``<x>``, which Markdown takes for HTML tags and hides.
    """
    from monitor.rules.template_outline import GIVEN, outline

    text = re.sub(r"\s+", " ", outline(description)).strip()
    # Blocks that follow one another (several queried figures in a row) read as one placeholder.
    text = re.sub(f"{GIVEN}(?:\\s*{GIVEN})+", GIVEN, text)
    return re.sub(f"(?<=[.;:,›]){GIVEN}", " " + GIVEN, text)


def markdown(alerts: dict[str, tuple[str, str, str]]) -> str:
    """The README's runbooks: ``alerts`` maps name -> (pack file, severity, description)."""
    out = [LEGEND + "\n"]
    for name in sorted(alerts):
        pack, severity, description = alerts[name]
        out.append(f"### {name}\n\n`{pack}`, severity `{severity}`. {readable(description)}\n\n"
                   f"**First steps:** {RUNBOOKS[name]}\n"
                   + (f"\n**Resolves:** {RESOLVES[name]}\n" if name in RESOLVES else ""))
    return "\n".join(out)


def _pack_alerts(rules_dir: str) -> dict[str, tuple[str, str, str]]:
    import glob
    import os

    import yaml

    alerts = {}
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.yml"))):
        for group in yaml.safe_load(open(path, encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = (f"rules/{os.path.basename(path)}", rule.get("labels", {}).get("severity", ""),
                                             rule.get("annotations", {}).get("description", ""))
    return alerts


def main(argv: list[str] | None = None) -> int:
    """``python -m monitor.runbooks README.md``: rewrite the runbooks between the README's markers."""
    import sys
    from pathlib import Path

    from monitor.atomic_file import OutputFileError, atomic_output

    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0] if args else "README.md")
    rules_dir = str(readme.resolve().parent / "rules")
    start, end = "<!-- runbooks:start -->", "<!-- runbooks:end -->"
    try:
        # UTF-8 whatever the locale; markers missing said with the fix (was "substring not found");
        # written whole or not at all (a failed write cut the README short)
        text = readme.read_text(encoding="utf-8")
        i, j = text.find(start), text.find(end)
        if i < 0 or j < i:
            raise ValueError(f"no {start} line followed by a {end} line. Fix: put the two lines where the runbooks go")
        i += len(start)
        text = text[:i] + "\n" + markdown(_pack_alerts(rules_dir)) + "\n" + text[j:]
        with atomic_output(readme) as fh:
            fh.write(text)
    except (OSError, ValueError, OutputFileError) as err:
        print(f"{readme}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
