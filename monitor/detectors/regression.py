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
  95% below it), and the interval between the lowest and highest level as above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import Refresh, config_params, load_windows_state, put_figure, windows_state, RefreshingDetector
from monitor.schema import OutputSpec
from monitor.stats import univariate as uni
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch, LabeledBatch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["RegressionDetector"]

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
    ) -> None:
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
        scores = None if reference is None else reference.scores
        if scores is not None:
            ref = np.asarray(scores, dtype=np.float64)
            if ref.ndim == 2 and self.quantiles and ref.shape[1] == len(self.quantiles):
                ref = ref[:, OutputSpec("regression", quantiles=self.quantiles).median_column]  # the prediction
            elif ref.ndim == 2 and ref.shape[1] >= 1:
                ref = ref[:, 0]  # (value, lower, upper) outputs: the value
            if ref.ndim != 1:
                raise ValueError(f"regression: reference scores must be predictions (rows,), got shape {ref.shape}")
            self._ref_mae = _reference_mae(ref, reference.labels)
            ref = ref[np.isfinite(ref)]
            self._edges = uni.quantile_edges(ref, n_bins)
            self._ref_counts: np.ndarray | None = uni.histogram(ref, self._edges)
            self._ref_mean: float | None = float(ref.mean())
        else:
            self._edges = np.empty(0)
            self._ref_counts = None
            self._ref_mean = None
            self._ref_mae = None
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "RegressionDetector":
        params = config_params(cls, context, params, window_s="window_s")
        if params.get("quantiles") is None and context is not None:
            params["quantiles"] = getattr(context.output, "quantiles", ()) or None
        return cls(reference, **params)

    def _reset(self) -> None:
        self._pred = SlidingWindow(self.window_s, (2 + len(self._edges) + 1,), self.n_slots)
        self._labels = SlidingWindow(self.window_s, (_BELOW + len(self.quantiles),), self.n_slots)
        self._refresh = Refresh(self.refresh)

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
        if not ok.all():
            v, ts = v[ok], ts[ok]
        self._refresh.add(len(v))
        accumulate(self._pred, ts, [(_N, 1.0), (_SUM, v), (uni.bin_index(v, self._edges) + 2, 1.0)])

    def update_labels(self, labeled: "LabeledBatch") -> None:
        v = self._values(labeled.scores)
        if v is None or v.size == 0:
            return
        y = np.asarray(labeled.label, dtype=np.float64)
        ok = np.isfinite(v) & np.isfinite(y)
        ts, iv = labeled.ts, labeled.intervals
        if not ok.all():
            v, y, ts = v[ok], y[ok], ts[ok]
            iv = None if iv is None else iv[ok]
        err = v - y
        parts: list[tuple[np.ndarray | int, np.ndarray | float]] = [(_LN, 1.0), (_ABS, np.abs(err)), (_SQ, err * err), (_ERR, err)]
        nq = len(self.quantiles)
        if iv is not None and iv.ndim == 2 and nq and iv.shape[1] == nq:
            has_q = np.isfinite(iv).all(axis=1)
            below = has_q[:, None] & (y[:, None] <= iv)
            parts.append((_NQ, has_q.astype(np.float64)))
            parts += [(_BELOW + j, below[:, j].astype(np.float64)) for j in range(nq)]
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

    def advance(self, now: float) -> None:
        self._pred.advance(now)
        self._labels.advance(now)

    def export(self, out: "MetricWriter") -> None:
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
        drift = enough and self._ref_counts is not None
        cur = p[2:]
        put_figure(out, names.REGRESSION_DRIFT_PVALUE, uni.chi2_test(self._ref_counts, cur).pvalue if drift else None)  # type: ignore[arg-type]
        put_figure(out, names.REGRESSION_DRIFT_PSI, uni.psi(self._ref_counts, cur) if drift else None)  # type: ignore[arg-type]
        lab_ok = nl >= max(self.min_labels, 1)
        put_figure(out, names.REGRESSION_MAE, lab[_ABS] / nl if lab_ok else None)
        put_figure(out, names.REGRESSION_RMSE, float(np.sqrt(lab[_SQ] / nl)) if lab_ok else None)
        put_figure(out, names.REGRESSION_BIAS, lab[_ERR] / nl if lab_ok else None)
        put_figure(out, names.REGRESSION_REFERENCE_MAE, self._ref_mae)
        int_ok = ni >= max(self.min_labels, 1)
        put_figure(out, names.INTERVAL_COVERAGE, lab[_COVER] / ni if int_ok else None)
        put_figure(out, names.INTERVAL_WIDTH, lab[_WIDTH] / ni if int_ok else None)
        gap = _coverage_gap(lab[_COVER], ni, self._nominal_interval) if int_ok else None
        put_figure(out, names.INTERVAL_COVERAGE_GAP, None if gap is None else gap[0])
        put_figure(out, names.INTERVAL_COVERAGE_Z, None if gap is None else gap[1])
        nq = lab[_NQ]
        q_ok = nq >= max(self.min_labels, 1)
        for j, level in enumerate(self._quantile_labels):
            put_figure(out, names.QUANTILE_COVERAGE, lab[_BELOW + j] / nq if q_ok else None, (level,))
            gap = _coverage_gap(lab[_BELOW + j], nq, self.quantiles[j]) if q_ok else None
            put_figure(out, names.QUANTILE_COVERAGE_GAP, None if gap is None else gap[0], (level,))
            put_figure(out, names.QUANTILE_COVERAGE_Z, None if gap is None else gap[1], (level,))

    def state_dict(self) -> dict[str, Any]:
        return {"windows": windows_state({"pred": self._pred, "labels": self._labels})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"pred": self._pred, "labels": self._labels}, state["windows"])


def _coverage_gap(hits: float, n: float, nominal: float | None) -> tuple[float, float] | None:
    """Coverage minus its nominal level, and the binomial z statistic of that difference.

    Under a calibrated model each labelled target falls inside (or below) with probability
    ``nominal``, so the hits are binomial: the z statistic says whether the gap is noise at the
    window's label count, which the raw gap cannot (5 points off is noise at 50 labels and a
    certainty at 5,000).
    """
    if nominal is None or n <= 0:
        return None
    gap = hits / n - nominal
    return gap, gap / float(np.sqrt(nominal * (1.0 - nominal) / n))


def _reference_mae(predictions: np.ndarray, labels: "np.ndarray | None") -> float | None:
    """The model's mean absolute error on the labelled reference, or None without numeric labels."""
    if labels is None:
        return None
    try:
        y = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if y.shape != predictions.shape:
        return None
    ok = np.isfinite(y) & np.isfinite(predictions)
    return float(np.abs(predictions[ok] - y[ok]).mean()) if ok.any() else None
