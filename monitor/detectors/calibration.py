"""Calibration with delayed labels: how far the model's confidence can be trusted, over a window.

Labels arrive late (through ``feedback``), joined to their predictions by request id; this
detector receives them as :class:`~monitor.batch.LabeledBatch` and files each one under the event
time of its *prediction*, so the window describes the traffic the model served, whatever the
labelling delay. Over that sliding window it exports:

* accuracy, Brier score and log loss (at least ``min_labels`` labels); for a model that returns
  labels only (``output.kind: labels``) the accuracy alone, under the same minimum;
* the signed over-confidence gap (mean confidence minus accuracy) with a two-sided interval at
  ``gap_level`` (sample variance: valid whether or not the model is calibrated; widened to the
  mean confidence less Wilson's interval of the accuracy where that is wider, so that a window of
  few errors is not a point), and the
  one-sided p-value of the calibrated null, which is what the default alert uses: the exact
  test of the window's wrong answers weighted by confidence bin
  (:func:`monitor.stats.calibration.weighted_overconfidence_pvalue` with
  :func:`~monitor.stats.calibration.overconfidence_weights`), computed from the fine bins the
  window keeps anyway. An error at 0.999 weighs as much as 3.5 errors at 0.9 (one at 0.9999,
  5): the test catches models that are confidently wrong (an additive gap) more often than
  counting errors alike, loses nothing measurable on temperature-like over-confidence, and
  holds its false-alarm rate (at least ``min_labels`` labels);
* top-label calibration error: the debiased L2 estimator on equal-mass bins (Kumar et al. 2019)
  and the classic 15-bin equal-width ECE (Guo et al. 2017), plus the MCE, and the temperature
  that would recalibrate the window (NLL fit) (at least ``min_labels_calibration`` labels); with
  the debiased error its p-value under "the model is calibrated" by consistency resampling
  (:func:`monitor.stats.calibration.debiased_l2_pvalue`: the window's labels redrawn from its
  confidences, up to ``resamples`` times, from a generator of the detector's own seeded by
  ``seed``), so that the alert tells a real calibration error from a calibrated model's chance
  excursion above the bound (about one window in a hundred at a few hundred labels). It is drawn
  again only when the window slides to a new slot or its labels double (``DearFigure``: not at
  every rule tick), and a calibrated window stops after a few dozen draws. The generator's state,
  the kept p-value and the refresh's count are in the checkpointed state (version 2), so that a
  restored detector draws when, and what, an uninterrupted one would;
* the reliability diagram's 15 bins (mean confidence, accuracy, count; a bin's confidence and
  accuracy need ``min_bin_count`` labels);
* the number of labels in the window, always.

Below a figure's minimum count the metric is absent, not zero. Everything but the temperature is
computed from additive per-bin statistics (fixed memory; labelled rows reach them in groups of up
to 2,048 before the window is read, see :class:`~monitor.detectors._accumulate.PendingRows`); the
temperature fit needs the rows, so the most recent ``temperature_rows`` labelled rows are kept in
a ring buffer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import Part, PendingRows
from monitor.detectors._recent import RecentLabelled, say_temperature_never_fitted
from monitor.detectors._common import (config_params, figure_families, figure_family, hard_labels, label_features, load_windows_state,
                                       outside_not_late, Refresh, DearFigure, resampling_params, detector_rng, windows_state,
                                       RefreshingDetector, resampling_state, check_state_version, load_resampling_state, write_families)
from monitor.stats import calibration as cal
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch, LabeledBatch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["CalibrationDetector", "CalibrationFigures", "reliability_series"]

_EDGES = cal.fine_confidence_edges()
_F = len(_EDGES) - 1
_COUNT, _SCONF, _SCORR = 0, _F, 2 * _F
_N, _BRIER, _LOGLOSS, _D2 = (3 * _F + i for i in range(4))
_DIM = 3 * _F + 4
#: Columns of windows saved before the unused sums of c^2 and c^3 were dropped (still restored).
_OLD_DIM = _DIM + 2
_COARSE = cal.equal_width_groups(_EDGES, cal.ECE_BINS)
_ERROR_WEIGHTS = cal.overconfidence_weights(_EDGES)
#: The bins labelled confidences are counted in: the fine grid's, each edge lowered by the tie
#: tolerance (read back from the label join's float32 log-probabilities, a vote share of 0.6 is
#: 0.5999999939: it fell in the reliability bin below, 0.53-0.60)
_LABEL_BINS = cal.bins_of(cal.tie_tolerant_edges(_EDGES))
_BIN_LABELS = tuple(f"{i / cal.ECE_BINS:.2f}-{(i + 1) / cal.ECE_BINS:.2f}" for i in range(cal.ECE_BINS))


class CalibrationFigures:
    """Read-only figures of one window (None where below the minimum count)."""

    __slots__ = ("labels", "scored", "accuracy", "brier", "log_loss", "gap", "gap_pvalue", "ece", "debiased_ce", "debiased_ce_pvalue", "mce",
                 "temperature", "reliability", "previous_labels", "previous_accuracy")

    def __init__(self) -> None:
        self.labels = 0
        self.previous_labels = 0  # in the window of the same length just before this one
        self.previous_accuracy: float | None = None
        self.scored = True  # False: labels of a labels-only model (no confidence, no reliability bins)
        self.accuracy: float | None = None
        self.brier: float | None = None
        self.log_loss: float | None = None
        self.gap: cal.GapInterval | None = None
        self.gap_pvalue: float | None = None
        self.ece: float | None = None
        self.debiased_ce: float | None = None
        self.debiased_ce_pvalue: float | None = None
        self.mce: float | None = None
        self.temperature: float | None = None
        self.reliability: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class CalibrationDetector(RefreshingDetector):
    """Accuracy, proper scores, calibration error, over-confidence gap and temperature from labels.

    Parameters
    ----------
    window_s, n_slots
        Sliding event-time window (of prediction times) and its resolution.
    min_labels
        Minimum labels for accuracy, Brier, log loss and the over-confidence gap.
    min_labels_calibration
        Minimum labels for the calibration errors, MCE and temperature (binned estimators are
        unreliable below a few hundred labels: see the benchmark's bias table).
    min_bin_count
        Minimum labels in a reliability bin for its confidence / accuracy (and for the MCE).
    gap_level
        Two-sided level of the over-confidence interval. 0.98 gives a 1% one-sided false-alarm
        rate per window for "lower bound > 0".
    n_bins
        Equal-mass bins of the debiased estimator.
    temperature_rows
        Capacity of the ring buffer of recent labelled rows used for the temperature fit.
    refresh
        Relative change of the window's row count that triggers recomputing the figures at
        export (they are also recomputed when the window slides); 0 recomputes every export.
    resamples
        Most draws of the calibration error's p-value (100 to 1,999): its smallest value is
        ``1 / (1 + resamples)``; drawing stops after 10 draws at or above the window's error.
    seed
        Seed of the detector's own generator for those draws (defaults to the monitor's
        ``seed``): a replay of the same labels gives the same p-values.
    """

    kind: ClassVar[str] = "calibration"
    #: Labels only, into sliding-window sums and a ring kept in label order: they may come late.
    deferrable: ClassVar[bool] = True
    #: 2: the p-value's generator state and kept p-value (``draws``) are saved; a version-1 state
    #: (none saved) loads with fresh draws from the seed, as every restore did before.
    state_version: ClassVar[int] = 2

    def __init__(
        self,
        window_s: float = 3600.0,
        n_slots: int = 12,
        min_labels: int = 100,
        min_labels_calibration: int = 200,
        min_bin_count: int = 10,
        gap_level: float = 0.98,
        n_bins: int = cal.ECE_BINS,
        temperature_rows: int = 4096,
        refresh: float = 0.05,
        resamples: int = cal.CALIBRATION_PVALUE_DRAWS,
        seed: int = 0,
    ) -> None:
        if not 0.5 < gap_level < 1.0:
            raise ValueError(f"calibration: gap_level must be in (0.5, 1), got {gap_level}")
        self.resamples, self.seed = resampling_params("calibration", resamples, seed)
        self._rng = detector_rng("calibration", self.seed)
        if min_labels < 2 or min_labels_calibration < 2:
            raise ValueError("calibration: min_labels and min_labels_calibration must be at least 2")
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_labels = int(min_labels)
        self.min_labels_calibration = int(min_labels_calibration)
        self.min_bin_count = int(min_bin_count)
        self.gap_level = float(gap_level)
        self.n_bins = int(n_bins)
        self.temperature_rows = int(temperature_rows)
        say_temperature_never_fitted("calibration", self.temperature_rows, self.min_labels_calibration, names.TEMPERATURE)
        self.refresh = float(refresh)
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "CalibrationDetector":
        return cls(**config_params(cls, context, params, window_s="window_s", seed="seed"))

    def _reset(self) -> None:
        self._window = SlidingWindow(self.window_s, (_DIM,), self.n_slots)
        # models that return labels only (output.kind: labels): labels and correct answers, for
        # the accuracy (no confidence: every other figure stays absent)
        self._hard = SlidingWindow(self.window_s, (2,), self.n_slots)
        # labels and right answers over two windows, scored or not: the window before this one is
        # their difference (ModelErrorRateRose compares the two; checkpointed, so that a restart
        # does not blind the comparison for a window's length)
        self._pair = SlidingWindow(2.0 * self.window_s, (2,), 2 * self.n_slots)
        # labels come a few dozen at a time: their rows reach the window together, before it is read
        self._pending = PendingRows(self._window, _label_parts)
        self._refresh = Refresh(self.refresh)
        self._dear = DearFigure()  # the resampled p-value, not redrawn at every rule tick
        self._skipped: dict[str, int] = {}
        self._recent = RecentLabelled(self.temperature_rows)

    def update(self, batch: "Batch") -> None:
        """Predictions alone say nothing about calibration; only labels are used."""
        return None

    def _skip(self, reason: str, n: int) -> None:
        if n:
            self._skipped[reason] = self._skipped.get(reason, 0) + n

    def update_labels(self, labeled: "LabeledBatch") -> None:
        n = len(labeled)
        if n == 0:
            return
        if labeled.scores is None:
            if labeled.predicted is None:
                self._skip("no_scores", n)
            else:
                self._update_hard(labeled)
            return
        lab = label_features(labeled)
        if lab is None:
            return  # regression labels belong to the regression detector
        self._skip("unknown_class", lab.unknown)
        if lab.label.size == 0:
            return
        # joined, but their predictions have left the window already (a labelling delay near the
        # window's length, or traffic that moved event time on): counted, not silently lost
        late = labeled.late
        if lab.known is None:
            arrived = labeled.label_ts
        else:
            arrived, late = labeled.label_ts[lab.known], None if late is None else late[lab.known]
        self._skip("outside_window", outside_not_late(self._window, lab.ts, arrived, late))
        self._pending.add(lab.ts, conf=lab.conf, correct=lab.correct, brier=lab.brier, log_loss=lab.log_loss)
        self._pair.add(lab.ts, values=np.column_stack([np.ones(lab.label.size), lab.correct]))
        self._recent.add(lab.ts, lab.label, lab.logp)
        self._refresh.add(lab.label.size)

    def _update_hard(self, labeled: "LabeledBatch") -> None:
        """Labels of a model that returns predicted labels only: whether each answer was right."""
        hard = hard_labels(labeled)
        self._skip("unknown_class", hard.unknown)
        if hard.correct.size == 0:
            return
        late = None if labeled.late is None else labeled.late[hard.known]
        self._skip("outside_window", outside_not_late(self._hard, hard.ts, labeled.label_ts[hard.known], late))
        rows = np.column_stack([np.ones_like(hard.correct), hard.correct])
        self._hard.add(hard.ts, values=rows)
        self._pair.add(hard.ts, values=rows)
        self._refresh.add(int(hard.correct.size))

    def advance(self, now: float) -> None:
        self._window.advance(now)
        self._hard.advance(now)
        self._pair.advance(now)

    def _previous(self, f: CalibrationFigures, correct: float) -> None:
        """The window just before this one: the two-window sums less this window's."""
        both = self._pair.total()
        f.previous_labels = max(int(round(both[0])) - f.labels, 0)
        if f.previous_labels >= self.min_labels:
            f.previous_accuracy = float(min(max((both[1] - correct) / f.previous_labels, 0.0), 1.0))

    # -- results ------------------------------------------------------------------------------
    def _temperature(self, n_window: int) -> float | None:
        """Temperature fitted on the buffered rows inside the window; refitted only when the
        window slid or the number of those rows changed by more than 20% (a fit costs a few
        softmax passes over up to ``temperature_rows`` rows)."""
        recent = self._recent
        if recent.logp is None:
            return None
        start = self._window.newest_slot_end - self.window_s
        live = recent.live(start)
        m = int(live.sum())
        if m < min(self.min_labels_calibration, n_window):
            return None
        return recent.temperature(live, start)

    def figures(self, *, hold: bool = False) -> CalibrationFigures:
        """Compute the window's figures (what :meth:`export` writes); ``hold``: the p-value is the
        one kept for this slot, not drawn (see :meth:`DearFigure.get`)."""
        self._pending.fold()
        t = self._window.total()
        f = CalibrationFigures()
        n = int(round(t[_N]))
        f.labels = n
        count, sconf, scorr = t[_COUNT:_COUNT + _F], t[_SCONF:_SCONF + _F], t[_SCORR:_SCORR + _F]
        coarse = cal.merge_bins(_COARSE, count, sconf, scorr)
        f.reliability = coarse
        if n == 0:  # a labels-only model: its accuracy, under the same minimum count
            hard = self._hard.total()
            f.labels = int(round(hard[0]))
            f.scored = f.labels == 0
            if f.labels >= self.min_labels:
                f.accuracy = float(hard[1] / f.labels)
            self._previous(f, float(hard[1]))
            return f
        right = float(scorr.sum())
        self._previous(f, right)
        if n >= self.min_labels:
            f.accuracy = right / n
            f.brier = float(t[_BRIER] / n)
            f.log_loss = float(t[_LOGLOSS] / n)
            f.gap = cal.overconfidence_interval(n, float(sconf.sum()) - right, float(t[_D2]), self.gap_level, right=right)
            f.gap_pvalue = cal.weighted_overconfidence_pvalue(count, sconf, scorr, _ERROR_WEIGHTS)
        if n >= self.min_labels_calibration:
            f.ece = cal.ece_from_sums(*coarse)
            mce = cal.mce_from_sums(*coarse, min_count=self.min_bin_count)
            f.mce = None if np.isnan(mce) else mce
            groups = cal.equal_mass_groups(count, self.n_bins)
            f.debiased_ce = cal.debiased_l2_from_sums(*cal.merge_bins(groups, count, sconf, scorr))
            f.debiased_ce_pvalue = self._dear.get(None, self._window.newest_slot_end, n, lambda: cal.debiased_l2_pvalue(
                count, sconf, scorr, self._rng, n_bins=self.n_bins, draws=self.resamples).pvalue, hold=hold)
            f.temperature = self._temperature(n)
        return f

    def export(self, out: "MetricWriter") -> None:
        self._pending.fold()
        for reason, k in self._skipped.items():
            out.inc(names.LABELS_SKIPPED, float(k), (reason,))
        self._skipped.clear()
        slot_end = self._window.newest_slot_end
        write, due = self._refresh.begin(slot_end)
        if not write:
            return
        f = self.figures(hold=not due)  # restored, not due: the kept p-value (the store is empty after a restart)
        if due:
            self._refresh.done(slot_end, float(f.labels))
        gap = f.gap
        assert f.reliability is not None
        bins_count, bins_conf, bins_acc = reliability_series(*f.reliability, self.min_bin_count, counted=bool(f.labels and f.scored))
        # every figure in one store call (a figure below its minimum count: its series removed)
        write_families(out, figure_families([
            (names.LABELS_IN_WINDOW, float(f.labels), None),
            (names.ACCURACY, f.accuracy, None),
            (names.LABELS_PREVIOUS_WINDOW, float(f.previous_labels), None),
            (names.ACCURACY_PREVIOUS_WINDOW, f.previous_accuracy, None),
            (names.BRIER, f.brier, None),
            (names.LOG_LOSS, f.log_loss, None),
            (names.GAP, None if gap is None else gap.gap, None),
            (names.GAP_LOWER, None if gap is None else gap.lower, None),
            (names.GAP_UPPER, None if gap is None else gap.upper, None),
            (names.GAP_PVALUE, f.gap_pvalue, None),
            (names.CALIBRATION_ERROR, f.debiased_ce, ("debiased_l2_equal_mass",)),
            (names.CALIBRATION_ERROR, f.ece, ("ece_equal_width",)),
            (names.CALIBRATION_ERROR_PVALUE, f.debiased_ce_pvalue, None),
            (names.MAX_CALIBRATION_ERROR, f.mce, None),
            (names.TEMPERATURE, f.temperature, None),
        ]) + [figure_family(names.RELIABILITY_COUNT, bins_count), figure_family(names.RELIABILITY_CONFIDENCE, bins_conf),
              figure_family(names.RELIABILITY_ACCURACY, bins_acc)])

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._pending.fold()
        state: dict[str, Any] = {
            "windows": windows_state({"labels": self._window, "hard": self._hard, "pair": self._pair}),
            "skipped": dict(self._skipped),
            **self._recent.state_dict(),
            **resampling_state(self.state_version, self._rng, self._dear, self._refresh),
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (this version or 1, saved without ``draws``: its p-value is
        drawn afresh at the next export); other versions and misfits raise ``ValueError``."""
        check_state_version(self.kind, state, self.state_version)
        self._reset()
        windows = state["windows"]
        saved = windows.get("labels")
        if saved is not None and np.shape(saved["data"])[-1] == _OLD_DIM:  # two trailing sums no figure reads
            windows = {**windows, "labels": {**saved, "data": np.asarray(saved["data"])[..., :_DIM]}}
        load_windows_state({"labels": self._window}, windows)
        if "hard" in windows:  # saved before labels-only accuracy: empty
            self._hard.load_state_dict(windows["hard"])
        if "pair" in windows:  # saved before the previous window was kept: it fills in a window's time
            self._pair.load_state_dict(windows["pair"])
        self._skipped = {str(k): int(v) for k, v in state.get("skipped", {}).items()}
        self._recent.load_state_dict(state, "calibration")
        load_resampling_state(self.kind, self._rng, self._dear, self._refresh, state)


Series = list[tuple[tuple[str, ...], "float | None"]]


def reliability_series(count: np.ndarray, sconf: np.ndarray, scorr: np.ndarray, min_bin_count: int, *,
                       key: tuple[str, ...] = (), counted: bool = True) -> tuple[Series, Series, Series]:
    """The reliability diagram's series (count, mean confidence, accuracy per equal-width bin,
    labelled ``key + (bin,)``): a bin's confidence and accuracy are absent below ``min_bin_count``
    labels, its count absent unless ``counted``."""
    bins_count: Series = []
    bins_conf: Series = []
    bins_acc: Series = []
    least = max(min_bin_count, 1)
    counts, confs, rights = np.asarray(count).tolist(), np.asarray(sconf).tolist(), np.asarray(scorr).tolist()  # floats: one conversion each
    for i, label in enumerate(_BIN_LABELS):
        c = float(counts[i]) if i < len(counts) else 0.0
        enough = c >= least
        labels = key + (label,)
        bins_count.append((labels, c if counted else None))
        bins_conf.append((labels, confs[i] / c if enough else None))
        bins_acc.append((labels, rights[i] / c if enough else None))
    return bins_count, bins_conf, bins_acc


def _label_parts(rows: dict[str, np.ndarray]) -> list[Part]:
    """What labelled rows add to the window: per fine bin count, confidence and correctness, and
    the sums behind accuracy, Brier score, log loss and the over-confidence gap and p-value."""
    conf, correct = rows["conf"], rows["correct"]
    fine = _LABEL_BINS.index(conf)
    d = conf - correct
    return [
        (fine + _COUNT, 1.0),
        (fine + _SCONF, conf),
        (fine + _SCORR, correct),
        (_N, 1.0),
        (_BRIER, rows["brier"]),
        (_LOGLOSS, rows["log_loss"]),
        (_D2, d * d),
    ]
