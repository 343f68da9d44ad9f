"""Helpers shared by the confidence-family detectors: per-batch output features computed once,
configuration from the monitor's context with clear errors, and window state round trips."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.detectors.base import Detector
from monitor.stats.uncertainty import normalized_entropy, top_two

if TYPE_CHECKING:
    from monitor.detectors.context import DetectorContext
    from monitor.store import MetricWriter
    from monitor.windows import SlidingWindow

__all__ = ["OutputFeatures", "output_features", "config_params", "windows_state", "load_windows_state", "class_names", "put_figure", "reference_probabilities", "Refresh", "RefreshingDetector"]

_CACHE_KEY = "_monitor_output_features"


@dataclass
class OutputFeatures:
    """Top-label features of a classifier's probability rows (one value per row)."""

    conf: np.ndarray
    second: np.ndarray
    entropy: np.ndarray
    predicted: np.ndarray

    @property
    def margin(self) -> np.ndarray:
        return self.conf - self.second


def output_features(batch: Any) -> OutputFeatures | None:
    """Features of ``batch.scores`` ``(n, k)``, computed once per batch and shared by detectors.

    Several detectors need the max probability and the entropy of the same rows; the result is
    cached on the batch object (which lives for one worker iteration) so that the cost is paid
    once. Returns None when the batch has no class probabilities (regression, label outputs).
    """
    cached = batch.__dict__.get(_CACHE_KEY)
    if cached is not None:
        return cached
    scores = batch.scores
    if scores is None or scores.ndim != 2 or scores.shape[0] == 0:
        return None
    conf, second = top_two(scores)
    predicted = batch.predicted if batch.predicted is not None else scores.argmax(axis=1)
    feats = OutputFeatures(conf, second, normalized_entropy(scores), np.asarray(predicted, dtype=np.int64))
    batch.__dict__[_CACHE_KEY] = feats
    return feats


def config_params(cls: type, context: "DetectorContext | None", params: dict[str, Any], **from_context: str) -> dict[str, Any]:
    """Validate ``params`` against ``cls``'s constructor and fill defaults from ``context``.

    ``from_context`` maps a parameter name to the context attribute it defaults to (e.g.
    ``window_s="window_s"``). Unknown names raise a ``ValueError`` that lists the known ones, so
    that a typo in a config file is reported instead of silently ignored.
    """
    sig = inspect.signature(cls.__init__)
    known = [n for n in sig.parameters if n not in ("self", "reference")]
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


def put_figure(out: "MetricWriter", name: str, value: float | None, labels: tuple[str, ...] | None = None) -> None:
    """Set a figure, or remove its series when it is below its minimum count (absent, not zero)."""
    if value is None or not np.isfinite(value):
        out.remove(name, labels)
    else:
        out.set(name, float(value), labels)


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
    if probs.ndim == 1:
        probs = np.stack([1.0 - probs, probs], axis=1)
    if probs.ndim != 2 or probs.shape[0] < 2:
        raise ValueError(f"detector {kind!r}: reference scores must be class probabilities (rows, classes), got shape {probs.shape}")
    labels = getattr(reference, "labels", None)
    if labels is None:
        if need_labels:
            raise ValueError(
                f"detector {kind!r} needs reference labels (Reference.from_arrays(..., labels=y)) to calibrate its estimates"
            )
        return probs, None
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        try:
            y = y.astype(np.int64)
        except (TypeError, ValueError):
            raise ValueError(f"detector {kind!r}: reference labels must be class indices 0..k-1") from None
    if y.shape[0] != probs.shape[0] or y.min() < 0 or y.max() >= probs.shape[1]:
        raise ValueError(f"detector {kind!r}: reference labels must be {probs.shape[0]} class indices in 0..{probs.shape[1] - 1}")
    return probs, y


class Refresh:
    """Decides when a detector's windowed figures must be recomputed at export.

    The worker exports after drained batches (at most every ``queue.export_interval``);
    recomputing tests (exact KS, chi-squared, NNLS) or even summing the window each time would
    cost more than the rows themselves.
    Figures are recomputed when the window has slid to a new slot (old data left it) or when
    the rows added since the last computation exceed ``growth`` times the rows the window held
    then; otherwise the values already in the store are current to within that fraction.
    ``growth = 0`` recomputes at every export.
    """

    __slots__ = ("growth", "_slot_end", "_n", "_added")

    def __init__(self, growth: float = 0.05) -> None:
        self.growth = float(growth)
        self.reset()

    def add(self, n: int) -> None:
        """Count rows added to the window since the last computation."""
        self._added += n

    def due(self, slot_end: float) -> bool:
        """True when the figures must be recomputed (then call :meth:`done`)."""
        return not (self.growth > 0 and slot_end == self._slot_end and self._added <= self.growth * self._n)

    def done(self, slot_end: float, n_window: float) -> None:
        self._slot_end, self._n, self._added = slot_end, float(n_window), 0

    def reset(self) -> None:
        self._slot_end, self._n, self._added = float("nan"), 0.0, 0


class RefreshingDetector(Detector):
    """A detector whose windowed figures are recomputed lazily through a :class:`Refresh`
    (``self._refresh``): at every rule-evaluation tick they are made exact
    (see :meth:`Detector.on_tick`)."""

    _refresh: Refresh

    def on_tick(self, now: float) -> None:
        self._refresh.reset()
