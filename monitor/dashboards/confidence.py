"""The Confidence & calibration dashboard: how sure the model claims to be, whether that changed,
whether it is right (estimated without labels, measured with them), and where it is miscalibrated;
for regression models their prediction drift, error and interval/quantile coverage, and for logit
and ensemble outputs their energy and epistemic uncertainty."""

from __future__ import annotations

from monitor.dashboards.dashboard import Dashboard, label_variable
from monitor.dashboards.panels import Panel, Query, Row, barchart, heatmap, pack_alerts_panel, stat, timeseries
from monitor.dashboards import promql
from monitor.dashboards.promql import zero_fill

__all__ = ["UID", "build"]

UID = "monitor-confidence"
_SEGMENT = 'segment=~"$segment"'
#: Every query is of the chosen replicas, and figures are kept per replica: the alerts are per
#: instance, and a maximum over replicas showed the healthy one's accuracy while the other's
#: ModelAccuracyDrop fired (and pooled a gap from one with the interval of another).
_INSTANCE = 'instance=~"$instance"'


def selector(name: str, *matchers: str) -> str:
    return promql.selector(name, *matchers, _INSTANCE)


def rate(name: str, *matchers: str) -> str:
    return promql.rate(name, *matchers, _INSTANCE)


def increase(name: str, *matchers: str, suffix: str = "") -> str:
    return promql.increase(name, *matchers, _INSTANCE, suffix=suffix)


def _dist(name: str, *matchers: str) -> str:
    return f"sum by (le) ({increase(name, *matchers, suffix='_bucket')})"


def _by_model(name: str, *matchers: str) -> str:
    return f"max by (model, instance) ({selector(name, *matchers)})"


def _by_label(name: str) -> str:
    """Per label of a multi-label model."""
    return f"max by (model, instance, label) ({selector(name)})"


def _by_segment(name: str, *by: str) -> str:
    return f"max by (model, instance, segment{''.join(', ' + b for b in by)}) ({selector(name, _SEGMENT)})"


def _by_regression_segment(name: str) -> str:
    """Per segment of a regression model: not filtered by $segment, whose values are the
    classifiers' segments (monitor_segment_rows_in_window)."""
    return f"max by (model, instance, segment) ({selector(name)})"


def _reliability(title: str, prefix: str, count: str, description: str, *matchers: str) -> Panel:
    """A reliability diagram: mean confidence against accuracy per equal-width bin, with the
    bin's labelled rows.

    With several models, segments or replicas selected, each bin's figures are pooled weighted by
    their labelled rows (``sum(figure * rows) / sum(rows)``, the rows of the series that have the
    figure: a bin below its minimum count exports rows but no figure), which is the figure of the
    pooled rows; a plain average let a small miscalibrated segment weigh as much as a large one.
    """
    conf, acc = f"{prefix}_confidence_ratio", f"{prefix}_accuracy_ratio"
    rows = selector(count, *matchers)

    def pooled(figure: str) -> str:
        fig = selector(figure, *matchers)
        return f"sum by (bin) ({fig} * {rows}) / sum by (bin) ({rows} and {fig})"

    return barchart(title, Query(pooled(conf), "confidence"), Query(pooled(acc), "accuracy"),
                    Query(f"sum by (bin) ({rows})", "labelled rows"),
                    x_field="bin", metrics=(conf, acc, count), counts=("labelled rows",),
                    description=description + " With several models (or segments) selected, each bin pools their "
                                              "labelled rows (figures weighted by the bin's rows); the bars on the right "
                                              "axis count the bin's labelled rows.")


def build() -> Dashboard:
    """The Confidence & calibration dashboard (metrics of monitor/catalog/confidence.py)."""
    joined = rate("monitor_feedback_labels", 'outcome="joined"')
    items: list[Panel | Row | None] = [
        Row("Confidence of every prediction"),
        heatmap("Confidence over time", _dist("monitor_confidence_ratio"), metrics=("monitor_confidence_ratio",),
                note="Rows per confidence bucket in each interval: a band sliding left means less sure predictions."),
        heatmap("Prediction entropy over time", _dist("monitor_prediction_entropy_ratio"),
                metrics=("monitor_prediction_entropy_ratio",), note="Rows per entropy bucket in each interval."),
        timeseries("Mean confidence and abstain share",
                   Query(_by_model("monitor_confidence_mean_ratio"), "mean confidence {{model}} {{instance}}"),
                   Query(_by_model("monitor_abstain_ratio"), "abstain {{model}} {{instance}}"),
                   metrics=("monitor_confidence_mean_ratio", "monitor_abstain_ratio"), minimum=0, maximum=1),
        timeseries("Confidence drift against the reference",
                   Query(f"max by (model, instance, score) ({selector('monitor_confidence_drift_distance')})", "KS distance {{model}} {{instance}} {{score}}"),
                   metrics=("monitor_confidence_drift_distance",), threshold=0.1, minimum=0,
                   note="The dashed line is the ModelConfidenceDrift bound (with p < 0.001)."),
        timeseries("Prediction drift (label shift)",
                   Query(_by_model("monitor_prediction_drift_distance"), "JS distance {{model}} {{instance}}"),
                   metrics=("monitor_prediction_drift_distance",), minimum=0),
        timeseries("Output diversity against the reference",
                   Query(_by_model("monitor_output_diversity_ratio"), "window {{model}} {{instance}}"),
                   Query(_by_model("monitor_output_diversity_reference_ratio"), "reference {{model}} {{instance}}"),
                   metrics=("monitor_output_diversity_ratio", "monitor_output_diversity_reference_ratio"),
                   minimum=0, maximum=1),
        timeseries("Top-class share against the reference",
                   Query(f"max by (model, instance, class) ({selector('monitor_output_top_class_share_ratio')})",
                         "window {{class}} {{model}} {{instance}}"),
                   Query(f"max by (model, instance, class) ({selector('monitor_output_top_class_share_reference_ratio')})",
                         "reference {{class}} {{model}} {{instance}}"),
                   metrics=("monitor_output_top_class_share_ratio", "monitor_output_top_class_share_reference_ratio"),
                   note="Share of the window's answers taken by its most frequent class, and that class's share on the "
                        "reference: ModelOutputCollapse fires when the window's exceeds the reference's by 0.25.",
                   minimum=0, maximum=1),
        timeseries("Repeated answers against the reference",
                   Query(_by_model("monitor_output_repeat_ratio"), "window {{model}} {{instance}}"),
                   Query(_by_model("monitor_output_repeat_reference_ratio"), "reference {{model}} {{instance}}"),
                   metrics=("monitor_output_repeat_ratio", "monitor_output_repeat_reference_ratio"),
                   note="ModelOutputsRepeated fires when the window's share exceeds the reference's by 0.1.",
                   minimum=0, maximum=1),
        Row("Accuracy"),
        timeseries("Estimated vs measured accuracy",
                   Query(f"max by (model, instance, estimator) ({selector('monitor_estimated_accuracy_ratio')})", "estimated ({{estimator}}) {{model}} {{instance}}"),
                   Query(_by_model("monitor_accuracy_ratio"), "measured {{model}} {{instance}}"),
                   Query(_by_model("monitor_accuracy_previous_window_ratio"), "measured, window before {{model}} {{instance}}"),
                   Query(_by_model("monitor_reference_accuracy_ratio"), "reference {{model}} {{instance}}"),
                   metrics=("monitor_estimated_accuracy_ratio", "monitor_accuracy_ratio",
                            "monitor_accuracy_previous_window_ratio", "monitor_reference_accuracy_ratio"),
                   description="Accuracy estimated from confidence alone (cbpe, atc, bbse), measured on delayed labels "
                               "(in the window, and in the window just before it, which ModelErrorRateRose compares "
                               "it with), and on the reference data: estimates move first, labels confirm later.",
                   maximum=1),
        timeseries("Label coverage",
                   Query(f"{_by_model('monitor_labels_in_window')} / {_by_model('monitor_confidence_rows_in_window')}",
                         "labelled share {{model}} {{instance}}"),
                   metrics=("monitor_labels_in_window", "monitor_confidence_rows_in_window"), unit="percentunit",
                   description="Share of the window's predictions that have received their delayed label: below the "
                               "calibration detector's minimum, label-based figures are absent.", minimum=0, maximum=1),
        stat("Labels joined per second",
             Query(f"sum by (model, instance) ({joined})", "{{model}} {{instance}}"),
             metrics=("monitor_feedback_labels",), unit="cps", width=12),
        stat("Labels in the calibration window", Query(_by_model("monitor_labels_in_window"), "{{model}} {{instance}}"),
             metrics=("monitor_labels_in_window",), width=12),
        timeseries("Labels that counted in no figure",
                   Query(zero_fill(f"sum by (model, instance, outcome) ({rate('monitor_feedback_labels', 'outcome!=' + chr(34) + 'joined' + chr(34))})"),
                         "{{outcome}} {{model}} {{instance}}"),
                   Query(zero_fill(f"sum by (model, instance, reason) ({rate('monitor_calibration_labels_skipped')})"),
                         "skipped: {{reason}} {{model}} {{instance}}"),
                   Query(zero_fill(f"sum by (model, instance) ({rate('monitor_labels_evicted')})"), "forgotten before their label {{model}} {{instance}}"),
                   Query(zero_fill(f"sum by (model, instance) ({rate('monitor_labels_replaced')})"), "replaced under their id {{model}} {{instance}}"),
                   metrics=("monitor_feedback_labels", "monitor_calibration_labels_skipped", "monitor_labels_evicted",
                            "monitor_labels_replaced"),
                   unit="cps", minimum=0, width=16, note="0 when every label counted.",
                   description="Per second: labels for ids never seen or labelled already (unknown_id), for ids whose "
                               "prediction the agent refused (prediction_refused: monitor_rows_rejected_total says why), "
                               "more than the window late (late), invalid or expired; joined labels the labelled figures could not "
                               "use (unknown_class, outside_window); predictions forgotten before their label came "
                               "(labels.pending full) or replaced by a later one under the same id (a retry; a steady "
                               "stream means ids that are not unique). Missing labels are normal; a steady stream here "
                               "is a join to fix."),
        stat("Predictions waiting for a label", Query(_by_model("monitor_labels_pending"), "{{model}} {{instance}}"),
             metrics=("monitor_labels_pending",), width=4),
        stat("Labels waiting for their prediction", Query(_by_model("monitor_labels_early"), "{{model}} {{instance}}"),
             metrics=("monitor_labels_early",), width=4,
             description="Labels that came before their prediction (forwarded by another replica, or sent late by the "
                         "KServe logger), held for it for labels.early_wait; near labels.early means labels for ids "
                         "that never come (a join to fix)."),
        Row("Calibration"),
        timeseries("Over-confidence gap with its interval",
                   Query(_by_model("monitor_overconfidence_gap_ratio"), "gap {{model}} {{instance}}"),
                   Query(_by_model("monitor_overconfidence_gap_lower_ratio"), "lower {{model}} {{instance}}"),
                   Query(_by_model("monitor_overconfidence_gap_upper_ratio"), "upper {{model}} {{instance}}"),
                   metrics=("monitor_overconfidence_gap_ratio", "monitor_overconfidence_gap_lower_ratio",
                            "monitor_overconfidence_gap_upper_ratio"), threshold=0.02,
                   description="Mean confidence minus accuracy on the labelled window, with its interval: a lower bound "
                               "above 0 is significant over-confidence. The dashed line is the ModelOverconfident bound."),
        timeseries("Over-confidence p-value",
                   Query(_by_model("monitor_overconfidence_pvalue"), "{{model}} {{instance}}"),
                   metrics=("monitor_overconfidence_pvalue",), threshold=0.01, minimum=0, maximum=1),
        _reliability("Reliability diagram", "monitor_reliability", "monitor_reliability_labels",
                     "Per equal-width confidence bin: mean confidence against accuracy of the labelled rows; "
                     "accuracy bars below the confidence bars mean over-confidence in that range."),
        timeseries("Calibration error",
                   Query(f"max by (model, instance, estimator) ({selector('monitor_calibration_error_ratio')})", "{{estimator}} {{model}} {{instance}}"),
                   Query(_by_model("monitor_max_calibration_error_ratio"), "max bin error {{model}} {{instance}}"),
                   metrics=("monitor_calibration_error_ratio", "monitor_max_calibration_error_ratio"), threshold=0.1,
                   minimum=0),
        timeseries("Calibration error p-value",
                   Query(_by_model("monitor_calibration_error_pvalue"), "{{model}} {{instance}}"),
                   metrics=("monitor_calibration_error_pvalue",), threshold=0.01, minimum=0, maximum=1,
                   description="P-value of 'the model is calibrated' for the debiased equal-mass error beside it: "
                               "how often a calibrated model with these confidences and this many labels reaches that "
                               "error (labels redrawn from the confidences). ModelCalibrationErrorHigh needs the error "
                               "above 0.1 and this under the dashed 0.01; an error above 0.1 with a large p-value is "
                               "the sample's noise, not the model."),
        timeseries("Recalibration temperature", Query(_by_model("monitor_recalibration_temperature"), "{{model}} {{instance}}"),
                   metrics=("monitor_recalibration_temperature",), threshold=1.0),
        timeseries("Brier score and log loss",
                   Query(_by_model("monitor_brier_score"), "Brier {{model}} {{instance}}"),
                   Query(_by_model("monitor_log_loss"), "log loss {{model}} {{instance}}"),
                   metrics=("monitor_brier_score", "monitor_log_loss"), minimum=0),
        Row("Segments"),
        timeseries("Accuracy by segment",
                   Query(_by_segment("monitor_segment_accuracy_ratio"), "{{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_accuracy_ratio",), minimum=0, maximum=1),
        timeseries("Estimated accuracy by segment (no labels)",
                   Query(_by_segment("monitor_segment_estimated_accuracy_ratio", "estimator"),
                         "{{estimator}} {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_estimated_accuracy_ratio",), minimum=0, maximum=1),
        timeseries("Mean confidence by segment",
                   Query(_by_segment("monitor_segment_confidence_mean_ratio"),
                         "{{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_confidence_mean_ratio",), minimum=0, maximum=1),
        timeseries("Brier score and log loss by segment",
                   Query(_by_segment("monitor_segment_brier_score"),
                         "Brier {{model}} {{instance}} {{segment}}"),
                   Query(_by_segment("monitor_segment_log_loss"),
                         "log loss {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_brier_score", "monitor_segment_log_loss"), minimum=0),
        timeseries("Calibration error by segment",
                   Query(_by_segment("monitor_segment_calibration_error_ratio", "estimator"),
                         "{{estimator}} {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_calibration_error_ratio",), threshold=0.1, minimum=0,
                   note="The dashed line is the whole-window ModelCalibrationErrorHigh bound, for scale."),
        timeseries("Calibration error p-value by segment",
                   Query(_by_segment("monitor_segment_calibration_error_pvalue"), "{{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_calibration_error_pvalue",), threshold=0.01, minimum=0, maximum=1,
                   note="Of each segment's equal-mass calibration error (as the whole window's). The dashed line is "
                        "0.01, for scale: with many segments, compare with 0.01 divided by the segments shown."),
        heatmap("Confidence of the selected segments over time", _dist("monitor_segment_confidence_ratio", _SEGMENT),
                metrics=("monitor_segment_confidence_ratio",),
                note="As 'Confidence over time', for the segments chosen above; exported when the segments detector "
                     "has histograms: true."),
        timeseries("Recalibration temperature by segment",
                   Query(_by_segment("monitor_segment_recalibration_temperature"),
                         "{{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_recalibration_temperature",), threshold=1.0,
                   note="Exported when the segments detector has temperature_rows; above 1: the segment is over-confident."),
        _reliability("Reliability diagram of the selected segments", "monitor_segment_reliability",
                     "monitor_segment_reliability_labels",
                     "As the reliability diagram, for the segments chosen above (pick one to read it alone); exported "
                     "when the segments detector has reliability_bins: true.", _SEGMENT),
        timeseries("Largest gap between segments",
                   Query(f"max by (model, instance, figure, high, low) ({selector('monitor_segment_max_gap_ratio')})",
                         "{{figure}}: {{high}} over {{low}} ({{model}} {{instance}})"),
                   metrics=("monitor_segment_max_gap_ratio",), minimum=0),
        timeseries("Segment gap z statistic",
                   Query(f"max by (model, instance, figure) ({selector('monitor_segment_max_gap_zscore')})", "{{figure}} {{model}} {{instance}}"),
                   metrics=("monitor_segment_max_gap_zscore",), threshold=4.0),
        timeseries("Over-confidence gap by segment with its interval",
                   Query(_by_segment("monitor_segment_overconfidence_gap_ratio"),
                         "gap {{model}} {{instance}} {{segment}}"),
                   Query(_by_segment("monitor_segment_overconfidence_gap_lower_ratio"),
                         "lower {{model}} {{instance}} {{segment}}"),
                   Query(_by_segment("monitor_segment_overconfidence_gap_upper_ratio"),
                         "upper {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_overconfidence_gap_ratio", "monitor_segment_overconfidence_gap_lower_ratio",
                            "monitor_segment_overconfidence_gap_upper_ratio", "monitor_segment_overconfidence_pvalue"),
                   threshold=0.02,
                   note="A lower bound above 0 is one segment's significant over-confidence; with many segments "
                        "ModelSegmentOverconfident asks the p-value times the segments to be below 0.1% (next panel) and "
                        "the gap above the dashed line."),
        timeseries("Segment over-confidence p-value, times the segments",
                   Query(f"{_by_segment('monitor_segment_overconfidence_pvalue')} * ignoring(segment) group_left "
                         f"{_by_model('monitor_segments_tracked')}", "{{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_overconfidence_pvalue", "monitor_segments_tracked"),
                   threshold=0.001, minimum=0, maximum=1,
                   note="What ModelSegmentOverconfident tests (Bonferroni over the segments tracked): below the dashed "
                        "line, 0.1%, the segment's over-confidence is significant."),
        timeseries("Confidence drift by segment",
                   Query(_by_segment("monitor_segment_confidence_drift_distance", "score"),
                         "{{score}} {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_confidence_drift_distance", "monitor_segment_confidence_drift_pvalue"),
                   threshold=0.1, minimum=0, maximum=1,
                   note="KS distance of each segment's confidence (entropy) against the whole reference (confidence_drift "
                        "with by_segment: true): a segment unlike the population sits high from the start; watch for a "
                        "change."),
        timeseries("Prediction drift and top-class share by segment",
                   Query(_by_segment("monitor_segment_prediction_drift_distance"),
                         "JS distance {{model}} {{instance}} {{segment}}"),
                   Query(_by_segment("monitor_segment_output_top_class_share_ratio", "class"),
                         "share of {{class}} {{model}} {{instance}} {{segment}}"),
                   Query(_by_segment("monitor_segment_output_top_class_share_reference_ratio", "class"),
                         "reference share of {{class}} {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_prediction_drift_distance", "monitor_segment_prediction_drift_pvalue",
                            "monitor_segment_output_top_class_share_ratio",
                            "monitor_segment_output_top_class_share_reference_ratio", "monitor_segment_output_diversity_ratio"),
                   minimum=0, maximum=1,
                   note="Predicted-class frequencies of each segment against the whole reference (prediction_drift with "
                        "by_segment: true); a share far above the reference's is a segment collapsing onto one answer."),
        timeseries("Mean energy by segment",
                   Query(_by_segment("monitor_segment_energy_mean"),
                         "{{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_energy_mean",), width=12,
                   note="Models returning logits: a segment whose energy rises is getting less familiar inputs."),
        timeseries("Ensemble disagreement by segment",
                   Query(_by_segment("monitor_segment_mutual_information_mean_nats"),
                         "mutual information {{model}} {{instance}} {{segment}}"),
                   Query(_by_segment("monitor_segment_top_class_variance_mean"),
                         "top-class variance {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_segment_mutual_information_mean_nats", "monitor_segment_top_class_variance_mean"),
                   minimum=0, width=12,
                   note="Ensembles and MC dropout: members disagreeing more on one segment (epistemic uncertainty)."),
        Row("Regression outputs"),
        timeseries("Regression prediction mean against the reference",
                   Query(_by_model("monitor_regression_prediction_mean"), "window {{model}} {{instance}}"),
                   Query(_by_model("monitor_regression_prediction_reference_mean"), "reference {{model}} {{instance}}"),
                   metrics=("monitor_regression_prediction_mean", "monitor_regression_prediction_reference_mean")),
        timeseries("Regression prediction drift",
                   Query(_by_model("monitor_regression_prediction_psi"), "PSI {{model}} {{instance}}"),
                   Query(_by_model("monitor_regression_prediction_drift_pvalue"), "p-value {{model}} {{instance}}"),
                   metrics=("monitor_regression_prediction_psi", "monitor_regression_prediction_drift_pvalue"),
                   threshold=0.25, minimum=0, note="The dashed line is the conventional 'large shift' PSI of 0.25."),
        timeseries("Regression error",
                   Query(_by_model("monitor_regression_mae"), "MAE {{model}} {{instance}}"),
                   Query(_by_model("monitor_regression_rmse"), "RMSE {{model}} {{instance}}"),
                   Query(_by_model("monitor_regression_bias"), "bias {{model}} {{instance}}"),
                   Query(_by_model("monitor_regression_reference_mae"), "reference MAE {{model}} {{instance}}"),
                   metrics=("monitor_regression_mae", "monitor_regression_rmse", "monitor_regression_bias",
                            "monitor_regression_reference_mae"),
                   note="RegressionErrorHigh fires when the window's MAE exceeds 1.5 times the reference MAE, and 3 standard "
                        "errors above it, the window's and the reference MAE's own over its labelled rows (or 3 times the "
                        "reference MAE, on 20 labelled reference rows or more), for 30 minutes."),
        timeseries("Prediction interval and quantile coverage",
                   Query(_by_model("monitor_interval_coverage_ratio"), "interval {{model}} {{instance}}"),
                   Query(f"max by (model, instance, level) ({selector('monitor_quantile_coverage_ratio')})",
                         "quantile {{level}} {{model}} {{instance}}"),
                   metrics=("monitor_interval_coverage_ratio", "monitor_quantile_coverage_ratio"), minimum=0, maximum=1,
                   note="A calibrated quantile's line sits at its level; an interval between levels a and b covers b - a."),
        timeseries("Quantile and interval coverage gap (z)",
                   Query(f"max by (model, instance, level) ({selector('monitor_quantile_coverage_zscore')})",
                         "quantile {{level}} {{model}} {{instance}}"),
                   Query(_by_model("monitor_interval_coverage_zscore"), "interval {{model}} {{instance}}"),
                   metrics=("monitor_quantile_coverage_zscore", "monitor_interval_coverage_zscore",
                            "monitor_quantile_coverage_gap_ratio", "monitor_interval_coverage_gap_ratio"),
                   threshold=(-4.0, 4.0),
                   note="Coverage minus the claimed level, in binomial standard errors of the window's labels: beyond "
                        "+-4 it is not noise (RegressionQuantileMiscalibrated, RegressionIntervalTooNarrow also need a "
                        "5-point gap)."),
        timeseries("Regression error by segment",
                   Query(_by_regression_segment("monitor_regression_segment_mae"),
                         "MAE {{model}} {{instance}} {{segment}}"),
                   Query(_by_regression_segment("monitor_regression_segment_bias"),
                         "bias {{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_regression_segment_mae", "monitor_regression_segment_bias",
                            "monitor_regression_segment_rmse", "monitor_regression_segment_prediction_mean"),
                   note="Regression detector with by_segment: true; every segment is shown (the Segment picker above "
                        "lists the classifiers' segments)."),
        timeseries("Interval coverage by segment",
                   Query(_by_regression_segment("monitor_regression_segment_interval_coverage_ratio"),
                         "{{model}} {{instance}} {{segment}}"),
                   metrics=("monitor_regression_segment_interval_coverage_ratio",
                            "monitor_regression_segment_interval_coverage_gap_ratio",
                            "monitor_regression_segment_interval_coverage_zscore",
                            "monitor_regression_segment_quantile_coverage_ratio"),
                   minimum=0, maximum=1,
                   note="Share of each segment's targets inside its prediction intervals (or between the lowest and highest "
                        "quantile): one segment far below the others is where the intervals lie."),
        timeseries("Largest MAE gap between segments",
                   Query(f"max by (model, instance, high, low) ({selector('monitor_regression_segment_max_mae_gap')})",
                         "{{high}} - {{low}} {{model}} {{instance}}"),
                   metrics=("monitor_regression_segment_max_mae_gap", "monitor_regression_segment_max_mae_gap_zscore"),
                   minimum=0),
        timeseries("Prediction interval width", Query(_by_model("monitor_interval_width_mean"), "{{model}} {{instance}}"),
                   metrics=("monitor_interval_width_mean",), minimum=0),
        timeseries("Regression rows and labels in the window",
                   Query(_by_model("monitor_regression_rows_in_window"), "rows {{model}} {{instance}}"),
                   Query(_by_model("monitor_regression_labels_in_window"), "labels {{model}} {{instance}}"),
                   metrics=("monitor_regression_rows_in_window", "monitor_regression_labels_in_window"), minimum=0),
        Row("Multi-label models"),
        timeseries("Label positive rate against the reference",
                   Query(_by_label("monitor_multilabel_positive_rate_ratio"), "window {{label}} {{model}} {{instance}}"),
                   Query(_by_label("monitor_multilabel_reference_positive_rate_ratio"), "reference {{label}} {{model}} {{instance}}"),
                   Query(_by_label("monitor_multilabel_probability_mean_ratio"), "mean probability {{label}} {{model}} {{instance}}"),
                   metrics=("monitor_multilabel_positive_rate_ratio", "monitor_multilabel_reference_positive_rate_ratio",
                            "monitor_multilabel_probability_mean_ratio"),
                   minimum=0, maximum=1,
                   note="Share of the window's rows given each label (probability at least the multilabel detector's "
                        "threshold), and its share on the reference: ModelMultilabelDrift fires for a label whose line "
                        "leaves its reference by more than 2 points with p < 0.001, for 15 minutes."),
        timeseries("Label drift p-value",
                   Query(_by_label("monitor_multilabel_drift_pvalue"), "{{label}} {{model}} {{instance}}"),
                   metrics=("monitor_multilabel_drift_pvalue",), threshold=0.001, minimum=0, maximum=1,
                   note="Each label's chi-squared p-value against the reference, already multiplied by the number of "
                        "labels: the dashed line is ModelMultilabelDrift's 0.001."),
        timeseries("Labels per row against the reference",
                   Query(_by_model("monitor_multilabel_cardinality_mean"), "window {{model}} {{instance}}"),
                   Query(_by_model("monitor_multilabel_reference_cardinality_mean"), "reference {{model}} {{instance}}"),
                   metrics=("monitor_multilabel_cardinality_mean", "monitor_multilabel_reference_cardinality_mean"),
                   minimum=0),
        timeseries("Multi-label accuracy from delayed labels",
                   Query(_by_model("monitor_multilabel_hamming_loss_ratio"), "hamming loss {{model}} {{instance}}"),
                   Query(_by_model("monitor_multilabel_subset_accuracy_ratio"), "subset accuracy {{model}} {{instance}}"),
                   metrics=("monitor_multilabel_hamming_loss_ratio", "monitor_multilabel_subset_accuracy_ratio"),
                   minimum=0, maximum=1,
                   note="Share of the labelled rows' label decisions that were wrong (hamming loss), and of rows whose "
                        "every decision was right (subset accuracy); absent below the detector's min_labels."),
        timeseries("Precision and recall by label",
                   Query(_by_label("monitor_multilabel_precision_ratio"), "precision {{label}} {{model}} {{instance}}"),
                   Query(_by_label("monitor_multilabel_recall_ratio"), "recall {{label}} {{model}} {{instance}}"),
                   Query(_by_label("monitor_multilabel_brier_score"), "Brier {{label}} {{model}} {{instance}}"),
                   metrics=("monitor_multilabel_precision_ratio", "monitor_multilabel_recall_ratio",
                            "monitor_multilabel_brier_score"),
                   minimum=0, maximum=1,
                   note="At the detector's threshold, over the window's labelled rows; a label's line is absent below "
                        "min_positives positive decisions (precision) or rows holding it (recall). Brier: the mean squared "
                        "error of the label's probability (lower is better)."),
        timeseries("Multi-label rows and labels in the window",
                   Query(_by_model("monitor_multilabel_rows_in_window"), "rows {{model}} {{instance}}"),
                   Query(_by_model("monitor_multilabel_labels_in_window"), "labels {{model}} {{instance}}"),
                   metrics=("monitor_multilabel_rows_in_window", "monitor_multilabel_labels_in_window"), minimum=0),
        Row("Uncertainty of logits and ensembles"),
        heatmap("Energy score over time", _dist("monitor_prediction_energy"), metrics=("monitor_prediction_energy",),
                note="Rows per energy bucket in each interval (models returning logits): a band moving up means less "
                     "familiar inputs.", width=8),
        heatmap("Ensemble mutual information over time", _dist("monitor_ensemble_mutual_information_nats"),
                metrics=("monitor_ensemble_mutual_information_nats",),
                note="Rows per bucket in each interval (ensembles and MC dropout).", width=8),
        heatmap("Ensemble top-class variance over time", _dist("monitor_ensemble_top_class_variance"),
                metrics=("monitor_ensemble_top_class_variance",),
                note="Rows per bucket in each interval (ensembles and MC dropout).", width=8),
        pack_alerts_panel("confidence", "Confidence and calibration alerts"),
    ]
    return Dashboard(UID, "Model monitor / Confidence & calibration",
                     "Confidence distributions, label-free accuracy estimates, calibration against delayed labels, "
                     "segments, regression outputs and the uncertainty of logits and ensembles.", tuple(i for i in items if i is not None),
                     variables=(label_variable("instance", "Instance", promql.ALWAYS_PRESENT),
                                label_variable("segment", "Segment", "monitor_segment_rows_in_window")))
