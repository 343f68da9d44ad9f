"""Turning what ``predict`` returned into probabilities, predicted classes or regression values."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.events import MAX_REGRESSION_LABEL, is_missing, value_text
from monitor.input_forms import short_repr
from monitor.schema import OutputSpec

__all__ = ["DecodedOutputs", "decode_outputs", "ClassIndex", "are_probabilities", "class_key"]

#: Class names learned from a model's answers or labels are cut to this many characters (a
#: label column of free text must not fill memory with megabyte-long class names).
MAX_CLASS_CHARS = 200
#: Classes a labels-only model learns from labels it never answered, at most (see ClassIndex).
LABEL_CLASSES_MAX = 64
#: The largest magnitude of a regression output (value, interval bound or quantile): the bound a
#: label has (:data:`monitor.events.MAX_REGRESSION_LABEL`), for the same reason. An output of 1e300
#: made its squared error overflow (the window's RMSE absent until it left the window), one of -1e300
#: beside it cancelled it in the bias and the prediction mean (a bias of -0.4 for errors of 1e300),
#: and past 1e304 the sums were infinite or NaN; such a row is refused (``output_too_large``).
MAX_REGRESSION_OUTPUT = MAX_REGRESSION_LABEL
#: A class name that is the ``repr`` of bytes (``b'cat'``), as releases before bytes were decoded named them.
_BYTES_REPR = re.compile(r"""b(['"]).*\1""", re.DOTALL)


def bytes_repr_text(name: str) -> str | None:
    """The text a class name learned as the ``repr`` of bytes (``b'cat'``) stands for (``cat``), as
    :meth:`ClassIndex.lookup` reads those bytes now; None for any other name. Why: checkpoints of
    releases that read ``str(b"cat")`` keep such names, which no answer or label matches now."""
    if not _BYTES_REPR.fullmatch(name):
        return None
    try:
        raw = ast.literal_eval(name)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return bytes(raw).decode("utf-8", "replace") if isinstance(raw, bytes) else None


#: Probability rows may deviate from summing to one by this much (float32 models) before they
#: are refused; within it they are renormalised.
SUM_TOLERANCE = 1e-3
#: A probability may lie this far outside [0, 1] before its row is refused (within it, it is
#: clipped): in float32 arithmetic a class computed as 1 minus the sum of the others lands a few
#: units of float32's last place (1.2e-7 at 1) below 0 (-2.4e-7 seen at 10 to 1,000 classes; 4%
#: of a confident 10-class model's rows below 0); with 1e-9 such rows were refused as
#: probability_out_of_range.
RANGE_TOLERANCE = 1e-6


def class_key(v: Any) -> tuple[str, type, Any]:
    """How :meth:`ClassIndex.lookup` reads one label: the text it names the class by, the value's
    type and the value as read (numpy's scalars by their value, bytes decoded as UTF-8, a whole
    float as its integer, a str subclass such as a str-mixin Enum's member by its own text). Told
    by type, a subclass of float or str read by float's and str's own methods: isinstance runs a
    caller's object's ``__class__``, and a subclass's methods are its own (either may raise). A
    forwarding worker reads a label so too (:mod:`monitor.forwarding`). Raises what the value's
    ``str()`` raises."""
    kind = type(v)
    if issubclass(kind, np.generic):  # numpy scalars inside an object array
        v = v.item()
        kind = type(v)
    if issubclass(kind, (bytes, bytearray)):
        v = bytes(v).decode("utf-8", "replace")
        kind = str
    if issubclass(kind, float) and float.is_integer(v):
        v = int(float.__float__(v))
        kind = int
    return (v if kind is str else value_text(v)), kind, v

class ClassIndex:
    """Maps label values to column indices, learning new labels up to a cap (overflow -> -1)."""

    def __init__(self, classes: tuple[str, ...] = (), cap: int = 1000) -> None:
        self.names: list[str] = [str(c) for c in classes]
        self._index = {n: i for i, n in enumerate(self.names)}
        self.cap = max(cap, len(self.names))  # configured classes are never over the cap
        # a labels-only model also learns the classes of labels it never answered (a model that
        # collapsed onto one class), but only LABEL_CLASSES_MAX of them: free text in a label column must not
        # take the places of the model's own answers, which are refused once the cap is full
        self.learned_from_labels = 0
        # names 0..positional-1 are columns (configured, or named after their index): an integer
        # label below it may be a column index. Names learned from predicted labels are not: the
        # label 0 of a labels-only model is the class "0", not the first label it happened to return
        self.positional = len(self.names)

    def ensure(self, k: int) -> bool:
        """Make sure columns 0..k-1 have names (learned as their index when not configured);
        False when that would pass the cap (nothing is learned then: the rows are refused)."""
        if k > self.cap:
            return False
        while len(self.names) < k:
            if self.add(str(len(self.names))) < 0:  # names learned from labels filled the cap
                return False
        self.positional = max(self.positional, k)
        return True

    def add(self, name: str, from_labels: bool = False) -> int:
        idx = self._index.get(name)
        if idx is None:
            if len(self.names) >= self.cap or (from_labels and self.learned_from_labels >= LABEL_CLASSES_MAX):
                return -1
            self.learned_from_labels += from_labels
            idx = self._index[name] = len(self.names)
            self.names.append(name)
        return idx

    def restore(self, names: Iterable[str]) -> list[tuple[str, str]]:
        """Add a checkpoint's class names in their columns; returns the ``(old, new)`` names renamed.

        A name that is the ``repr`` of bytes (``b'cat'``, learned before bytes were decoded) takes
        the text it stands for (``cat``) in its own column, so that the model's answers and labels,
        read as ``cat`` now, keep the column the predictions waiting for their labels and the
        detectors' windows hold; unless that text is a class of its own already (labels sent as
        text learned it), which keeps its column: the old name then stays as it was."""
        saved = [str(name) for name in names]
        taken = set(saved) | set(self.names)
        renamed = []
        for name in saved:
            text = bytes_repr_text(name)
            if text is not None and text not in taken:
                taken.add(text)
                renamed.append((name, text))
                name = text
            self.add(name)
        return renamed

    def lookup(self, values: np.ndarray, learn: bool = True, from_labels: bool = False) -> np.ndarray:
        """Column index of each label: by class name first; an integer that names no class is
        taken as the column index itself (labels sent as 0..k-1 for named classes), but only
        among columns (configured classes or score columns), never among names learned from a
        labels-only model's answers. An integral float (1.0, as pandas and JSON often write a
        class index) is that integer, and so is a boolean (True is 1) unless the classes are
        named "True" and "False". A name longer than :data:`MAX_CLASS_CHARS` that is not a
        configured class is cut to that length before it is looked up or learned; a value whose
        text cannot be taken (``str()`` refuses it) is no class (-1). Bytes (a TensorFlow model's
        string outputs, a label column read as bytes) are decoded as UTF-8, as request ids and
        segments are: ``b"cat"`` is the class ``cat``, not ``b'cat'``."""
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values.tolist()):
            try:
                name, kind, v = class_key(v)
            except Exception:  # noqa: BLE001 - an int of over 4,300 digits, an object whose __str__ fails
                out[i] = -1
                continue
            idx = self._index.get(name)
            if idx is None and len(name) > MAX_CLASS_CHARS:
                name = name[:MAX_CLASS_CHARS]
                idx = self._index.get(name)
            if idx is None and kind is bool:
                v = int(v)
                name = str(v)
                idx = self._index.get(name)
            if idx is None and issubclass(kind, (int, np.integer)) and kind is not bool and 0 <= v < self.positional:
                idx = int(v)
            if idx is None:
                idx = self.add(name, from_labels) if learn else -1
            out[i] = idx
        return out


#: Values that are no label of one row (a label per token, an object of label and score).
_NOT_A_LABEL = (list, tuple, dict, set, np.ndarray)


def are_probabilities(x: np.ndarray) -> bool:
    """Whether scores read as probabilities: every finite value in [0, 1] and, with two columns or
    more, every finite row summing to one. Why: raw scores and probabilities are told apart by
    this, for a reference's scores (kept as given or decoded as logits) and for live outputs of a
    model configured with ``output.kind: logits`` that returns probabilities (softmaxed again,
    every confidence flattened towards 1/k)."""
    finite = x[np.isfinite(x)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        return False
    if x.ndim == 1 or x.shape[1] == 1:
        return True
    sums = x.sum(axis=1)
    return bool(np.all(np.abs(sums[np.isfinite(sums)] - 1.0) <= SUM_TOLERANCE))


@dataclass
class DecodedOutputs:
    """Per-row decoded outputs plus a mask of rows that were unreadable and why."""

    valid: np.ndarray  # bool (n,)
    reasons: dict[str, int]
    scores: np.ndarray | None = None
    logits: np.ndarray | None = None
    members: np.ndarray | None = None
    predicted: np.ndarray | None = None
    intervals: np.ndarray | None = None
    #: What was wrong, by reason, for the log line of the first refusal (e.g. the shape received).
    details: dict[str, str] = field(default_factory=dict)


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _reject(valid: np.ndarray, reasons: dict[str, int], bad: np.ndarray, reason: str) -> None:
    newly = bad & valid
    n = int(newly.sum())
    if n:
        reasons[reason] = reasons.get(reason, 0) + n
        valid &= ~bad


def decode_outputs(raw: np.ndarray, spec: OutputSpec, classes: ClassIndex) -> DecodedOutputs:
    """Decode stacked outputs of ``n`` rows.

    ``raw`` is ``(n,)`` or ``(n, k)`` (or ``(n, s, k)`` with ``spec.samples_axis``); for
    ``labels`` it may hold strings. Rows with NaN/inf, negative or unnormalised probabilities are
    marked invalid with a reason instead of poisoning the detectors.

    Floating-point warnings are silenced: every row whose arithmetic overflows to inf or NaN is
    refused by its checks, and a valid one may overflow on the way (a member's logit of -1000 in
    ``exp``, logits of 1e308 in softmax). Why: under a warnings-as-errors filter (``pytest -W
    error``, ``PYTHONWARNINGS=error``) numpy's RuntimeWarning is an exception, and the whole event
    was lost as an internal error instead of its rows read or refused and counted.
    """
    with np.errstate(all="ignore"):
        return _decode(raw, spec, classes)


def _decode(raw: np.ndarray, spec: OutputSpec, classes: ClassIndex) -> DecodedOutputs:
    n = raw.shape[0]
    valid = np.ones(n, dtype=bool)
    reasons: dict[str, int] = {}
    details: dict[str, str] = {}
    if 0 in raw.shape[1:]:  # no class, no member, no value: nothing to read (and means of nothing are NaN)
        valid[:] = False
        return DecodedOutputs(valid, {"output_shape": n}, details={"output_shape": (
            f"outputs of shape {raw.shape[1:]} per row have an empty axis; send one score per class (and with "
            "output.samples_axis: true, one row of scores per member)")})
    if raw.ndim > 2 and not spec.samples_axis:
        # (rows, 1, k), (rows, k, 1), (rows, 1, 1): a framework's extra axes of one (Keras, TF
        # Serving), read without them; a row of several axes (members without samples_axis) is refused below
        kept = tuple(d for d in raw.shape[1:] if d != 1)
        if len(kept) <= 1:
            raw = raw.reshape((n,) + (kept or (1,)))
    if spec.kind == "labels":
        if raw.ndim > 1 and int(np.prod(raw.shape[1:])) != 1:  # scores, or (label, score) pairs: not one label
            valid[:] = False
            return DecodedOutputs(valid, {"output_shape": n}, details={"output_shape": (
                f"outputs of shape {raw.shape[1:]} per row; output.kind: labels reads one label per row (a model "
                "returning scores needs output.kind: probabilities or logits)")})
        flat = raw.reshape(n) if raw.ndim > 1 else raw
        rows = flat.tolist()
        if flat.dtype.kind in "OfcmM" and not set(map(type, rows)) <= {str}:  # text answers can be none
            missing = np.fromiter((is_missing(v) for v in rows), dtype=bool, count=n)
            _reject(valid, reasons, missing, "nan_output")  # no answer: not a class named "None" or "nan"
            # np.ma.masked is a 0-d array: missing above, not a row of several values
            # by type: isinstance runs a caller's object's __class__, which may raise (the call was lost)
            nested = np.fromiter((issubclass(type(v), _NOT_A_LABEL) for v in rows), dtype=bool, count=n) & ~missing
            if nested.any():
                example = rows[int(np.flatnonzero(nested)[0])]
                pick = ("pick the label of each row with watch(..., outputs=lambda out: [o['label'] for o in out])"
                        if issubclass(type(example), dict) else
                        "several values per row (a label per token) are not monitored as outputs: set output.kind: "
                        "none to watch the inputs alone, or, to also watch a figure of each answer, output.kind: "
                        "regression with watch(..., outputs=lambda out: [len(o) for o in out])")
                details["output_shape"] = (
                    f"a row's label is a {type(example).__name__} ({short_repr(example)}), not one class name (its text "
                    f"would be learned as a class): {pick}")
                _reject(valid, reasons, nested, "output_shape")
        predicted = np.full(n, -1, dtype=np.int64)
        predicted[valid] = classes.lookup(flat[valid])
        _reject(valid, reasons, predicted < 0, "too_many_classes")
        return DecodedOutputs(valid, reasons, predicted=predicted, details=details)
    try:
        x = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        valid[:] = False
        return DecodedOutputs(valid, {"non_numeric_output": n})
    if spec.kind == "multilabel":
        return _decode_multilabel(x, valid, reasons, classes)
    if spec.kind == "regression":
        if spec.quantiles and x.ndim == 2 and x.shape[1] == len(spec.quantiles):
            # Quantile regression fits each level apart, so predicted quantiles may cross; sorting
            # them per row (monotone rearrangement, Chernozhukov, Fernandez-Val & Galichon 2010) is
            # never farther from the true quantiles, and keeps widths and coverages meaningful.
            intervals = np.sort(x, axis=1)  # NaN sorts last; such rows are refused below
            values = spec.median(intervals)
        elif x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1):
            values, intervals = x.reshape(n), None
        elif x.ndim == 2 and x.shape[1] == 3 and not spec.quantiles:
            values, intervals = x[:, 0].copy(), x[:, 1:3].copy()
        else:
            valid[:] = False
            q = f"; output.quantiles lists {len(spec.quantiles)}" if spec.quantiles else ""
            return DecodedOutputs(valid, {"output_shape": n}, details={"output_shape": (
                f"regression outputs of shape {x.shape[1:]} per row; read are one value, (value, lower, upper) without "
                f"output.quantiles, or one column per quantile{q}")})
        _reject(valid, reasons, ~np.isfinite(values), "nan_output")
        if intervals is not None:
            _reject(valid, reasons, ~np.isfinite(intervals).all(axis=1), "nan_output")
        huge = np.abs(values) > MAX_REGRESSION_OUTPUT
        if intervals is not None:
            huge |= (np.abs(intervals) > MAX_REGRESSION_OUTPUT).any(axis=1)
        if (huge & valid).any():
            first = int(np.flatnonzero(huge & valid)[0])
            details["output_too_large"] = (
                f"regression outputs beyond {MAX_REGRESSION_OUTPUT:.0e} in size (e.g. {short_repr(x[first].tolist())}), "
                "whose squared errors would overflow; such a value is no prediction (a numeric blow-up, or a "
                "placeholder for none)")
            _reject(valid, reasons, huge, "output_too_large")
        if intervals is not None and not spec.quantiles:  # bounds may not cross; quantile columns were rearranged above
            _reject(valid, reasons, intervals[:, 0] > intervals[:, 1], "reversed_interval")
        return DecodedOutputs(valid, reasons, scores=values, intervals=intervals, details=details)

    members = None
    if spec.samples_axis:
        if x.ndim != 3:
            valid[:] = False
            return DecodedOutputs(valid, {"output_shape": n}, details={"output_shape": (
                f"outputs of shape {x.shape[1:]} per row; output.samples_axis: true reads (samples, classes) per row")})
        if spec.kind == "logits":
            members = _softmax(x) if x.shape[2] > 1 else None
        else:
            members = x
        if members is None:  # one-column logits per member
            p = 1.0 / (1.0 + np.exp(-x[..., 0]))
            members = np.stack([1.0 - p, p], axis=-1)
        elif members.shape[2] == 1:
            members = np.concatenate([1.0 - members, members], axis=2)
        x_scores = members.mean(axis=1)
        bad = ~np.isfinite(members).all(axis=(1, 2))
        if spec.kind == "logits":  # a member's +inf (or NaN) logit is no score, as in a row of one member
            bad |= (np.isnan(x) | np.isposinf(x)).any(axis=(1, 2))
        _reject(valid, reasons, bad, "nan_output")
        if spec.kind == "probabilities":  # each member, not only their mean: [1.5, -0.5] and [-0.5, 1.5] average to a fine row
            _reject(valid, reasons, ((members < -RANGE_TOLERANCE) | (members > 1 + RANGE_TOLERANCE)).any(axis=(1, 2)), "probability_out_of_range")
            _reject(valid, reasons, (np.abs(members.sum(axis=2) - 1.0) > SUM_TOLERANCE).any(axis=1), "probabilities_not_normalised")
        logits = None
        if spec.kind == "logits":  # the members' mean logits, for the energy score
            # a class's mean over the members that give it a logit: a masked class (-inf in every
            # member) stays -inf, one masked by some members only is not. Averaged with the -inf,
            # members masking different classes made every mean -inf and the row's energy NaN
            # (its segment's mean energy absent for a window, the histogram's row at +Inf). One
            # column is no class to mask (-inf is P(positive) = 0): its members' plain mean
            masked = np.isneginf(x) if x.shape[2] > 1 else np.zeros(x.shape, dtype=bool)
            given = x.shape[1] - masked.sum(axis=1)
            mean = (np.where(masked, 0.0, x) / np.maximum(given, 1)[:, None, :]).sum(axis=1)
            mean[given == 0] = -np.inf
            mean[np.isnan(mean) | np.isposinf(mean)] = 0.0  # rows refused above (NaN, +inf members)
            logits = mean if mean.shape[1] > 1 else np.concatenate([np.zeros_like(mean), mean], axis=1)
    else:
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            valid[:] = False
            return DecodedOutputs(valid, {"output_shape": n}, details={"output_shape": (
                f"outputs of shape {x.shape[1:]} per row, where one score per class is read; for ensembles or MC-dropout "
                "samples set output.samples_axis: true")})
        if spec.kind == "logits":
            # -inf is a masked class (probability 0), as in an ensemble's members; NaN, +inf and a
            # row with every class masked are not scores
            masked = np.isneginf(x)
            broken = np.isnan(x) | np.isposinf(x)
            if x.shape[1] > 1:  # one column of -inf is P(positive) = 0: its other class is the zero logit
                broken |= masked.all(axis=1, keepdims=True)
            _reject(valid, reasons, broken.any(axis=1), "nan_output")
            x = np.where(broken, 0.0, x)
        else:
            bad = ~np.isfinite(x).all(axis=1)
            _reject(valid, reasons, bad, "nan_output")
            x = np.where(np.isfinite(x), x, 0.0)
        if spec.kind == "logits":
            logits = x if x.shape[1] > 1 else np.concatenate([np.zeros_like(x), x], axis=1)
            x_scores = _softmax(logits)
        else:
            logits = None
            x_scores = np.concatenate([1.0 - x, x], axis=1) if x.shape[1] == 1 else x
    if spec.kind == "probabilities":
        _reject(valid, reasons, (x_scores < -RANGE_TOLERANCE).any(axis=1) | (x_scores > 1 + RANGE_TOLERANCE).any(axis=1), "probability_out_of_range")
        sums = x_scores.sum(axis=1)
        unnormalised = np.abs(sums - 1.0) > SUM_TOLERANCE
        if (unnormalised & valid).any() and x_scores.shape[1] >= 2:
            details["probabilities_not_normalised"] = (
                f"rows of {x_scores.shape[1]} values in [0, 1] that do not sum to 1 (e.g. sum {float(sums[unnormalised & valid][0]):.3g}): "
                "a multi-label model (one independent probability per label, a sigmoid each) needs output.kind: multilabel")
        _reject(valid, reasons, unnormalised, "probabilities_not_normalised")
        safe = np.where(sums > 0, sums, 1.0)
        x_scores = np.clip(x_scores, 0.0, 1.0) / safe[:, None]
    if not classes.ensure(x_scores.shape[1]):
        valid[:] = False
        return DecodedOutputs(valid, {"too_many_classes": n}, details={"too_many_classes": (
            f"outputs of {x_scores.shape[1]} columns, and without output.classes at most {classes.cap} classes are "
            f"learned (each class is a series of the per-class metrics); list the model's {x_scores.shape[1]} classes "
            "under output.classes")})
    predicted = x_scores.argmax(axis=1)
    return DecodedOutputs(valid, reasons, scores=x_scores, logits=logits, members=members, predicted=predicted,
                          details=details)


def _decode_multilabel(x: np.ndarray, valid: np.ndarray, reasons: dict[str, int], classes: ClassIndex) -> DecodedOutputs:
    """Rows of ``k`` independent label probabilities, kept as they are (no softmax, no
    renormalising: that would make another model). Each value must be finite and in [0, 1];
    there is no predicted class (a row may hold any number of labels)."""
    n = x.shape[0]
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        valid[:] = False
        return DecodedOutputs(valid, {"output_shape": n}, details={"output_shape": (
            f"outputs of shape {x.shape[1:]} per row; output.kind: multilabel reads one probability per label per row")})
    _reject(valid, reasons, ~np.isfinite(x).all(axis=1), "nan_output")
    x = np.where(np.isfinite(x), x, 0.0)
    _reject(valid, reasons, ((x < -RANGE_TOLERANCE) | (x > 1 + RANGE_TOLERANCE)).any(axis=1), "probability_out_of_range")
    if not classes.ensure(x.shape[1]):
        valid[:] = False
        return DecodedOutputs(valid, {"too_many_classes": n}, details={"too_many_classes": (
            f"outputs of {x.shape[1]} columns, and without output.classes at most {classes.cap} labels are learned; "
            f"list the model's {x.shape[1]} labels under output.classes")})
    return DecodedOutputs(valid, reasons, scores=np.clip(x, 0.0, 1.0))
