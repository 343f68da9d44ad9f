"""Metrics of input drift, output drift, multivariate drift and data quality.

Every drift detector (``input_drift``, ``output_drift``, ``pca_drift``, ``alibi_drift``...) writes
under the same names, told apart by the ``detector`` label, so that one rule and one dashboard
panel cover them all. Per-feature series are bounded by the schema; the explanation of an alarm
(``monitor_drift_top_feature``) is bounded by ``top_k``.
"""

from __future__ import annotations

from monitor.catalog.spec import COUNTER, GAUGE, MetricSpec

__all__ = ["METRICS"]

_D = "drift"
_Q = "data_quality"

METRICS: tuple[MetricSpec, ...] = (
    # -- sequential, ERT-calibrated alarms -------------------------------------------------------
    MetricSpec("monitor_drift_detected", GAUGE,
               "1 while the detector's sequential test is in alarm (false alarms held to one per ERT events), else 0.",
               labels=("detector",), concern=_D, max_series=20),
    MetricSpec("monitor_drift_alarms", COUNTER,
               "Drift alarms raised (transitions into alarm); on undrifted traffic about one per ERT events at most.",
               labels=("detector",), concern=_D, max_series=20),
    MetricSpec("monitor_drift_onset_timestamp_seconds", GAUGE,
               "Estimated start of the current drift: event time of the first row of the window that raised the alarm.",
               labels=("detector",), concern=_D, unit="dateTimeAsIso", max_series=20),
    MetricSpec("monitor_drift_score_ratio", GAUGE,
               "Largest feature deviation at the latest test relative to its alarm threshold (>= 1 is beyond it).",
               labels=("detector",), concern=_D, max_series=20),
    MetricSpec("monitor_drift_ert_events", GAUGE,
               "Configured expected run time: mean events between false alarms the thresholds were calibrated for.",
               labels=("detector",), concern=_D, max_series=20),
    MetricSpec("monitor_drift_top_feature", GAUGE,
               "Features driving the current drift alarm (top_k), with what changed. rank orders them by how much each "
               "feature's whole distribution moved in the alarm window (standardised chi-squared of its bins against the "
               "reference), not by the value, and is kept once that window lies wholly after the onset; value = the "
               "feature's score ratio at the latest flagged test (its largest deviation relative to the threshold, >= 1 "
               "beyond it), so rank 1 may show a lower value than rank 2. alibi_drift: ranked by per-feature KS p-value, "
               "value -log10(p).",
               labels=("detector", "rank", "feature", "change", "since"), concern=_D, max_series=100),
    MetricSpec("monitor_drift_feature_score_ratio", GAUGE,
               "Per-feature deviation at the latest sequential test relative to its alarm threshold (>= 1 is beyond it).",
               labels=("detector", "feature"), concern=_D, max_series=2000),
    # -- windowed (event-time) tests and distances ---------------------------------------------------
    MetricSpec("monitor_drift_feature_pvalue", GAUGE,
               "P-value of the feature's current window against the reference (test = ks for numeric, chi2 for categorical).",
               labels=("detector", "feature", "test"), concern=_D, unit="none", max_series=4000),
    MetricSpec("monitor_drift_feature_effect", GAUGE,
               "Effect size of the feature's drift over the window (measure = js, psi, wasserstein, mean_shift_sd, scale_ratio).",
               labels=("detector", "feature", "measure"), concern=_D, unit="none", max_series=10000),
    MetricSpec("monitor_drift_features_drifted", GAUGE,
               "Features whose window is significant after multiple-testing correction AND above the minimum effect.",
               labels=("detector",), concern=_D, max_series=20),
    MetricSpec("monitor_drift_feature_drifted", GAUGE,
               "1 for a feature counted in monitor_drift_features_drifted (its window significant after multiple-testing "
               "correction and above the minimum effect), 0 for one tested and not; absent when not tested. "
               "ModelFeaturesDriftedOverWindow names the features at 1.",
               labels=("detector", "feature"), concern=_D, max_series=2000),
    MetricSpec("monitor_drift_rows_unread", COUNTER,
               "Rows a drift detector could not compare and left out of its window: for pca_drift with space: embedding, "
               "predictions without an embedding, with one of another width than the reference's, or with non-finite "
               "values (the log says which, once, with the fix).",
               labels=("detector",), concern=_D, max_series=20),
    MetricSpec("monitor_drift_window_rows", GAUGE,
               "Rows in the detector's current event-time window (the sample size behind the windowed p-values).",
               labels=("detector",), concern=_D, max_series=20),
    MetricSpec("monitor_drift_statistic", GAUGE,
               "Multivariate drift statistic of the detector (PCA reconstruction error, MMD, CVM...) on the current window.",
               labels=("detector",), concern=_D, unit="none", max_series=20),
    MetricSpec("monitor_drift_statistic_threshold", GAUGE,
               "Threshold the multivariate statistic is compared with (calibrated on the reference; pca_drift: reference mean error + 3 sd x sqrt(1/window rows + 1/reference rows), the reference's own sampling error included).",
               labels=("detector",), concern=_D, unit="none", max_series=20),
    MetricSpec("monitor_drift_pvalue", GAUGE,
               "P-value of a multivariate batch drift test on the latest window (alibi-detect batch detectors).",
               labels=("detector",), concern=_D, unit="none", max_series=20),
    # -- data quality ----------------------------------------------------------------------------
    MetricSpec("monitor_data_invalid_ratio", GAUGE,
               "Share of the window's rows with a bad value for the feature, by reason (missing, inf, out_of_range, unseen_category, wrong_type); unseen_category is a share of the rows where the feature is present, as on the reference.",
               labels=("feature", "reason"), concern=_Q, unit="percentunit", max_series=5000),
    MetricSpec("monitor_data_reference_invalid_ratio", GAUGE,
               "The share reference-like data reaches (missing rate, 99.9% bound of the out-of-range probability given the reference size, Good-Turing unseen rate among present values).",
               labels=("feature", "reason"), concern=_Q, unit="percentunit", max_series=5000),
    MetricSpec("monitor_data_invalid_rows", COUNTER,
               "Rows with a bad value for the feature, by reason, since start.",
               labels=("feature", "reason"), concern=_Q, max_series=5000),
    MetricSpec("monitor_data_window_rows", GAUGE,
               "Rows in the data-quality window (ratios are absent below the minimum).",
               concern=_Q),
    MetricSpec("monitor_data_reference_rows", GAUGE,
               "Rows of the reference the expected shares were measured on (absent without a reference): the rules add its sampling error to the window's.",
               concern=_Q),
    MetricSpec("monitor_data_stuck", GAUGE,
               "1 when the feature has repeated one value for longer than the reference makes plausible at the configured ERT.",
               labels=("feature",), concern=_Q, max_series=2000),
    MetricSpec("monitor_data_stuck_run_rows", GAUGE,
               "Current run of consecutive rows with the same value of the feature.",
               labels=("feature",), concern=_Q, max_series=2000),
)
