"""Queries waiting for their client's similarity step, in one buffer for all clients.

The similarity step of a client is one matrix product of its new queries against its stored
ones; doing it per query would cost a dozen numpy calls per query. Queries therefore wait here
until their client has ``flush_rows`` of them or the oldest has waited ``max_delay_s`` of event
time. Appending a batch is a handful of vectorised copies whatever the number of clients in it
(no per-client Python work on the hot path); taking the due clients out is one stable sort of
the waiting rows.

Bounded: the detector takes clients out as soon as they reach ``flush_rows`` and feeds at most
``max_clients`` rows at a time, so at most ``max_clients x flush_rows`` rows wait (the buffer
doubles up to that and never shrinks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Rows", "PendingQueue"]


@dataclass
class Rows:
    """One client's waiting queries, in arrival order."""

    ts: np.ndarray
    sketch: np.ndarray
    norm: np.ndarray
    exact: np.ndarray
    label: np.ndarray
    flags: np.ndarray
    fps: np.ndarray
    #: the population period each query arrived in (see ``ProbingDetector``'s population step)
    period: np.ndarray
    #: what the current population set when each query arrived (see :mod:`.current`): the null
    #: rate of the OOD test (NaN: the period's), then the regimes begun (PRADA's, :mod:`.regimes`)
    live: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def part(self, sl: slice) -> "Rows":
        return Rows(self.ts[sl], self.sketch[sl], self.norm[sl], self.exact[sl], self.label[sl], self.flags[sl], self.fps[sl],
                    self.period[sl], self.live[sl])


_FIELDS = ("slot", "ts", "sketch", "norm", "exact", "label", "flags", "fps", "period", "live")
#: columns of :attr:`Rows.live`: the OOD test's null, the regime
LIVE_COLUMNS = 2


class PendingQueue:
    """Waiting queries of every client.

    Examples
    --------
    >>> q = PendingQueue(max_clients=4, dim=2, n_fps=0)
    >>> z = np.zeros((3, 2), dtype=np.float32)
    >>> q.append(np.array([2, 0, 2]), np.array([1.0, 2.0, 3.0]), z, np.zeros(3, np.float32),
    ...          np.zeros(3, np.uint32), np.zeros(3, np.int16), np.zeros(3, np.uint8), np.zeros((3, 0), np.uint32))
    >>> q.due(flush_rows=2, limit_ts=0.0).tolist(), q.due(flush_rows=9, limit_ts=1.5).tolist()
    ([2], [2])
    >>> [(s, r.ts.tolist()) for s, r in q.take(np.array([2]))], len(q)
    ([(2, [1.0, 3.0])], 1)
    """

    def __init__(self, max_clients: int, dim: int, n_fps: int, start: int = 1024) -> None:
        self.max_clients = int(max_clients)
        self.dim = int(dim)
        self.n_fps = int(n_fps)
        self.n = 0
        self.count = np.zeros(self.max_clients, dtype=np.int64)
        self.first_ts = np.full(self.max_clients, np.inf)
        self._alloc(int(start))

    def _alloc(self, cap: int) -> None:
        self.cap = cap
        self.slot = np.zeros(cap, dtype=np.int64)
        self.ts = np.zeros(cap)
        self.sketch = np.zeros((cap, self.dim), dtype=np.float32)
        self.norm = np.zeros(cap, dtype=np.float32)
        self.exact = np.zeros(cap, dtype=np.uint32)
        self.label = np.zeros(cap, dtype=np.int16)
        self.flags = np.zeros(cap, dtype=np.uint8)
        self.fps = np.zeros((cap, self.n_fps), dtype=np.uint32)
        self.period = np.zeros(cap)
        self.live = np.full((cap, LIVE_COLUMNS), np.nan)

    def __len__(self) -> int:
        return self.n

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, f).nbytes for f in _FIELDS) + self.count.nbytes + self.first_ts.nbytes)

    @property
    def row_bytes(self) -> int:
        return 8 + 8 + 4 * self.dim + 4 + 4 + 2 + 1 + 4 * self.n_fps + 8 + 8 * LIVE_COLUMNS

    def append(self, slots: np.ndarray, ts: np.ndarray, sketch: np.ndarray, norm: np.ndarray, exact: np.ndarray,
               label: np.ndarray, flags: np.ndarray, fps: np.ndarray, period: float | np.ndarray = 0.0,
               live: np.ndarray | None = None) -> None:
        m = slots.shape[0]
        if self.n + m > self.cap:
            cap = self.cap
            while cap < self.n + m:
                cap *= 2
            old = {f: getattr(self, f)[: self.n] for f in _FIELDS}
            self._alloc(cap)
            for f, v in old.items():
                getattr(self, f)[: self.n] = v
        j = slice(self.n, self.n + m)
        self.slot[j], self.ts[j], self.sketch[j], self.norm[j] = slots, ts, sketch, norm
        self.exact[j], self.label[j], self.flags[j] = exact, label, flags
        if self.n_fps:
            self.fps[j] = fps
        self.period[j] = period
        self.live[j] = np.nan if live is None else live
        self.n += m
        np.add.at(self.count, slots, 1)
        np.minimum.at(self.first_ts, slots, ts)

    def due(self, flush_rows: int, limit_ts: float) -> np.ndarray:
        """Clients with ``flush_rows`` waiting queries, or whose oldest waiting query is at or before ``limit_ts``."""
        return np.flatnonzero((self.count >= flush_rows) | (self.first_ts <= limit_ts))

    def waiting(self) -> np.ndarray:
        return np.flatnonzero(self.count > 0)

    def slots_upto(self, period: float) -> np.ndarray:
        """Clients with a waiting query that arrived in ``period`` or before."""
        return np.unique(self.slot[: self.n][self.period[: self.n] <= period])

    def periods_upto(self, period: float) -> list[float]:
        """The periods at or before ``period`` that waiting queries arrived in, in order."""
        p = self.period[: self.n]
        return np.unique(p[p <= period]).tolist()

    def take(self, slots: np.ndarray) -> list[tuple[int, Rows]]:
        """Remove the waiting queries of ``slots``; return them per client (slot order, arrival order)."""
        if self.n == 0 or slots.size == 0:
            return []
        live = self.slot[: self.n]
        sel = np.isin(live, slots)
        idx = np.flatnonzero(sel)
        if idx.size == 0:
            return []
        idx = idx[np.argsort(live[idx], kind="stable")]
        got = {f: getattr(self, f)[idx] for f in _FIELDS}
        keep = np.flatnonzero(~sel)
        for f in _FIELDS:
            arr = getattr(self, f)
            arr[: keep.size] = arr[keep]
        self.n = int(keep.size)
        self.count[slots] = 0
        self.first_ts[slots] = np.inf
        cuts = np.flatnonzero(np.diff(got["slot"])) + 1
        bounds = np.concatenate([[0], cuts, [idx.size]]).tolist()
        all_rows = Rows(got["ts"], got["sketch"], got["norm"], got["exact"], got["label"], got["flags"], got["fps"], got["period"], got["live"])
        return [(int(got["slot"][a]), all_rows.part(slice(a, b))) for a, b in zip(bounds[:-1], bounds[1:])]

    def drop(self, slot: int) -> None:
        """Forget one client's waiting queries (its slot is being reset)."""
        if self.count[slot]:
            self.take(np.array([slot]))

    def state_dict(self) -> dict[str, Any]:
        return {"cap": self.cap, **{f: getattr(self, f)[: self.n].copy() for f in _FIELDS}}

    def load_state_dict(self, state: dict[str, Any], period: float = 0.0) -> None:
        """``period``: the one given to queries of a state saved without periods."""
        n = int(np.asarray(state["slot"]).shape[0])
        self._alloc(int(state.get("cap", self.cap)))
        self.n = 0
        self.count[:] = 0
        self.first_ts[:] = np.inf
        if n:
            self.append(np.asarray(state["slot"], dtype=np.int64), np.asarray(state["ts"], dtype=np.float64),
                        np.asarray(state["sketch"], dtype=np.float32).reshape(n, self.dim),
                        np.asarray(state["norm"], dtype=np.float32), np.asarray(state["exact"], dtype=np.uint32),
                        np.asarray(state["label"], dtype=np.int16), np.asarray(state["flags"], dtype=np.uint8),
                        np.asarray(state["fps"], dtype=np.uint32).reshape(n, self.n_fps),
                        np.asarray(state["period"], dtype=np.float64) if "period" in state else period,
                        _live_columns(np.asarray(state["live"], dtype=np.float64).reshape(n, -1)) if "live" in state else None)


def _live_columns(live: np.ndarray) -> np.ndarray:
    """Saved ``live`` columns as this version holds them: a state saved before regimes has the null
    alone, its queries are of regime 0 (the regime such a state loads with)."""
    if live.shape[1] >= LIVE_COLUMNS:
        return live[:, :LIVE_COLUMNS]
    return np.hstack([live, np.zeros((live.shape[0], LIVE_COLUMNS - live.shape[1]))])
