"""A bounded in-memory time-series store laid out for vectorised PromQL evaluation.

Why a grid: the agent samples all of its metrics at the same instants (one snapshot per
evaluation), so series share timestamps. Samples are therefore kept in two 2-D numpy arrays,
``values[series, column]`` and ``state[series, column]``, with one column per distinct timestamp.
Selecting N series over a time window is then one slice plus one fancy index, and range functions
(``rate``, ``*_over_time``) run as array operations across all selected series at once instead of
a Python loop per series. Irregular timestamps (test loads, raw appends) still work: they simply
add columns, and an absent cell has state 0.

Bounds: ``retention_s`` (applied by :meth:`SeriesStore.trim`, and automatically on each
:meth:`SeriesStore.append_scrape`), ``max_series`` (new series beyond it are refused and counted)
and ``max_cells`` (series capacity x timestamp capacity; the oldest timestamps are dropped, and
counted, rather than growing past it).

Staleness: a Prometheus stale marker is the NaN with bit pattern ``0x7ff0000000000002``. The store
records it as cell state 2 so the engine never has to inspect NaN payloads on the hot path.
"""

from __future__ import annotations

import bisect
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from monitor.promql.matchers import LabelMatcher, MatchOp
from monitor.promql.types import METRIC_NAME, Labels, Series
from monitor.promql.values import has_none

__all__ = [
    "STALE_NAN",
    "STALE_NAN_BITS",
    "SCRAPE_SOURCE",
    "is_stale_nan",
    "StoreStats",
    "invalid_labels_reason",
    "SeriesStore",
]

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

ABSENT, PRESENT, STALE = 0, 1, 2
#: The source of :meth:`SeriesStore.append_scrape` when none is named: the scrape of a target.
SCRAPE_SOURCE = "scrape"


def is_stale_nan(value: float) -> bool:
    """Return whether ``value`` is Prometheus's stale marker (not just any NaN)."""
    return value != value and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _to_ms(t: float) -> int:
    tf = float(t)
    if not math.isfinite(tf):
        raise ValueError(f"t must be a finite time in seconds since the epoch, got {t!r}")
    return int(round(tf * 1000.0))


def invalid_labels_reason(labels: Labels) -> str | None:
    """Why a label set cannot be stored (Prometheus naming rules), or ``None`` if it can."""
    for k, v in labels:
        if not _LABEL_NAME.match(k):
            return f"invalid label name {k!r}: use letters, digits and '_' (not first a digit)"
        if k == METRIC_NAME and not _METRIC_NAME.match(v):
            return f"invalid metric name {v!r}: use letters, digits, '_' and ':'"
    return None


@dataclass
class StoreStats:
    """Counters of what the store holds and what it refused or dropped (for the agent's metrics)."""

    series: int
    timestamps: int
    samples: int
    dropped_series_limit: int
    dropped_invalid: int
    dropped_out_of_retention: int
    dropped_capacity: int
    trimmed_samples: int


class SeriesStore:
    """In-memory time-series store (see module docstring).

    Parameters
    ----------
    retention_s : float
        Samples older than ``now - retention_s`` are dropped by :meth:`trim`. Set it to the longest
        range the rules need plus the lookback delta.
    max_series : int
        Hard cap on distinct series; samples of further new series are refused and counted.
    max_cells : int
        Cap on (series capacity x timestamp capacity) of the sample grid (9 bytes per cell).
    """

    def __init__(self, retention_s: float = 3600.0, max_series: int = 100_000,
                 max_cells: int = 40_000_000) -> None:
        if retention_s <= 0:
            raise ValueError(f"retention_s must be > 0 seconds, got {retention_s!r}")
        if max_series <= 0:
            raise ValueError(f"max_series must be > 0, got {max_series!r}")
        self.retention_ms = _to_ms(retention_s)
        self.max_series = int(max_series)
        self.max_cells = int(max_cells)
        self.dropped_series_limit = 0
        self.dropped_invalid = 0
        self.dropped_out_of_retention = 0
        self.dropped_capacity = 0
        self.trimmed_samples = 0
        self.clear()

    @property
    def retention_s(self) -> float:
        """Seconds of history kept; settable (the agent sizes it to its longest rule's reach, and
        again on a rule reload)."""
        return self.retention_ms / 1000.0

    @retention_s.setter
    def retention_s(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"retention_s must be > 0 seconds, got {seconds!r}")
        self.retention_ms = _to_ms(seconds)

    # ------------------------------------------------------------------ lifecycle
    def clear(self) -> None:
        """Remove every series and sample (counters are kept)."""
        self._labels: list[Labels] = []
        self._order: list[int] = []  # series ids sorted by label set (Prometheus's result order)
        self._rank: np.ndarray | None = None  # rank[sid] = position in _order (lazy)
        self._ids: dict[Labels, int] = {}
        # label name -> label value -> list of series ids (postings index)
        self._postings: dict[str, dict[str, list[int]]] = {}
        s_cap, t_cap = 64, 64
        self._vals = np.zeros((s_cap, t_cap), dtype=np.float64)
        self._state = np.zeros((s_cap, t_cap), dtype=np.uint8)
        self._ts = np.zeros(t_cap, dtype=np.int64)
        self._c0 = 0  # first live column
        self._c1 = 0  # one past the last live column
        self._last_by_source: dict[str, np.ndarray] = {}  # source -> bool mask over series ids
        self.version = getattr(self, "version", 0) + 1  # bumps when the series set changes
        self._select_cache: dict[tuple[LabelMatcher, ...], np.ndarray] = {}
        self._max_ts_ms: int | None = None

    def stats(self) -> StoreStats:
        """Return current sizes and drop counters."""
        live_state = self._state[: len(self._labels), self._c0:self._c1]
        return StoreStats(
            series=len(self._labels),
            timestamps=self._c1 - self._c0,
            samples=int(np.count_nonzero(live_state)),
            dropped_series_limit=self.dropped_series_limit,
            dropped_invalid=self.dropped_invalid,
            dropped_out_of_retention=self.dropped_out_of_retention,
            dropped_capacity=self.dropped_capacity,
            trimmed_samples=self.trimmed_samples,
        )

    @property
    def num_series(self) -> int:
        """Number of distinct series currently held."""
        return len(self._labels)

    # ------------------------------------------------------------------ series ids
    def _sid(self, labels: Labels | Mapping[str, str]) -> int:
        """Return the id of a series, creating it.

        Returns -1 when refused by ``max_series`` and -2 for label sets Prometheus would reject.
        """
        lab = labels if isinstance(labels, Labels) else Labels(labels)
        sid = self._ids.get(lab)
        if sid is not None:
            return sid
        if invalid_labels_reason(lab) is not None:
            return -2
        if len(self._labels) >= self.max_series:
            return -1
        sid = len(self._labels)
        if sid >= self._vals.shape[0]:
            self._grow_series(max(64, 2 * self._vals.shape[0]))
        self._labels.append(lab)
        labs = self._labels
        bisect.insort(self._order, sid, key=lambda i: labs[i]._items)
        self._rank = None
        self._ids[lab] = sid
        for k, v in lab:
            self._postings.setdefault(k, {}).setdefault(v, []).append(sid)
        self.version += 1
        self._select_cache.clear()
        return sid

    def _grow_series(self, s_cap: int) -> None:
        t_cap = self._vals.shape[1]
        vals = np.zeros((s_cap, t_cap), dtype=np.float64)
        state = np.zeros((s_cap, t_cap), dtype=np.uint8)
        n = self._vals.shape[0]
        vals[:n] = self._vals
        state[:n] = self._state
        self._vals, self._state = vals, state
        self._enforce_cells()

    def _enforce_cells(self) -> None:
        """Drop oldest timestamps while the grid is larger than ``max_cells``."""
        s_cap, t_cap = self._vals.shape
        if s_cap * t_cap <= self.max_cells:
            return
        new_t_cap = max(2, self.max_cells // s_cap)
        live = self._c1 - self._c0
        if live > new_t_cap - 1:
            drop = live - (new_t_cap - 1)
            self.dropped_capacity += int(np.count_nonzero(self._state[:, self._c0:self._c0 + drop]))
            self._c0 += drop
        self._compact_columns(new_t_cap)

    def _compact_columns(self, t_cap: int) -> None:
        """Move live columns to the front of (possibly resized) arrays."""
        s_cap = self._vals.shape[0]
        live = self._c1 - self._c0
        vals = np.zeros((s_cap, t_cap), dtype=np.float64)
        state = np.zeros((s_cap, t_cap), dtype=np.uint8)
        ts = np.zeros(t_cap, dtype=np.int64)
        vals[:, :live] = self._vals[:, self._c0:self._c1]
        state[:, :live] = self._state[:, self._c0:self._c1]
        ts[:live] = self._ts[self._c0:self._c1]
        self._vals, self._state, self._ts = vals, state, ts
        self._c0, self._c1 = 0, live

    # ------------------------------------------------------------------ columns
    def _column(self, t_ms: int) -> int:
        """Return the array column holding timestamp ``t_ms``, creating it if needed."""
        c0, c1 = self._c0, self._c1
        if c1 > c0 and t_ms <= self._ts[c1 - 1]:
            live = self._ts[c0:c1]
            i = int(np.searchsorted(live, t_ms))
            if live[i] == t_ms:
                return c0 + i
            return self._insert_column(c0 + i, t_ms)
        # append at the end
        t_cap = self._vals.shape[1]
        if c1 >= t_cap:
            live = c1 - c0
            if live * 2 <= t_cap:
                self._compact_columns(t_cap)
            else:
                s_cap = self._vals.shape[0]
                new_cap = 2 * t_cap
                if s_cap * new_cap > self.max_cells:
                    new_cap = max(t_cap, self.max_cells // s_cap)
                if new_cap <= live:
                    # at the cell cap: drop the oldest column to make room
                    self.dropped_capacity += int(np.count_nonzero(self._state[:, self._c0]))
                    self._c0 += 1
                self._compact_columns(max(new_cap, live))
            c1 = self._c1
        self._ts[c1] = t_ms
        self._vals[:, c1] = 0.0
        self._state[:, c1] = ABSENT
        self._c1 = c1 + 1
        if self._max_ts_ms is None or t_ms > self._max_ts_ms:
            self._max_ts_ms = t_ms
        return c1

    def _insert_column(self, pos: int, t_ms: int) -> int:
        """Insert a column before array column ``pos`` (out-of-order timestamp; rare)."""
        if self._c0 > 0 and pos == self._c0:
            self._c0 -= 1
            col = self._c0
            self._ts[col] = t_ms
            self._vals[:, col] = 0.0
            self._state[:, col] = ABSENT
            return col
        if self._c1 >= self._vals.shape[1]:
            offset = pos - self._c0
            self._compact_columns(self._vals.shape[1] * 2 if self._c0 == 0 else self._vals.shape[1])
            pos = self._c0 + offset
        c1 = self._c1
        self._vals[:, pos + 1:c1 + 1] = self._vals[:, pos:c1].copy()
        self._state[:, pos + 1:c1 + 1] = self._state[:, pos:c1].copy()
        self._ts[pos + 1:c1 + 1] = self._ts[pos:c1].copy()
        self._ts[pos] = t_ms
        self._vals[:, pos] = 0.0
        self._state[:, pos] = ABSENT
        self._c1 = c1 + 1
        return pos

    # ------------------------------------------------------------------ writing
    def append(self, labels: Labels | Mapping[str, str], t: float, value: float) -> None:
        """Append one sample at ``t`` seconds (a stale-marker NaN value marks the series stale).

        Raises ``ValueError`` for a non-finite ``t``, a non-numeric value or invalid labels.
        """
        self.append_ms(labels, _to_ms(t), value)

    def append_ms(self, labels: Labels | Mapping[str, str], t_ms: int, value: float) -> None:
        """Append one sample at ``t_ms`` milliseconds.

        Raises
        ------
        ValueError
            For a value that is not a number or a label set Prometheus would reject (the message
            names the problem). Samples refused by ``max_series`` or retention are only counted.
        """
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"value must be a number, got {value!r} for series {labels}") from None
        if self._too_old(t_ms, 1):
            return
        sid = self._sid(labels)
        if sid == -2:
            lab = labels if isinstance(labels, Labels) else Labels(labels)
            raise ValueError(f"labels: {invalid_labels_reason(lab)} (series {lab})")
        if sid < 0:
            self.dropped_series_limit += 1
            return
        col = self._column(int(t_ms))
        self._vals[sid, col] = value
        self._state[sid, col] = STALE if (value != value and is_stale_nan(value)) else PRESENT

    def append_scrape(self, t: float, samples: Iterable[tuple[Labels | Mapping[str, str], float]],
                      *, source: str = SCRAPE_SOURCE) -> None:
        """Append one snapshot of series taken at ``t`` seconds.

        Series that were part of the previous snapshot of the same ``source`` but are missing from
        this one receive a stale marker at ``t``, as Prometheus does for a scrape target (so they
        disappear from instant queries immediately instead of after the 5-minute lookback).
        Samples older than the retention window relative to the newest timestamp are refused;
        samples of invalid label sets or with non-numeric values are skipped; all are counted
        (:meth:`stats`), none raises.
        """
        t_ms = _to_ms(t)
        sids, vals, refused, invalid = self._resolve(samples)
        self.dropped_series_limit += refused
        self.dropped_invalid += invalid
        if self._too_old(t_ms, len(sids)):
            return
        col = self._column(t_ms)
        cur = np.asarray(sids, dtype=np.int64)
        values = np.asarray(vals, dtype=np.float64)
        if cur.size:
            self._vals[cur, col] = values
            state = np.full(cur.size, PRESENT, dtype=np.uint8)
            nan = np.isnan(values)
            if nan.any():
                state[nan & (values.view(np.uint64) == np.uint64(STALE_NAN_BITS))] = STALE
            self._state[cur, col] = state
        # Which series this source reported: a boolean mask over series ids, so the series that
        # vanished since its previous snapshot are one vectorised comparison away.
        now = np.zeros(len(self._labels), dtype=bool)
        now[cur] = True
        prev = self._last_by_source.get(source)
        if prev is not None and prev.any():
            gone = np.flatnonzero(prev & ~now[: prev.size])
            if gone.size:
                self._vals[gone, col] = STALE_NAN
                self._state[gone, col] = STALE
        self._last_by_source[source] = now
        if self._max_ts_ms is not None:
            self.trim_ms(self._max_ts_ms)

    def _resolve(self, samples: Iterable[tuple[Labels | Mapping[str, str], float]]
                 ) -> tuple[list[int], list[float], int, int]:
        """Series ids and float values of a snapshot, skipping refused and invalid samples.

        Fast path: known ``Labels`` and plain numbers resolve with C-level ``map`` calls; anything
        else (new series, mappings, bad values) goes through the careful per-sample path.
        """
        items = samples if isinstance(samples, (list, tuple)) else list(samples)
        if not items:
            return [], [], 0, 0
        try:
            labs, raw = zip(*items)
            vals = list(map(float, raw))  # float(None) raises, unlike numpy's conversion
            found = list(map(self._ids.get, labs))
        except (TypeError, ValueError):
            found = [None]
            labs = ()
        if labs and not has_none(found):
            return found, vals, 0, 0  # type: ignore[return-value]
        sids: list[int] = []
        out: list[float] = []
        refused = invalid = 0
        for labels, value in items:
            try:
                fv = float(value)
            except (TypeError, ValueError):
                invalid += 1
                continue
            sid = self._sid(labels)
            if sid < 0:
                if sid == -2:
                    invalid += 1
                else:
                    refused += 1
                continue
            sids.append(sid)
            out.append(fv)
        return sids, out, refused, invalid

    def _too_old(self, t_ms: int, n: int) -> bool:
        if self._max_ts_ms is not None and t_ms < self._max_ts_ms - self.retention_ms:
            self.dropped_out_of_retention += n
            return True
        return False

    def trim(self, now: float) -> None:
        """Drop samples older than ``now - retention_s`` (and series left without samples)."""
        self.trim_ms(_to_ms(now))

    def trim_ms(self, now_ms: int) -> None:
        """Millisecond variant of :meth:`trim`."""
        cutoff = now_ms - self.retention_ms
        c0, c1 = self._c0, self._c1
        if c1 == c0 or self._ts[c0] >= cutoff:
            return
        k = int(np.searchsorted(self._ts[c0:c1], cutoff, side="left"))
        if k <= 0:
            return
        n = len(self._labels)
        self.trimmed_samples += int(np.count_nonzero(self._state[:n, c0:c0 + k]))
        self._state[:, c0:c0 + k] = ABSENT
        self._c0 = c0 + k
        self._drop_dead_series()

    def _drop_dead_series(self) -> None:
        """Forget series with no sample left once they are a large share of the store."""
        n = len(self._labels)
        if n < 64:
            return
        alive = self._state[:n, self._c0:self._c1].any(axis=1)
        dead = n - int(np.count_nonzero(alive))
        if dead * 4 < n:
            return
        keep = np.flatnonzero(alive)
        self._vals[: keep.size] = self._vals[keep]
        self._state[: keep.size] = self._state[keep]
        self._state[keep.size:] = ABSENT
        self._labels = [self._labels[i] for i in keep]
        labs = self._labels
        self._order = sorted(range(len(labs)), key=lambda i: labs[i]._items)
        self._rank = None
        self._ids = {lab: i for i, lab in enumerate(self._labels)}
        self._postings = {}
        for sid, lab in enumerate(self._labels):
            for k, v in lab:
                self._postings.setdefault(k, {}).setdefault(v, []).append(sid)
        for src, prev in list(self._last_by_source.items()):
            self._last_by_source[src] = prev[keep[keep < prev.size]]
        self.version += 1
        self._select_cache.clear()

    # ------------------------------------------------------------------ persistence
    def state_dict(self, max_cells: int | None = None, sources: Iterable[str] | None = None) -> dict[str, Any]:
        """The samples held and what each source's last snapshot reported, as plain arrays, so
        that a restarted agent's rules read the history before the restart (ranges, ``offset``)
        and series that vanished across it are marked stale at its first snapshot.

        ``max_cells`` bounds series x timestamps of the state (9 bytes a cell): beyond it only the
        newest timestamps that fit are kept, so that a store of many series costs a checkpoint
        a bounded size and keeps its most recent history. ``sources`` names the sources whose
        last snapshot is kept (all when None): only those whose names mean the same after a
        restart (a rule's source is named by its position, which a reload moves)."""
        n = len(self._labels)
        c0, c1 = self._c0, self._c1
        if max_cells is not None and n and n * (c1 - c0) > max_cells:
            c0 = max(c1 - max(max_cells // n, 1), c0)
        keep = np.flatnonzero(self._state[:n, c0:c1].any(axis=1)) if c1 > c0 else np.zeros(0, dtype=np.int64)
        position = np.full(n, -1, dtype=np.int64)
        position[keep] = np.arange(keep.size)
        kept = {}
        for src, mask in self._last_by_source.items():
            if sources is not None and src not in sources:
                continue
            ids = np.flatnonzero(mask)
            ids = position[ids[ids < n]]
            kept[src] = ids[ids >= 0]
        return {
            "version": 1,
            "labels": [[list(pair) for pair in self._labels[i]._items] for i in keep.tolist()],
            "ts_ms": self._ts[c0:c1].copy(),
            "values": self._vals[keep, c0:c1],
            "state": self._state[keep, c0:c1],
            "sources": kept,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace what the store holds with :meth:`state_dict`'s samples (this store's bounds
        apply: series beyond ``max_series`` are refused and the oldest timestamps beyond
        ``max_cells`` dropped, both counted; retention applies at the next snapshot).

        Raises ``ValueError`` for a state this version cannot read, leaving the store as it was."""
        version = state.get("version") if isinstance(state, Mapping) else None
        if version != 1:
            raise ValueError(f"unsupported series store state version {version!r} (expected 1)")
        try:
            ts = np.asarray(state["ts_ms"], dtype=np.int64)
            vals = np.asarray(state["values"], dtype=np.float64)
            cells = np.asarray(state["state"])
            labels = [Labels([(str(k), str(v)) for k, v in pairs]) for pairs in state["labels"]]
            sources = {str(src): np.asarray(ids, dtype=np.int64) for src, ids in dict(state["sources"]).items()}
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise ValueError(f"series store state is malformed: {err}") from None
        m = ts.size
        if ts.ndim != 1 or vals.shape != (len(labels), m) or cells.shape != vals.shape or cells.dtype.kind not in "iu" \
                or np.any(np.diff(ts) <= 0) or (cells.size and (cells.min() < ABSENT or cells.max() > STALE)) \
                or any(ids.ndim != 1 or (ids.size and (ids.min() < 0 or ids.max() >= len(labels))) for ids in sources.values()):
            raise ValueError("series store state is malformed: its arrays do not match")
        # the series this store takes, and the newest timestamps that fit max_cells with them (room
        # for one more, as _enforce_cells leaves), before anything is allocated
        taken = min(len(labels), self.max_series)
        s_cap = max(64, taken)
        keep = min(m, max(self.max_cells // s_cap, 2) - 1)
        if keep < m:
            self.dropped_capacity += int(np.count_nonzero(cells[:taken, :m - keep]))
            ts, vals, cells = ts[m - keep:], vals[:, m - keep:], cells[:, m - keep:]
        self.clear()
        self._vals = np.zeros((s_cap, max(64, keep)), dtype=np.float64)
        self._state = np.zeros((s_cap, max(64, keep)), dtype=np.uint8)
        self._ts = np.zeros(self._vals.shape[1], dtype=np.int64)
        self._ts[:keep] = ts
        self._c0, self._c1 = 0, keep
        self._max_ts_ms = int(ts[-1]) if keep else None
        rows = np.full(len(labels), -1, dtype=np.int64)
        for i, lab in enumerate(labels):
            sid = self._sid(lab)
            if sid == -1:
                self.dropped_series_limit += int(np.count_nonzero(cells[i]))
            elif sid == -2:
                self.dropped_invalid += int(np.count_nonzero(cells[i]))
            else:
                rows[i] = sid
        ok = rows >= 0
        self._vals[rows[ok], :keep] = vals[ok]
        self._state[rows[ok], :keep] = cells[ok]
        for src, ids in sources.items():
            mask = np.zeros(len(self._labels), dtype=bool)
            mask[rows[ids][rows[ids] >= 0]] = True
            self._last_by_source[src] = mask
        self._enforce_cells()

    # ------------------------------------------------------------------ reading
    def labels_of(self, sid: int) -> Labels:
        """Return the labels of series id ``sid``."""
        return self._labels[sid]

    def lookup(self, matchers: Sequence[LabelMatcher]) -> np.ndarray:
        """Return the ids of series matching all ``matchers``, ordered by their label sets.

        Results are cached until the set of series changes, so rules evaluated every interval
        pay the matching cost once.
        """
        key = tuple(matchers)
        hit = self._select_cache.get(key)
        if hit is not None:
            return hit
        n = len(self._labels)
        mask = np.ones(n, dtype=bool)
        for m in sorted(key, key=_matcher_cost):
            mask &= self._matcher_mask(m, n)
            if not mask.any():
                break
        ids = np.flatnonzero(mask)
        if ids.size > 1:
            rank = self._rank
            if rank is None or rank.size != n:
                rank = np.empty(n, dtype=np.int64)
                rank[np.asarray(self._order, dtype=np.int64)] = np.arange(n)
                self._rank = rank
            ids = ids[np.argsort(rank[ids], kind="stable")]
        if len(self._select_cache) > 4096:
            self._select_cache.clear()
        self._select_cache[key] = ids
        return ids

    def _matcher_mask(self, m: LabelMatcher, n: int) -> np.ndarray:
        values = self._postings.get(m.name, {})
        if m.op == MatchOp.EQ and m.value != "":
            out = np.zeros(n, dtype=bool)
            ids = values.get(m.value)
            if ids:
                out[ids] = True
            return out
        if m.matches(""):
            # matches series without the label too: start from all and remove non-matching values
            out = np.ones(n, dtype=bool)
            for v, ids in values.items():
                if not m.matches(v):
                    out[ids] = False
            return out
        out = np.zeros(n, dtype=bool)
        for v, ids in values.items():
            if m.matches(v):
                out[ids] = True
        return out

    def window(self, ids: np.ndarray, mint_ms: int, maxt_ms: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(ts, values, state)`` of series ``ids`` for timestamps in ``[mint, maxt]``.

        ``ts`` has shape (R,), ``values`` and ``state`` (len(ids), R); cells of state 0 are absent,
        1 are samples and 2 are stale markers.
        """
        c0, c1 = self._c0, self._c1
        ts = self._ts[c0:c1]
        lo = int(np.searchsorted(ts, mint_ms, side="left"))
        hi = int(np.searchsorted(ts, maxt_ms, side="right"))
        if hi <= lo or ids.size == 0:
            return ts[0:0], np.zeros((ids.size, 0)), np.zeros((ids.size, 0), dtype=np.uint8)
        a, b = c0 + lo, c0 + hi
        return ts[lo:hi], self._vals[:, a:b][ids], self._state[:, a:b][ids]

    def instant(self, ids: np.ndarray, ref_ms: int, lookback_ms: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latest sample of each series in ``[ref - lookback, ref]`` (Prometheus instant selection).

        Returns ``(positions, values, timestamps)`` where ``positions`` index into ``ids``. A series
        whose latest cell in the window is a stale marker is omitted, as in Prometheus.
        """
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64))
        c0, c1 = self._c0, self._c1
        if ids.size == 0 or c1 == c0:
            return empty
        ts = self._ts[c0:c1]
        lo = c0 + int(np.searchsorted(ts, ref_ms - lookback_ms, side="left"))
        hi = c0 + int(np.searchsorted(ts, ref_ms, side="right"))
        if hi <= lo:
            return empty
        state = self._state
        out_col = np.full(ids.size, -1, dtype=np.int64)
        pending = np.arange(ids.size)
        col = hi - 1
        steps = 0
        # Nearly always the newest column holds a sample of every series: scan back a few columns
        # one at a time, then fall back to one bulk search for long-absent series.
        while pending.size and col >= lo and steps < 4:
            found = state[ids[pending], col] != ABSENT
            if found.any():
                out_col[pending[found]] = col
                pending = pending[~found]
            col -= 1
            steps += 1
        if pending.size and col >= lo:
            sub = state[:, lo:col + 1][ids[pending]] != ABSENT
            has = sub.any(axis=1)
            last = sub.shape[1] - 1 - np.argmax(sub[:, ::-1], axis=1)
            out_col[pending[has]] = lo + last[has]
        pos = np.flatnonzero(out_col >= 0)
        cols = out_col[pos]
        sids = ids[pos]
        live = state[sids, cols] == PRESENT
        if not live.all():
            pos, cols, sids = pos[live], cols[live], sids[live]
        return pos, self._vals[sids, cols], self._ts[cols]

    def select(self, matchers: Sequence[LabelMatcher] | Mapping[str, str], start_ms: int,
               end_ms: int, *, include_stale: bool = False) -> list[Series]:
        """Return the samples of matching series in ``[start_ms, end_ms]`` as :class:`Series`.

        ``matchers`` is a list of :class:`LabelMatcher` or, for convenience, a mapping of label
        name to required value. Series without samples in the window are omitted. Stale markers
        are omitted unless ``include_stale``.
        """
        if isinstance(matchers, Mapping):
            matchers = [LabelMatcher(k, MatchOp.EQ, v) for k, v in matchers.items()]
        ids = self.lookup(list(matchers))
        ts, vals, state = self.window(ids, int(start_ms), int(end_ms))
        out: list[Series] = []
        for row, sid in enumerate(ids.tolist()):
            keep = state[row] != ABSENT if include_stale else state[row] == PRESENT
            if keep.any():
                out.append(Series(self._labels[sid], ts[keep].copy(), vals[row][keep].copy()))
        return out

    def series_labels(self) -> list[Labels]:
        """Return the label sets of all series currently held."""
        return list(self._labels)

    def metric_names(self) -> list[str]:
        """Return the distinct metric names currently held."""
        return sorted(self._postings.get(METRIC_NAME, {}))


def _matcher_cost(m: LabelMatcher) -> int:
    """Order matchers so cheap, selective ones (non-empty equality) run first."""
    if m.op == MatchOp.EQ and m.value != "":
        return 0 if m.name == METRIC_NAME else 1
    return 2 if m.op in (MatchOp.EQ, MatchOp.NE) else 3

