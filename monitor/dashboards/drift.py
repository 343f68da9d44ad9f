"""The Drift & data quality dashboard: which features moved, since when, how far, and whether the
inputs are even valid (missing, out of range, unseen categories, stuck sensors)."""

from __future__ import annotations

from monitor.dashboards import promql
from monitor.dashboards.dashboard import Dashboard, label_variable
from monitor.dashboards.panels import Panel, Query, Row, pack_alerts_panel, stat, timeseries
from monitor.dashboards.promql import zero_fill

__all__ = ["DETECTOR_VARIABLE_METRIC", "UID", "build"]

UID = "monitor-drift"
_DETECTOR = 'detector=~"$detector"'
#: The series the detector variable lists: the one every drift detector exports unconditionally
#: (monitor_drift_ert_events is only the sequential ones': alibi's offline KSDrift / MMDDrift were
#: missing from the drop-down).
DETECTOR_VARIABLE_METRIC = "monitor_drift_detected"
_FEATURE = 'feature=~"$feature"'
#: Every query is of the chosen replicas, and figures are kept per replica, as on the Confidence
#: dashboard: the drift alerts are per instance, and a maximum over replicas showed one replica's
#: scores beside another's alarm, and mixed their "Features driving the alarm" ranks.
_INSTANCE = 'instance=~"$instance"'


def selector(name: str, *matchers: str) -> str:
    return promql.selector(name, *matchers, _INSTANCE)


def rate(name: str, *matchers: str) -> str:
    return promql.rate(name, *matchers, _INSTANCE)


def build() -> Dashboard:
    """The Drift & data quality dashboard (metrics of monitor/catalog/drift.py)."""
    feature_scores = selector("monitor_drift_feature_score_ratio", _DETECTOR)
    chosen_scores = selector("monitor_drift_feature_score_ratio", _DETECTOR, _FEATURE)
    items: list[Panel | Row | None] = [
        Row("Drift alarms"),
        stat("Detectors in alarm",
             Query(f"sum by (model, instance) ({selector('monitor_drift_detected', _DETECTOR)})", "{{model}} {{instance}}"),
             metrics=("monitor_drift_detected",), width=8, steps=((None, "green"), (1, "red")),
             description="Drift detectors whose sequential test is in alarm now (false alarms held to one per ERT events)."),
        stat("Features drifted (windowed tests)",
             Query(f"max by (model, instance) ({selector('monitor_drift_features_drifted', _DETECTOR)})", "{{model}} {{instance}}"),
             metrics=("monitor_drift_features_drifted",), width=8, steps=((None, "green"), (1, "orange"))),
        stat("Rows in the drift window",
             Query(f"max by (model, instance) ({selector('monitor_drift_window_rows', _DETECTOR)})", "{{model}} {{instance}}"),
             metrics=("monitor_drift_window_rows",), width=8),
        timeseries("Drift score against the alarm threshold",
                   Query(f"max by (model, instance, detector) ({selector('monitor_drift_score_ratio', _DETECTOR)})",
                         "{{model}} {{instance}} {{detector}}"),
                   metrics=("monitor_drift_score_ratio",), unit="none", threshold=1.0, minimum=0,
                   note="At 1 (dashed) the sequential test alarms."),
        timeseries("Drift alarm state",
                   Query(f"max by (model, instance, detector) ({selector('monitor_drift_detected', _DETECTOR)})",
                         "{{model}} {{instance}} {{detector}}"),
                   metrics=("monitor_drift_detected",), bars=True, minimum=0, maximum=1),
        Row("Features"),
        timeseries("Drift score per feature", Query(f"max by (model, instance, feature) ({chosen_scores})", "{{feature}} {{instance}}"),
                   metrics=("monitor_drift_feature_score_ratio",), unit="none", threshold=1.0, minimum=0, width=24,
                   height=10),
        timeseries("Top drifting features", Query(f"topk(5, max by (model, instance, feature) ({feature_scores}))", "{{feature}} {{instance}}"),
                   metrics=("monitor_drift_feature_score_ratio",), unit="none", threshold=1.0, minimum=0,
                   description="The five features deviating most from the reference at each point, relative to their "
                               "alarm threshold."),
        timeseries("Features driving the alarm",
                   Query(f"max by (model, instance, rank, feature, change) ({selector('monitor_drift_top_feature', _DETECTOR)})",
                         "#{{rank}} {{feature}} ({{change}}) {{instance}}"),
                   metrics=("monitor_drift_top_feature",), unit="none",
                   note="Present only while a detector is in alarm."),
        timeseries("Smallest feature p-values",
                   Query(f"bottomk(5, min by (model, instance, feature, test) "
                         f"({selector('monitor_drift_feature_pvalue', _DETECTOR, _FEATURE)}))", "{{feature}} ({{test}}) {{instance}}"),
                   metrics=("monitor_drift_feature_pvalue",), minimum=0, maximum=1),
        timeseries("Largest feature effect sizes",
                   Query(f"topk(5, max by (model, instance, feature, measure) "
                         f"({selector('monitor_drift_feature_effect', _DETECTOR, _FEATURE)}))", "{{feature}} ({{measure}}) {{instance}}"),
                   metrics=("monitor_drift_feature_effect",), minimum=0),
        Row("Multivariate"),
        timeseries("Multivariate score against its threshold",
                   Query(f"max by (model, instance, detector) ({selector('monitor_drift_statistic', _DETECTOR)})",
                         "statistic {{model}} {{instance}} {{detector}}"),
                   Query(f"max by (model, instance, detector) ({selector('monitor_drift_statistic_threshold', _DETECTOR)})",
                         "threshold {{model}} {{instance}} {{detector}}"),
                   metrics=("monitor_drift_statistic", "monitor_drift_statistic_threshold"), width=24),
        Row("Data quality"),
        timeseries("Missing and out-of-range rates",
                   Query(f"max by (model, instance, feature, reason) ({selector('monitor_data_invalid_ratio', _FEATURE)}) > 0",
                         "{{feature}} {{reason}} {{instance}}"),
                   Query(f"max by (model, instance, reason) ({selector('monitor_data_reference_invalid_ratio')})",
                         "expected {{reason}} (reference, worst feature)"),
                   metrics=("monitor_data_invalid_ratio", "monitor_data_reference_invalid_ratio"),
                   description="Share of the window's rows with a bad value, per feature and reason (only features "
                               "with some; unseen_category: of the rows where the feature is present), against the "
                               "worst rate the reference leads one to expect."),
        timeseries("Invalid values per second",
                   Query(zero_fill(f"sum by (model, instance, reason) ({rate('monitor_data_invalid_rows')})"), "{{model}} {{instance}} {{reason}}"),
                   metrics=("monitor_data_invalid_rows",), unit="cps", stack=True, note="Per second; 0 when none."),
        timeseries("Stuck features",
                   Query(zero_fill(f"sum by (model, instance) ({selector('monitor_data_stuck')})"), "{{model}} {{instance}}"),
                   metrics=("monitor_data_stuck",), bars=True,
                   description="Features repeating one value for longer than the reference makes plausible."),
        pack_alerts_panel(("drift", "data_quality"), "Drift and data quality alerts"),
    ]
    return Dashboard(UID, "Model monitor / Drift & data quality",
                     "Input and output drift per feature and multivariate, with explanations, and data quality.",
                     tuple(i for i in items if i is not None),
                     variables=(label_variable("instance", "Instance", promql.ALWAYS_PRESENT),
                                label_variable("detector", "Detector", DETECTOR_VARIABLE_METRIC),
                                label_variable("feature", "Feature", "monitor_drift_feature_score_ratio")))
