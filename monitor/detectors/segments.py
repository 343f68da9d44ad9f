"""Confidence and accuracy per segment, and the largest gap between segments (the fairness view).

Each row may carry a low-cardinality ``segment`` (region, customer tier, device...). Per segment,
over sliding event-time windows, this detector exports the row count, the mean confidence, margin
and normalised entropy, the abstain rate and the positive-prediction rate, with a labelled
reference the accuracy estimated without labels (the CBPE and ATC estimators of the
accuracy-estimation detector, applied to the segment's rows), for logit outputs the mean energy
score and for ensembles the mean mutual information and top-class variance, and with labels the
accuracy and the over-confidence gap with its interval and p-value, Brier score, log loss and
calibration error (15-bin equal-width ECE, its debiased L2 counterpart on the same bins, the
debiased L2 on the segment's own equal-mass bins with its p-value by consistency resampling, as
the calibration detector's, and the MCE); on request the histograms of max probability, margin, entropy (and energy, mutual
information, top-class variance when the outputs carry them: ``histograms: true``), the reliability diagram's bins
(``reliability_bins: true``) and the recalibrating temperature (``temperature_rows: N``), which
multiply their series by the segments (and the last keeps the last N labelled rows). A model that returns labels only
(``output.kind: labels``) has no confidence: it gets the row count, the positive-prediction rate
and, with labels, the accuracy per segment, and their gaps. The first ``segment_cap`` distinct values are tracked; later ones are
folded into ``other`` and counted, so that a bug or an attacker sending unique segment values
cannot blow up memory or the scrape. Rows without a segment form the segment ``unset``; a model
whose rows never carry one gets no per-segment series (they would repeat the whole model's).

For each figure the largest difference between two segments (each with enough rows) is exported
with the names of the high and the low segment and a two-proportion z statistic (Welch's for the
mean confidence), so that an alert can fire on a difference that is both large and not noise.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import Part, PendingRows, accumulate
from monitor.detectors._common import (
    check_reference_width,
    config_params,
    hard_labels,
    label_features,
    uncertainty_features,
    load_windows_state,
    output_features,
    put_figures,
    SeriesColumns,
    reference_probabilities,
    DearFigure,
    Refresh,
    resampling_params,
    detector_rng,
    check_state_version,
    load_resampling_state,
    RefreshingDetector,
    resampling_state,
    time_span,
    windows_state,
    write_families,
)
from monitor.detectors._label_free import LabelFreeEstimators, estimator_settings
from monitor.detectors._pending import GroupedPendingHistogram
from monitor.detectors._recent import RecentLabelled, say_temperature_never_fitted
from monitor.detectors._segment_slots import SegmentSlots
from monitor.detectors.calibration import reliability_series
from monitor.stats import calibration as cal
from monitor.stats import univariate as uni
from monitor.stats.gaps import group_means, largest_gap
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch, LabeledBatch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["SegmentDetector"]

# prediction-window fields, label-window fields (each repeated per segment)
_ROWS, _CONF, _CONF2, _POS, _ABST, _P_FIELDS = 0, 1, 2, 3, 4, 5
# label window: count, correct, confidence, Brier, log loss, then per ECE bin: count, confidence, correct
_LAB, _CORRECT, _LCONF, _LBRIER, _LLOSS = 0, 1, 2, 3, 4
_BIN_N, _BIN_CONF, _BIN_CORR = 5, 5 + cal.ECE_BINS, 5 + 2 * cal.ECE_BINS
_L_FIELDS = 5 + 3 * cal.ECE_BINS
#: the 15 equal-width bins, each edge lowered by the tie tolerance, as the calibration detector's
#: (a labelled vote share of 0.6 is read back as 0.5999999939 and belongs to 0.60-0.67)
_ECE_BINS = cal.bins_of(cal.tie_tolerant_edges(np.linspace(0.0, 1.0, cal.ECE_BINS + 1)))
#: per-segment histograms (``histograms: true``): metric, buckets, and the row feature binned
#: (of :class:`OutputFeatures`, then of :class:`UncertaintyFeatures` when the outputs carry it)
_HISTOGRAMS = ((names.SEGMENT_CONFIDENCE_HISTOGRAM, names.CONFIDENCE_BUCKETS, "conf"),
               (names.SEGMENT_MARGIN_HISTOGRAM, names.CONFIDENCE_BUCKETS, "margin"),
               (names.SEGMENT_ENTROPY_HISTOGRAM, names.ENTROPY_BUCKETS, "entropy"))
_UNCERTAINTY_HISTOGRAMS = ((names.SEGMENT_ENERGY_HISTOGRAM, names.ENERGY_BUCKETS, "energy"),
                           (names.SEGMENT_MI_HISTOGRAM, names.MI_BUCKETS, "mutual_information"),
                           (names.SEGMENT_VARIANCE_HISTOGRAM, names.VARIANCE_BUCKETS, "top_class_variance"))
# uncertainty beyond the probabilities, in a window of its own: rows with logits and their energy
# sum, rows with ensemble members and their mutual information and top-class variance sums
_U_EN, _U_ENERGY, _U_MN, _U_MI, _U_VAR, _U_FIELDS = 0, 1, 2, 3, 4, 5
# labelled rows' terms in a window of their own (a state saved without it loads; these figures
# refill): the over-confidence gap's d = confidence - correct (count, sum, sum of squares) for its
# interval, and per fine confidence bin (the calibration detector's grid) the count, confidence
# and correct sums, which each segment groups into its own equal-mass bins
_FINE_EDGES = cal.fine_confidence_edges()
_NF = len(_FINE_EDGES) - 1
_FINE_BINS = cal.bins_of(cal.tie_tolerant_edges(_FINE_EDGES))
_D_N, _D_SUM, _D_SQ = 0, 1, 2
_F_N, _F_CONF, _F_CORR, _T_FIELDS = 3, 3 + _NF, 3 + 2 * _NF, 3 + 3 * _NF
# more prediction-window fields, in a window of their own with its own row count: a state saved
# without them loads, and these figures are absent until that window holds enough rows again
_X_ROWS, _MARGIN, _ENTROPY, _CBPE, _ATC, _X_FIELDS = 0, 1, 2, 3, 4, 5
#: labels in a bin for it to count in a segment's MCE (as the calibration detector's default)
MCE_MIN_BIN = 10


def _class_index(value: int | str | None) -> int | None:
    """``positive_class`` as a column index: an integer, or a name already turned into its index
    by :meth:`SegmentDetector.from_config` (a name that is not a class cannot be placed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.isdigit()):
        raise ValueError(f"segments: positive_class {value!r} is not a class: give a name listed under output.classes "
                         "or a column index (0 is the first output column)")
    index = int(value)
    if index < 0:
        raise ValueError(f"segments: positive_class {value!r} must be a class name or a column index >= 0")
    return index


def _reliability_blocks(lab: np.ndarray) -> np.ndarray:
    """The label window's reliability sums (``lab``: fields by segments) as ``(statistic,
    segment, bin)`` blocks, count, confidence and correct, each segment's bins contiguous (one
    copy for every per-segment figure read from them): a row's sum adds its bins in the order a
    segment's own 1-D sum does, so the figures stay those of the per-segment estimators."""
    s = lab.shape[1]
    return np.ascontiguousarray(lab[_BIN_N:_L_FIELDS].reshape(3, cal.ECE_BINS, s).transpose(0, 2, 1))


#: The level ModelSegmentCalibrationErrorHigh compares a segment's calibration-error p-value, times
#: the segments tracked, with (rules/confidence.yml): the draws are made fine enough for it.
CALIBRATION_ALPHA = 0.01
#: Below this the score test's approximate p-value is replaced by the exact one (see :func:`_gap_pvalues`).
_GAP_EXACT_BELOW = 0.05
#: Every error counts alike in the segments' test (the weighted test's weights all 1).
_FLAT_WEIGHTS = np.ones(cal.ECE_BINS, dtype=np.int64)


def _gap_pvalues(bins: np.ndarray) -> np.ndarray:
    """Every segment's over-confidence p-value from its reliability sums (``bins``: the
    :func:`_reliability_blocks`; NaN without labels): the score test of "the segment is
    calibrated" (its right answers against the sum of its confidences).

    All segments are first screened in one array pass by the test's Edgeworth approximation
    (:func:`monitor.stats.calibration.overconfidence_pvalue_rows`, the second and third confidence
    moments taken from the 15 bins' means); where it is under ``_GAP_EXACT_BELOW`` the p-value is
    the exact tail of the errors' null law on the bins
    (:func:`monitor.stats.calibration.weighted_overconfidence_pvalue` with every weight 1: a
    binomial per bin at the bin's mean confidence, the most spread-out sum of Bernoullis with
    that mean, Hoeffding 1956, so it errs towards silence). The approximation alone was far too
    small in the tail that ModelSegmentOverconfident reads (0.001 divided by the segments): a
    confident segment expects a fraction of an error, and its calibrated windows of 100 labels at
    mean confidence 0.999 were under 0.001 in 0.39% of them, under 0.0001 in 0.21%. The exact
    tail was under 0.01 only where the approximation was too (seeded profiles from 50 to 1,000
    labels, mean confidence 0.5 to 0.999), so the screen drops none of them; it keeps the exact
    test (0.1-0.3 ms) to a twentieth of a calibrated model's segments at every rule tick (the
    scalar test per segment was the largest part of a recomputation's arithmetic, and the
    window's weighted test per segment took a tenth of the 2 us/event budget at 256 events/s).

    Where the approximation has no variance (every labelled confidence exactly 1: a tree's pure
    leaves, a confident softmax read back from float32) the exact tail answers too: 0 with an
    error (impossible under calibration, as the whole window's test says), 1 without. The
    approximation's NaN there left the most over-confident segment without a p-value."""
    count, sum_conf, sum_correct = bins
    # an empty bin's mean is its confidence sum (0) over 1: its terms count * mean^k are 0 either way
    mean = sum_conf / np.where(count > 0, count, 1.0)
    p = cal.overconfidence_pvalue_rows(sum_conf.sum(axis=1), (count * mean**2).sum(axis=1), (count * mean**3).sum(axis=1),
                                       sum_correct.sum(axis=1))
    exact = (p < _GAP_EXACT_BELOW) | (np.isnan(p) & (count.sum(axis=1) > 0))
    for i in np.flatnonzero(exact).tolist():
        p[i] = cal.weighted_overconfidence_pvalue(count[i], sum_conf[i], sum_correct[i], _FLAT_WEIGHTS)
    return p


class SegmentDetector(RefreshingDetector):
    """Per-segment confidence, abstain, positive rate, accuracy and gap; largest segment gaps.

    Parameters
    ----------
    reference
        Optional. With the model's probabilities and labels on it, the label-free accuracy
        estimators are fitted on it (as the accuracy-estimation detector's) and each segment gets
        its estimated accuracy.
    segment_cap
        Distinct segment values tracked (defaults to the monitor's ``segment_cap``); later values
        count as ``other``.
    positive_class
        Class whose prediction rate is compared across segments: a name from ``output.classes``
        or a column index. Defaults to 1 for binary models; for multi-class models no positive
        rate is exported unless one is given.
    abstain_threshold
        Max probability below which a row counts as abstain.
    window_s, n_slots
        Sliding event-time window and its resolution.
    min_rows, min_labels
        Minimum rows (labels) of a segment for its figures and for taking part in the gaps;
        ``min_labels`` also gates the segment's Brier score and log loss.
    min_labels_calibration
        Minimum labels of a segment for its calibration errors (binned estimators are biased
        upwards below a few hundred labels; the debiased one much less).
    refresh
        Relative change of the window's row count that triggers recomputing the figures at
        export (they are also recomputed when the window slides); 0 recomputes every export.
    histograms
        Also export the histograms of max probability, margin and normalised entropy per segment
        (as the confidence detector's, with a ``segment`` label: about 50 series per segment).
    reliability_bins
        Also export each segment's reliability diagram (15 bins: count, mean confidence, accuracy;
        a bin's confidence and accuracy from 10 labels), for segments holding
        ``min_labels_calibration`` labels: 45 series per segment, hence off by default.
    gap_level
        Two-sided level of each segment's over-confidence gap interval (0.98: 1% per side, as the
        calibration detector's).
    temperature_rows
        Keep the last ``temperature_rows`` labelled rows (of all segments together) and export each
        segment's recalibrating temperature, fitted on its rows among them inside the window once
        it has ``min_labels_calibration`` of them; 0 (the default) keeps none. Size it so that the
        smallest segment of interest has that many labels among the last ``temperature_rows``.
    resamples, seed
        Most draws of each segment's calibration-error p-value (100 to 1,999; more when the
        segments tracked need them, see :meth:`draws`) and the seed of the detector's own
        generator for them (defaults to the monitor's ``seed``), as the calibration detector's.
    atc_score, prior_weight
        The estimators' settings, as the accuracy-estimation detector's (whose values the config
        gives this detector when only that one is set), so that a segment's estimate is the
        whole window's on the segment's rows.
    """

    kind: ClassVar[str] = "segments"
    #: Sliding-window sums per segment. Segment slots are learned in the order values first appear
    #: among the predictions (a label's segment is that of its prediction, seen before it), so
    #: rows may come late (see :attr:`Detector.deferrable`).
    deferrable: ClassVar[bool] = True
    #: 2: the p-values' generator state and the kept p-values (``draws``) are saved; a version-1
    #: state (none saved) loads with fresh draws from the seed, as every restore did before.
    state_version: ClassVar[int] = 2

    def __init__(
        self,
        reference: "Reference | None" = None,
        segment_cap: int = 20,
        positive_class: int | str | None = None,
        abstain_threshold: float = 0.5,
        window_s: float = 3600.0,
        n_slots: int = 12,
        min_rows: int = 100,
        min_labels: int = 50,
        min_labels_calibration: int = 200,
        refresh: float = 0.05,
        histograms: bool = False,
        reliability_bins: bool = False,
        temperature_rows: int = 0,
        gap_level: float = 0.98,
        resamples: int = cal.CALIBRATION_PVALUE_DRAWS,
        seed: int = 0,
        atc_score: str = "entropy",
        prior_weight: float = 2.0,
    ) -> None:
        if segment_cap < 1:
            raise ValueError(f"segments: segment_cap must be at least 1, got {segment_cap}")
        self.segment_cap = int(segment_cap)
        self.positive_class = _class_index(positive_class)
        self.abstain_threshold = float(abstain_threshold)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_rows = int(min_rows)
        self.min_labels = int(min_labels)
        self.min_labels_calibration = int(min_labels_calibration)
        self.refresh = float(refresh)
        self.histograms = bool(histograms)
        self.reliability_bins = bool(reliability_bins)
        if temperature_rows < 0:
            raise ValueError(f"segments: temperature_rows must be 0 (no temperature) or more, got {temperature_rows}")
        self.temperature_rows = int(temperature_rows)
        say_temperature_never_fitted("segments", self.temperature_rows, self.min_labels_calibration,
                                     names.SEGMENT_TEMPERATURE)
        if not 0.5 < gap_level < 1.0:
            raise ValueError(f"segments: gap_level must be in (0.5, 1), got {gap_level}")
        self.gap_level = float(gap_level)
        self.resamples, self.seed = resampling_params("segments", resamples, seed)
        self.atc_score, self.prior_weight = estimator_settings(self.kind, atc_score, prior_weight)
        self._rng = detector_rng("segments", self.seed)
        self._gap_z = NormalDist().inv_cdf(0.5 + self.gap_level / 2.0)
        self._estimators: LabelFreeEstimators | None = None
        if reference is not None and getattr(reference, "scores", None) is not None and getattr(reference, "labels", None) is not None:
            probs, labels = reference_probabilities(reference, self.kind, need_labels=True)
            assert labels is not None
            self._estimators = LabelFreeEstimators.fit(probs, labels, self.atc_score, self.prior_weight)
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "SegmentDetector":
        classes = context.output.classes if context is not None else ()
        pos = params.get("positive_class")
        if pos is None and len(classes) == 2:
            # configured classes are in the user's order, whose second is positive, as a scored
            # binary model's second column (only learned names are ordered as scikit-learn's)
            params = {**params, "positive_class": 1}
        elif isinstance(pos, str) and pos in classes:
            params = {**params, "positive_class": classes.index(pos)}
        elif classes and isinstance(pos, int) and not 0 <= pos < len(classes):
            raise ValueError(f"segments: positive_class {pos} is not a column of output.classes ({len(classes)} classes: "
                             f"{', '.join(classes)}); give one of those names or an index from 0 to {len(classes) - 1}")
        return cls(reference, **config_params(cls, context, params, window_s="window_s", segment_cap="segment_cap", seed="seed"))

    def _reset(self) -> None:
        s = self.segment_cap + 1  # the last slot is "other"
        self._slots = SegmentSlots(self.segment_cap)
        self._pred = SlidingWindow(self.window_s, (_P_FIELDS * s,), self.n_slots)
        self._extra = SlidingWindow(self.window_s, (_X_FIELDS * s,), self.n_slots)
        self._labels = SlidingWindow(self.window_s, (_L_FIELDS * s,), self.n_slots)
        self._uncertainty = SlidingWindow(self.window_s, (_U_FIELDS * s,), self.n_slots)
        self._label_terms = SlidingWindow(self.window_s, (_T_FIELDS * s,), self.n_slots)
        # labels come a few dozen at a time: their rows reach the window together, before it is read
        self._pending_labels = PendingRows(self._labels, self._label_parts)
        self._pending_terms = PendingRows(self._label_terms, self._term_parts)
        # labels of a model that returns labels only: count and correctness (no confidence)
        self._pending_hard = PendingRows(self._labels, self._hard_label_parts)
        self._positive_seen: int | None = None
        # whether the model returns class probabilities: a labels-only model's confidence sums
        # stay zero, and its confidence figures are absent rather than 0
        self._scored = False
        self._refresh = Refresh(self.refresh)
        self._dear = DearFigure()  # the segments' resampled p-values, not redrawn at every rule tick
        self._recent = RecentLabelled(self.temperature_rows)
        # whether rows with logits (energy) or with ensemble members came: their figures are
        # written only then, absent otherwise
        self._seen_energy = self._seen_ensemble = False
        self._other_shown = False
        self._columns: SeriesColumns | None = None
        # per histogram, segment and bucket: observations since the last export
        self._hist = {name: GroupedPendingHistogram(buckets, s) for name, buckets, _ in _HISTOGRAMS + _UNCERTAINTY_HISTOGRAMS} if self.histograms else {}

    @property
    def _s(self) -> int:
        return self.segment_cap + 1

    def _segments(self, values: np.ndarray, rows: bool = True) -> np.ndarray:
        return self._slots.assign(values, rows)

    def _positive(self, k: int) -> int | None:
        if self.positive_class is not None:
            return self.positive_class
        return 1 if k == 2 else None

    def _positive_label(self, classes: tuple[str, ...]) -> int | None:
        """Positive class of a labels-only model: the configured one, else for two classes the
        greater, as scikit-learn orders ``classes_`` (numerically when both names are numbers:
        ``1`` over ``0``; else by their text: ``yes`` over ``no``, ``spam`` over ``ham``). Class
        names learned from the answers come in the order first seen, which must not decide it."""
        if self.positive_class is not None:
            return self.positive_class
        if len(classes) != 2:
            return None
        try:
            keys: list[Any] = [float(c) for c in classes]
            if any(k != k for k in keys):  # "nan" names
                raise ValueError
        except ValueError:
            keys = [(c.casefold(), c) for c in classes]
        return 1 if keys[1] > keys[0] else 0

    def update(self, batch: "Batch") -> None:
        feats = output_features(batch)
        if feats is None:
            if batch.scores is None and batch.predicted is not None:
                self._update_hard(batch)
            return
        self._scored = True
        seg = self._segments(batch.segment)
        s = self._s
        parts: list[tuple[np.ndarray | int, np.ndarray | float]] = [
            (seg + _ROWS * s, 1.0),
            (seg + _CONF * s, feats.conf),
            (seg + _CONF2 * s, feats.conf * feats.conf),
            (seg + _ABST * s, (feats.conf < self.abstain_threshold).astype(np.float64)),
        ]
        k = batch.scores.shape[1]  # type: ignore[union-attr]
        pos = self._positive(k)
        if pos is not None and pos >= k:
            raise ValueError(f"segments: positive_class {pos} is not a column of the model's {k} outputs: give a class "
                             f"name from output.classes or an index from 0 to {k - 1}")
        est = self._estimators
        if est is not None:
            check_reference_width(self.kind, k, est.n_classes)
        if pos is not None:
            self._positive_seen = pos
            parts.append((seg + _POS * s, (feats.predicted == pos).astype(np.float64)))
        self._refresh.add(len(batch))
        span = time_span(batch)
        accumulate(self._pred, batch.ts, parts, span)
        extra: list[tuple[np.ndarray | int, np.ndarray | float]] = [
            (seg + _X_ROWS * s, 1.0), (seg + _MARGIN * s, feats.margin), (seg + _ENTROPY * s, feats.entropy)]
        if est is not None:  # the rows' estimates, shared with the accuracy-estimation detector's
            cbpe, atc = est.batch_rows(batch, feats)
            extra += [(seg + _CBPE * s, cbpe), (seg + _ATC * s, atc)]
        accumulate(self._extra, batch.ts, extra, span)
        unc = uncertainty_features(batch)
        if unc is not None:
            self._update_uncertainty(seg, unc, batch.ts, span)
        if self.histograms:
            for name, _, field in _HISTOGRAMS:
                self._hist[name].add(getattr(feats, field), seg)
            if unc is not None:
                for name, _, field in _UNCERTAINTY_HISTOGRAMS:
                    values = getattr(unc, field)
                    if values is not None:
                        self._hist[name].add(values, seg)

    def _update_uncertainty(self, seg: np.ndarray, unc: Any, ts: np.ndarray, span: tuple[float, float]) -> None:
        s = self._s
        parts: list[tuple[np.ndarray | int, np.ndarray | float]] = []
        if unc.energy is not None:
            self._seen_energy = True
            parts += [(seg + _U_EN * s, 1.0), (seg + _U_ENERGY * s, unc.energy)]
        if unc.mutual_information is not None:
            self._seen_ensemble = True
            parts += [(seg + _U_MN * s, 1.0), (seg + _U_MI * s, unc.mutual_information), (seg + _U_VAR * s, unc.top_class_variance)]
        accumulate(self._uncertainty, ts, parts, span)

    def _flush_histograms(self, out: "MetricWriter") -> None:
        segs = self.segment_names
        for name, hist in self._hist.items():
            hist.flush(out, name, segs)

    def _update_hard(self, batch: "Batch") -> None:
        """Rows of a model that returns labels only: per segment the row count and the positive rate."""
        seg = self._segments(batch.segment)
        s = self._s
        parts: list[tuple[np.ndarray | int, np.ndarray | float]] = [(seg + _ROWS * s, 1.0)]
        pos = self._positive_seen if self._positive_seen is not None else self._positive_label(batch.classes)
        if pos is not None:
            self._positive_seen = pos
            parts.append((seg + _POS * s, (np.asarray(batch.predicted) == pos).astype(np.float64)))
        self._refresh.add(len(batch))
        accumulate(self._pred, batch.ts, parts, time_span(batch))

    def update_labels(self, labeled: "LabeledBatch") -> None:
        if labeled.scores is None and labeled.predicted is not None:
            self._update_hard_labels(labeled)
            return
        lab = label_features(labeled)
        if lab is None:
            return
        self._scored = True
        seg = self._segments(labeled.segment, rows=False)  # learns the segments of every row, known label or not
        if lab.known is not None:
            # -1 or >= k: a label outside the model's classes, counted by the calibration detector
            seg = seg[lab.known]
            if seg.size == 0:
                return
        self._refresh.add(len(lab.ts))
        self._pending_labels.add(lab.ts, seg=seg, conf=lab.conf, correct=lab.correct, brier=lab.brier, log_loss=lab.log_loss)
        self._pending_terms.add(lab.ts, seg=seg, conf=lab.conf, correct=lab.correct)
        self._recent.add(lab.ts, lab.label, lab.logp, seg)

    def _update_hard_labels(self, labeled: "LabeledBatch") -> None:
        """Labels of a labels-only model: per segment the label count and the correct answers."""
        seg = self._segments(labeled.segment, rows=False)
        hard = hard_labels(labeled)  # labels naming no class are counted by the calibration detector
        if hard.correct.size == 0:
            return
        self._refresh.add(int(hard.correct.size))
        self._pending_hard.add(hard.ts, seg=seg[hard.known], correct=hard.correct)

    def _hard_label_parts(self, rows: dict[str, np.ndarray]) -> list[Part]:
        s, seg = self._s, rows["seg"]
        return [(seg + _LAB * s, 1.0), (seg + _CORRECT * s, rows["correct"])]

    def _fold_labels(self) -> None:
        self._pending_labels.fold()
        self._pending_terms.fold()
        self._pending_hard.fold()

    def _term_parts(self, rows: dict[str, np.ndarray]) -> list[Part]:
        s, seg, conf, correct = self._s, rows["seg"], rows["conf"], rows["correct"]
        d = conf - correct
        fine = _FINE_BINS.index(conf) * s + seg
        return [(seg + _D_N * s, 1.0), (seg + _D_SUM * s, d), (seg + _D_SQ * s, d * d),
                (fine + _F_N * s, 1.0), (fine + _F_CONF * s, conf), (fine + _F_CORR * s, correct)]

    def _label_parts(self, rows: dict[str, np.ndarray]) -> list[Part]:
        """What labelled rows add to the label window: per segment count, correctness,
        confidence, Brier score and log loss, and per segment and ECE bin the reliability sums."""
        s, seg, conf, correct = self._s, rows["seg"], rows["conf"], rows["correct"]
        bins = _ECE_BINS.index(conf) * s + seg
        return [
            (seg + _LAB * s, 1.0), (seg + _CORRECT * s, correct), (seg + _LCONF * s, conf),
            (seg + _LBRIER * s, rows["brier"]), (seg + _LLOSS * s, rows["log_loss"]),
            (bins + _BIN_N * s, 1.0), (bins + _BIN_CONF * s, conf), (bins + _BIN_CORR * s, correct),
        ]

    def advance(self, now: float) -> None:
        self._pred.advance(now)
        self._extra.advance(now)
        self._labels.advance(now)
        self._uncertainty.advance(now)
        self._label_terms.advance(now)

    # -- results ------------------------------------------------------------------------------
    @property
    def segment_names(self) -> tuple[str, ...]:
        """Tracked segment names, then ``other``."""
        return self._slots.names

    def _fields(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._fold_labels()
        s = self._s
        return (self._pred.total().reshape(_P_FIELDS, s), self._labels.total().reshape(_L_FIELDS, s),
                self._extra.total().reshape(_X_FIELDS, s))

    def gaps(self, fields: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict[str, tuple[str, str, float, float] | None]:
        """Largest difference between eligible segments per figure: (high, low, gap, z)
        (``fields``: the windows' totals when the caller has them already)."""
        p, lab, x = self._fields() if fields is None else fields
        rows, labels = p[_ROWS], lab[_LAB]
        okr = rows >= max(self.min_rows, 1)
        okl = labels >= max(self.min_labels, 1)
        safe_r, safe_l = np.maximum(rows, 1.0), np.maximum(labels, 1.0)
        conf, conf_var = group_means(p[_CONF], p[_CONF2], rows)
        found: dict[str, tuple[int, int, float, float] | None] = {
            "confidence": largest_gap(conf, rows, okr, conf_var) if self._scored else None,
            "accuracy": largest_gap(lab[_CORRECT] / safe_l, labels, okl),
            "positive_rate": largest_gap(p[_POS] / safe_r, rows, okr) if self._positive_seen is not None else None,
            "estimated_accuracy": (largest_gap(x[_ATC] / np.maximum(x[_X_ROWS], 1.0), x[_X_ROWS], x[_X_ROWS] >= max(self.min_rows, 1))
                                   if self._estimators is not None and self._scored else None),
        }
        names_ = self.segment_names
        return {f: None if g is None else (names_[g[0]], names_[g[1]], g[2], g[3]) for f, g in found.items()}

    def export(self, out: "MetricWriter") -> None:
        if self._slots.carried:  # at 0 before the first overflow: a counter born at it hides it from increase()
            out.inc(names.SEGMENT_OVERFLOW, float(self._slots.take_overflow()))
        if not self._slots.carried:
            # no row has carried a segment: every figure would repeat the whole model's under
            # segment="unset" (some 30 series for nothing); written once a segment comes
            for hist in self._hist.values():
                hist.discard()
            return
        if self.histograms:
            self._flush_histograms(out)
        self._fold_labels()
        slot_end = max(self._pred.newest_slot_end, self._labels.newest_slot_end)
        write, due = self._refresh.begin(slot_end)  # restored, not due: written with the kept p-values
        if not write:
            return
        p, lab, x = self._fields()
        bins = _reliability_blocks(lab)
        if due:
            self._refresh.done(slot_end, float(p[_ROWS].sum() + lab[_LAB].sum()))
        tracked = self._slots.learned + (1 if p[_ROWS, -1] > 0 or lab[_LAB, -1] > 0 else 0)
        out.set(names.SEGMENTS_TRACKED, float(tracked))
        # one list of series per metric, written with one store call each ("other" appears only once it has rows)
        rows, nlab = p[_ROWS], lab[_LAB]
        segs = self.segment_names
        if rows[-1] > 0 or nlab[-1] > 0:
            self._other_shown = True
        # "other" appears once it has rows, and stays (its figures absent) when they leave the
        # window: dropped from the list, its series would keep their last values
        shown = [i for i in range(len(segs)) if i < self._slots.learned or self._other_shown]
        # the shown segments' series keys and columns, built once for every family below (and
        # kept while the shown segments stay the same: from one export to the next, mostly)
        put = self._columns
        if put is None or put.segments != segs[:len(shown)]:
            put = self._columns = SeriesColumns(segs[:len(shown)])
        put.take()  # (nothing left over from an export that raised)
        enough, lab_ok = rows >= max(self.min_rows, 1), nlab >= max(self.min_labels, 1)
        scored, lab_scored = enough & self._scored, lab_ok & self._scored
        x_rows = x[_X_ROWS]
        x_ok = (x_rows >= max(self.min_rows, 1)) & self._scored
        put.column(names.SEGMENT_ROWS, rows)
        put.column(names.SEGMENT_LABELS, nlab)
        with np.errstate(divide="ignore", invalid="ignore"):  # segments without rows are not shown (masked)
            figures = [
                (names.SEGMENT_CONFIDENCE, p[_CONF] / rows, scored),
                (names.SEGMENT_ABSTAIN, p[_ABST] / rows, scored),
                (names.SEGMENT_MARGIN, x[_MARGIN] / x_rows, x_ok),
                (names.SEGMENT_ENTROPY, x[_ENTROPY] / x_rows, x_ok),
                (names.SEGMENT_POSITIVE_RATE, None if self._positive_seen is None else p[_POS] / rows, enough),
                (names.SEGMENT_ACCURACY, lab[_CORRECT] / nlab, lab_ok),
                (names.SEGMENT_GAP, (lab[_LCONF] - lab[_CORRECT]) / nlab, lab_scored),
                (names.SEGMENT_GAP_PVALUE, _gap_pvalues(bins), lab_scored),
                (names.SEGMENT_BRIER, lab[_LBRIER] / nlab, lab_scored),
                (names.SEGMENT_LOG_LOSS, lab[_LLOSS] / nlab, lab_scored),
            ]
            if self._estimators is not None:  # per segment: cbpe, then atc
                put.pairs(names.SEGMENT_ESTIMATED_ACCURACY, ("cbpe", "atc"), x[[_CBPE, _ATC]] / x_rows, x_ok)
            terms = self._label_terms.total().reshape(_T_FIELDS, self._s)
            figures += self._gap_intervals(terms, lab_scored) + self._uncertainty_means()
        # every segment with enough labels in one pass (the reliability sums of a segment are a column)
        cal_ok = [i for i in shown if self._scored and nlab[i] >= max(self.min_labels_calibration, 2)]
        sums = bins[:, cal_ok]  # count, confidence, correct: (segments, bins) each
        # per segment (NaN: absent) the equal-width ECE, its debiased L2 counterpart, and the
        # debiased estimator on each segment's own equal-mass bins (as the whole window's)
        errors = np.full((3, self._s), np.nan)
        errors[0, cal_ok] = cal.ece_rows(*sums)
        mass_ok = [i for i in cal_ok if terms[_D_N, i] >= max(self.min_labels_calibration, 2)]
        fine = np.ascontiguousarray(terms[_F_N:_T_FIELDS, mass_ok].reshape(3, _NF, len(mass_ok)).transpose(0, 2, 1))
        merged = cal.equal_mass_rows(*fine)
        # both debiased estimators in one call (rows are independent): equal-width rows, then equal-mass
        debiased = cal.debiased_l2_rows(*np.concatenate((sums, np.array(merged)), axis=1))
        errors[1, cal_ok], errors[2, mass_ok] = debiased[:len(cal_ok)], debiased[len(cal_ok):]
        everywhere = np.ones(self._s, dtype=bool)
        put.pairs(names.SEGMENT_CALIBRATION_ERROR, ("ece_equal_width", "debiased_l2_equal_width", "debiased_l2_equal_mass"),
                  errors, everywhere)
        # the equal-mass error's p-value, drawn per segment from its own fine bins (absent with the error),
        # finely enough for the rule's level once multiplied by the segments tracked (see :meth:`draws`)
        pvalues = np.full(self._s, np.nan)
        draws = self.draws(tracked)
        for i in mass_ok:
            pvalues[i] = self._dear.get(segs[i], slot_end, float(terms[_D_N, i]), lambda i=i: cal.debiased_l2_pvalue(
                terms[_F_N:_F_CONF, i], terms[_F_CONF:_F_CORR, i], terms[_F_CORR:_T_FIELDS, i], self._rng,
                draws=draws).pvalue, hold=not due)
        mce = np.full(self._s, np.nan)
        mce[cal_ok] = cal.mce_rows(*sums, min_count=MCE_MIN_BIN)
        put.many(figures + [(names.SEGMENT_MAX_CALIBRATION_ERROR, mce, everywhere),
                            (names.SEGMENT_CALIBRATION_ERROR_PVALUE, pvalues, everywhere)])
        write_families(out, put.take())  # every per-segment figure in one store call
        if self.reliability_bins:
            self._export_reliability(out, lab, shown, set(cal_ok))
        if self.temperature_rows:
            put_figures(out, names.SEGMENT_TEMPERATURE, self._temperatures(shown, set(cal_ok)))
        found = [((figure, g[0], g[1]), g[2], g[3]) for figure, g in self.gaps((p, lab, x)).items() if g is not None]
        out.replace(names.SEGMENT_MAX_GAP, [(labels, gap) for labels, gap, _ in found])
        out.replace(names.SEGMENT_MAX_GAP_Z, [(labels, z) for labels, _, z in found if not np.isnan(z)])

    def _gap_intervals(self, g: np.ndarray, ok: np.ndarray) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
        """Each segment's gap interval (that of :func:`monitor.stats.calibration.overconfidence_interval`,
        for all segments at once), from the labelled rows' terms ``g``, for segments with
        ``min_labels`` labels there: the lower and upper bounds' figures (widened by Wilson's
        interval of the accuracy where that is wider, as the calibration detector's)."""
        n = np.round(g[_D_N])
        valid = ok & (n >= max(self.min_labels, 2))
        safe = np.maximum(n, 2.0)
        mean = g[_D_SUM] / safe
        half = self._gap_z * np.sqrt(np.maximum((g[_D_SQ] - safe * mean * mean) / (safe - 1.0), 0.0) / safe)
        low, high = cal.wilson_gap_bounds(safe, g[_D_SUM], g[_F_CORR:_T_FIELDS].sum(axis=0), self._gap_z)
        return [(names.SEGMENT_GAP_LOWER, np.minimum(mean - half, low), valid),
                (names.SEGMENT_GAP_UPPER, np.maximum(mean + half, high), valid)]

    def _uncertainty_means(self) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
        """Mean energy (logit outputs) and mean ensemble disagreement per segment, figures only
        for models whose outputs carry them (``min_rows`` such rows per segment)."""
        if not (self._seen_energy or self._seen_ensemble):
            return []
        u = self._uncertainty.total().reshape(_U_FIELDS, self._s)
        least = max(self.min_rows, 1)
        figures = ([(names.SEGMENT_ENERGY, _U_EN, _U_ENERGY)] if self._seen_energy else []) + (
            [(names.SEGMENT_MUTUAL_INFORMATION, _U_MN, _U_MI), (names.SEGMENT_TOP_CLASS_VARIANCE, _U_MN, _U_VAR)]
            if self._seen_ensemble else [])
        return [(name, u[total] / u[count], u[count] >= least) for name, count, total in figures]

    def _export_reliability(self, out: "MetricWriter", lab: np.ndarray, shown: list[int], ok: set[int]) -> None:
        segs = self.segment_names
        count: list[tuple[tuple[str, ...], float | None]] = []
        conf: list[tuple[tuple[str, ...], float | None]] = []
        acc: list[tuple[tuple[str, ...], float | None]] = []
        none = np.zeros(cal.ECE_BINS)
        for i in shown:
            sums = (lab[_BIN_N:_BIN_CONF, i], lab[_BIN_CONF:_BIN_CORR, i], lab[_BIN_CORR:_L_FIELDS, i]) if i in ok else (none, none, none)
            c, m, a = reliability_series(*sums, MCE_MIN_BIN, key=(segs[i],), counted=i in ok)
            count += c
            conf += m
            acc += a
        put_figures(out, names.SEGMENT_RELIABILITY_COUNT, count)
        put_figures(out, names.SEGMENT_RELIABILITY_CONFIDENCE, conf)
        put_figures(out, names.SEGMENT_RELIABILITY_ACCURACY, acc)

    def draws(self, tracked: int) -> int:
        """Most draws of a segment's calibration-error p-value while ``tracked`` segments are
        tracked: ``resamples``, or more where ModelSegmentCalibrationErrorHigh's Bonferroni level
        (:data:`CALIBRATION_ALPHA` divided by the segments tracked) needs them
        (:func:`~monitor.stats.univariate.bonferroni_draws`, without the per-segment prediction
        drift's floor of a tenth of the level: with it, ``resamples: 100`` drew 999 times from a
        single segment): drawn ``resamples`` (1,999) times, it was never under 1 / 2,000, and from
        20 segments tracked the alert could not fire. 2,624 draws at 21 segments (the default cap
        and ``other``), 24,999 at 200; a calibrated segment stops after 10 draws reach its error,
        one far in the tail after 992 where Chernoff's bound shows its p-value under the floor
        (from about 40 segments tracked: with 200 tracked, all miscalibrated, an export with
        every p-value drawn fell from 1.5 s to 0.3 s, ``benchmarks/segment_calibration_pvalue_cost.py``);
        drawn again when the window slides or its labels double."""
        return max(self.resamples, uni.bonferroni_draws(CALIBRATION_ALPHA, int(tracked)))

    def _temperatures(self, shown: list[int], ok: set[int]) -> list[tuple[tuple[str, ...], float | None]]:
        """Each segment's temperature, fitted on its kept rows inside the window (absent below
        ``min_labels_calibration`` of them)."""
        recent, segs = self._recent, self.segment_names
        if recent.logp is None:
            return [((segs[i],), None) for i in shown]
        start = self._labels.newest_slot_end - self.window_s
        live = recent.live(start)
        out: list[tuple[tuple[str, ...], float | None]] = []
        for i in shown:
            rows = live & (recent.group == i)
            m = int(rows.sum())
            enough = i in ok and m >= self.min_labels_calibration
            out.append(((segs[i],), recent.temperature(rows, start, key=i) if enough else None))
        return out

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._fold_labels()
        return {
            **(self._recent.state_dict(with_group=True) if self.temperature_rows else {}),
            **({"histograms": {name: h.state_dict() for name, h in self._hist.items()}} if self.histograms else {}),
            "windows": windows_state({"pred": self._pred, "labels": self._labels, "extra": self._extra,
                                      "uncertainty": self._uncertainty, "label_terms": self._label_terms}),
            "seen_energy": self._seen_energy,
            "seen_ensemble": self._seen_ensemble,
            **self._slots.state_dict(),
            "positive_seen": self._positive_seen,
            "scored": self._scored,
            **resampling_state(self.state_version, self._rng, self._dear, self._refresh),  # kept p-values keyed by segment
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (this version or 1, saved without ``draws``: the p-values
        are drawn afresh at the next export); other versions raise ``ValueError``."""
        check_state_version(self.kind, state, self.state_version)
        self._reset()
        saved = np.shape(state["windows"]["pred"]["data"])
        if len(saved) == 2 and saved[0] == self.n_slots and saved[1] != _P_FIELDS * self._s and saved[1] % _P_FIELDS == 0:
            # saved with another segment_cap (raised after MonitorSeriesCapReached): the
            # per-segment figures refill within one window, as the regression and drift ones do,
            # rather than the whole checkpoint being refused (counters and alert states with it)
            self._note_restore("its per-segment figures were saved with another segments.cap (or layout)")
            return
        load_windows_state({"pred": self._pred, "labels": self._labels}, state["windows"])
        # windows added later: a state saved before them loads, and their figures refill
        for key, window in (("extra", self._extra), ("uncertainty", self._uncertainty), ("label_terms", self._label_terms)):
            if key in state["windows"]:
                window.load_state_dict(state["windows"][key])
        self._seen_energy = bool(state.get("seen_energy", False))
        self._seen_ensemble = bool(state.get("seen_ensemble", False))
        self._slots.load_state_dict(state)
        if self.temperature_rows and "ring_ts" in state:  # saved without a ring: temperatures refill
            self._recent.load_state_dict(state, "segments")
        if self.histograms:  # observations not yet exported when it was saved
            saved = state.get("histograms", {})
            if "hist_counts" in state:  # the layout of the first three histograms' state before the others came
                saved = {name: {"counts": c, "sums": sums} for (name, _, _), c, sums in
                         zip(_HISTOGRAMS, state["hist_counts"], state["hist_sums"])}
            for name, hist_state in saved.items():
                if name in self._hist:
                    try:
                        self._hist[name].load_state_dict(hist_state)
                    except ValueError:
                        raise ValueError("segments state was saved with another segment_cap") from None
        pos = state.get("positive_seen")
        self._positive_seen = None if pos is None else int(pos)
        # saved before labels-only models were handled: every model then had confidence sums
        self._scored = bool(state.get("scored", True))
        load_resampling_state(self.kind, self._rng, self._dear, self._refresh, state)
