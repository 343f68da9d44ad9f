"""Aggregation operators (``sum``, ``avg``, ``topk``, ``count_values``, ...), ``by``/``without``.

Samples are mapped to groups in one Python pass (group label sets are cached per input label set
on the AST node, so steady-state rule evaluation mostly does dictionary hits), then the reduction
itself is a numpy ``bincount``/``ufunc.at`` call. Where Prometheus's incremental algorithms give a
different answer from the vectorised formula (non-finite values, overflow), the exact sequential
algorithm of Prometheus v2.42 runs instead; ``topk``/``bottomk`` emulate Go's ``container/heap``
so ties resolve the same way.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np

from monitor.promql.ast import Aggregate
from monitor.promql.errors import EvalError
from monitor.promql.functions import format_float_go
from monitor.promql.range_functions import quantile_sorted
from monitor.promql.types import METRIC_NAME, Labels
from monitor.promql.values import IVec, empty_ivec, has_none

__all__ = ["aggregate"]

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MAX_INT64 = float(2 ** 63)


def _group_labels(lab: Labels, without: bool, grouping: tuple[str, ...]) -> Labels:
    if without:
        return lab.without(*grouping, METRIC_NAME)
    if grouping:
        return lab.only(*grouping)
    return _EMPTY


_EMPTY = Labels()


def _group_of(node: Aggregate, labels: list[Labels]) -> list[Labels]:
    """Group label set of each input label set, cached per node and interned.

    Interning makes every member of a group map to the *same* ``Labels`` object, so the group
    dictionaries below hit by identity instead of comparing label tuples.
    """
    cache: dict[Labels, Labels] = node.cache.setdefault("group", {})
    gs = list(map(cache.get, labels))
    if has_none(gs):
        intern: dict[Labels, Labels] = node.cache.setdefault("intern", {})
        if len(cache) > 200_000:
            cache.clear()
            intern.clear()
        for i, g in enumerate(gs):
            if g is None:
                lab = labels[i]
                g = _group_labels(lab, node.without, node.grouping)
                g = intern.setdefault(g, g)
                gs[i] = cache[lab] = g
    return gs  # type: ignore[return-value]


def aggregate(node: Aggregate, vec: IVec, param: Any) -> IVec:
    """Evaluate aggregation ``node`` over ``vec`` with its evaluated parameter."""
    op = node.op
    if op == "count_values":
        return _count_values(node, vec, str(param))
    if op in ("topk", "bottomk"):
        k = float(param)
        if not (-_MAX_INT64 <= k <= _MAX_INT64):
            raise EvalError(f"Scalar value {format_float_go(k)} overflows int64")
        kk = int(k)
        if kk < 1:
            return empty_ivec()
        return _topk(node, vec, kk, op == "topk")
    n = len(vec.labels)
    if n == 0:
        return empty_ivec()
    m = node.cache.get("plan")
    if m is not None and m[0] is vec.labels:
        idx, out_labels = m[1], m[2]
    else:
        gs = _group_of(node, vec.labels)
        # distinct groups in order of first appearance, then each sample's group index
        groups = {g: i for i, g in enumerate(dict.fromkeys(gs))}
        idx = np.fromiter(map(groups.__getitem__, gs), dtype=np.int64, count=n)
        out_labels = list(groups)
        node.cache["plan"] = (vec.labels, idx, out_labels)
    ng = len(out_labels)
    same_name = node.without or METRIC_NAME not in node.grouping
    vals = vec.values
    with np.errstate(all="ignore"):
        if op == "sum":
            res = np.bincount(idx, weights=vals, minlength=ng)
        elif op == "count":
            res = np.bincount(idx, minlength=ng).astype(np.float64)
        elif op == "group":
            res = np.ones(ng)
        elif op == "max":
            res = np.full(ng, np.nan)
            np.fmax.at(res, idx, vals)
        elif op == "min":
            res = np.full(ng, np.nan)
            np.fmin.at(res, idx, vals)
        elif op == "avg":
            res = _avg(idx, vals, ng)
        elif op in ("stddev", "stdvar"):
            res = _variance(idx, vals, ng)
            if op == "stddev":
                res = np.sqrt(res)
        elif op == "quantile":
            q = float(param)
            buckets: list[list[float]] = [[] for _ in range(ng)]
            for gi, v in zip(idx.tolist(), vals.tolist()):
                buckets[gi].append(v)
            res = np.array([quantile_sorted(q, b) for b in buckets], dtype=np.float64)
        else:  # pragma: no cover - the compiler refuses unknown aggregations
            raise EvalError(f"unknown aggregation {op}")
    return IVec(out_labels, res, None, same_name)


def _avg(idx: np.ndarray, vals: np.ndarray, ng: int) -> np.ndarray:
    sums = np.bincount(idx, weights=vals, minlength=ng)
    counts = np.bincount(idx, minlength=ng)
    res = sums / counts
    if np.isfinite(vals).all() and np.isfinite(sums).all():
        return res
    # Prometheus's incremental mean, which survives overflow and handles infinities its own way.
    mean = [0.0] * ng
    count = [0] * ng
    for gi, v in zip(idx.tolist(), vals.tolist()):
        count[gi] += 1
        c = count[gi]
        if c == 1:
            mean[gi] = v
            continue
        m = mean[gi]
        if math.isinf(m):
            if math.isinf(v) and (m > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean[gi] = m + (v / c - m / c)
    return np.array(mean, dtype=np.float64)


def _variance(idx: np.ndarray, vals: np.ndarray, ng: int) -> np.ndarray:
    counts = np.bincount(idx, minlength=ng).astype(np.float64)
    if np.isfinite(vals).all():
        mean = np.bincount(idx, weights=vals, minlength=ng) / counts
        dev = vals - mean[idx]
        res = np.bincount(idx, weights=dev * dev, minlength=ng) / counts
        # Welford gives exactly 0 for a constant group; the two-pass formula may leave 1e-30.
        lo = np.full(ng, np.inf)
        hi = np.full(ng, -np.inf)
        np.minimum.at(lo, idx, vals)
        np.maximum.at(hi, idx, vals)
        res[lo == hi] = 0.0
        if np.isfinite(res).all():
            return res
    # Welford, as Prometheus does it
    mean_l = [0.0] * ng
    acc = [0.0] * ng
    cnt = [0] * ng
    for gi, v in zip(idx.tolist(), vals.tolist()):
        cnt[gi] += 1
        if cnt[gi] == 1:
            mean_l[gi] = v
            acc[gi] = 0.0
            continue
        delta = v - mean_l[gi]
        mean_l[gi] += delta / cnt[gi]
        acc[gi] += delta * (v - mean_l[gi])
    return np.array([a / c for a, c in zip(acc, cnt)], dtype=np.float64)


def _count_values(node: Aggregate, vec: IVec, label: str) -> IVec:
    if not _LABEL_NAME.match(label):
        raise EvalError(f'invalid label name "{label}"')
    grouping = node.grouping
    if not node.without:
        grouping = tuple(sorted(set(grouping) | {label}))
    groups: dict[Labels, int] = {}
    counts: list[int] = []
    for lab, v in zip(vec.labels, vec.values.tolist()):
        metric = lab.with_(label, format_float_go(v))
        g = _group_labels(metric, node.without, grouping)
        gi = groups.get(g)
        if gi is None:
            groups[g] = len(counts)
            counts.append(1)
        else:
            counts[gi] += 1
    return IVec(list(groups), np.array(counts, dtype=np.float64))


# ------------------------------------------------------------------------------- topk / bottomk
class _GoHeap:
    """Go's ``container/heap`` over (value, labels) items with a custom ``less``."""

    def __init__(self, first: tuple[float, Labels], less: Callable[[float, float], bool]) -> None:
        self.items = [first]
        self.less = less

    def _less(self, i: int, j: int) -> bool:
        return self.less(self.items[i][0], self.items[j][0])

    def _up(self, j: int) -> None:
        while True:
            i = (j - 1) // 2
            if j <= 0 or i == j or not self._less(j, i):
                break
            self.items[i], self.items[j] = self.items[j], self.items[i]
            j = i

    def _down(self, i0: int, n: int) -> None:
        i = i0
        while True:
            j1 = 2 * i + 1
            if j1 >= n or j1 < 0:
                break
            j = j1
            j2 = j1 + 1
            if j2 < n and self._less(j2, j1):
                j = j2
            if not self._less(j, i):
                break
            self.items[i], self.items[j] = self.items[j], self.items[i]
            i = j

    def push(self, item: tuple[float, Labels]) -> None:
        self.items.append(item)
        self._up(len(self.items) - 1)

    def pop(self) -> tuple[float, Labels]:
        n = len(self.items) - 1
        self.items[0], self.items[n] = self.items[n], self.items[0]
        self._down(0, n)
        return self.items.pop()


def _less_min(a: float, b: float) -> bool:
    return a != a or a < b


def _less_max(a: float, b: float) -> bool:
    return a != a or a > b


def _topk(node: Aggregate, vec: IVec, k: int, top: bool) -> IVec:
    heaps: dict[Labels, _GoHeap] = {}
    less = _less_min if top else _less_max
    for lab, g, v in zip(vec.labels, _group_of(node, vec.labels), vec.values.tolist()):
        h = heaps.get(g)
        if h is None:
            heaps[g] = _GoHeap((v, lab), less)
            continue
        head = h.items[0][0]
        better = (head < v) if top else (head > v)
        if len(h.items) < k or better or head != head:
            if len(h.items) == k:
                if k == 1:
                    h.items[0] = (v, lab)
                    continue
                h.pop()
            h.push((v, lab))
    out_labels: list[Labels] = []
    out_vals: list[float] = []
    for h in heaps.values():
        items = h.items
        if len(items) > 1:
            # sort.Reverse(heap): descending for topk, ascending for bottomk, NaN last
            if top:
                items = sorted(items, key=lambda it: (it[0] != it[0],
                                                      -it[0] if it[0] == it[0] else 0.0))
            else:
                items = sorted(items, key=lambda it: (it[0] != it[0],
                                                      it[0] if it[0] == it[0] else 0.0))
        for v, lab in items:
            out_labels.append(lab)
            out_vals.append(v)
    return IVec(out_labels, np.array(out_vals, dtype=np.float64), None, vec.same_name)
