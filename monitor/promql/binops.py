"""Binary operators: arithmetic, comparisons (with ``bool``), ``atan2`` and the set operators,
between scalars and vectors, with one-to-one and many-to-one/one-to-many vector matching.

Matching signatures and result label sets are cached per AST node, keyed by the input label sets,
so a rule evaluated every interval over stable series only does dictionary lookups; the values
are computed for all matched pairs in one numpy call.
"""

from __future__ import annotations

import numpy as np

from monitor.promql.ast import ARITHMETIC_OPS, COMPARISON_OPS, Binary
from monitor.promql.errors import EvalError
from monitor.promql.types import METRIC_NAME, Labels
from monitor.promql.values import IVec, empty_ivec

__all__ = ["scalar_binop", "vector_scalar_binop", "vector_binop", "apply_op"]


def apply_op(op: str, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Element-wise arithmetic/comparison; comparisons return 1.0/0.0 (for keep masks)."""
    with np.errstate(all="ignore"):
        if op == "+":
            return lhs + rhs
        if op == "-":
            return lhs - rhs
        if op == "*":
            return lhs * rhs
        if op == "/":
            return np.true_divide(lhs, rhs)
        if op == "%":
            return np.fmod(lhs, rhs)
        if op == "^":
            return np.power(lhs, rhs)
        if op == "atan2":
            return np.arctan2(lhs, rhs)
        if op == "==":
            return (lhs == rhs).astype(np.float64)
        if op == "!=":
            return (lhs != rhs).astype(np.float64)
        if op == ">":
            return (lhs > rhs).astype(np.float64)
        if op == "<":
            return (lhs < rhs).astype(np.float64)
        if op == ">=":
            return (lhs >= rhs).astype(np.float64)
        if op == "<=":
            return (lhs <= rhs).astype(np.float64)
    raise EvalError(f"operator {op!r} not allowed for this operation")


def scalar_binop(op: str, lhs: float, rhs: float) -> float:
    """Scalar op scalar; comparisons (always with ``bool`` here) give 0 or 1."""
    res = apply_op(op, np.array([lhs], dtype=np.float64), np.array([rhs], dtype=np.float64))
    return float(res[0])


def vector_scalar_binop(node: Binary, vec: IVec, scalar: float, swap: bool) -> IVec:
    """Vector op scalar (``swap``: the scalar was on the left-hand side)."""
    op = node.op
    n = len(vec.labels)
    if n == 0:
        return empty_ivec()
    other = np.full(n, scalar)
    lhs, rhs = (other, vec.values) if swap else (vec.values, other)
    res = apply_op(op, lhs, rhs)
    if op in COMPARISON_OPS:
        keep = res.astype(bool)
        if node.return_bool:
            return IVec(_drop_names(vec.labels), keep.astype(np.float64))
        idx = np.flatnonzero(keep)
        return IVec([vec.labels[i] for i in idx.tolist()], vec.values[idx])
    labels = _drop_names(vec.labels) if op in ARITHMETIC_OPS else list(vec.labels)
    return IVec(labels, res)


def _drop_names(labels: list[Labels]) -> list[Labels]:
    return [lab.without_name() for lab in labels]


def _signature_fn(node: Binary):  # type: ignore[no-untyped-def]
    cache: dict[Labels, tuple] = node.cache.setdefault("sig", {})
    if len(cache) > 200_000:
        cache.clear()
    if node.on:
        names = tuple(sorted(node.matching))

        def sig(lab: Labels) -> tuple:
            s = cache.get(lab)
            if s is None:
                s = cache[lab] = tuple(lab.get(n) for n in names)
            return s
    else:
        drop = frozenset(node.matching) | {METRIC_NAME}

        def sig(lab: Labels) -> tuple:
            s = cache.get(lab)
            if s is None:
                s = cache[lab] = tuple(kv for kv in lab.items() if kv[0] not in drop)
            return s
    return sig


def set_binop(node: Binary, lhs: IVec, rhs: IVec) -> IVec:
    """``and``, ``or``, ``unless``."""
    op = node.op
    if op == "and":
        if len(lhs) == 0 or len(rhs) == 0:
            return empty_ivec()
        sig = _signature_fn(node)
        right = {sig(lab) for lab in rhs.labels}
        idx = [i for i, lab in enumerate(lhs.labels) if sig(lab) in right]
        return lhs.take(idx)
    if op == "or":
        if len(lhs) == 0:
            return IVec(list(rhs.labels), rhs.values.copy())
        if len(rhs) == 0:
            return IVec(list(lhs.labels), lhs.values.copy())
        sig = _signature_fn(node)
        left = {sig(lab) for lab in lhs.labels}
        idx = [j for j, lab in enumerate(rhs.labels) if sig(lab) not in left]
        return IVec(list(lhs.labels) + [rhs.labels[j] for j in idx],
                    np.concatenate([lhs.values, rhs.values[np.asarray(idx, dtype=np.int64)]]))
    if op == "unless":
        if len(lhs) == 0 or len(rhs) == 0:
            return IVec(list(lhs.labels), lhs.values.copy())
        sig = _signature_fn(node)
        right = {sig(lab) for lab in rhs.labels}
        idx = [i for i, lab in enumerate(lhs.labels) if sig(lab) not in right]
        return lhs.take(idx)
    raise EvalError(f"unknown set operator {op}")


def _matched_labels_str(lab: Labels, node: Binary) -> str:
    if node.on:
        kept = lab.only(*node.matching)
    else:
        kept = lab.without(*node.matching, METRIC_NAME)
    return "{" + ", ".join(f'{k}="{v}"' for k, v in kept.items()) + "}"


def vector_binop(node: Binary, lhs: IVec, rhs: IVec) -> IVec:
    """Vector op vector (arithmetic/comparison/atan2) with vector matching."""
    if node.op in ("and", "or", "unless"):
        return set_binop(node, lhs, rhs)
    if len(lhs) == 0 or len(rhs) == 0:
        return empty_ivec()
    card = node.card
    one_to_many = card == "one-to-many"
    if one_to_many:
        lhs, rhs = rhs, lhs
    sig = _signature_fn(node)
    right: dict[tuple, int] = {}
    for j, lab in enumerate(rhs.labels):
        s = sig(lab)
        if s in right:
            one_side = "left" if one_to_many else "right"
            dup = rhs.labels[right[s]]
            raise EvalError(
                f"found duplicate series for the match group {_matched_labels_str(lab, node)} on "
                f"the {one_side} hand-side of the operation: [{lab}, {dup}];many-to-many matching "
                f"not allowed: matching labels must be unique on one side")
        right[s] = j
    li: list[int] = []
    ri: list[int] = []
    for i, lab in enumerate(lhs.labels):
        j = right.get(sig(lab))
        if j is not None:
            li.append(i)
            ri.append(j)
    if not li:
        return empty_ivec()
    lidx = np.asarray(li, dtype=np.int64)
    ridx = np.asarray(ri, dtype=np.int64)
    vl, vr = lhs.values[lidx], rhs.values[ridx]
    if one_to_many:
        vl, vr = vr, vl
    op = node.op
    res = apply_op(op, vl, vr)
    is_cmp = op in COMPARISON_OPS
    if is_cmp:
        keep = res.astype(bool)
        if node.return_bool:
            values = keep.astype(np.float64)
            sel = np.arange(len(li))
        else:
            sel = np.flatnonzero(keep)
            values = vl[sel]
    else:
        values = res
        sel = np.arange(len(li))
    rcache: dict[tuple[Labels, Labels], Labels] = node.cache.setdefault("result", {})
    if len(rcache) > 200_000:
        rcache.clear()
    out_labels: list[Labels] = []
    matched: dict[tuple, object] = {}
    for k in sel.tolist():
        ll, rl = lhs.labels[li[k]], rhs.labels[ri[k]]
        key = (ll, rl)
        metric = rcache.get(key)
        if metric is None:
            metric = rcache[key] = _result_metric(node, ll, rl)
        s = sig(ll)
        if card == "one-to-one":
            if s in matched:
                raise EvalError("multiple matches for labels: many-to-one matching must be "
                                "explicit (group_left/group_right)")
            matched[s] = None
        else:
            inserted = matched.get(s)
            if inserted is None:
                inserted = matched[s] = set()
            elif metric in inserted:  # type: ignore[operator]
                raise EvalError("multiple matches for labels: grouping labels must ensure "
                                "unique matches")
            inserted.add(metric)  # type: ignore[union-attr]
        out_labels.append(metric)
    return IVec(out_labels, np.asarray(values, dtype=np.float64))


def _result_metric(node: Binary, lhs: Labels, rhs: Labels) -> Labels:
    d = lhs.to_dict()
    if node.op in ARITHMETIC_OPS:
        d.pop(METRIC_NAME, None)
    if node.card == "one-to-one":
        if node.on:
            keep = set(node.matching)
            d = {k: v for k, v in d.items() if k in keep}
        else:
            for n in node.matching:
                d.pop(n, None)
    for n in node.include:
        v = rhs.get(n)
        if v:
            d[n] = v
        else:
            d.pop(n, None)
    if node.return_bool:
        d.pop(METRIC_NAME, None)
    return Labels(d)

