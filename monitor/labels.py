"""Joining delayed ground truth to the predictions it belongs to, in bounded memory.

Predictions that carry a request id are remembered (score row, predicted class, segment, event
time) in an insertion-ordered map capped at ``capacity`` entries and ``ttl_s`` seconds of event
time; older ones are forgotten (counted). Labels for unknown, expired or already-labelled ids are
counted by outcome, never an error: late and missing labels are normal.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from monitor.batch import Batch, LabeledBatch
from monitor.outputs import ClassIndex

__all__ = ["LabelJoiner"]


class LabelJoiner:
    def __init__(self, capacity: int = 200_000, ttl_s: float = 7 * 86400.0) -> None:
        self.capacity = int(capacity)
        self.ttl_s = float(ttl_s)
        self._pending: OrderedDict[str, tuple[float, Any, int, Any, Any]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._pending)

    def remember(self, batch: Batch) -> None:
        """Keep what a later label needs for every row that has a request id."""
        ids = batch.request_id
        has = np.flatnonzero(ids != None)  # noqa: E711
        if has.size == 0:
            return
        scores, predicted, intervals = batch.scores, batch.predicted, batch.intervals
        pending = self._pending
        ts, seg = batch.ts, batch.segment
        for i in has.tolist():
            pending[ids[i]] = (
                float(ts[i]),
                None if scores is None else scores[i],
                -1 if predicted is None else int(predicted[i]),
                seg[i],
                None if intervals is None else intervals[i],
            )
            pending.move_to_end(ids[i])
        overflow = len(pending) - self.capacity
        for _ in range(max(0, overflow)):
            pending.popitem(last=False)
            self.evicted += 1
        self._expire(float(ts.max()))

    def _expire(self, now: float) -> None:
        pending = self._pending
        cutoff = now - self.ttl_s
        while pending:
            key, entry = next(iter(pending.items()))
            if entry[0] >= cutoff:
                break
            pending.popitem(last=False)
            self.evicted += 1

    def join(self, ts: float, request_ids: list[Any], labels: list[Any], classes: ClassIndex,
             regression: bool) -> tuple[LabeledBatch | None, dict[str, int]]:
        """Join one feedback event; returns the labelled rows and counts by outcome."""
        outcome = {"joined": 0, "unknown_id": 0, "invalid": 0}
        rows = []
        for rid, label in zip(request_ids, labels):
            entry = self._pending.pop(str(rid), None) if rid is not None else None
            if entry is None:
                outcome["unknown_id"] += 1
                continue
            if regression:
                try:
                    value = float(label)
                except (TypeError, ValueError):
                    outcome["invalid"] += 1
                    continue
                if not np.isfinite(value):
                    outcome["invalid"] += 1
                    continue
            else:
                if label is None:
                    outcome["invalid"] += 1
                    continue
                value = classes.lookup(np.array([label], dtype=object), learn=False)[0]
            rows.append((entry, value))
            outcome["joined"] += 1
        if not rows:
            return None, outcome
        n = len(rows)
        scores_list = [r[0][1] for r in rows]
        scores = None if any(s is None for s in scores_list) else np.stack(scores_list)
        intervals_list = [r[0][4] for r in rows]
        intervals = None if any(v is None for v in intervals_list) else np.stack(intervals_list)
        labeled = LabeledBatch(
            ts=np.array([r[0][0] for r in rows], dtype=np.float64),
            label_ts=np.full(n, ts, dtype=np.float64),
            label=np.array([r[1] for r in rows], dtype=np.float64 if regression else np.int64),
            segment=np.array([r[0][3] for r in rows], dtype=object),
            scores=scores,
            predicted=None if regression else np.array([r[0][2] for r in rows], dtype=np.int64),
            intervals=intervals,
            classes=tuple(classes.names),
        )
        return labeled, outcome

    def state_dict(self) -> dict[str, Any]:
        items = list(self._pending.items())
        return {
            "ids": [k for k, _ in items],
            "ts": [v[0] for _, v in items],
            "scores": [None if v[1] is None else np.asarray(v[1]).tolist() for _, v in items],
            "predicted": [v[2] for _, v in items],
            "segment": [v[3] for _, v in items],
            "intervals": [None if v[4] is None else np.asarray(v[4]).tolist() for _, v in items],
            "evicted": self.evicted,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = OrderedDict()
        for i, rid in enumerate(state.get("ids", [])):
            sc = state["scores"][i]
            iv = state["intervals"][i]
            self._pending[rid] = (float(state["ts"][i]), None if sc is None else np.asarray(sc),
                                  int(state["predicted"][i]), state["segment"][i], None if iv is None else np.asarray(iv))
        self.evicted = int(state.get("evicted", 0))
