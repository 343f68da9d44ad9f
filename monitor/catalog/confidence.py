"""Metrics of confidence, calibration, label-free accuracy estimation, segments and regression outputs.

Names are exposed as module constants so that detectors, rules tests and the benchmark refer to
one spelling. Windowed figures are gauges over the detector's sliding event-time window and are
absent (not zero) below their stated minimum count.
"""

from __future__ import annotations

from monitor.catalog.spec import COUNTER, GAUGE, HISTOGRAM, MetricSpec

__all__ = ["METRICS"]

# -- buckets ------------------------------------------------------------------------------------
#: Max probability and margin: dense near 1, where a good model's confidences pile up.
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
#: Normalised entropy (0 = one-hot, 1 = uniform): dense near 0 for the same reason.
ENTROPY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Energy score -T*logsumexp(logits/T): negative for usual logits, the more negative the more familiar.
ENERGY_BUCKETS = (-100.0, -50.0, -30.0, -20.0, -15.0, -10.0, -7.5, -5.0, -2.5, -1.0, 0.0, 1.0, 2.5, 5.0, 10.0)
#: Ensemble mutual information in nats (log 2 = 0.69 is the maximum for two classes).
MI_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5)
#: Variance across members of the top-class probability (at most 0.25).
VARIANCE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

# -- names --------------------------------------------------------------------------------------
CONFIDENCE = "monitor_confidence_ratio"
MARGIN = "monitor_confidence_margin_ratio"
ENTROPY = "monitor_prediction_entropy_ratio"
ENERGY = "monitor_prediction_energy"
MUTUAL_INFORMATION = "monitor_ensemble_mutual_information_nats"
TOP_CLASS_VARIANCE = "monitor_ensemble_top_class_variance"
CONFIDENCE_MEAN = "monitor_confidence_mean_ratio"
CONFIDENCE_ROWS = "monitor_confidence_rows_in_window"
ABSTAIN = "monitor_abstain_ratio"

CONFIDENCE_DRIFT_PVALUE = "monitor_confidence_drift_pvalue"
CONFIDENCE_DRIFT_DISTANCE = "monitor_confidence_drift_distance"

PREDICTION_DRIFT_PVALUE = "monitor_prediction_drift_pvalue"
PREDICTION_DRIFT_DISTANCE = "monitor_prediction_drift_distance"
OUTPUT_ENTROPY = "monitor_output_diversity_ratio"
OUTPUT_ENTROPY_REFERENCE = "monitor_output_diversity_reference_ratio"
TOP_CLASS_SHARE = "monitor_output_top_class_share_ratio"
TOP_CLASS_SHARE_REFERENCE = "monitor_output_top_class_share_reference_ratio"
OUTPUT_REPEAT = "monitor_output_repeat_ratio"
OUTPUT_REPEAT_REFERENCE = "monitor_output_repeat_reference_ratio"
LABEL_SHIFT_WEIGHT = "monitor_label_shift_weight"

ESTIMATED_ACCURACY = "monitor_estimated_accuracy_ratio"
ESTIMATED_ACCURACY_ROWS = "monitor_estimated_accuracy_rows_in_window"
REFERENCE_ACCURACY = "monitor_reference_accuracy_ratio"
REFERENCE_ACCURACY_ROWS = "monitor_reference_accuracy_rows"

LABELS_IN_WINDOW = "monitor_labels_in_window"
LABELS_PREVIOUS_WINDOW = "monitor_labels_in_previous_window"
ACCURACY_PREVIOUS_WINDOW = "monitor_accuracy_previous_window_ratio"
LABELS_SKIPPED = "monitor_calibration_labels_skipped"
ACCURACY = "monitor_accuracy_ratio"
BRIER = "monitor_brier_score"
LOG_LOSS = "monitor_log_loss"
CALIBRATION_ERROR = "monitor_calibration_error_ratio"
CALIBRATION_ERROR_PVALUE = "monitor_calibration_error_pvalue"
MAX_CALIBRATION_ERROR = "monitor_max_calibration_error_ratio"
GAP = "monitor_overconfidence_gap_ratio"
GAP_LOWER = "monitor_overconfidence_gap_lower_ratio"
GAP_UPPER = "monitor_overconfidence_gap_upper_ratio"
GAP_PVALUE = "monitor_overconfidence_pvalue"
TEMPERATURE = "monitor_recalibration_temperature"
RELIABILITY_CONFIDENCE = "monitor_reliability_confidence_ratio"
RELIABILITY_ACCURACY = "monitor_reliability_accuracy_ratio"
RELIABILITY_COUNT = "monitor_reliability_labels"

SEGMENT_ROWS = "monitor_segment_rows_in_window"
SEGMENT_LABELS = "monitor_segment_labels_in_window"
SEGMENT_CONFIDENCE = "monitor_segment_confidence_mean_ratio"
SEGMENT_MARGIN = "monitor_segment_margin_mean_ratio"
SEGMENT_ENTROPY = "monitor_segment_entropy_mean_ratio"
SEGMENT_ESTIMATED_ACCURACY = "monitor_segment_estimated_accuracy_ratio"
SEGMENT_MAX_CALIBRATION_ERROR = "monitor_segment_max_calibration_error_ratio"
SEGMENT_TEMPERATURE = "monitor_segment_recalibration_temperature"
SEGMENT_CONFIDENCE_HISTOGRAM = "monitor_segment_confidence_ratio"
SEGMENT_MARGIN_HISTOGRAM = "monitor_segment_confidence_margin_ratio"
SEGMENT_ENTROPY_HISTOGRAM = "monitor_segment_prediction_entropy_ratio"
SEGMENT_RELIABILITY_CONFIDENCE = "monitor_segment_reliability_confidence_ratio"
SEGMENT_RELIABILITY_ACCURACY = "monitor_segment_reliability_accuracy_ratio"
SEGMENT_RELIABILITY_COUNT = "monitor_segment_reliability_labels"
SEGMENT_POSITIVE_RATE = "monitor_segment_positive_rate_ratio"
SEGMENT_ABSTAIN = "monitor_segment_abstain_ratio"
SEGMENT_ACCURACY = "monitor_segment_accuracy_ratio"
SEGMENT_GAP = "monitor_segment_overconfidence_gap_ratio"
SEGMENT_GAP_PVALUE = "monitor_segment_overconfidence_pvalue"
SEGMENT_GAP_LOWER = "monitor_segment_overconfidence_gap_lower_ratio"
SEGMENT_GAP_UPPER = "monitor_segment_overconfidence_gap_upper_ratio"
SEGMENT_ENERGY = "monitor_segment_energy_mean"
SEGMENT_MUTUAL_INFORMATION = "monitor_segment_mutual_information_mean_nats"
SEGMENT_TOP_CLASS_VARIANCE = "monitor_segment_top_class_variance_mean"
SEGMENT_ENERGY_HISTOGRAM = "monitor_segment_prediction_energy"
SEGMENT_MI_HISTOGRAM = "monitor_segment_ensemble_mutual_information_nats"
SEGMENT_VARIANCE_HISTOGRAM = "monitor_segment_ensemble_top_class_variance"
SEGMENT_BRIER = "monitor_segment_brier_score"
SEGMENT_LOG_LOSS = "monitor_segment_log_loss"
SEGMENT_CALIBRATION_ERROR = "monitor_segment_calibration_error_ratio"
SEGMENT_CALIBRATION_ERROR_PVALUE = "monitor_segment_calibration_error_pvalue"
SEGMENT_MAX_GAP = "monitor_segment_max_gap_ratio"
SEGMENT_MAX_GAP_Z = "monitor_segment_max_gap_zscore"
SEGMENT_OVERFLOW = "monitor_segment_overflow_rows"
SEGMENTS_TRACKED = "monitor_segments_tracked"
SEGMENT_CONFIDENCE_DRIFT_PVALUE = "monitor_segment_confidence_drift_pvalue"
SEGMENT_CONFIDENCE_DRIFT_DISTANCE = "monitor_segment_confidence_drift_distance"
SEGMENT_PREDICTION_DRIFT_PVALUE = "monitor_segment_prediction_drift_pvalue"
SEGMENT_PREDICTION_DRIFT_DISTANCE = "monitor_segment_prediction_drift_distance"
SEGMENT_OUTPUT_ENTROPY = "monitor_segment_output_diversity_ratio"
SEGMENT_TOP_CLASS_SHARE = "monitor_segment_output_top_class_share_ratio"
SEGMENT_TOP_CLASS_SHARE_REFERENCE = "monitor_segment_output_top_class_share_reference_ratio"

REGRESSION_DRIFT_PVALUE = "monitor_regression_prediction_drift_pvalue"
REGRESSION_DRIFT_PSI = "monitor_regression_prediction_psi"
REGRESSION_MEAN = "monitor_regression_prediction_mean"
REGRESSION_REFERENCE_MEAN = "monitor_regression_prediction_reference_mean"
REGRESSION_ROWS = "monitor_regression_rows_in_window"
REGRESSION_LABELS = "monitor_regression_labels_in_window"
REGRESSION_MAE = "monitor_regression_mae"
REGRESSION_RMSE = "monitor_regression_rmse"
REGRESSION_BIAS = "monitor_regression_bias"
INTERVAL_COVERAGE = "monitor_interval_coverage_ratio"
INTERVAL_WIDTH = "monitor_interval_width_mean"
QUANTILE_COVERAGE = "monitor_quantile_coverage_ratio"
QUANTILE_COVERAGE_GAP = "monitor_quantile_coverage_gap_ratio"
QUANTILE_COVERAGE_Z = "monitor_quantile_coverage_zscore"
INTERVAL_COVERAGE_GAP = "monitor_interval_coverage_gap_ratio"
INTERVAL_COVERAGE_Z = "monitor_interval_coverage_zscore"
REGRESSION_REFERENCE_MAE = "monitor_regression_reference_mae"
REGRESSION_REFERENCE_MAE_ROWS = "monitor_regression_reference_mae_rows"
REGRESSION_SEGMENT_ROWS = "monitor_regression_segment_rows_in_window"
REGRESSION_SEGMENT_LABELS = "monitor_regression_segment_labels_in_window"
REGRESSION_SEGMENT_MEAN = "monitor_regression_segment_prediction_mean"
REGRESSION_SEGMENT_MAE = "monitor_regression_segment_mae"
REGRESSION_SEGMENT_RMSE = "monitor_regression_segment_rmse"
REGRESSION_SEGMENT_BIAS = "monitor_regression_segment_bias"
REGRESSION_SEGMENT_INTERVAL_COVERAGE = "monitor_regression_segment_interval_coverage_ratio"
REGRESSION_SEGMENT_INTERVAL_COVERAGE_GAP = "monitor_regression_segment_interval_coverage_gap_ratio"
REGRESSION_SEGMENT_INTERVAL_COVERAGE_Z = "monitor_regression_segment_interval_coverage_zscore"
REGRESSION_SEGMENT_QUANTILE_COVERAGE = "monitor_regression_segment_quantile_coverage_ratio"
REGRESSION_SEGMENT_MAX_MAE_GAP = "monitor_regression_segment_max_mae_gap"
REGRESSION_SEGMENT_MAX_MAE_GAP_Z = "monitor_regression_segment_max_mae_gap_zscore"

MULTILABEL_CONFIDENCE = "monitor_multilabel_confidence_ratio"
MULTILABEL_ROWS = "monitor_multilabel_rows_in_window"
MULTILABEL_POSITIVE_RATE = "monitor_multilabel_positive_rate_ratio"
MULTILABEL_REFERENCE_POSITIVE_RATE = "monitor_multilabel_reference_positive_rate_ratio"
MULTILABEL_PROBABILITY_MEAN = "monitor_multilabel_probability_mean_ratio"
MULTILABEL_CARDINALITY = "monitor_multilabel_cardinality_mean"
MULTILABEL_REFERENCE_CARDINALITY = "monitor_multilabel_reference_cardinality_mean"
MULTILABEL_DRIFT_PVALUE = "monitor_multilabel_drift_pvalue"
MULTILABEL_LABELS = "monitor_multilabel_labels_in_window"
MULTILABEL_BRIER = "monitor_multilabel_brier_score"
MULTILABEL_PRECISION = "monitor_multilabel_precision_ratio"
MULTILABEL_RECALL = "monitor_multilabel_recall_ratio"
MULTILABEL_HAMMING_LOSS = "monitor_multilabel_hamming_loss_ratio"
MULTILABEL_SUBSET_ACCURACY = "monitor_multilabel_subset_accuracy_ratio"

_C = "confidence"
_ML = "multilabel"
_CAL = "calibration"
_SEG = "segments"
_REG = "regression"

METRICS: tuple[MetricSpec, ...] = (
    # distributions of every call
    MetricSpec(CONFIDENCE, HISTOGRAM, "Max class probability of each predicted row: how sure the model claims to be.",
               buckets=CONFIDENCE_BUCKETS, concern=_C, unit="percentunit"),
    MetricSpec(MARGIN, HISTOGRAM, "Top-1 minus top-2 probability of each row: small margins mean the model nearly answered otherwise.",
               buckets=CONFIDENCE_BUCKETS, concern=_C, unit="percentunit"),
    MetricSpec(ENTROPY, HISTOGRAM, "Entropy of each row's probabilities divided by log(classes): 0 is one-hot, 1 is uniform.",
               buckets=ENTROPY_BUCKETS, concern=_C, unit="percentunit"),
    MetricSpec(ENERGY, HISTOGRAM, "Energy score -logsumexp(logits) of each row (logit outputs only; an ensemble's: of its members' mean logits): higher means less familiar input. Buckets only: OpenMetrics has no _sum or _count for a histogram with negative buckets.",
               buckets=ENERGY_BUCKETS, concern=_C, unit="none"),
    MetricSpec(MUTUAL_INFORMATION, HISTOGRAM,
               "Mutual information between ensemble/MC-dropout members and the prediction (epistemic uncertainty): members disagree.",
               buckets=MI_BUCKETS, concern=_C, unit="none"),
    MetricSpec(TOP_CLASS_VARIANCE, HISTOGRAM, "Variance across ensemble members of the probability of the predicted class.",
               buckets=VARIANCE_BUCKETS, concern=_C, unit="none"),
    MetricSpec(CONFIDENCE_MEAN, GAUGE, "Mean max probability over the sliding window (absent below the minimum row count).",
               concern=_C, unit="percentunit"),
    MetricSpec(CONFIDENCE_ROWS, GAUGE, "Classifier rows in the confidence detector's sliding window.", concern=_C),
    MetricSpec(ABSTAIN, GAUGE, "Share of rows in the window whose max probability is below the abstain threshold (should defer to a human).",
               concern=_C, unit="percentunit"),
    # label-free signals against the reference
    MetricSpec(CONFIDENCE_DRIFT_PVALUE, GAUGE,
               "p-value of the test of the window's confidence (or entropy) distribution against the reference; small means changed.",
               labels=("score",), concern=_C, unit="none", max_series=4),
    MetricSpec(CONFIDENCE_DRIFT_DISTANCE, GAUGE,
               "Kolmogorov-Smirnov distance between the window's and the reference's confidence (or entropy) distribution (effect size).",
               labels=("score",), concern=_C, unit="none", max_series=4),
    MetricSpec(PREDICTION_DRIFT_PVALUE, GAUGE,
               "p-value of the chi-squared test of the window's predicted-class counts against the reference (label shift); "
               "with expected counts under 10, Monte-Carlo conditional on the margins (the asymptotic one is too small there).",
               concern=_C, unit="none"),
    MetricSpec(PREDICTION_DRIFT_DISTANCE, GAUGE,
               "Jensen-Shannon distance (base 2, 0..1) between the window's and the reference's predicted-class distribution.",
               concern=_C, unit="none"),
    MetricSpec(OUTPUT_ENTROPY, GAUGE,
               "Entropy of the predicted-class distribution over the window / log(classes): falls when the model collapses onto few answers.",
               concern=_C, unit="percentunit"),
    MetricSpec(OUTPUT_ENTROPY_REFERENCE, GAUGE, "The same output diversity on the reference data, for comparison.",
               concern=_C, unit="percentunit"),
    MetricSpec(TOP_CLASS_SHARE, GAUGE, "Share of the window's predictions given to its most frequent class (named in the label).",
               labels=("class",), concern=_C, unit="percentunit", max_series=1),
    MetricSpec(TOP_CLASS_SHARE_REFERENCE, GAUGE, "Share of the reference's predictions given to that same class.",
               labels=("class",), concern=_C, unit="percentunit", max_series=1),
    MetricSpec(OUTPUT_REPEAT, GAUGE,
               "Share of the window's rows whose exact output (rounded to 1e-6) was recently given to different inputs: canned or memorised answers.",
               concern=_C, unit="percentunit"),
    MetricSpec(OUTPUT_REPEAT_REFERENCE, GAUGE, "The same share of repeated outputs on the reference data, for comparison.",
               concern=_C, unit="percentunit"),
    MetricSpec(LABEL_SHIFT_WEIGHT, GAUGE,
               "Estimated class weight q(y)/p(y) of the window against the reference (black-box shift estimation); 1 means unchanged.",
               labels=("class",), concern=_C, unit="none", max_series=100),
    MetricSpec(ESTIMATED_ACCURACY, GAUGE,
               "Accuracy estimated without labels over the window, by estimator (cbpe: calibrated confidence; atc: thresholded confidence; bbse: label shift, for models of up to 200 classes, `bbse_max_classes`).",
               labels=("estimator",), concern=_C, unit="percentunit", max_series=5),
    MetricSpec(REFERENCE_ACCURACY, GAUGE, "Accuracy of the model on the labelled reference data (the baseline of the estimates).",
               concern=_C, unit="percentunit"),
    MetricSpec(REFERENCE_ACCURACY_ROWS, GAUGE,
               "Labelled reference rows the reference accuracy and the estimators (ATC's threshold, CBPE's calibration) were "
               "fitted on: their sampling error, which ModelAccuracyDrop and ModelEstimatedAccuracyDrop add to the window's (on a reference of 50 "
               "rows an unchanged model's ATC estimate sits several points from the reference accuracy for as long as that "
               "reference is used).",
               concern=_C),
    MetricSpec(ESTIMATED_ACCURACY_ROWS, GAUGE,
               "Rows the estimates of accuracy without labels were computed on (the accuracy_estimation detector's window): "
               "the sample size behind their sampling error, which ModelEstimatedAccuracyDrop's z statistic divides by; "
               "the estimates are absent below min_rows of them.",
               concern=_C),
    # with delayed labels
    MetricSpec(LABELS_IN_WINDOW, GAUGE, "Labelled predictions in the calibration window; figures below their minimum count are absent.",
               concern=_CAL),
    MetricSpec(LABELS_SKIPPED, COUNTER, "Joined labels the labelled figures could not use, for every kind of model despite the name "
               "(kept for existing dashboards and rules): accuracy and calibration of a classifier, the errors of a regression "
               "model, the multi-label figures; by reason (unknown_class; no_scores; other_width: a multi-label "
               "prediction of another number of labels than the model's; outside_window: "
               "joined, but their prediction had left the window when they came: set window above the labelling delay).",
               labels=("reason",), concern=_CAL, max_series=5),
    MetricSpec(ACCURACY, GAUGE, "Accuracy of labelled predictions in the window (absent below the minimum label count).",
               concern=_CAL, unit="percentunit"),
    MetricSpec(LABELS_PREVIOUS_WINDOW, GAUGE,
               "Labelled predictions in the window of the same length just before the calibration window (what "
               "ModelErrorRateRose compares the window with).", concern=_CAL),
    MetricSpec(ACCURACY_PREVIOUS_WINDOW, GAUGE,
               "Accuracy of labelled predictions in the window just before the calibration window (absent below the "
               "minimum label count).", concern=_CAL, unit="percentunit"),
    MetricSpec(BRIER, GAUGE, "Mean multi-class Brier score of labelled predictions in the window (0 best, 2 worst).",
               concern=_CAL, unit="none"),
    MetricSpec(LOG_LOSS, GAUGE, "Mean negative log-likelihood of the true class in the window, in nats.",
               concern=_CAL, unit="none"),
    MetricSpec(CALIBRATION_ERROR, GAUGE,
               "Top-label calibration error over the window, by estimator: debiased L2 on equal-mass bins (Kumar 2019) or 15-bin equal-width ECE.",
               labels=("estimator",), concern=_CAL, unit="percentunit", max_series=4),
    MetricSpec(CALIBRATION_ERROR_PVALUE, GAUGE,
               "P-value of 'the model is calibrated' for the debiased equal-mass calibration error over the window (consistency "
               "resampling: labels redrawn from the confidences, up to resamples draws): below 0.01 the error is not chance.",
               concern=_CAL, unit="none"),
    MetricSpec(MAX_CALIBRATION_ERROR, GAUGE, "Largest |confidence - accuracy| over the 15 equal-width bins holding enough labels.",
               concern=_CAL, unit="percentunit"),
    MetricSpec(GAP, GAUGE, "Mean confidence minus accuracy over the window: positive means over-confident.",
               concern=_CAL, unit="percentunit"),
    MetricSpec(GAP_LOWER, GAUGE, "Lower bound of the over-confidence gap's interval: above 0 means significantly over-confident.",
               concern=_CAL, unit="percentunit"),
    MetricSpec(GAP_UPPER, GAUGE, "Upper bound of the over-confidence gap's interval: below 0 means significantly under-confident.",
               concern=_CAL, unit="percentunit"),
    MetricSpec(GAP_PVALUE, GAUGE,
               "One-sided p-value of 'the model is calibrated' against 'over-confident' over the window: below 0.01 is significant.",
               concern=_CAL, unit="none"),
    MetricSpec(TEMPERATURE, GAUGE,
               "Temperature that would recalibrate the window's predictions (NLL fit): above 1 divide logits by it (over-confident). Absent where none would: one-hot outputs (every top probability 1).",
               concern=_CAL, unit="none"),
    MetricSpec(RELIABILITY_CONFIDENCE, GAUGE, "Reliability diagram: mean confidence of the labelled rows in each equal-width bin.",
               labels=("bin",), concern=_CAL, unit="percentunit", max_series=20),
    MetricSpec(RELIABILITY_ACCURACY, GAUGE, "Reliability diagram: accuracy of the labelled rows in each equal-width bin.",
               labels=("bin",), concern=_CAL, unit="percentunit", max_series=20),
    MetricSpec(RELIABILITY_COUNT, GAUGE, "Reliability diagram: labelled rows in each equal-width confidence bin.",
               labels=("bin",), concern=_CAL, max_series=20),
    # segments
    MetricSpec(SEGMENT_ROWS, GAUGE, "Predicted rows in the window per segment (values beyond the cap are folded into 'other').",
               labels=("segment",), concern=_SEG, max_series=200),
    MetricSpec(SEGMENT_LABELS, GAUGE, "Labelled rows in the window per segment.", labels=("segment",), concern=_SEG, max_series=200),
    MetricSpec(SEGMENT_CONFIDENCE, GAUGE, "Mean max probability in the window per segment.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_MARGIN, GAUGE, "Mean margin (top-1 minus top-2 probability) in the window per segment.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_ENTROPY, GAUGE, "Mean normalised entropy of the predicted distribution in the window per segment (0 certain, 1 uniform).",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_ESTIMATED_ACCURACY, GAUGE,
               "Accuracy estimated without labels per segment (cbpe, atc: the whole window's estimators, fitted on the labelled reference, "
               "on the segment's rows).",
               labels=("segment", "estimator"), concern=_SEG, unit="percentunit", max_series=400),
    MetricSpec(SEGMENT_POSITIVE_RATE, GAUGE, "Share of the window's rows predicted as the positive class, per segment.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_ABSTAIN, GAUGE, "Share of the window's rows under the abstain threshold, per segment.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_ACCURACY, GAUGE, "Accuracy of labelled rows in the window, per segment.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_GAP_PVALUE, GAUGE,
               "One-sided p-value of 'the segment is calibrated' against 'over-confident' (score test of right answers against "
               "the confidences, its tail exact on 15 bins: conservative): below 0.001 divided by the segments tracked is "
               "significant, as ModelSegmentOverconfident tests it.",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_GAP, GAUGE, "Over-confidence gap (mean confidence minus accuracy) of labelled rows, per segment.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_GAP_LOWER, GAUGE,
               "Lower bound of the segment's over-confidence gap interval (gap_level, 98% by default: 1% per side): above 0 means "
               "the segment is significantly over-confident (one segment; with many, prefer the p-value divided by the segments).",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_GAP_UPPER, GAUGE,
               "Upper bound of the segment's over-confidence gap interval: below 0 means the segment is significantly under-confident.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_ENERGY, GAUGE,
               "Mean energy score -logsumexp(logits) of the window's rows per segment (logit outputs only): higher means less familiar input.",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_MUTUAL_INFORMATION, GAUGE,
               "Mean mutual information between ensemble/MC-dropout members and the prediction in the window per segment "
               "(epistemic uncertainty; ensemble outputs only).",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_TOP_CLASS_VARIANCE, GAUGE,
               "Mean variance across ensemble members of the predicted class's probability in the window per segment (ensemble outputs only).",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_BRIER, GAUGE, "Mean multi-class Brier score of labelled rows in the window, per segment (0 best, 2 worst).",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_LOG_LOSS, GAUGE, "Mean negative log-likelihood of the true class of labelled rows in the window, per segment, in nats.",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_CALIBRATION_ERROR, GAUGE,
               "Top-label calibration error per segment, by estimator: 15-bin equal-width ECE, its debiased L2 counterpart on the same bins, "
               "or the debiased L2 on the segment's own equal-mass bins (Kumar 2019, as the whole window's).",
               labels=("segment", "estimator"), concern=_SEG, unit="percentunit", max_series=600),
    MetricSpec(SEGMENT_CALIBRATION_ERROR_PVALUE, GAUGE,
               "P-value of 'the segment is calibrated' for its debiased equal-mass calibration error (consistency resampling, as "
               "the whole window's): with many segments, compare it with a level divided by the segments.",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_MAX_CALIBRATION_ERROR, GAUGE,
               "Largest gap between confidence and accuracy in one of the 15 equal-width bins holding enough labels, per segment (MCE).",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_CONFIDENCE_HISTOGRAM, HISTOGRAM,
               "Max class probability of each predicted row, per segment (segments detector with histograms: true).",
               labels=("segment",), buckets=CONFIDENCE_BUCKETS, concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_MARGIN_HISTOGRAM, HISTOGRAM,
               "Top-1 minus top-2 probability of each row, per segment (segments detector with histograms: true).",
               labels=("segment",), buckets=CONFIDENCE_BUCKETS, concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_ENTROPY_HISTOGRAM, HISTOGRAM,
               "Normalised entropy of each row's probabilities, per segment (segments detector with histograms: true).",
               labels=("segment",), buckets=ENTROPY_BUCKETS, concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_ENERGY_HISTOGRAM, HISTOGRAM,
               "Energy score of each row, per segment (logit outputs; segments detector with histograms: true). Buckets only, as "
               "the whole model's.",
               labels=("segment",), buckets=ENERGY_BUCKETS, concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_MI_HISTOGRAM, HISTOGRAM,
               "Mutual information between ensemble members and the prediction of each row, per segment (ensemble outputs; "
               "segments detector with histograms: true).",
               labels=("segment",), buckets=MI_BUCKETS, concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_VARIANCE_HISTOGRAM, HISTOGRAM,
               "Variance across ensemble members of the predicted class's probability of each row, per segment (ensemble outputs; "
               "segments detector with histograms: true).",
               labels=("segment",), buckets=VARIANCE_BUCKETS, concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_TEMPERATURE, GAUGE,
               "Temperature that would recalibrate the segment's labelled predictions (NLL fit; segments detector with temperature_rows). Absent where none would: one-hot outputs.",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_RELIABILITY_CONFIDENCE, GAUGE,
               "Reliability diagram per segment: mean confidence of the segment's labelled rows in each equal-width bin "
               "(segments detector with reliability_bins: true).",
               labels=("segment", "bin"), concern=_SEG, unit="percentunit", max_series=3200),
    MetricSpec(SEGMENT_RELIABILITY_ACCURACY, GAUGE,
               "Reliability diagram per segment: accuracy of the segment's labelled rows in each equal-width bin "
               "(segments detector with reliability_bins: true).",
               labels=("segment", "bin"), concern=_SEG, unit="percentunit", max_series=3200),
    MetricSpec(SEGMENT_RELIABILITY_COUNT, GAUGE,
               "Reliability diagram per segment: labelled rows of the segment in each equal-width bin (segments detector with "
               "reliability_bins: true).",
               labels=("segment", "bin"), concern=_SEG, max_series=3200),
    MetricSpec(SEGMENT_MAX_GAP, GAUGE,
               "Largest difference of a figure (positive_rate, accuracy, confidence, estimated_accuracy: ATC's) between two segments, "
               "naming the high and low one: the widest pair whose z reaches 4 when one does (a small noisy segment at an extreme "
               "does not hide it), else the widest of all.",
               labels=("figure", "high", "low"), concern=_SEG, unit="percentunit", max_series=4),
    MetricSpec(SEGMENT_MAX_GAP_Z, GAUGE, "z statistic of that largest segment difference (two-proportion test for rates, Welch's for means): above 4 is not noise; +Inf when neither segment's values vary and they differ.",
               labels=("figure", "high", "low"), concern=_SEG, unit="none", max_series=4),
    MetricSpec(SEGMENT_OVERFLOW, COUNTER, "Rows whose segment value arrived after the cap was reached and were counted as 'other'.",
               concern=_SEG),
    MetricSpec(SEGMENTS_TRACKED, GAUGE, "Distinct segment values tracked (at most the configured cap, plus 'other').", concern=_SEG),
    # label-free signals per segment against the whole reference (confidence_drift / prediction_drift with by_segment: true)
    MetricSpec(SEGMENT_CONFIDENCE_DRIFT_PVALUE, GAUGE,
               "p-value of the KS test of the segment's confidence (or entropy) distribution against the whole reference (not sliced: "
               "a segment unlike the population is low from the start); absent below min_rows rows of the segment. With many "
               "segments, compare with alpha divided by the segments tested.",
               labels=("segment", "score"), concern=_SEG, unit="none", max_series=400),
    MetricSpec(SEGMENT_CONFIDENCE_DRIFT_DISTANCE, GAUGE,
               "Kolmogorov-Smirnov distance between the segment's and the whole reference's confidence (or entropy) distribution "
               "(effect size); absent below min_rows rows of the segment.",
               labels=("segment", "score"), concern=_SEG, unit="none", max_series=400),
    MetricSpec(SEGMENT_PREDICTION_DRIFT_PVALUE, GAUGE,
               "p-value of the chi-squared test of the segment's predicted-class counts against the whole reference's (Monte-Carlo "
               "with expected counts under 10, as the whole window's); absent below min_rows rows of the segment. With many "
               "segments, compare with alpha divided by the segments tested.",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_PREDICTION_DRIFT_DISTANCE, GAUGE,
               "Jensen-Shannon distance (base 2, 0..1) between the segment's and the whole reference's predicted-class "
               "distribution; absent below min_rows rows of the segment.",
               labels=("segment",), concern=_SEG, unit="none", max_series=200),
    MetricSpec(SEGMENT_OUTPUT_ENTROPY, GAUGE,
               "Entropy of the segment's predicted-class distribution / log(classes), to compare with "
               "monitor_output_diversity_reference_ratio; absent below min_rows rows of the segment.",
               labels=("segment",), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_TOP_CLASS_SHARE, GAUGE,
               "Share of the segment's predictions given to its most frequent class (named in the label); absent below min_rows "
               "rows of the segment.",
               labels=("segment", "class"), concern=_SEG, unit="percentunit", max_series=200),
    MetricSpec(SEGMENT_TOP_CLASS_SHARE_REFERENCE, GAUGE,
               "Share of the whole reference's predictions given to that segment's most frequent class.",
               labels=("segment", "class"), concern=_SEG, unit="percentunit", max_series=200),
    # regression outputs
    MetricSpec(REGRESSION_DRIFT_PVALUE, GAUGE,
               "p-value of the chi-squared test of the window's predictions (reference-quantile bins) against the reference.",
               concern=_REG, unit="none"),
    MetricSpec(REGRESSION_DRIFT_PSI, GAUGE, "Population stability index of the window's predictions against the reference (0.25 is a large shift).",
               concern=_REG, unit="none"),
    MetricSpec(REGRESSION_MEAN, GAUGE, "Mean prediction over the window.", concern=_REG, unit="none"),
    MetricSpec(REGRESSION_REFERENCE_MEAN, GAUGE, "Mean prediction on the reference data.", concern=_REG, unit="none"),
    MetricSpec(REGRESSION_ROWS, GAUGE, "Regression predictions in the window.", concern=_REG),
    MetricSpec(REGRESSION_LABELS, GAUGE, "Labelled regression predictions in the window.", concern=_REG),
    MetricSpec(REGRESSION_MAE, GAUGE, "Mean absolute error of labelled predictions in the window (target units).", concern=_REG, unit="none"),
    MetricSpec(REGRESSION_RMSE, GAUGE, "Root mean squared error of labelled predictions in the window (target units).", concern=_REG, unit="none"),
    MetricSpec(REGRESSION_BIAS, GAUGE, "Mean of prediction minus target in the window: systematic over- (positive) or under-prediction.",
               concern=_REG, unit="none"),
    MetricSpec(INTERVAL_COVERAGE, GAUGE, "Share of labelled targets inside the model's prediction interval over the window.",
               concern=_REG, unit="percentunit"),
    MetricSpec(INTERVAL_WIDTH, GAUGE, "Mean width of the prediction intervals of labelled rows in the window (target units).",
               concern=_REG, unit="none"),
    MetricSpec(QUANTILE_COVERAGE, GAUGE,
               "Share of labelled targets at or below the model's predicted quantile, by level: a calibrated quantile covers its level.",
               labels=("level",), concern=_REG, unit="percentunit", max_series=20),
    MetricSpec(QUANTILE_COVERAGE_GAP, GAUGE,
               "Coverage of the predicted quantile minus its level: below 0 the quantile is too low (targets above it more often than "
               "claimed). A quantile that targets equal (a count model's whole numbers) is met, 0, when its level lies between the "
               "shares of targets below it and at or below it.",
               labels=("level",), concern=_REG, unit="percentunit", max_series=20),
    MetricSpec(QUANTILE_COVERAGE_Z, GAUGE,
               "Binomial z statistic of that coverage gap over the window's labels: beyond +-4 it is not noise.",
               labels=("level",), concern=_REG, unit="none", max_series=20),
    MetricSpec(INTERVAL_COVERAGE_GAP, GAUGE,
               "Interval coverage minus its nominal level (the spread of the quantile levels, or the configured interval_level).",
               concern=_REG, unit="percentunit"),
    MetricSpec(INTERVAL_COVERAGE_Z, GAUGE, "Binomial z statistic of the interval's coverage gap: below -4 the intervals are too narrow.",
               concern=_REG, unit="none"),
    MetricSpec(REGRESSION_REFERENCE_MAE, GAUGE,
               "Mean absolute error of the model on the labelled reference data: the baseline the window's MAE is held against.",
               concern=_REG, unit="none"),
    MetricSpec(REGRESSION_REFERENCE_MAE_ROWS, GAUGE,
               "Labelled reference rows the reference MAE was measured on (finite prediction and target): its sampling error, "
               "which RegressionErrorHigh adds to the window's (on 30 rows of heavy-tailed errors the reference MAE reads low "
               "often enough that, taken as exact, a healthy model paged for good against 3 to 4% of references).",
               concern=_REG),
    # regression outputs per segment (regression detector with by_segment: true)
    MetricSpec(REGRESSION_SEGMENT_ROWS, GAUGE,
               "Regression predictions in the window per segment (regression detector with by_segment: true; values beyond the cap "
               "are folded into 'other').",
               labels=("segment",), concern=_REG, max_series=200),
    MetricSpec(REGRESSION_SEGMENT_LABELS, GAUGE, "Labelled regression predictions in the window per segment.",
               labels=("segment",), concern=_REG, max_series=200),
    MetricSpec(REGRESSION_SEGMENT_MEAN, GAUGE, "Mean prediction over the window per segment (absent below the detector's min_rows).",
               labels=("segment",), concern=_REG, unit="none", max_series=200),
    MetricSpec(REGRESSION_SEGMENT_MAE, GAUGE,
               "Mean absolute error of the segment's labelled predictions in the window (target units; absent below min_labels).",
               labels=("segment",), concern=_REG, unit="none", max_series=200),
    MetricSpec(REGRESSION_SEGMENT_RMSE, GAUGE,
               "Root mean squared error of the segment's labelled predictions in the window (target units; absent below min_labels).",
               labels=("segment",), concern=_REG, unit="none", max_series=200),
    MetricSpec(REGRESSION_SEGMENT_BIAS, GAUGE,
               "Mean of prediction minus target of the segment's labelled rows in the window (absent below min_labels).",
               labels=("segment",), concern=_REG, unit="none", max_series=200),
    MetricSpec(REGRESSION_SEGMENT_INTERVAL_COVERAGE, GAUGE,
               "Share of the segment's labelled targets inside the model's prediction interval (absent below min_labels rows "
               "with an interval).",
               labels=("segment",), concern=_REG, unit="percentunit", max_series=200),
    MetricSpec(REGRESSION_SEGMENT_INTERVAL_COVERAGE_GAP, GAUGE,
               "The segment's interval coverage minus its nominal level (the spread of the quantile levels, or interval_level).",
               labels=("segment",), concern=_REG, unit="percentunit", max_series=200),
    MetricSpec(REGRESSION_SEGMENT_INTERVAL_COVERAGE_Z, GAUGE,
               "Binomial z statistic of the segment's coverage gap: below -4 the segment's intervals are too narrow.",
               labels=("segment",), concern=_REG, unit="none", max_series=200),
    MetricSpec(REGRESSION_SEGMENT_QUANTILE_COVERAGE, GAUGE,
               "Share of the segment's labelled targets at or below the predicted quantile, by level (absent below min_labels).",
               labels=("segment", "level"), concern=_REG, unit="percentunit", max_series=4000),
    MetricSpec(REGRESSION_SEGMENT_MAX_MAE_GAP, GAUGE,
               "Largest MAE difference between two segments with min_labels labels each, naming the high and low one "
               "(target units): the widest pair whose z reaches 4 when one does, else the widest of all.",
               labels=("high", "low"), concern=_REG, unit="none", max_series=1),
    MetricSpec(REGRESSION_SEGMENT_MAX_MAE_GAP_Z, GAUGE,
               "Welch's z statistic of that largest MAE difference between segments: above 4 is not noise; +Inf when neither segment's errors vary and they differ.",
               labels=("high", "low"), concern=_REG, unit="none", max_series=1),
    # multi-label models (output.kind: multilabel): one independent probability per label
    MetricSpec(MULTILABEL_CONFIDENCE, HISTOGRAM,
               "max(p, 1 - p) of every label decision of every row of a multi-label model: how sure it is of each "
               "label's presence or absence (0.5 is a coin toss).",
               buckets=CONFIDENCE_BUCKETS, concern=_ML, unit="percentunit"),
    MetricSpec(MULTILABEL_ROWS, GAUGE, "Rows of a multi-label model in the multilabel detector's sliding window.",
               concern=_ML),
    MetricSpec(MULTILABEL_POSITIVE_RATE, GAUGE,
               "Share of the window's rows whose probability of the label is at least the threshold (0.5 by default); "
               "absent below min_rows rows.",
               labels=("label",), concern=_ML, unit="percentunit", max_series=1000),
    MetricSpec(MULTILABEL_REFERENCE_POSITIVE_RATE, GAUGE,
               "The same positive rate of each label on the reference's scores, for comparison.",
               labels=("label",), concern=_ML, unit="percentunit", max_series=1000),
    MetricSpec(MULTILABEL_PROBABILITY_MEAN, GAUGE,
               "Mean probability of each label over the window; absent below min_rows rows.",
               labels=("label",), concern=_ML, unit="percentunit", max_series=1000),
    MetricSpec(MULTILABEL_CARDINALITY, GAUGE,
               "Mean number of labels per row over the window (label cardinality: probabilities at least the threshold); "
               "absent below min_rows rows.",
               concern=_ML),
    MetricSpec(MULTILABEL_REFERENCE_CARDINALITY, GAUGE, "The same label cardinality on the reference's scores.",
               concern=_ML),
    MetricSpec(MULTILABEL_DRIFT_PVALUE, GAUGE,
               "p-value of the chi-squared test of the label's positive count in the window against the reference's "
               "(Monte-Carlo conditional on the margins when an expected count is under 10), times the number of labels "
               "(Bonferroni, at most 1): compare with alpha directly. Absent below min_rows rows or without reference scores.",
               labels=("label",), concern=_ML, unit="none", max_series=1000),
    # ... with delayed labels (feedback: a 0/1 vector in label order, or the names of the labels present)
    MetricSpec(MULTILABEL_LABELS, GAUGE,
               "Labelled rows of a multi-label model in the multilabel detector's window (filed under their prediction's "
               "time); its labelled figures are absent below min_labels of them.", concern=_ML),
    MetricSpec(MULTILABEL_BRIER, GAUGE,
               "Brier score of each label over the window's labelled rows: mean of (probability - 0/1 truth)^2 (0 best, "
               "1 worst); absent below min_labels labelled rows.",
               labels=("label",), concern=_ML, unit="none", max_series=1000),
    MetricSpec(MULTILABEL_PRECISION, GAUGE,
               "Share of the label's positive decisions (probability at least the threshold) among the window's labelled "
               "rows that were right; absent below min_labels labelled rows or min_positives positive decisions.",
               labels=("label",), concern=_ML, unit="percentunit", max_series=1000),
    MetricSpec(MULTILABEL_RECALL, GAUGE,
               "Share of the window's labelled rows holding the label that the model decided positive (probability at "
               "least the threshold); absent below min_labels labelled rows or min_positives rows holding it.",
               labels=("label",), concern=_ML, unit="percentunit", max_series=1000),
    MetricSpec(MULTILABEL_HAMMING_LOSS, GAUGE,
               "Hamming loss over the window's labelled rows: share of all their label decisions (rows x labels) that "
               "were wrong; absent below min_labels labelled rows.", concern=_ML, unit="percentunit"),
    MetricSpec(MULTILABEL_SUBSET_ACCURACY, GAUGE,
               "Subset accuracy (exact match) over the window's labelled rows: share of rows whose every label decision "
               "was right; absent below min_labels labelled rows.", concern=_ML, unit="percentunit"),
)
