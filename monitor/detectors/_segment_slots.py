"""Segment values to window slots, learned in the order they first appear, up to a cap.

Every detector that slices a figure by ``segment`` needs the same mapping: the first ``cap``
distinct values get a slot each, later ones share the last slot, ``other``, so that a bug or an
attacker sending unique segment values cannot blow up memory or the scrape. Detectors that see
the same batches learn the same slots (first-seen order is deterministic), and the exported
series carry the segment's name, never its slot, so each detector keeps its own instance.
Rows without a segment (or with an empty one, which Prometheus reads as no label) form the
segment ``unset``, which takes a slot under the cap like any value: first seen once the cap is
full, they go to ``other`` with the rest of the overflow (a slot of its own beyond the cap would
change every detector's window layout and its checkpoints). Values are told apart by the label they are exported under: ``1`` and
``"1"``, or no segment and ``"unset"``, share a slot (a slot each wrote two series with one
label set, of which the store kept one).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np

__all__ = ["OTHER", "UNSET", "SegmentSlots"]

OTHER = "other"
UNSET = "unset"


def _label(v: Any) -> str:
    """The ``segment`` label a value is exported under."""
    if v is None or (isinstance(v, str) and not v) or (isinstance(v, float) and v != v):  # NaN: a missing value
        return UNSET
    return str(v)


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


class SegmentSlots:
    """Slot of each segment value: ``0 .. cap - 1`` for the values learned, ``cap`` for ``other``.

    Parameters
    ----------
    cap
        Distinct segment values given a slot of their own.

    >>> slots = SegmentSlots(2)
    >>> slots.assign(np.array(["eu", "us", "eu", "asia", None], dtype=object)).tolist()
    [0, 1, 0, 2, 2]
    >>> slots.names, slots.overflow
    (('eu', 'us', 'other'), 2)
    >>> SegmentSlots(3).assign(np.array([None, "", "unset", 1, "1"], dtype=object)).tolist()
    [0, 0, 0, 1, 1]
    >>> full = SegmentSlots(1)
    >>> full.assign(np.array(["eu", None, None], dtype=object)).tolist(), full.names  # unset after the cap
    ([0, 1, 1], ('eu', 'other'))
    """

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"segment_cap must be at least 1, got {cap}")
        self.cap = int(cap)
        self._names: list[str] = []
        self._index: dict[Any, int] = {}
        self.overflow = 0
        #: whether a row has carried a segment (detectors write no per-segment series before:
        #: they would repeat the whole model's under ``unset``)
        self.carried = False

    @property
    def size(self) -> int:
        """Slots, ``other`` included."""
        return self.cap + 1

    @property
    def names(self) -> tuple[str, ...]:
        """Learned segment names, then ``other`` (the overflow slot's), unless a learned segment
        is named ``other``: that one then holds the overflow and the slot stays empty."""
        return tuple(self._names) if self.other_learned else tuple(self._names) + (OTHER,)

    @property
    def other_learned(self) -> bool:
        """Whether a segment value is named ``other`` (it takes the rows beyond the cap)."""
        return OTHER in self._index

    @property
    def columns(self) -> list[int]:
        """Slot of each of :attr:`names`: the learned ones, then the overflow slot when it is named."""
        return list(range(len(self._names))) + ([] if self.other_learned else [self.cap])

    @property
    def learned(self) -> int:
        """Segment values learned so far (at most ``cap``)."""
        return len(self._names)

    def assign(self, values: np.ndarray, rows: bool = True) -> np.ndarray:
        """Slot of each value, learning new values up to the cap. ``rows``: the values are
        predicted rows, whose overflow into ``other`` is counted; labels (``False``) belong to
        rows already counted when they were predicted."""
        index = self._index
        items = values.tolist()
        try:  # fast path: every value already known (one C-level lookup for the whole batch)
            found = itemgetter(*items)(index) if items else ()
            return np.array([found] if len(items) == 1 else found, dtype=np.int64)
        except (KeyError, TypeError):  # a new value, or an unhashable one: the per-row path
            pass
        out = np.fromiter((index.get(v, -1) if _hashable(v) else -1 for v in items), dtype=np.int64, count=len(items))
        for i in np.flatnonzero(out < 0).tolist():
            v = items[i] if _hashable(items[i]) else str(items[i])
            label = _label(v)
            slot = index.get(v, index.get(label, -1))
            if slot < 0:
                if len(self._names) < self.cap:
                    slot = index[label] = len(self._names)
                    self._names.append(label)
                else:
                    # a segment the caller named "other" holds the overflow too: two series
                    # under one label would leave one of them unseen
                    slot = index.get(OTHER, self.cap)
                    self.overflow += rows
                    out[i] = slot
                    self.carried = True
                    continue  # not remembered: unique values beyond the cap must not grow the index
            if v == v:  # another value of a known label (None, 1 for "1"): found at once next time (a NaN
                index[v] = slot  # never equals itself: remembering each one would grow the index forever)
            self.carried = self.carried or label != UNSET
            out[i] = slot
        return out

    def take_overflow(self) -> int:
        """Rows folded into ``other`` since the last call (for a counter)."""
        n, self.overflow = self.overflow, 0
        return n

    def state_dict(self) -> dict[str, Any]:
        return {"names": list(self._names), "none_slot": self._index.get(None, -1), "overflow": self.overflow,
                "carried": self.carried}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._names = [str(n) for n in state["names"]]
        self._index = {n: i for i, n in enumerate(self._names)}
        none_slot = int(state.get("none_slot", -1))
        if none_slot >= 0 or UNSET in self._index:
            self._index[None] = self._index[""] = none_slot if none_slot >= 0 else self._index[UNSET]
        self.overflow = int(state.get("overflow", 0))
        # saved without them (earlier today): a learned name other than unset, or a full cap
        self.carried = bool(state.get("carried", any(n != UNSET for n in self._names) or len(self._names) == self.cap))
