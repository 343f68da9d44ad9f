"""Value types of the PromQL evaluator: label sets, samples, series and the four result kinds.

The rule engine and the alert state machine exchange these objects with the evaluator, so they
are small, immutable where identity matters (``Labels`` is hashable and used as a dictionary key
for series identity and for vector matching) and free of numpy at import time except for the
arrays carried by :class:`Series`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Union

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

__all__ = [
    "METRIC_NAME",
    "Labels",
    "Sample",
    "Series",
    "Vector",
    "Matrix",
    "Scalar",
    "String",
    "Value",
]

METRIC_NAME = "__name__"


class Labels:
    """An immutable, hashable, sorted set of ``(name, value)`` label pairs.

    Prometheus treats a label with an empty value exactly like an absent label, so empty values
    are dropped on construction: ``Labels({"a": ""}) == Labels()``. This keeps series identity
    and vector matching consistent with Prometheus without special cases downstream.

    Parameters
    ----------
    items : mapping or iterable of (name, value) pairs, optional
        The labels. Duplicate names keep the last value.
    """

    __slots__ = ("_items", "_hash", "_dict", "_noname")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        if items is None:
            pairs: dict[str, str] = {}
        elif isinstance(items, Labels):
            pairs = dict(items._items)
        elif isinstance(items, Mapping):
            pairs = dict(items)
        else:
            pairs = dict(items)
        self._items: tuple[tuple[str, str], ...] = tuple(
            sorted((str(k), str(v)) for k, v in pairs.items() if v != "")
        )
        self._hash = hash(self._items)
        self._dict: dict[str, str] | None = None
        self._noname: Labels | None = None

    @classmethod
    def _from_sorted(cls, items: tuple[tuple[str, str], ...]) -> Labels:
        """Build from pairs already sorted by name with no empty values (internal fast path)."""
        obj = cls.__new__(cls)
        obj._items = items
        obj._hash = hash(items)
        obj._dict = None
        obj._noname = None
        return obj

    # --- mapping-like access -------------------------------------------------------------
    def to_dict(self) -> dict[str, str]:
        """Return the labels as a new ``dict``."""
        return dict(self._items)

    def _as_dict(self) -> dict[str, str]:
        d = self._dict
        if d is None:
            d = self._dict = dict(self._items)
        return d

    def get(self, name: str, default: str = "") -> str:
        """Return the value of label ``name`` or ``default`` (Prometheus: absent == empty)."""
        return self._as_dict().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._as_dict()

    def __getitem__(self, name: str) -> str:
        return self._as_dict()[name]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> tuple[tuple[str, str], ...]:
        """Return the sorted ``(name, value)`` pairs."""
        return self._items

    def names(self) -> tuple[str, ...]:
        """Return the label names in sorted order."""
        return tuple(k for k, _ in self._items)

    @property
    def name(self) -> str:
        """The metric name (value of ``__name__``), or ``""`` when the series has none."""
        for k, v in self._items:
            if k == METRIC_NAME:
                return v
        return ""

    # --- derivation --------------------------------------------------------------------------
    def without(self, *names: str) -> Labels:
        """Return a copy without the given label names."""
        drop = set(names)
        return Labels._from_sorted(tuple(kv for kv in self._items if kv[0] not in drop))

    def only(self, *names: str) -> Labels:
        """Return a copy keeping only the given label names."""
        keep = set(names)
        return Labels._from_sorted(tuple(kv for kv in self._items if kv[0] in keep))

    def without_name(self) -> Labels:
        """Return a copy without ``__name__`` (what functions and arithmetic do).

        The result is cached on the instance: the store hands out the same ``Labels`` objects at
        every evaluation, so rules evaluated each interval get identical objects back, which also
        makes the downstream per-label-set caches hit by identity.
        """
        res = self._noname
        if res is None:
            if any(k == METRIC_NAME for k, _ in self._items):
                res = Labels._from_sorted(tuple(kv for kv in self._items if kv[0] != METRIC_NAME))
                res._noname = _NO_NAME  # has no name: returns itself, without a reference cycle
                self._noname = res
            else:
                self._noname = _NO_NAME
                return self
        elif res is _NO_NAME:
            return self
        return res

    def with_(self, name: str, value: str) -> Labels:
        """Return a copy with label ``name`` set to ``value`` (an empty value removes it)."""
        d = self.to_dict()
        if value == "":
            d.pop(name, None)
        else:
            d[name] = value
        return Labels(d)

    # --- identity ------------------------------------------------------------------------------
    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._hash == other._hash and self._items == other._items
        return NotImplemented

    def __lt__(self, other: Labels) -> bool:
        return self._items < other._items

    def __repr__(self) -> str:
        return "Labels(" + self.__str__() + ")"

    def __str__(self) -> str:
        name = self.name
        inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in self._items if k != METRIC_NAME)
        return f"{name}{{{inner}}}"


_NO_NAME: Any = object()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector; its timestamp is the evaluation time."""

    labels: Labels
    value: float


@dataclass
class Series:
    """One element of a range vector (or of a range-query result): aligned timestamps and values.

    ``ts_ms`` holds int64 milliseconds since the epoch, ``values`` float64 values.
    """

    labels: Labels
    ts_ms: "np.ndarray"
    values: "np.ndarray"

    def points(self) -> list[tuple[float, float]]:
        """Return ``(seconds, value)`` pairs, convenient for tests and JSON output."""
        return [(int(t) / 1000.0, float(v)) for t, v in zip(self.ts_ms, self.values)]


@dataclass
class Scalar:
    """A scalar result (a float without labels)."""

    value: float


@dataclass
class String:
    """A string result (only a string literal at top level evaluates to this)."""

    value: str


Vector = list  # list[Sample]
Matrix = list  # list[Series]
Value = Union["list[Sample]", "list[Series]", Scalar, String]

