"""Sliding event-time windows of sufficient statistics, in bounded memory.

A window of ``window_s`` seconds is cut into ``n_slots`` time slots; each slot holds a fixed-size
array of additive statistics (histogram counts, sums, sums of squares...). Adding a batch is one
``np.add.at`` per distinct slot; reading the window is one sum over slots. Memory is
``n_slots x shape`` whatever the traffic, and the window slides in event time, so that replaying
a recorded log gives the same figures as live traffic did.

Events already outside the window when added (late arrivals) are counted in :attr:`SlidingWindow.expired`, not
added; events from the future simply advance the window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SLOTS", "SlidingWindow", "rows_outside_window"]

#: Slots of a window unless told otherwise: the window slides by a twelfth of its length.
DEFAULT_SLOTS = 12


def _behind(ts: np.ndarray, head_slot: Any, slot_s: float, n_slots: int) -> int:
    """How many of ``ts`` fall in a slot at or before ``head_slot - n_slots``: outside a window
    whose newest slot is ``head_slot`` (the one rule for what a window no longer holds)."""
    return int(np.count_nonzero(np.floor(ts / slot_s) <= head_slot - n_slots))


def rows_outside_window(ts: np.ndarray, now: float, window_s: float, n_slots: int = DEFAULT_SLOTS) -> int:
    """How many event times ``ts`` lie before a window of ``window_s`` (``n_slots`` slots, as
    :class:`SlidingWindow` cuts it) that ends at ``now``: rows no windowed figure will count."""
    if ts.size == 0 or not math.isfinite(now) or window_s <= 0:
        return 0
    slot_s = window_s / n_slots
    return _behind(ts, math.floor(now / slot_s), slot_s, n_slots)


class SlidingWindow:
    """Additive statistics over the last ``window_s`` seconds of event time.

    Parameters
    ----------
    window_s
        Window length in seconds of event time.
    shape
        Shape of the statistics array accumulated per slot (e.g. ``(n_bins,)``).
    n_slots
        Resolution: the window slides by ``window_s / n_slots``. Figures cover between
        ``window_s * (1 - 1/n_slots)`` and ``window_s`` seconds.

    Examples
    --------
    >>> w = SlidingWindow(60.0, shape=(3,), n_slots=6)
    >>> w.add(np.array([0.0, 1.0, 2.0]), np.array([0, 1, 1]))
    >>> w.total().tolist()
    [1.0, 2.0, 0.0]
    >>> w.advance(75.0)          # the slot holding t in [0, 10) has left the window
    >>> w.total().tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self, window_s: float, shape: tuple[int, ...] = (), n_slots: int = DEFAULT_SLOTS) -> None:
        if window_s <= 0 or n_slots < 1:
            raise ValueError("window_s must be > 0 and n_slots >= 1")
        self.window_s = float(window_s)
        self.shape = tuple(shape)
        self.n_slots = int(n_slots)
        self._reset()

    def _reset(self) -> None:
        self._slot_s = self.window_s / self.n_slots
        self._data = np.zeros((self.n_slots,) + self.shape, dtype=np.float64)
        self._slot_ids = np.full(self.n_slots, -(2**62), dtype=np.int64)  # absolute slot number held
        self._head = -(2**62)  # newest absolute slot seen
        self.expired = 0

    @property
    def newest_slot_end(self) -> float:
        return (self._head + 1) * self._slot_s

    def outside(self, ts: np.ndarray, now: np.ndarray | None = None) -> int:
        """How many of the event times ``ts`` fall before the window as it stands, or as it will
        stand once it ends at ``now`` (per row: a label's arrival time, which the window will
        reach): rows that no figure of it will count."""
        if ts.size == 0:
            return 0
        # the usual answer, none, from the oldest row and the latest end alone: a row is outside
        # only if its slot is at or before the end's slot less n_slots (no per-row pass then)
        oldest = float(ts.min()) / self._slot_s
        end = self._head if now is None else float(np.max(now)) / self._slot_s  # NaN or inf: the per-row pass
        if math.isfinite(oldest) and math.isfinite(end) and math.floor(oldest) > max(self._head, math.floor(end)) - self.n_slots:
            return 0
        head = self._head if now is None else np.maximum(self._head, np.floor(now / self._slot_s))
        return _behind(ts, head, self._slot_s, self.n_slots)

    def advance(self, now: float) -> None:
        """Slide the window so that it ends at ``now`` (expired slots are zeroed)."""
        slot = int(np.floor(now / self._slot_s))
        if slot <= self._head:
            return
        self._head = slot
        stale = self._slot_ids <= slot - self.n_slots
        if stale.any():
            self._data[stale] = 0.0
            self._slot_ids[stale] = -(2**62)

    def add(self, ts: np.ndarray, index: Any = None, values: Any = 1.0) -> None:
        """Accumulate ``values`` at ``index`` of the statistics array, per event time.

        Parameters
        ----------
        ts
            Event times ``(n,)``.
        index
            Where to add in the per-slot array: ``None`` for a scalar window, an int array ``(n,)``
            for a 1-D shape (e.g. histogram bins), or a tuple of int arrays for more dimensions.
        values
            Amount added per event (scalar or ``(n,)``), or ``(n,) + shape`` rows added whole when
            ``index`` is None and the shape is not scalar.
        """
        ts = np.asarray(ts, dtype=np.float64)
        if ts.size == 0:
            return
        slots = np.floor(ts / self._slot_s).astype(np.int64)
        if index is None and self.shape != () and np.ndim(values) > len(self.shape) and slots.min() == slots.max():
            # whole rows of one slot (labels delivered a few seconds at a time): one vector sum
            self.add_summed(float(ts.max()), np.asarray(values, dtype=np.float64).sum(axis=0), int(ts.size))
            return
        self.advance(float(ts.max()))
        fresh = slots > self._head - self.n_slots
        if not fresh.all():
            self.expired += int((~fresh).sum())
            slots = slots[fresh]
            if index is not None:
                index = tuple(i[fresh] for i in index) if isinstance(index, tuple) else np.asarray(index)[fresh]
            if np.ndim(values) > 0:
                values = np.asarray(values)[fresh]
            if slots.size == 0:
                return
        pos = slots % self.n_slots
        for p in np.unique(pos):
            # a ring position may still hold an older slot that is inside the window only if
            # n_slots covers it; a new slot id means the position must be recycled first
            sid = slots[pos == p].max()
            if self._slot_ids[p] != sid:
                self._data[p] = 0.0
                self._slot_ids[p] = sid
        if index is None and self.shape == ():
            np.add.at(self._data, pos, values)
        elif index is None:
            np.add.at(self._data, pos, np.asarray(values, dtype=np.float64))
        elif isinstance(index, tuple):
            np.add.at(self._data, (pos,) + tuple(index), values)
        else:
            np.add.at(self._data, (pos, np.asarray(index)), values)

    def add_summed(self, t: float, values: np.ndarray, n_events: int = 1) -> None:
        """Add statistics already summed over events that all fall in the slot of time ``t``.

        The fast path for a batch whose events share one slot (the usual case at high
        traffic): one vector addition instead of the per-event scatter of :meth:`add`.
        ``n_events`` is what :attr:`expired` counts if that slot has already left the window.
        """
        slot = int(np.floor(t / self._slot_s))
        if slot > self._head:
            self.advance(t)
        elif slot <= self._head - self.n_slots:
            self.expired += int(n_events)
            return
        p = slot % self.n_slots
        if self._slot_ids[p] != slot:
            self._data[p] = 0.0
            self._slot_ids[p] = slot
        self._data[p] += values

    def total(self) -> np.ndarray:
        """Sum of the statistics over the slots inside the window (all of them, the usual case
        once the window has filled, summed without copying them out by a mask first; the slots
        are added in ring order either way, so the figures are the same to the last bit)."""
        live = self._slot_ids > self._head - self.n_slots
        return self._data.sum(axis=0) if live.all() else self._data[live].sum(axis=0)

    def state_dict(self) -> dict[str, Any]:
        return {"data": self._data.copy(), "slot_ids": self._slot_ids.copy(), "head": int(self._head), "expired": self.expired,
                "slot_s": self._slot_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a saved window. Slots are numbered from the epoch in units of the slot length,
        so a state saved with another length (``window`` changed across a restart) is refused: read
        as this window's, its newest slot lay hours ahead, every new row fell "before" the window
        and the figures froze for good. (States saved before the length was recorded are taken
        as they are.)"""
        data = np.asarray(state["data"], dtype=np.float64)
        if data.shape != self._data.shape:
            raise ValueError(f"window state has shape {data.shape}, expected {self._data.shape}")
        saved_slot = state.get("slot_s")
        if saved_slot is not None and not np.isclose(float(saved_slot), self._slot_s, rtol=1e-9, atol=0.0):
            raise ValueError(f"window state has slots of {float(saved_slot):g} s, this window's are {self._slot_s:g} s "
                             "(its length changed)")
        self._data = data.copy()
        self._slot_ids = np.asarray(state["slot_ids"], dtype=np.int64).copy()
        self._head = int(state["head"])
        self.expired = int(state.get("expired", 0))
