"""Multi-label models (``output.kind: multilabel``): k independent probabilities per row.

A tagging, toxicity or coding model answers each label apart (a sigmoid per label), so a row may
hold any number of labels and its values need not sum to one. Argmax, softmax confidence and the
class mix of the single-label detectors do not describe it; this detector does, per label:

* over a sliding event-time window: the positive rate (share of rows whose probability is at
  least ``threshold``), the mean probability, and the mean label cardinality (positives per row),
  absent below ``min_rows`` rows;
* a histogram of ``max(p, 1 - p)`` over every label decision of every row: how sure the model is
  of each label's presence or absence;
* with reference scores of the same width: each label's positive rate on the reference and the
  drift of the window's rate against it, Pearson's chi-squared test of the 2 x 2 table (positive,
  negative) x (reference, window), which treats the reference as a sample too. Where an expected
  count is under 10 (a rare label, a short window) and the asymptotic p-value is small, the
  p-value is the Monte-Carlo one conditional on the margins
  (:func:`~monitor.stats.univariate.chi2_test`), seeded by the table. Each label's p-value is
  multiplied by the number of labels (Bonferroni, capped at 1), so that a rule compares it with
  its alpha directly and the chance that any label of an unchanged model falls under alpha in
  one evaluation is at most alpha;
* with delayed labels (``feedback`` with each row's ground truth: a 0/1 vector in column order or
  the names of the labels present, see :mod:`monitor.multilabel_truth`), over the same window of
  prediction times: the number of labelled rows (always), and at least ``min_labels`` of them,
  each label's Brier score (mean squared difference of its probability and its 0/1 truth), the
  hamming loss (share of the window's label decisions at ``threshold`` that are wrong) and the
  subset accuracy (share of rows whose every decision is right); each label's precision (its
  right positive decisions over its positive decisions) and recall (over its present labels)
  need besides ``min_positives`` positive decisions, respectively present labels, in the window.

Below its minimum count a figure is absent, not zero. Every windowed figure is a per-slot sum
(fixed memory: ``n_slots x (1 + 2k)`` for the predictions, ``n_slots x (2 + 4k)`` for the labels).

Examples
--------
>>> import numpy as np
>>> from monitor.batch import Batch
>>> from monitor.store import MetricStore
>>> det = MultilabelDetector(min_rows=2)
>>> det.update(Batch.from_arrays(np.zeros((2, 1)), np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.7]]), classes=("a", "b", "c")))
>>> store = MetricStore("m")
>>> det.export(store)
>>> store.value("monitor_multilabel_positive_rate_ratio", ("c",)), store.value("monitor_multilabel_cardinality_mean")
(1.0, 1.5)
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._common import (Refresh, RefreshingDetector, config_params, load_windows_state, outside_not_late, put_figure,
                                       time_span, windows_state)
from monitor.detectors._pending import PendingHistogram
from monitor.stats import univariate as uni
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch, LabeledBatch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["MultilabelDetector"]

#: Drift p-values are resolved (Monte-Carlo draws for sparse tables) down to this level divided
#: by the number of labels: the level of the shipped rule.
DRIFT_ALPHA = 0.001
#: Labelled rows' probabilities come back from the label join's float32 log-probabilities, a
#: probability of exactly 0.5 as 0.4999999990: a decision at the threshold is taken this much
#: (relative) below it, so that a labelled row is decided as its prediction was.
_TIE = 1e-6


class MultilabelDetector(RefreshingDetector):
    """Per-label positive rates, mean probabilities and cardinality of a multi-label model, and
    the drift of each label's positive rate against the reference.

    Parameters
    ----------
    threshold
        A label is present in a row when its probability is at least this.
    window_s
        Sliding event-time window of the figures (defaults to the monitor's window).
    n_slots
        Resolution of the window (it slides by ``window_s / n_slots``).
    min_rows
        Below this many rows in the window the windowed figures and the drift p-values are absent.
    min_labels
        Below this many labelled rows in the window the labelled figures (Brier score, precision,
        recall, hamming loss, subset accuracy) are absent.
    min_positives
        A label's precision is absent below this many positive decisions among the window's
        labelled rows, its recall below this many rows where it is present (besides
        ``min_labels``): a ratio of a handful of rows says nothing.
    refresh
        Relative growth of the window's rows that triggers recomputing the figures at export
        (they are also recomputed when the window slides and at every rule tick).
    seed
        Seed of the Monte-Carlo p-values (with the table: one table always gets one p-value).
    """

    kind: ClassVar[str] = "multilabel"
    #: Sliding-window sums and a buffered histogram: rows may come late and batched otherwise.
    deferrable: ClassVar[bool] = True

    def __init__(self, reference: "Reference | None" = None, threshold: float = 0.5, window_s: float = 3600.0,
                 n_slots: int = 12, min_rows: int = 100, min_labels: int = 100, min_positives: int = 10,
                 refresh: float = 0.05, seed: int = 0) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"multilabel: threshold must be in (0, 1), got {threshold}")
        for name, value in (("min_rows", min_rows), ("min_labels", min_labels), ("min_positives", min_positives)):
            if value < 1:
                raise ValueError(f"multilabel: {name} must be at least 1, got {value}")
        self.threshold = float(threshold)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_rows = int(min_rows)
        self.min_labels = int(min_labels)
        self.min_positives = int(min_positives)
        self.refresh = float(refresh)
        self.seed = int(seed)
        scores = None if reference is None else getattr(reference, "scores", None)
        self.reference_scores = None if scores is None else _probabilities(scores, "reference scores")
        #: label names by column: output.classes, else the reference's classes, else the batches' (learned)
        self.labels = tuple(str(c) for c in (getattr(reference, "classes", ()) or ()))
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None,
                    **params: Any) -> "MultilabelDetector":
        det = cls(reference, **config_params(cls, context, params, window_s="window_s", seed="seed"))
        if context is not None and context.output.classes:
            det.labels = det._names = tuple(context.output.classes)
        return det

    def _reset(self) -> None:
        self._k: int | None = None if self.reference_scores is None else int(self.reference_scores.shape[1])
        self._window: SlidingWindow | None = None
        self._labelled: SlidingWindow | None = None
        self._skipped: dict[str, int] = {}
        self._hist = PendingHistogram(names.CONFIDENCE_BUCKETS)
        self._refresh = Refresh(self.refresh)
        self._names = self.labels
        self._exported: tuple[str, ...] = ()
        self._reference_written = False
        self.skipped_rows = 0  # rows of another width than the model's labels (the intake refuses those first)
        if self._k is not None:
            self._make_window(self._k)

    def _make_window(self, k: int) -> None:
        # per slot: rows, then k positive counts, then k probability sums
        self._k = k
        self._window = SlidingWindow(self.window_s, (1 + 2 * k,), self.n_slots)
        # per slot: labelled rows, rows decided right on every label, then per label the sums of
        # squared errors, right positive decisions, positive decisions and present labels
        self._labelled = SlidingWindow(self.window_s, (2 + 4 * k,), self.n_slots)

    def _label_names(self, k: int) -> tuple[str, ...]:
        return self._names[:k] if len(self._names) >= k else tuple(str(i) for i in range(k))

    # -- updates --------------------------------------------------------------------------------
    def update(self, batch: "Batch") -> None:
        p = batch.scores
        if p is None or p.ndim != 2 or len(batch) == 0:
            return
        if self._k is None:
            self._make_window(int(p.shape[1]))
        if p.shape[1] != self._k:
            self.skipped_rows += len(batch)
            return
        if len(batch.classes) >= self._k and len(self._names) < self._k:
            self._names = tuple(str(c) for c in batch.classes[: self._k])
        assert self._window is not None
        positive = (p >= self.threshold).astype(np.float64)
        rows = np.concatenate([np.ones((len(batch), 1)), positive, p], axis=1)
        span = time_span(batch)
        if span[0] // (self.window_s / self.n_slots) == span[1] // (self.window_s / self.n_slots):
            self._window.add_summed(span[1], rows.sum(axis=0), len(batch))
        else:
            self._window.add(batch.ts, None, rows)
        self._hist.add(np.maximum(p, 1.0 - p).ravel())
        self._refresh.add(len(batch))

    def update_labels(self, labeled: "LabeledBatch") -> None:
        """Delayed ground truth (``label`` a 0/1 matrix, one column per label), filed under the
        event time of each row's prediction."""
        n = len(labeled)
        y, p = labeled.label, labeled.scores
        if n == 0 or p is None or y.ndim != 2:
            return  # not a multi-label model's labels (the join makes them so for output.kind: multilabel only)
        if self._k is None:
            self._make_window(int(p.shape[1]))
        if p.shape[1] != self._k or y.shape[1] != self._k:
            self._skip("other_width", n)  # predictions of another width than the model's labels
            return
        assert self._labelled is not None
        decided = p >= self.threshold * (1.0 - _TIE)
        present = y >= 0.5
        right_positive = decided & present
        rows = np.concatenate([np.ones((n, 1)), (decided == present).all(axis=1, keepdims=True), (p - y) ** 2,
                               right_positive, decided, present], axis=1)
        self._skip("outside_window", outside_not_late(self._labelled, labeled.ts, labeled.label_ts, labeled.late))
        self._labelled.add(labeled.ts, None, rows)
        self._refresh.add(n)

    def _skip(self, reason: str, n: int) -> None:
        if n:
            self._skipped[reason] = self._skipped.get(reason, 0) + n

    def advance(self, now: float) -> None:
        if self._window is not None:
            self._window.advance(now)
        if self._labelled is not None:
            self._labelled.advance(now)

    # -- results --------------------------------------------------------------------------------
    def figures(self) -> dict[str, Any] | None:
        """The window's figures (rows, per-label positive rates and mean probabilities, cardinality,
        per-label Bonferroni-adjusted drift p-values or None), None below ``min_rows`` rows."""
        if self._window is None or self._k is None:
            return None
        t = self._window.total()
        n = float(t[0])
        if n < self.min_rows:
            return None
        k = self._k
        positives, sums = t[1:1 + k], t[1 + k:]
        pvalues = None
        if self.reference_scores is not None:
            ref = self.reference_scores >= self.threshold
            ref_pos = ref.sum(axis=0).astype(np.float64)
            ref_n = float(len(self.reference_scores))
            draws = uni.chi2_draws(DRIFT_ALPHA, k)
            pvalues = np.empty(k)
            for j in range(k):
                r = np.array([ref_pos[j], ref_n - ref_pos[j]])
                c = np.rint(np.array([positives[j], n - positives[j]]))
                seed = zlib.crc32(f"{self.seed}:{j}:{r.tolist()}:{c.tolist()}".encode())
                pvalues[j] = min(1.0, uni.chi2_test(r, c, draws=draws, seed=seed).pvalue * k)
        return {"rows": n, "rate": positives / n, "mean": sums / n, "cardinality": float(positives.sum() / n),
                "pvalue": pvalues}

    def labelled_figures(self) -> dict[str, Any] | None:
        """The window's labelled figures (labels; per-label Brier score, precision and recall, None
        where below ``min_positives``; hamming loss; subset accuracy), None below ``min_labels``
        labelled rows."""
        if self._labelled is None or self._k is None:
            return None
        t = self._labelled.total()
        n, k = float(t[0]), self._k
        if n < self.min_labels:
            return None
        sq, tp, decided, present = t[2:2 + k], t[2 + k:2 + 2 * k], t[2 + 2 * k:2 + 3 * k], t[2 + 3 * k:]
        wrong = decided + present - 2.0 * tp  # false positives and false negatives
        return {
            "labels": n,
            "brier": sq / n,
            "precision": [float(tp[j] / decided[j]) if decided[j] >= self.min_positives else None for j in range(k)],
            "recall": [float(tp[j] / present[j]) if present[j] >= self.min_positives else None for j in range(k)],
            "hamming_loss": float(wrong.sum() / (n * k)),
            "subset_accuracy": float(t[1] / n),
        }

    def export(self, out: "MetricWriter") -> None:
        for reason, count in self._skipped.items():
            out.inc(names.LABELS_SKIPPED, float(count), (reason,))
        self._skipped.clear()
        if self._hist.pending:
            self._hist.flush(out, names.MULTILABEL_CONFIDENCE)
        if self._window is None or self._k is None:
            return
        labels = self._label_names(self._k)
        if not self._reference_written and self.reference_scores is not None:
            ref = self.reference_scores >= self.threshold
            for name, rate in zip(labels, ref.mean(axis=0).tolist()):
                out.set(names.MULTILABEL_REFERENCE_POSITIVE_RATE, rate, (name,))
            out.set(names.MULTILABEL_REFERENCE_CARDINALITY, float(ref.sum(axis=1).mean()))
            self._reference_written = True
        write, due = self._refresh.begin(self._window.newest_slot_end)
        if not write:
            return
        figures = self.figures()
        assert self._labelled is not None
        labelled = self.labelled_figures()
        n_labels = float(self._labelled.total()[0])
        if due:
            self._refresh.done(self._window.newest_slot_end, float(self._window.total()[0]) + n_labels)
        out.set(names.MULTILABEL_ROWS, float(self._window.total()[0]))
        out.set(names.MULTILABEL_LABELS, n_labels)
        put_figure(out, names.MULTILABEL_HAMMING_LOSS, None if labelled is None else labelled["hamming_loss"])
        put_figure(out, names.MULTILABEL_SUBSET_ACCURACY, None if labelled is None else labelled["subset_accuracy"])
        put_figure(out, names.MULTILABEL_CARDINALITY, None if figures is None else figures["cardinality"])
        for j, name in enumerate(labels):
            key = (name,)
            put_figure(out, names.MULTILABEL_POSITIVE_RATE, None if figures is None else float(figures["rate"][j]), key)
            put_figure(out, names.MULTILABEL_PROBABILITY_MEAN, None if figures is None else float(figures["mean"][j]), key)
            pv = None if figures is None or figures["pvalue"] is None else float(figures["pvalue"][j])
            put_figure(out, names.MULTILABEL_DRIFT_PVALUE, pv, key)
            put_figure(out, names.MULTILABEL_BRIER, None if labelled is None else float(labelled["brier"][j]), key)
            put_figure(out, names.MULTILABEL_PRECISION, None if labelled is None else labelled["precision"][j], key)
            put_figure(out, names.MULTILABEL_RECALL, None if labelled is None else labelled["recall"][j], key)

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"k": -1 if self._k is None else self._k, "names": list(self._names),
                                 "pending": self._hist.state_dict(), "refresh": self._refresh.state_dict()}
        if self._window is not None and self._labelled is not None:
            state["windows"] = windows_state({"main": self._window, "labels": self._labelled})
        if self._skipped:
            state["skipped"] = dict(self._skipped)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        k = int(state.get("k", -1))
        if k > 0:
            if self._k is not None and k != self._k:
                raise ValueError(f"multilabel state holds {k} labels, the reference's scores have {self._k}")
            self._make_window(k)
            assert self._window is not None and self._labelled is not None
            load_windows_state({"main": self._window}, state["windows"])
            if "labels" in state["windows"]:  # saved before labels were read: none in the window
                self._labelled.load_state_dict(state["windows"]["labels"])
        self._skipped = {str(r): int(v) for r, v in state.get("skipped", {}).items()}
        self._names = tuple(str(x) for x in state.get("names", self._names)) or self._names
        if "pending" in state:
            self._hist.load_state_dict(state["pending"])
        if "refresh" in state:
            self._refresh.load_state_dict(state["refresh"], "multilabel.refresh")


def _probabilities(scores: Any, what: str) -> np.ndarray:
    """``scores`` as ``(n, k)`` label probabilities, or an error naming the fix."""
    p = np.asarray(scores, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[0] < 2:
        raise ValueError(f"multilabel: {what} must be (rows, labels) probabilities of at least 2 rows, got shape {p.shape}. "
                         "Fix: give the model's outputs on the reference rows, one column per label")
    finite = np.isfinite(p).all()
    if not finite or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"multilabel: {what} must be probabilities in [0, 1] (a sigmoid per label); "
                         f"{'some are not finite' if not finite else f'they range over [{p.min():.3g}, {p.max():.3g}]'}. "
                         "Fix: give the model's probabilities on the reference rows, not its raw scores")
    return p
