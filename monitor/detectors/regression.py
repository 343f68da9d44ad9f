"""Regression outputs: prediction drift, and with labels MAE / RMSE / bias and interval coverage.

Over sliding event-time windows:

* the distribution of predictions against the reference's predictions, binned at reference
  quantiles: chi-squared p-value and population stability index (needs ``reference.scores``);
* with delayed labels (filed under the prediction's event time): mean absolute error, root mean
  squared error and mean signed error (bias);
* when the model returns prediction intervals (``(value, lower, upper)`` outputs): the share of
  targets inside them (empirical coverage) and their mean width, so that an interval that claims
  90% but covers 70% is seen;
* when the model returns quantiles (``output.quantiles`` configured, ``(n, q)`` outputs): per
  level, the share of targets at or below the predicted quantile (a calibrated 0.95 quantile has
  95% below it), and the interval between the lowest and highest level as above;
* on request (``by_segment: true``), the same figures per ``segment`` of the rows, and the
  largest gap in MAE between two segments (the fairness view: a model whose errors are twice as
  large for one group is seen even when the overall MAE is fine).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import (Refresh, config_params, load_windows_state, outside_not_late, put_columns, put_figure, put_figures,
                                       windows_state, RefreshingDetector)
from monitor.detectors._segment_sums import SegmentSums
from monitor.schema import OutputSpec
from monitor.stats import univariate as uni
from monitor.stats.gaps import group_means, largest_gap
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch, LabeledBatch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["RegressionDetector", "mae_gap"]

log = logging.getLogger("monitor")

#: Interval rows judged at a time for the column order of three-column outputs, and the share of
#: them whose value lies outside its own interval from which the order is said to be wrong: a
#: model read in its own order has its value inside but for rare rows (a mean beside separately
#: fitted quantiles: 5% on scikit-learn's diabetes data), read as (lower, value, upper) in every row.
ORDER_ROWS = 50
ORDER_OUTSIDE_SHARE = 0.5


_N, _SUM = 0, 1  # then bins
_LN, _ABS, _SQ, _ERR, _NINT, _COVER, _WIDTH, _NQ, _BELOW = range(9)  # then one "below" per quantile level


class RegressionDetector(RefreshingDetector):
    """Prediction drift against the reference and error / coverage figures from labels.

    Parameters
    ----------
    reference
        Optional held-out data with the model's predictions (``reference.scores``, shape ``(n,)``);
        without it only the label-based figures and the window mean are exported.
    window_s, n_slots
        Sliding event-time window and its resolution.
    n_bins
        Bins at reference quantiles for the drift test.
    quantiles
        Levels of the model's quantile outputs (defaults to the monitor's ``output.quantiles``);
        labelled rows whose intervals have one column per level get per-level coverage.
    interval_level
        Nominal coverage of ``(value, lower, upper)`` interval outputs (e.g. 0.9), for the coverage
        gap and its z statistic; quantile outputs need none (their interval spans the lowest to the
        highest level, so its nominal coverage is the difference).
    min_rows, min_labels
        Minimum rows for the drift figures, labels for the error and coverage figures.
    refresh
        Relative change of the window's row count that triggers recomputing the figures at
        export (they are also recomputed when the window slides); 0 recomputes every export.
    by_segment
        Also export the window's figures per ``segment`` of the rows: rows and prediction mean,
        with labels the label count, MAE, RMSE and bias, the interval coverage with its gap to the
        nominal level and z statistic, the quantile coverage per level, and the largest MAE gap
        between segments with ``min_labels`` labels each (Welch's z). Off by default: it
        multiplies the series by the segments (about 10 per segment, plus one per quantile level)
        and adds a slot lookup and a second window update per batch, which a model whose callers
        send no segment would pay for nothing. The segments detector, which slices classifiers'
        figures, runs for classifiers only (it reads class probabilities), so for a regression
        model this option is the one place where rows folded into ``other`` are counted. Rows
        without a segment form the segment ``unset``; until a row carries one, no per-segment
        series is written (they would repeat the whole window's).
    segment_cap
        Distinct segment values tracked (defaults to the monitor's ``segment_cap``); later values
        count as ``other``.
    """

    kind: ClassVar[str] = "regression"

    def __init__(
        self,
        reference: "Reference | None" = None,
        window_s: float = 3600.0,
        n_slots: int = 12,
        n_bins: int = 20,
        quantiles: "tuple[float, ...] | list[float] | None" = None,
        interval_level: float | None = None,
        min_rows: int = 200,
        min_labels: int = 50,
        refresh: float = 0.05,
        by_segment: bool = False,
        segment_cap: int = 20,
    ) -> None:
        if segment_cap < 1:
            raise ValueError(f"regression: segment_cap must be at least 1, got {segment_cap}")
        self.by_segment = bool(by_segment)
        self.segment_cap = int(segment_cap)
        self.quantiles = tuple(float(q) for q in (quantiles or ()))
        if any(not 0.0 < q < 1.0 for q in self.quantiles) or any(b <= a for a, b in zip(self.quantiles, self.quantiles[1:])):
            raise ValueError(f"regression: quantiles must be increasing levels in (0, 1), got {list(self.quantiles)}")
        self._quantile_labels = tuple(f"{q:g}" for q in self.quantiles)
        if interval_level is not None and not 0.0 < float(interval_level) < 1.0:
            raise ValueError(f"regression: interval_level must be a coverage in (0, 1), e.g. 0.9; got {interval_level!r}")
        self.interval_level = None if interval_level is None else float(interval_level)
        self._nominal_interval = self.interval_level
        if len(self.quantiles) >= 2:
            self._nominal_interval = self.quantiles[-1] - self.quantiles[0]
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.n_bins = int(n_bins)
        self.min_rows = int(min_rows)
        self.min_labels = int(min_labels)
        self.refresh = float(refresh)
        # interval rows seen and those whose value lies outside its interval, until the order of
        # three-column outputs is judged (then None: said once, never counted again)
        self._order: list[int] | None = [0, 0]
        self._said_level = False  # intervals without interval_level: said once
        scores = None if reference is None else reference.scores
        if scores is not None:
            ref = np.asarray(scores, dtype=np.float64)
            if ref.ndim == 2 and self.quantiles and ref.shape[1] == len(self.quantiles):
                ref = OutputSpec("regression", quantiles=self.quantiles).median(ref)  # the prediction
            elif ref.ndim == 2 and (ref.shape[1] == 1 or (ref.shape[1] == 3 and not self.quantiles)):
                ref = ref[:, 0]  # (value, lower, upper) outputs: the value
            elif ref.ndim == 2:
                read = f"one column per quantile of output.quantiles ({len(self.quantiles)})" if self.quantiles else \
                    "one value or (value, lower, upper) per row"
                raise ValueError(f"regression: reference scores have {ref.shape[1]} columns where {read} are read: rebuild "
                                 "the reference with this model's outputs")
            if ref.ndim != 1:
                raise ValueError(f"regression: reference scores must be predictions (rows,), got shape {ref.shape}")
            self._ref_mae, self._ref_mae_rows = _reference_mae(ref, reference.labels)
            if self._ref_mae is None:
                # MAE and RMSE are still exported once labels come; what an error rise is measured
                # against is not, and nothing else said why RegressionErrorHigh never fired
                log.warning("regression: the reference has no numeric labels, so monitor_regression_reference_mae is "
                            "absent and the window's error cannot be compared with the reference's "
                            "(RegressionErrorHigh cannot fire). Fix: build the reference with the true values of its "
                            "rows (monitor reference build --label-column, or Reference.from_arrays(labels=...))")
            ref = ref[np.isfinite(ref)]
            self._edges = uni.tie_tolerant(uni.quantile_edges(ref, n_bins))
            self._ref_counts: np.ndarray | None = uni.histogram(ref, self._edges)
            self._ref_mean: float | None = float(ref.mean())
        else:
            self._edges = np.empty(0)
            self._ref_counts = None
            self._ref_mean = None
            self._ref_mae = None
            self._ref_mae_rows = None
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "RegressionDetector":
        params = config_params(cls, context, params, window_s="window_s", segment_cap="segment_cap")
        if params.get("quantiles") is None and context is not None:
            params["quantiles"] = getattr(context.output, "quantiles", ()) or None
        return cls(reference, **params)

    def _reset(self) -> None:
        self._pred = SlidingWindow(self.window_s, (2 + len(self._edges) + 1,), self.n_slots)
        self._labels = SlidingWindow(self.window_s, (_BELOW + len(self.quantiles),), self.n_slots)
        # per quantile level, the labelled targets equal to the predicted quantile (a count model's
        # whole numbers): in a window of its own, so that a state saved without it loads
        self._ties = SlidingWindow(self.window_s, (max(len(self.quantiles), 1),), self.n_slots)
        self._refresh = Refresh(self.refresh)
        self._outside = 0
        # per segment: rows and sum of predictions; the label window's fields (None when off)
        self._segments = (SegmentSums(self.segment_cap, self.window_s, self.n_slots, {"pred": 2, "labels": _BELOW + len(self.quantiles)})
                          if self.by_segment else None)

    @staticmethod
    def _values(scores: np.ndarray | None) -> np.ndarray | None:
        if scores is None:
            return None
        v = np.asarray(scores, dtype=np.float64)
        return v if v.ndim == 1 else None  # classifiers' (n, k) probabilities are not regression values

    def update(self, batch: "Batch") -> None:
        v = self._values(batch.scores)
        if v is None or v.size == 0:
            return
        ok = np.isfinite(v)
        ts = batch.ts
        all_ok = ok.all()
        if not all_ok:
            v, ts = v[ok], ts[ok]
        if batch.intervals is not None and batch.intervals.ndim == 2 and batch.intervals.shape[1] == 2 and not self.quantiles:
            if self._order is not None:
                self._check_order(v, batch.intervals if all_ok else batch.intervals[ok])
            if self._nominal_interval is None and not self._said_level:
                self._said_level = True
                log.warning(
                    "regression: the model returns (value, lower, upper) intervals, and the regression detector has no "
                    "interval_level: their coverage is exported, not its gap to a claimed level "
                    "(monitor_interval_coverage_gap_ratio absent, so RegressionIntervalTooNarrow cannot fire). Fix: the "
                    "entry {kind: regression, interval_level: 0.9} (the intervals' level) in detectors: (a detectors: "
                    "list replaces the defaults, so name the other detectors to run in it too)")
        self._refresh.add(len(v))
        accumulate(self._pred, ts, [(_N, 1.0), (_SUM, v), (uni.bin_index(v, self._edges) + 2, 1.0)])
        if self._segments is not None:
            self._segments.add("pred", ts, batch.segment if all_ok else batch.segment[ok], [(_N, 1.0), (_SUM, v)])

    def _check_order(self, v: np.ndarray, iv: np.ndarray) -> None:
        """Say once when three-column outputs look like (lower, value, upper): read as (value,
        lower, upper), as documented, every row's value then lies below its interval (the lower
        bound taken for the prediction, the median for the lower bound), and every figure is of
        the wrong column. Rows whose lower bound is above their upper one are refused before this
        (``reversed_interval``); this order passes that check, so it is judged here, on the
        share of the rows whose value lies outside their interval, ORDER_ROWS at a time."""
        order = self._order
        assert order is not None
        order[0] += len(v)
        order[1] += int(np.count_nonzero((v < iv[:, 0]) | (v > iv[:, 1])))
        if order[0] < ORDER_ROWS:
            return
        seen, outside = order
        order[0] = order[1] = 0
        if outside > ORDER_OUTSIDE_SHARE * seen:
            self._order = None
            log.warning(
                "regression: the value lies outside its own interval in %d of %d rows: three-column outputs are "
                "read as (value, lower, upper), and these are not (columns in another order, such as (lower, value, "
                "upper), or bounds given as offsets from the value), so MAE, RMSE, bias, drift and coverage are "
                "measured on the wrong figures. Fix: for quantiles, list their levels under output.quantiles (e.g. "
                "[0.05, 0.5, 0.95]); else send (value, lower, upper) with watch(..., outputs=lambda result: ...) "
                "(result[:, [1, 0, 2]] for (lower, value, upper)); rebuild the reference the same way",
                outside, seen)

    def update_labels(self, labeled: "LabeledBatch") -> None:
        v = self._values(labeled.scores)
        if v is None or v.size == 0:
            return
        y = np.asarray(labeled.label, dtype=np.float64)
        ok = np.isfinite(v) & np.isfinite(y)
        ts, iv = labeled.ts, labeled.intervals
        all_ok = ok.all()
        if not all_ok:
            v, y, ts = v[ok], y[ok], ts[ok]
            iv = None if iv is None else iv[ok]
        arrived, late = (labeled.label_ts, labeled.late) if all_ok else (labeled.label_ts[ok], None if labeled.late is None else labeled.late[ok])
        self._outside += outside_not_late(self._labels, ts, arrived, late)  # their predictions left the window: counted, not lost
        err = v - y
        parts: list[tuple[np.ndarray | int, np.ndarray | float]] = [(_LN, 1.0), (_ABS, np.abs(err)), (_SQ, err * err), (_ERR, err)]
        nq = len(self.quantiles)
        if iv is not None and iv.ndim == 2 and nq and iv.shape[1] == nq:
            has_q = np.isfinite(iv).all(axis=1)
            below = has_q[:, None] & (y[:, None] <= iv)
            parts.append((_NQ, has_q.astype(np.float64)))
            parts += [(_BELOW + j, below[:, j].astype(np.float64)) for j in range(nq)]
            tied = has_q[:, None] & (y[:, None] == iv)
            if tied.any():  # continuous predictions never tie: no second window update for them
                rows, level = np.nonzero(tied)
                accumulate(self._ties, ts[rows], [(level, 1.0)])
        if iv is not None and iv.ndim == 2 and (iv.shape[1] == 2 or (nq >= 2 and iv.shape[1] == nq)):
            lo, hi = iv[:, 0], iv[:, -1]  # quantile outputs: the lowest to the highest level
            has = np.isfinite(lo) & np.isfinite(hi)
            parts += [
                (_NINT, has.astype(np.float64)),
                (_COVER, (has & (y >= lo) & (y <= hi)).astype(np.float64)),
                (_WIDTH, np.where(has, hi - lo, 0.0)),
            ]
        self._refresh.add(len(v))
        accumulate(self._labels, ts, parts)
        if self._segments is not None:
            self._segments.add("labels", ts, labeled.segment if all_ok else labeled.segment[ok], parts, rows=False)

    def advance(self, now: float) -> None:
        self._pred.advance(now)
        self._labels.advance(now)
        self._ties.advance(now)
        if self._segments is not None:
            self._segments.advance(now)

    def export(self, out: "MetricWriter") -> None:
        if self._outside:
            out.inc(names.LABELS_SKIPPED, float(self._outside), ("outside_window",))
            self._outside = 0
        if self._segments is not None and self._segments.slots.carried:
            # at 0 before the first overflow: a counter born at its first increment hides it from increase()
            out.inc(names.SEGMENT_OVERFLOW, float(self._segments.slots.take_overflow()))
        slot_end = max(self._pred.newest_slot_end, self._labels.newest_slot_end)
        if not self._refresh.due(slot_end):
            return
        p, lab = self._pred.total(), self._labels.total()
        n, nl, ni = p[_N], lab[_LN], lab[_NINT]
        self._refresh.done(slot_end, float(n + nl))
        out.set(names.REGRESSION_ROWS, float(n))
        out.set(names.REGRESSION_LABELS, float(nl))
        enough = n >= max(self.min_rows, 1)
        put_figure(out, names.REGRESSION_MEAN, p[_SUM] / n if enough else None)
        put_figure(out, names.REGRESSION_REFERENCE_MEAN, self._ref_mean)
        # reference predictions all one value make one bin, which every live prediction falls in
        # (p-value 1, PSI 0 whatever the model predicts): no test, as for a constant input feature
        drift = enough and self._ref_counts is not None and self._ref_counts.size >= 2
        cur = p[2:]
        put_figure(out, names.REGRESSION_DRIFT_PVALUE, uni.chi2_test(self._ref_counts, cur).pvalue if drift else None)  # type: ignore[arg-type]
        put_figure(out, names.REGRESSION_DRIFT_PSI, uni.psi(self._ref_counts, cur) if drift else None)  # type: ignore[arg-type]
        lab_ok = nl >= max(self.min_labels, 1)
        put_figure(out, names.REGRESSION_MAE, lab[_ABS] / nl if lab_ok else None)
        put_figure(out, names.REGRESSION_RMSE, float(np.sqrt(lab[_SQ] / nl)) if lab_ok else None)
        put_figure(out, names.REGRESSION_BIAS, lab[_ERR] / nl if lab_ok else None)
        put_figure(out, names.REGRESSION_REFERENCE_MAE, self._ref_mae)
        put_figure(out, names.REGRESSION_REFERENCE_MAE_ROWS, self._ref_mae_rows)
        int_ok = ni >= max(self.min_labels, 1)
        put_figure(out, names.INTERVAL_COVERAGE, lab[_COVER] / ni if int_ok else None)
        put_figure(out, names.INTERVAL_WIDTH, lab[_WIDTH] / ni if int_ok else None)
        gap = _coverage_gap(lab[_COVER], ni, self._nominal_interval) if int_ok else None
        put_figure(out, names.INTERVAL_COVERAGE_GAP, None if gap is None else gap[0])
        put_figure(out, names.INTERVAL_COVERAGE_Z, None if gap is None else gap[1])
        nq = lab[_NQ]
        q_ok = nq >= max(self.min_labels, 1)
        ties = self._ties.total()
        for j, level in enumerate(self._quantile_labels):
            put_figure(out, names.QUANTILE_COVERAGE, lab[_BELOW + j] / nq if q_ok else None, (level,))
            gap = _coverage_gap(lab[_BELOW + j], nq, self.quantiles[j], tied=float(ties[j])) if q_ok else None
            put_figure(out, names.QUANTILE_COVERAGE_GAP, None if gap is None else gap[0], (level,))
            put_figure(out, names.QUANTILE_COVERAGE_Z, None if gap is None else gap[1], (level,))
        if self._segments is not None and self._segments.slots.carried:  # none before a row carries a segment
            self._export_segments(out, self._segments)

    def _export_segments(self, out: "MetricWriter", sums: SegmentSums) -> None:
        """Each segment's figures (absent below the same minimum counts as the whole window's)
        and the largest MAE gap between segments with enough labels."""
        segs = sums.names
        p, lab = sums.totals("pred"), sums.totals("labels")
        rows, nl, ni, nq = p[_N], lab[_LN], lab[_NINT], lab[_NQ]
        # "other" is shown once it can hold rows (every slot learned), so that its series are
        # updated (to absent) when its rows leave the window rather than left at a stale value
        # (a learned segment named "other" holds the overflow itself: the slot then stays empty)
        shown = list(range(sums.slots.learned)) + (
            [sums.slots.cap] if sums.slots.learned == sums.slots.cap and not sums.slots.other_learned else [])
        keys = [(segs[i],) for i in shown]
        enough = rows >= max(self.min_rows, 1)
        lab_ok = nl >= max(self.min_labels, 1)
        int_ok = ni >= max(self.min_labels, 1)
        q_ok = nq >= max(self.min_labels, 1)

        out.set_many(names.REGRESSION_SEGMENT_ROWS, [(key, float(rows[i])) for key, i in zip(keys, shown)])
        out.set_many(names.REGRESSION_SEGMENT_LABELS, [(key, float(nl[i])) for key, i in zip(keys, shown)])
        with np.errstate(divide="ignore", invalid="ignore"):  # empty segments are masked by their ok
            mae = lab[_ABS] / nl
            put_columns(out, names.REGRESSION_SEGMENT_MEAN, keys, (p[_SUM] / rows)[shown], enough[shown])
            put_columns(out, names.REGRESSION_SEGMENT_MAE, keys, mae[shown], lab_ok[shown])
            put_columns(out, names.REGRESSION_SEGMENT_RMSE, keys, np.sqrt(lab[_SQ] / nl)[shown], lab_ok[shown])
            put_columns(out, names.REGRESSION_SEGMENT_BIAS, keys, (lab[_ERR] / nl)[shown], lab_ok[shown])
            put_columns(out, names.REGRESSION_SEGMENT_INTERVAL_COVERAGE, keys, (lab[_COVER] / ni)[shown], int_ok[shown])
            gaps = [_coverage_gap(lab[_COVER, i], ni[i], self._nominal_interval) if int_ok[i] else None for i in shown]
            put_figures(out, names.REGRESSION_SEGMENT_INTERVAL_COVERAGE_GAP,
                        [(key, None if g is None else g[0]) for key, g in zip(keys, gaps)])
            put_figures(out, names.REGRESSION_SEGMENT_INTERVAL_COVERAGE_Z,
                        [(key, None if g is None else g[1]) for key, g in zip(keys, gaps)])
            levels = self._quantile_labels
            put_columns(out, names.REGRESSION_SEGMENT_QUANTILE_COVERAGE, [(segs[i], level) for i in shown for level in levels],
                        (lab[_BELOW:_BELOW + len(levels)] / nq)[:, shown].T.ravel(), np.repeat(q_ok[shown], len(levels)))
        gap = mae_gap(lab[_ABS], lab[_SQ], nl, lab_ok)
        labels = (segs[gap[0]], segs[gap[1]]) if gap is not None else ()
        out.replace(names.REGRESSION_SEGMENT_MAX_MAE_GAP, [] if gap is None else [(labels, gap[2])])
        # +Inf where neither segment's errors vary and they differ; NaN (no z): absent
        out.replace(names.REGRESSION_SEGMENT_MAX_MAE_GAP_Z, [] if gap is None or np.isnan(gap[3]) else [(labels, gap[3])])

    @property
    def segment_names(self) -> tuple[str, ...]:
        """Tracked segment names, then ``other`` (empty when ``by_segment`` is off)."""
        return () if self._segments is None else self._segments.names

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"windows": windows_state({"pred": self._pred, "labels": self._labels, "ties": self._ties})}
        if self._segments is not None:
            state["segments"] = self._segments.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"pred": self._pred, "labels": self._labels}, state["windows"])
        if "ties" in state["windows"]:  # saved before ties were counted: read as none until the window refills
            self._ties.load_state_dict(state["windows"]["ties"])
        if self._segments is not None and "segments" in state:  # saved without them (option off, or older): they refill
            if not self._segments.load_state_dict(state["segments"]) and state.get("segments") is not None:
                self._note_restore("its per-segment figures were saved with another segments.cap (or layout)")


def mae_gap(abs_sum: np.ndarray, sq_sum: np.ndarray, n: np.ndarray, ok: np.ndarray) -> tuple[int, int, float, float] | None:
    """Largest MAE difference between eligible segments: ``(high, low, gap, z)`` or None.

    From per-segment sums of absolute and squared errors (``|e|^2 = e^2``, so the variance of the
    absolute errors needs no sum of its own), Welch's z of the difference of two means, as the
    segments detector's gaps: a gap that is large but noise at the segments' label counts has a
    small z.

    >>> n = np.array([100.0, 100.0, 10.0])  # the third segment (MAE 5) has too few labels to take part
    >>> high, low, gap, z = mae_gap(np.array([100.0, 200.0, 50.0]), np.array([150.0, 500.0, 300.0]), n, n >= 50)
    >>> (high, low, round(gap, 6), round(z, 2))
    (1, 0, 1.0, 8.12)
    """
    mae, var = group_means(abs_sum, sq_sum, n)
    return largest_gap(mae, n, ok, var)


def _coverage_gap(hits: float, n: float, nominal: float | None, tied: float = 0.0) -> tuple[float, float] | None:
    """Coverage minus its nominal level, and the binomial z statistic of that difference.

    Under a calibrated model each labelled target falls inside (or below) with probability
    ``nominal``, so the hits are binomial: the z statistic says whether the gap is noise at the
    window's label count, which the raw gap cannot (5 points off is noise at 50 labels and a
    certainty at 5,000).

    ``tied`` of the ``hits`` (targets at or below a quantile) equal the quantile. A whole-number
    quantile of a count model is met when its level lies between the share strictly below it and
    the share at or below it (a discrete target has mass on the quantile itself: a calibrated
    median of a Poisson mean of 2 has 41% below it and 68% at or below); the gap is the distance
    from the level to that range, 0 within it. Continuous predictions never tie: the plain gap.
    """
    if nominal is None or n <= 0:
        return None
    gap = hits / n - nominal
    if tied > 0 and gap > 0:
        gap = max((hits - tied) / n - nominal, 0.0)
    return gap, gap / float(np.sqrt(nominal * (1.0 - nominal) / n))


def _reference_mae(predictions: np.ndarray, labels: "np.ndarray | None") -> tuple[float | None, float | None]:
    """The model's mean absolute error on the labelled reference and the rows it was measured on
    (finite prediction and label), or (None, None) without numeric labels. The rows are its
    sampling error's: RegressionErrorHigh adds it to the window's."""
    if labels is None:
        return None, None
    try:
        y = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        return None, None
    if y.shape != predictions.shape:
        return None, None
    ok = np.isfinite(y) & np.isfinite(predictions)
    rows = int(np.count_nonzero(ok))
    return (float(np.abs(predictions[ok] - y[ok]).mean()), float(rows)) if rows else (None, None)
