"""Helpers shared by the confidence-family detectors: per-batch output features computed once,
configuration from the monitor's context with clear errors, and window state round trips."""

from __future__ import annotations

import inspect
import math
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from monitor.detectors.base import Detector
from monitor.events import whole_number_text
from monitor.stats.calibration import brier_terms, log_loss_terms
from monitor.stats.uncertainty import (energy_score, log_probabilities, mutual_information, normalized_entropy, top_class_variance,
                                      top_two)

if TYPE_CHECKING:
    from monitor.detectors.context import DetectorContext
    from monitor.store import MetricWriter
    from monitor.windows import SlidingWindow

__all__ = ["OutputFeatures", "output_features", "UncertaintyFeatures", "uncertainty_features", "LabelFeatures", "label_features", "HardLabels", "hard_labels", "time_span", "config_params", "constructor_parameters", "windows_state", "load_windows_state", "outside_not_late", "class_names", "put_figure", "put_figures", "put_columns", "write_families", "figure_family", "figure_families", "column_family", "SeriesColumns", "reference_probabilities", "check_reference_width", "resampling_params", "detector_rng", "resampling_state", "check_state_version", "check_generator_state", "load_resampling_state", "Refresh", "RefreshingDetector", "DearFigure"]

_T = TypeVar("_T")
_CACHE_KEY = "_monitor_output_features"
_LABEL_CACHE_KEY = "_monitor_label_features"
_HARD_CACHE_KEY = "_monitor_hard_label_features"
_SPAN_KEY = "_monitor_time_span"
_UNCERTAINTY_KEY = "_monitor_uncertainty_features"


@dataclass
class OutputFeatures:
    """Top-label features of a classifier's probability rows (one value per row).

    The entropy, which only the prediction path needs, is computed on first use: the label path
    reads the confidence alone and would pay for a log of every probability for nothing.
    """

    conf: np.ndarray
    second: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray = field(repr=False)

    @property
    def margin(self) -> np.ndarray:
        return self.conf - self.second

    @cached_property
    def entropy(self) -> np.ndarray:
        return normalized_entropy(self.scores)


@dataclass
class UncertaintyFeatures:
    """Per-row uncertainty the probabilities alone do not give: the energy score of logit outputs,
    and an ensemble's disagreement (mutual information, variance of the top class across members).
    A field is None when the outputs do not carry it."""

    energy: np.ndarray | None
    mutual_information: np.ndarray | None
    top_class_variance: np.ndarray | None


def uncertainty_features(batch: Any) -> UncertaintyFeatures | None:
    """:class:`UncertaintyFeatures` of a batch with logits or ensemble members, computed once per
    batch object and shared by the detectors (None for plain probabilities)."""
    logits, members = getattr(batch, "logits", None), getattr(batch, "members", None)
    ensemble = members is not None and members.ndim == 3
    if logits is None and not ensemble:
        return None
    return _cached(batch, _UNCERTAINTY_KEY, lambda b, scores: UncertaintyFeatures(
        energy_score(logits) if logits is not None else None,
        mutual_information(members) if ensemble else None,
        top_class_variance(members) if ensemble else None,
    ))


def time_span(batch: Any) -> tuple[float, float]:
    """Oldest and newest event time of a batch with rows, computed once per batch object: every
    detector's window needs them (see :func:`monitor.detectors._accumulate.accumulate`)."""
    span = batch.__dict__.get(_SPAN_KEY)
    if span is None:
        span = batch.__dict__[_SPAN_KEY] = (float(batch.ts.min()), float(batch.ts.max()))
    return span


def _features(scores: np.ndarray, predicted: np.ndarray | None) -> OutputFeatures:
    conf, second = top_two(scores)
    pred = predicted if predicted is not None else scores.argmax(axis=1)
    return OutputFeatures(conf, second, np.asarray(pred, dtype=np.int64), scores)


def _scores(batch: Any) -> np.ndarray | None:
    """The batch's class probabilities ``(n, k)``, None when there are none or no rows."""
    scores = batch.scores
    return None if scores is None or scores.ndim != 2 or scores.shape[0] == 0 else scores


def _cached(batch: Any, key: str, compute: Callable[[Any, np.ndarray], _T]) -> _T | None:
    """``compute(batch, scores)`` once per batch object (which lives for one worker iteration)."""
    found = batch.__dict__.get(key)
    if found is None:
        scores = _scores(batch)
        if scores is None:
            return None
        found = batch.__dict__[key] = compute(batch, scores)
    return found


def output_features(batch: Any) -> OutputFeatures | None:
    """Features of ``batch.scores`` ``(n, k)``, computed once per batch and shared by detectors.

    Several detectors need the max probability and the entropy of the same rows; the result is
    cached on the batch object so that the cost is paid once. Returns None when the batch has no
    class probabilities (regression, label outputs).
    """
    return _cached(batch, _CACHE_KEY, lambda b, scores: _features(scores, b.predicted))


@dataclass
class LabelFeatures:
    """The labelled rows whose label is one of the model's classes, with their per-row figures.

    ``known`` is the mask of those rows in the labelled batch (None when all are), ``unknown``
    the number of the others (labels outside the classes, which the calibration detector counts).
    """

    known: np.ndarray | None
    unknown: int
    ts: np.ndarray
    label: np.ndarray
    scores: np.ndarray
    output: OutputFeatures
    #: The rows' log-probabilities when the joiner kept them (see ``LabeledBatch.log_scores``).
    log_scores: np.ndarray | None = None

    @property
    def logp(self) -> np.ndarray:
        """Log-probabilities for a temperature fit: the kept ones, else the log of the scores."""
        return self.log_scores if self.log_scores is not None else log_probabilities(self.scores)

    @property
    def conf(self) -> np.ndarray:
        return self.output.conf

    @cached_property
    def correct(self) -> np.ndarray:
        """1.0 where the predicted class is the label."""
        return (self.output.predicted == self.label).astype(np.float64)

    @cached_property
    def brier(self) -> np.ndarray:
        return brier_terms(self.scores, self.label)

    @cached_property
    def log_loss(self) -> np.ndarray:
        return log_loss_terms(self.scores, self.label)


def label_features(labeled: Any) -> LabelFeatures | None:
    """Features of a labelled batch's rows with a known class, computed once and shared.

    The calibration and the segment detectors score the same labelled rows (correctness,
    Brier score, log loss); like :func:`output_features` the result is cached on the batch.
    Returns None without class probabilities (regression) or rows.
    """
    return _cached(labeled, _LABEL_CACHE_KEY, _label_features)


def _label_features(labeled: Any, scores: np.ndarray) -> LabelFeatures:
    label = np.asarray(labeled.label)
    if label.dtype.kind not in "iu":
        label = label.astype(np.int64)
    known = (label >= 0) & (label < scores.shape[1])
    logp = getattr(labeled, "log_scores", None)
    if known.all():
        return LabelFeatures(None, 0, labeled.ts, label, scores, output_features(labeled), logp)  # type: ignore[arg-type]
    predicted = None if labeled.predicted is None else labeled.predicted[known]
    return LabelFeatures(known, int(known.size - np.count_nonzero(known)), labeled.ts[known], label[known], scores[known],
                         _features(scores[known], predicted), None if logp is None else logp[known])


@dataclass
class HardLabels:
    """The labelled rows of a model that returns labels only (no scores) whose label is one of the
    classes: their mask in the batch (``known``), event times and whether each answer was right."""

    known: np.ndarray
    ts: np.ndarray
    correct: np.ndarray

    @property
    def unknown(self) -> int:
        return int(self.known.size - self.correct.size)


def hard_labels(labeled: Any) -> HardLabels:
    """:class:`HardLabels` of a labelled batch without scores, computed once and shared (the
    calibration and the segment detectors score the same rows), as :func:`label_features`."""
    found = labeled.__dict__.get(_HARD_CACHE_KEY)
    if found is None:
        label = np.asarray(labeled.label)
        if label.dtype.kind not in "iu":
            label = label.astype(np.int64)
        known = label >= 0
        correct = (np.asarray(labeled.predicted)[known] == label[known]).astype(np.float64)
        found = labeled.__dict__[_HARD_CACHE_KEY] = HardLabels(known, np.asarray(labeled.ts)[known], correct)
    return found


def constructor_parameters(cls: type) -> tuple[str, ...]:
    """The keyword parameters ``cls(reference, ...)`` takes: those of the first constructor in its
    MRO that names them (a subclass whose ``__init__`` passes ``**params`` on to its parent's
    takes the parent's), less ``self`` and ``reference``."""
    return tuple(constructor_defaults(cls))


def constructor_defaults(cls: type) -> dict[str, Any]:
    """:func:`constructor_parameters` with each one's default (``inspect.Parameter.empty`` when it
    has none): what a config value for it is checked against. A constructor that passes
    ``**params`` on adds the parameters it names itself (``pca_drift``'s ``space``)."""
    own: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        named = {n: p.default for n, p in params.items() if n not in ("self", "reference")
                 and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            own = {**named, **own}
            continue
        return {**named, **own}
    return own


def config_params(cls: type, context: "DetectorContext | None", params: dict[str, Any], **from_context: str) -> dict[str, Any]:
    """Validate ``params`` against ``cls``'s constructor and fill defaults from ``context``.

    ``from_context`` maps a parameter name to the context attribute it defaults to (e.g.
    ``window_s="window_s"``). Unknown names raise a ``ValueError`` that lists the known ones, so
    that a typo in a config file is reported instead of silently ignored.
    """
    known = list(constructor_parameters(cls))
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"detector {getattr(cls, 'kind', cls.__name__)!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"known parameters: {', '.join(known)}"
        )
    out = dict(params)
    if context is not None:
        for name, attr in from_context.items():
            if out.get(name) is None:
                out[name] = getattr(context, attr)
    return out


def class_names(reference: Any, k: int) -> tuple[str, ...]:
    """Class names for ``k`` columns: the reference's when it has them, else ``0..k-1``."""
    names = tuple(getattr(reference, "classes", ()) or ())
    if len(names) >= k:
        return tuple(str(c) for c in names[:k])
    return tuple(str(i) for i in range(k))


def windows_state(windows: dict[str, "SlidingWindow"]) -> dict[str, Any]:
    return {name: w.state_dict() for name, w in windows.items()}


def load_windows_state(windows: dict[str, "SlidingWindow"], state: dict[str, Any]) -> None:
    for name, w in windows.items():
        if name not in state:
            raise ValueError(f"detector state lacks window {name!r}; it was saved by another configuration")
        w.load_state_dict(state[name])


def outside_not_late(window: "SlidingWindow", ts: np.ndarray, arrived: np.ndarray, late: np.ndarray | None) -> int:
    """Labelled rows (prediction times ``ts``, label times ``arrived``) that fall before ``window``
    when their label came, less those the joiner counted late (``late``, the rows' mask): those are
    counted already, and counting them again as outside the window showed each late label twice."""
    if late is not None and late.any():
        keep = ~late
        ts, arrived = ts[keep], arrived[keep]
    return window.outside(ts, arrived)


def put_figure(out: "MetricWriter", name: str, value: float | None, labels: tuple[str, ...] | None = None) -> None:
    """Set a figure, or remove its series when it is below its minimum count (absent, not zero)."""
    if value is None or not np.isfinite(value):
        out.remove(name, labels)
    else:
        out.set(name, float(value), labels)


def put_figures(out: "MetricWriter", name: str, items: Iterable[tuple[tuple[str, ...], float | None]]) -> None:
    """:func:`put_figure` for many series of one metric, the values written in one store call
    (a detector exporting one figure per segment or per bin pays the per-call cost once)."""
    write_families(out, [figure_family(name, items)])


Family = tuple[str, Sequence[tuple[str, ...]], list[float], list[bool]]


def figure_family(name: str, items: Iterable[tuple[tuple[str, ...], float | None]]) -> Family:
    """What :func:`put_figures` writes, for :func:`write_families` to write with other families:
    ``(name, labels, values, present)``, a series absent where its figure is None or not finite."""
    keys: list[tuple[str, ...]] = []
    values: list[float] = []
    flags: list[bool] = []
    for labels, value in items:
        keys.append(labels)
        present = value is not None and math.isfinite(value)
        values.append(float(value) if present else 0.0)  # type: ignore[arg-type]
        flags.append(present)
    return name, keys, values, flags


def figure_families(items: Iterable[tuple[str, float | None, tuple[str, ...] | None]]) -> list[Family]:
    """:func:`figure_family` of ``(name, value, labels)`` figures of several metrics (labels None:
    the metric has none), in the order their metrics first come: a detector's scalar figures,
    written by one :func:`write_families` instead of a :func:`put_figure` each."""
    grouped: dict[str, list[tuple[tuple[str, ...], float | None]]] = {}
    for name, value, labels in items:
        grouped.setdefault(name, []).append((() if labels is None else labels, value))
    return [figure_family(name, series) for name, series in grouped.items()]


def put_columns(out: "MetricWriter", name: str, keys: Sequence[tuple[str, ...]], values: np.ndarray,
                ok: np.ndarray | None = None) -> None:
    """:func:`put_figures` for figures computed as an array: ``values[j]`` is series ``keys[j]``'s
    figure, written where ``ok[j]`` holds and it is finite, its series removed elsewhere. The
    mask is one array operation instead of a check per series."""
    write_families(out, [column_family(name, keys, values, ok)])


def column_family(name: str, keys: Sequence[tuple[str, ...]], values: np.ndarray, ok: np.ndarray | None = None) -> Family:
    """What :func:`put_columns` writes, for :func:`write_families` to write with other families."""
    v = np.asarray(values, dtype=np.float64)
    flags = np.isfinite(v) if ok is None else np.isfinite(v) & ok
    return name, keys, v.tolist(), flags.tolist()


def write_families(out: "MetricWriter", families: Sequence[Family]) -> None:
    """The one writer of per-series figures (:func:`put_figures`, :func:`put_columns`,
    :class:`SeriesColumns`): in each family ``(name, labels, values, present)`` the series whose
    flag is False are removed (absent, not zero), the others set to their value, every family in
    one call of the store's :meth:`~monitor.store.MetricStore.write_series` (one lock, one
    look-up per family); a writer without it gets ``remove_many`` and ``set_many`` per family."""
    batched = getattr(out, "write_series", None)
    if batched is not None:
        batched(families)
        return
    for name, keys, values, flags in families:
        if not all(flags):
            out.remove_many(name, list(compress(keys, [not f for f in flags])))
        if any(flags):
            out.set_many(name, list(zip(compress(keys, flags), compress(values, flags))))


class SeriesColumns:
    """Per-segment figures of many metrics, collected for one store call: given ``values`` and
    ``ok`` indexed by segment slot, the shown segments' finite values are written and the others'
    series removed (the masks of all figures are one array operation); :meth:`take` hands the
    collected families to :func:`write_families`.

    ``segments`` are the names of the shown segments, the first slots; their series keys are
    built once for every family and every export until the shown segments change."""

    __slots__ = ("segments", "keys", "n", "_pair_keys", "_families")

    def __init__(self, segments: tuple[str, ...]) -> None:
        self.segments = segments
        self.keys = [(name,) for name in segments]
        self.n = len(segments)  # the shown segments are the first slots
        self._pair_keys: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        self._families: list[Family] = []

    def column(self, name: str, values: np.ndarray) -> None:
        """A figure present for every shown segment (a count)."""
        self._families.append((name, self.keys, np.asarray(values[:self.n], dtype=np.float64).tolist(), [True] * self.n))

    def many(self, figures: list[tuple[str, np.ndarray | None, np.ndarray]]) -> None:
        """``(name, values, ok)`` of many one-label figures (``values`` None: absent everywhere),
        their masks taken in one array pass."""
        values = np.full((len(figures), len(figures[0][2])), np.nan)
        ok = np.empty(values.shape, dtype=bool)
        for j, (_, v, o) in enumerate(figures):
            if v is not None:
                values[j] = v
            ok[j] = o
        values, ok = values[:, :self.n], ok[:, :self.n]
        flags = (ok & np.isfinite(values)).tolist()
        self._families += [(name, self.keys, v, f) for (name, _, _), v, f in zip(figures, values.tolist(), flags)]

    def pairs(self, name: str, second: tuple[str, ...], values: np.ndarray, ok: np.ndarray) -> None:
        """A figure with a second label: ``values[j]`` the figure of label value ``second[j]``,
        written per segment in the order of ``second``."""
        keys = self._pair_keys.get(second)
        if keys is None:
            keys = self._pair_keys[second] = [(key[0], label) for key in self.keys for label in second]
        self._families.append(column_family(name, keys, values[:, :self.n].T.ravel(), np.repeat(ok[:self.n], len(second))))

    def take(self) -> list[Family]:
        """The families collected since the last call (then forgotten)."""
        families, self._families = self._families, []
        return families


def reference_probabilities(reference: Any, kind: str, need_labels: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The reference's class probabilities ``(n, k)`` (and integer labels), or a clear error.

    Label-free signals compare live outputs with the model's outputs on held-out reference data,
    so a detector that needs them refuses to start without them rather than export nonsense.
    """
    scores = None if reference is None else getattr(reference, "scores", None)
    if scores is None:
        raise ValueError(
            f"detector {kind!r} needs a reference with the model's outputs on it: pass reference scores "
            "(Reference.from_arrays(..., scores=model_probabilities)) or disable this detector"
        )
    probs = np.asarray(scores, dtype=np.float64)
    one_column = probs.ndim == 1 or (probs.ndim == 2 and probs.shape[1] == 1)
    if one_column:
        # P(positive) of a binary model, as live outputs of one column are read: a CSV reference's
        # single output column arrives as (n, 1) and was refused as "not summing to 1"
        probs = probs.reshape(-1)
        probs = np.stack([1.0 - probs, probs], axis=1)
    if probs.ndim != 2:
        raise ValueError(f"detector {kind!r}: reference scores must be class probabilities (rows, classes), got shape {probs.shape}")
    if probs.shape[0] < 2:  # "(rows, classes), got shape (1, 2)" read as a wrong layout
        raise ValueError(f"detector {kind!r} needs at least 2 reference rows with the model's outputs, the reference has "
                         f"{probs.shape[0]}: its live figures are compared with the reference's spread (a held-out "
                         "reference of hundreds of rows or more)")
    _check_probabilities(probs, kind, one_column)
    labels = getattr(reference, "labels", None)
    if labels is None:
        if need_labels:
            raise ValueError(
                f"detector {kind!r} needs reference labels (Reference.from_arrays(..., labels=y)) to calibrate its estimates"
            )
        return probs, None
    y = _label_indices(np.asarray(labels), tuple(getattr(reference, "classes", ()) or ()), kind, probs.shape[1])
    if y.shape[0] != probs.shape[0] or y.min() < 0 or y.max() >= probs.shape[1]:
        hint = " (one column of scores is read as P(positive) of a binary model)" if one_column else ""
        raise ValueError(f"detector {kind!r}: reference labels must be {probs.shape[0]} class indices in 0..{probs.shape[1] - 1}, "
                         f"one per row of the {probs.shape[1]} score columns{hint}; got {y.shape[0]} labels from {y.min()} "
                         f"to {y.max()}. Fix: give the model's outputs on the reference rows with one column per class, and "
                         "each label as its column's index (or names with classes=[...])")
    return probs, y


#: Fewest and most draws of the calibration error's p-value: 100 is the fewest that can give
#: p < 0.01 (the alert's level: the smallest p-value is 1 / (1 + draws), and 99 draws, the fewest
#: accepted before, gave 0.01 itself, so that ModelCalibrationErrorHigh could never fire), 1,999
#: bounds the cost of a window the model is miscalibrated on (every draw is made then: 2-4 ms at
#: 2,000 labels; benchmarks/calibration_rule_false_alarms.py).
RESAMPLES_RANGE = (100, 1999)


def resampling_params(kind: str, resamples: Any, seed: Any) -> tuple[int, int]:
    """Validate a detector's ``resamples`` and ``seed`` (the calibration error's p-value).

    Whole numbers only (a YAML ``true`` or ``2e3`` is refused, not read as 1 or rounded), so that a
    typo is reported at start instead of changing the p-value's resolution or its draws."""
    lo, hi = RESAMPLES_RANGE
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or not lo <= int(resamples) <= hi:
        raise ValueError(f"{kind}: resamples must be a whole number from {lo} (the fewest whose smallest p-value, "
                         f"1 / (1 + resamples), is under the alerts' 0.01) to {hi}, "
                         f"got {resamples!r}. Fix: give resamples: 1999 (the default) or fewer draws within that range")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"{kind}: seed must be a whole number, 0 or more, got {seed!r}. Fix: give seed: 0, or leave it out "
                         "to take the monitor's seed")
    return int(resamples), int(seed)


def detector_rng(kind: str, seed: int) -> np.random.Generator:
    """A detector's own generator: from its ``seed`` and its kind, so that two detectors given the
    monitor's seed (the calibration and the segments detectors) do not draw the same numbers."""
    return np.random.default_rng([seed, zlib.crc32(kind.encode())])


def check_reference_width(kind: str, width: int, reference_width: int) -> None:
    """Raise when live scores have another number of columns than the reference's probabilities.

    Why raise: a detector that compares live scores with the reference's class by class has nothing
    to compare them with, and passing the batch over left its figures absent for good with nothing
    said (a reference of another model, when ``output.classes`` is not configured: with it, such a
    reference is refused at start and such rows at intake). Raised, it is logged and counted in
    ``monitor_detector_errors_total`` (MonitorDetectorFailing), as the segments detector does."""
    if width != reference_width:
        raise ValueError(f"{kind}: the model's outputs have {width} columns, the reference's probabilities {reference_width}: "
                         "rebuild the reference with this model's outputs (these rows are not compared with it; listing "
                         "the classes under output.classes refuses rows of another width at intake)")


def _check_probabilities(probs: np.ndarray, kind: str, one_column: bool = False) -> None:
    """Refuse reference scores that are not class probabilities, naming the row and the fix.

    Why: the label-free figures are calibrated on them. One NaN row made the ATC threshold NaN
    (an estimated accuracy of 0, which fires ModelEstimatedAccuracyDrop), and raw scores given
    for a model configured with ``output.kind: probabilities`` did the same; live rows like
    these are refused and counted, a reference's are refused at start."""
    from monitor.outputs import SUM_TOLERANCE

    finite = np.isfinite(probs).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"detector {kind!r}: {bad.size} reference row(s) have NaN or infinite scores (first: row {bad[0]}). "
                         "Fix: drop those rows from the reference (with their inputs and labels), or fix the outputs they "
                         "came from")
    sums = probs.sum(axis=1)
    bad = np.flatnonzero((probs < -1e-9).any(axis=1) | (probs > 1 + 1e-9).any(axis=1) | (np.abs(sums - 1.0) > SUM_TOLERANCE))
    if bad.size:
        i = int(bad[0])
        if one_column:  # shown as given: the [1 - p, p] it was read as is no row the user wrote
            row, given = f"{probs[i, 1]:.4g}", "one column, read as P(positive) of a binary model"
        else:
            row = "[" + ", ".join(f"{v:.4g}" for v in probs[i, :6]) + (", ..." if probs.shape[1] > 6 else "") + "]"
            given = f"sum {sums[i]:.4g}"
        # said for a monitor.yaml (`monitor config check`, a sidecar) and for code alike
        regression = (", or output.kind: regression for a regression model's values (output: {kind: regression} in "
                      "monitor.yaml, config={\"output\": {\"kind\": \"regression\"}} in code)") if one_column else ""
        raise ValueError(f"detector {kind!r}: reference scores are not class probabilities: {bad.size} row(s) lie outside "
                         f"[0, 1] or do not sum to 1 (row {i}: {row}, {given}). Fix: give the model's probabilities "
                         f"(predict_proba) on the reference rows, or set output.kind: logits if the model returns raw scores{regression}")


def _class_text(v: Any) -> str:
    """A label's text as a class name: a whole float is its integer's (``1.0`` names the class
    ``1``, as a pandas column with a gap holds integer labels)."""
    return whole_number_text(v) or str(v)


def _label_indices(y: np.ndarray, classes: tuple[str, ...], kind: str, k: int) -> np.ndarray:
    """Reference labels as score-column indices: class names mapped through the reference's
    ``classes`` (a CSV's label column holds names; ``monitor reference build --classes`` or
    ``Reference.from_arrays(..., classes=...)`` says which column each one is), else whole
    numbers. Why here: the detectors compare each label with the argmax of its row's scores,
    which only an index can be.

    Whole numbers are names first too, as live labels are looked up
    (:meth:`monitor.outputs.ClassIndex.lookup`): with scikit-learn's ``classes_`` as the names,
    ``[1, 2, 3]`` made the label 3 an index past the last column (the detectors refused to start)
    and ``[1, 0]`` read the label 1 as column 1, class 0 (every label swapped, the reference
    accuracy one minus the true one). They are indices only when some label names no class."""
    names = tuple(str(c) for c in classes[:k])
    if names and y.size:
        index = {c: i for i, c in enumerate(names)}
        mapped = [index.get(_class_text(v)) for v in y.tolist()]
        if None not in mapped:
            return np.asarray(mapped, dtype=np.int64)
    if y.dtype.kind in "iu":
        return y
    try:
        f = y.astype(np.float64)
    except (TypeError, ValueError):
        f = None
    if f is not None and np.all(np.isfinite(f)) and np.all(f == np.round(f)):
        return f.astype(np.int64)
    if y.dtype.kind in "fb":
        raise ValueError(
            f"detector {kind!r}: reference labels must be class indices 0..{k - 1}, got missing (NaN) or "
            "fractional values. Fix: drop the unlabelled rows or give each label as its score column's index"
        )
    unknown = ", ".join(repr(v) for v in sorted({str(v) for v in y.tolist()} - set(names))[:3])
    if names:
        raise ValueError(
            f"detector {kind!r}: reference labels {unknown} are neither class names ({', '.join(names)}) nor "
            f"indices 0..{k - 1}. Fix: name the classes in score-column order as the labels spell them "
            "(Reference.from_arrays(..., classes=[...]), or `monitor reference build --classes a,b,c`), or give the "
            "labels as indices"
        )
    raise ValueError(
        f"detector {kind!r}: reference labels are names (e.g. {unknown}), but the reference names no classes to "
        f"map them to its {k} score columns. Fix: pass the class names in column order "
        "(Reference.from_arrays(..., classes=[...]), or `monitor reference build --classes a,b,c`), or give the "
        f"labels as indices 0..{k - 1}"
    )


class Refresh:
    """Decides when a detector's windowed figures must be recomputed at export.

    The worker exports after drained batches (at most every ``queue.export_interval``);
    recomputing tests (exact KS, chi-squared, NNLS) or even summing the window each time would
    cost more than the rows themselves.
    Figures are recomputed when the window has slid to a new slot (old data left it) or when
    the rows added since the last computation exceed ``growth`` times the rows the window held
    then; otherwise the values already in the store are current to within that fraction.
    ``growth = 0`` recomputes at every export.

    Checkpointed (:meth:`state_dict`) with the detectors whose figures rest on draws: when they
    are recomputed decides when a kept p-value is drawn again (:class:`DearFigure`), so a restored
    detector must recompute when an uninterrupted one would. After a restore :attr:`restored`
    stays True until the next export, which writes the figures whether due or not (the restarted
    agent's store is empty) without counting as a recomputation.
    """

    __slots__ = ("growth", "_slot_end", "_n", "_added", "restored")

    def __init__(self, growth: float = 0.05) -> None:
        self.growth = float(growth)
        self.reset()

    def add(self, n: int) -> None:
        """Count rows added to the window since the last computation."""
        self._added += n

    def due(self, slot_end: float) -> bool:
        """True when the figures must be recomputed (then call :meth:`done`)."""
        return not (self.growth > 0 and slot_end == self._slot_end and self._added <= self.growth * self._n)

    def begin(self, slot_end: float) -> tuple[bool, bool]:
        """At an export: whether to write the figures, and whether they are due (then call
        :meth:`done`). Not due but just restored, they are written held (kept p-values, no new
        draws) and the refresh counts on, as an uninterrupted detector's would; either way the
        next export is an ordinary one."""
        due = self.due(slot_end)
        write = due or self.restored
        self.restored = False
        return write, due

    def done(self, slot_end: float, n_window: float) -> None:
        self._slot_end, self._n, self._added = slot_end, float(n_window), 0
        self.restored = False

    def reset(self) -> None:
        self._slot_end, self._n, self._added = float("nan"), 0.0, 0
        self.restored = False

    def state_dict(self) -> list[float]:
        """``[slot end, rows then, rows added since]`` of the last recomputation (JSON-safe)."""
        return [float(self._slot_end), float(self._n), float(self._added)]

    def load_state_dict(self, saved: Sequence[Any], where: str) -> None:
        """Restore :meth:`state_dict` and set :attr:`restored`; ``where`` names the field in errors."""
        try:  # int(): a count of NaN or inf rows is corruption too (it raised ValueError/OverflowError unnamed)
            slot_end, n, added_f = (float(v) for v in saved)
            added = int(added_f)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{where}: must be [slot end, rows, rows added], got {saved!r}. Fix: drop the field from the "
                             "state (the figures are then recomputed at the first export)") from None
        self._slot_end, self._n, self._added = slot_end, n, added
        self.restored = True


class DearFigure:
    """A figure too dear to recompute at every refresh, kept per key (a segment, or None for the
    whole window) until its window slides to a new slot (``window_s / n_slots``: 5 minutes by
    default) or the labels it rests on change by more than ``growth`` times their count then
    (1.0: doubled).

    Why: a resampled p-value (:func:`monitor.stats.calibration.debiased_l2_pvalue`) costs
    0.3-2 ms, and every refresh recomputed it, per segment and for the whole window: at a rule
    tick every 15 s, and after every 5% more labels while a fresh agent's windows fill (the cost
    benchmark's first minutes at 256 events/s: about 3 us per event more). The figure it gates
    (the p-value of an alert with ``for: 30m``) may be a slot old; a rule tick does not make it
    due, unlike :class:`Refresh`.
    """

    __slots__ = ("growth", "_kept")

    # no reset: the detectors build a new one in their ``_reset`` (state restored or cleared)
    def __init__(self, growth: float = 1.0) -> None:
        self.growth = float(growth)
        self._kept: dict[Any, tuple[float, float, Any]] = {}

    def get(self, key: Any, slot_end: float, labels: float, compute: Callable[[], _T], *, hold: bool = False) -> _T | None:
        """The figure for ``key``: the kept one while its slot and label count hold, else
        ``compute()`` (then kept). ``hold``: nothing is computed, the figure kept for this slot
        is returned whatever the labels, else None (absent) — what an uninterrupted detector's
        store holds when a restored one writes its figures at an export that was not due."""
        kept = self._kept.get(key)
        if hold:
            return kept[2] if kept is not None and kept[0] == slot_end else None
        if kept is not None and kept[0] == slot_end and abs(labels - kept[1]) <= self.growth * kept[1]:
            return kept[2]
        value = compute()
        self._kept[key] = (slot_end, labels, value)
        return value

    def state_dict(self) -> list[list[Any]]:
        """The kept figures with what decides when each is computed again: ``[key, slot end,
        labels, value]`` (keys None or a segment's name, values floats: JSON-safe).

        Why checkpointed: a restored detector that computed them again at once exported other
        draws than an uninterrupted one, up to a slot early (see :func:`resampling_state`)."""
        return [[key, float(slot_end), float(labels), float(value)] for key, (slot_end, labels, value) in self._kept.items()]

    def load_state_dict(self, saved: Sequence[Sequence[Any]], where: str) -> None:
        """Restore :meth:`state_dict`; ``where`` names the field in errors."""
        fix = "Fix: drop the field from the state (the figures are then computed afresh)"
        if not isinstance(saved, (list, tuple)):  # a mapping or a string iterated as entries read as garbage
            raise ValueError(f"{where}: must be a list of kept figures, got {saved!r}. {fix}")
        kept: dict[Any, tuple[float, float, Any]] = {}
        for entry in saved:
            try:  # an entry that is no list, or holds no numbers, raised TypeError or float()'s bare message
                if not isinstance(entry, (list, tuple)) or len(entry) != 4 or not (entry[0] is None or isinstance(entry[0], str)):
                    raise TypeError
                kept[entry[0]] = (float(entry[1]), float(entry[2]), float(entry[3]))
            except (TypeError, ValueError):
                raise ValueError(f"{where}: a kept figure must be [key, slot end, labels, value] with a key that is null "
                                 f"or a segment's name and numbers, got {entry!r}. {fix}") from None
        self._kept = kept


def resampling_state(version: int, rng: np.random.Generator, dear: DearFigure, refresh: Refresh) -> dict[str, Any]:
    """The state entries of a detector whose figures rest on resampled p-values: its state
    ``version``, its generator's state (numpy's ``bit_generator.state``: names and Python
    integers, JSON-safe) with the kept p-values (``draws``), and when its figures, and so the
    draws, are next recomputed (``refresh``).

    Why: restored from the seed, the generator drew again the numbers it had drawn before the
    restart, and the kept p-values were drawn again at the first export; a restarted agent then
    exported other p-values than an uninterrupted one (a calibrated window near 0.01 could cross
    the alert's level either way). Restored, both export the same ones."""
    return {"version": version, "draws": {"rng": rng.bit_generator.state, "kept": dear.state_dict()},
            "refresh": refresh.state_dict()}


def check_state_version(kind: str, state: dict[str, Any], version: int) -> None:
    """Refuse a state saved by a newer agent (this ``version`` and 1, saved before draws were
    kept, are read): the checkpoint restore then starts the detector empty and says why."""
    saved = state.get("version", 1)
    if isinstance(saved, bool) or not isinstance(saved, (int, np.integer)):  # None, "2", 2.0: no agent writes these
        raise ValueError(f"{kind}: state field 'version' must be an integer, got {saved!r}: the checkpoint was edited "
                         "or damaged. Fix: drop the field (read as version 1) or the detector's state; this detector "
                         "starts empty and refills over one window")
    if saved not in (1, version):
        raise ValueError(f"{kind}: state version {saved!r} is not {version} (or 1): saved by a newer agent; this "
                         "detector starts empty and refills over one window")


def check_generator_state(rng: np.random.Generator, state: Any, what: str, fix: str) -> None:
    """``ValueError`` saying ``what`` is not a state of ``rng``'s bit generator, and the ``fix``;
    checked on a spare generator, so that a refused state leaves ``rng`` as it was."""
    generator = type(rng.bit_generator).__name__
    try:
        if not isinstance(state, dict):
            raise TypeError("not a mapping")
        type(rng.bit_generator)().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ValueError(f"{what} is not a {generator} state ({err}). Fix: {fix}") from None


def load_resampling_state(kind: str, rng: np.random.Generator, dear: DearFigure, refresh: Refresh,
                          state: dict[str, Any]) -> None:
    """Restore :func:`resampling_state`'s entries when the state has them (a version-1 state has
    none: its p-values are drawn afresh from the seed at the next export). A state of another
    generator, or malformed, raises ``ValueError`` naming the field (the checkpoint restore then
    starts the detector empty and says why)."""
    saved = state.get("draws")
    if saved is not None:
        check_generator_state(rng, saved.get("rng") if isinstance(saved, dict) else None,
                              f"{kind}: the saved generator state (draws.rng)",
                              "drop 'draws' from the detector's state (its p-values are then drawn afresh from the seed)")
        dear.load_state_dict(saved.get("kept", []), f"{kind}: draws.kept")
        rng.bit_generator.state = saved["rng"]
    if "refresh" in state:
        refresh.load_state_dict(state["refresh"], f"{kind}: refresh")


class RefreshingDetector(Detector):
    """A detector whose windowed figures are recomputed lazily through a :class:`Refresh`
    (``self._refresh``): at every rule-evaluation tick they are made exact
    (see :meth:`Detector.on_tick`)."""

    _refresh: Refresh

    def on_tick(self, now: float) -> None:
        self._refresh.reset()
