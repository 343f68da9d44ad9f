"""Batches held for the detectors that may receive their rows late, handed over together.

At low traffic the worker drains a few hundred events at a time (``queue.linger``), and every
detector pays a few dozen array operations per batch whatever its size: at 256 events/s that
fixed cost is most of what the confidence detectors add per event. Their figures are only
published at an export (a timer, a scrape, a rule tick), so the rows of several drains can reach
them together just before it, as one batch, at a fraction of the cost. Detectors opt in with
:attr:`monitor.detectors.base.Detector.deferrable` (which states what that promise means); the
pipeline (:mod:`monitor.pipeline`) holds their batches here and hands them over at every export,
before checkpoints, and when :attr:`HeldBatches.capacity` rows wait.

Held prediction batches are concatenated in arrival order, and so are the label batches; the
detectors then see all the predictions first and the labels after them, which is the order in
which the pipeline already processes a single larger drain (predictions, then feedback).
Batches whose columns do not stack (a column present in one and absent from the other, another
width of scores after a new class, other feature names) are not held together: the caller hands
over what is held first (:meth:`HeldBatches.hold` returns False).

Examples
--------
>>> import numpy as np
>>> from monitor.batch import Batch
>>> held = HeldBatches(capacity=100)
>>> held.hold(Batch.from_arrays(np.zeros((2, 1)), np.array([[0.9, 0.1], [0.4, 0.6]]), ts=1.0))
True
>>> held.hold(Batch.from_arrays(np.zeros((1, 1)), np.array([[0.2, 0.8]]), ts=2.0))
True
>>> batch, labeled = held.take()
>>> batch.ts.tolist(), batch.predicted.tolist(), labeled, len(held)
([1.0, 1.0, 2.0], [0, 1, 1], None, 0)
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar, Union

from monitor.batch import Batch, LabeledBatch

__all__ = ["HeldBatches", "concat_batches", "signature", "stackable"]

_B = TypeVar("_B", bound=Union["Batch", "LabeledBatch"])


def _column_key(value: Any) -> Any:
    """What must be equal for two batches' values of one field to stack: None, an array's dtype
    and trailing shape, or any other value itself (names, classes)."""
    if value is None:
        return None
    dtype = getattr(value, "dtype", None)
    if dtype is not None and value.ndim >= 1:
        return ("array", dtype, value.shape[1:])
    return ("value", value)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _names(kind: type) -> tuple[str, ...]:
    """Field names of a batch dataclass, read once per type (``fields`` walks the class)."""
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(kind))
    return names


def signature(batch: "Batch | LabeledBatch") -> tuple[Any, ...]:
    """The batch's type and the :func:`_column_key` of each of its fields: batches with equal
    signatures stack."""
    return (type(batch),) + tuple([_column_key(getattr(batch, name)) for name in _names(type(batch))])


def stackable(a: "Batch | LabeledBatch", b: "Batch | LabeledBatch") -> bool:
    """Whether two batches of one type have the same columns, so that their rows concatenate into
    one batch without converting anything."""
    return _same(signature(a), signature(b))


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # values that do not compare: do not stack them
        return False


def concat_batches(batches: list[_B]) -> _B:
    """One batch holding the rows of ``batches`` (all :func:`stackable` with the first) in order."""
    if len(batches) == 1:
        return batches[0]
    import numpy as np

    first = batches[0]
    values: dict[str, Any] = {}
    for name in _names(type(first)):
        v = getattr(first, name)
        key = _column_key(v)
        if key is None or key[0] == "value":
            values[name] = v
        else:
            values[name] = np.concatenate([getattr(b, name) for b in batches], axis=0)
    return type(first)(**values)


class HeldBatches:
    """Prediction batches and label batches waiting for the deferrable detectors.

    Parameters
    ----------
    capacity
        Rows (predicted and labelled) held at most: :meth:`full` says when to hand them over.
        Bounds the memory (the held batches' arrays) and the work of one hand-over.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = int(capacity)
        self._predictions: list[Batch] = []
        self._labels: list[LabeledBatch] = []
        self._signatures: dict[bool, tuple[Any, ...]] = {}  # of the first batch held, per kind
        self._rows = 0

    def __len__(self) -> int:
        """Rows held (predicted and labelled)."""
        return self._rows

    @property
    def full(self) -> bool:
        return self._rows >= self.capacity

    def hold(self, batch: "Batch | LabeledBatch") -> bool:
        """Keep a batch (predictions or labels, told apart by their type); False, keeping nothing,
        when it does not stack with the batches of its kind already held."""
        labels = isinstance(batch, LabeledBatch)
        kept = self._labels if labels else self._predictions
        sig = signature(batch)
        if kept and not _same(self._signatures[labels], sig):
            return False
        if not kept:
            self._signatures[labels] = sig
        kept.append(batch)  # type: ignore[arg-type]
        self._rows += len(batch)
        return True

    def take(self) -> tuple["Batch | None", "LabeledBatch | None"]:
        """The held predictions and labels, each as one batch (None when there are none), and
        forget them."""
        predictions, labels = self._predictions, self._labels
        self._predictions, self._labels, self._rows = [], [], 0  # forgotten first: a failure is not repeated
        self._signatures.clear()
        return (concat_batches(predictions) if predictions else None), (concat_batches(labels) if labels else None)
