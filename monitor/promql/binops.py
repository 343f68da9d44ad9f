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
from monitor.promql.values import IVec, check_unique, drop_name_checked, empty_ivec, has_none

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
            return drop_name_checked(vec, keep.astype(np.float64))
        if keep.all():
            return IVec(vec.labels, vec.values, None, vec.same_name)
        return vec.take(np.flatnonzero(keep))
    if op in ARITHMETIC_OPS:
        return drop_name_checked(vec, res)
    return IVec(list(vec.labels), res, None, vec.same_name)


def _signatures(node: Binary, labels: list[Labels]) -> list[tuple]:
    """Matching signature of each label set (cached per node and label set)."""
    cache: dict[Labels, tuple] = node.cache.setdefault("sig", {})
    sigs = list(map(cache.get, labels))
    if has_none(sigs):
        if len(cache) > 200_000:
            cache.clear()
        if node.on:
            names = tuple(sorted(node.matching))
            for i, s in enumerate(sigs):
                if s is None:
                    lab = labels[i]
                    s = sigs[i] = cache[lab] = tuple(lab.get(n) for n in names)
        else:
            drop = frozenset(node.matching) | {METRIC_NAME}
            for i, s in enumerate(sigs):
                if s is None:
                    lab = labels[i]
                    s = sigs[i] = cache[lab] = tuple(kv for kv in lab.items() if kv[0] not in drop)
    return sigs  # type: ignore[return-value]


def set_binop(node: Binary, lhs: IVec, rhs: IVec) -> IVec:
    """``and``, ``or``, ``unless``."""
    op = node.op
    if op == "and":
        if len(lhs) == 0 or len(rhs) == 0:
            return empty_ivec()
        right = set(_signatures(node, rhs.labels))
        idx = [i for i, s in enumerate(_signatures(node, lhs.labels)) if s in right]
        return lhs.take(idx)
    if op == "or":
        if len(lhs) == 0:
            return IVec(list(rhs.labels), rhs.values.copy(), None, rhs.same_name)
        if len(rhs) == 0:
            return IVec(list(lhs.labels), lhs.values.copy(), None, lhs.same_name)
        left = set(_signatures(node, lhs.labels))
        idx = [j for j, s in enumerate(_signatures(node, rhs.labels)) if s not in left]
        return IVec(list(lhs.labels) + [rhs.labels[j] for j in idx],
                    np.concatenate([lhs.values, rhs.values[np.asarray(idx, dtype=np.int64)]]))
    if op == "unless":
        if len(lhs) == 0 or len(rhs) == 0:
            return IVec(list(lhs.labels), lhs.values.copy(), None, lhs.same_name)
        right = set(_signatures(node, rhs.labels))
        idx = [i for i, s in enumerate(_signatures(node, lhs.labels)) if s not in right]
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
    rsigs = _signatures(node, rhs.labels)
    right = dict(zip(rsigs, range(len(rsigs))))
    if len(right) != len(rsigs):
        seen: dict[tuple, int] = {}
        for j, s in enumerate(rsigs):
            if s in seen:
                lab, dup = rhs.labels[j], rhs.labels[seen[s]]
                one_side = "left" if one_to_many else "right"
                raise EvalError(
                    f"found duplicate series for the match group {_matched_labels_str(lab, node)}"
                    f" on the {one_side} hand-side of the operation: [{lab}, {dup}];many-to-many "
                    f"matching not allowed: matching labels must be unique on one side")
            seen[s] = j
    lsigs = _signatures(node, lhs.labels)
    matches = list(map(right.get, lsigs))
    li = [i for i, j in enumerate(matches) if j is not None]
    if not li:
        return empty_ivec()
    ri = [matches[i] for i in li]
    lidx = np.asarray(li, dtype=np.int64)
    ridx = np.asarray(ri, dtype=np.int64)
    vl, vr = lhs.values[lidx], rhs.values[ridx]
    if one_to_many:
        vl, vr = vr, vl
    op = node.op
    res = apply_op(op, vl, vr)
    if op in COMPARISON_OPS:
        keep = res.astype(bool)
        if node.return_bool:
            values = keep.astype(np.float64)
        else:
            sel = np.flatnonzero(keep)
            values = vl[sel]
            if sel.size != len(li):
                sel_l = sel.tolist()
                li = [li[k] for k in sel_l]
                ri = [ri[k] for k in sel_l]
    else:
        values = res
    ll = list(map(lhs.labels.__getitem__, li))
    sig_l = [lsigs[i] for i in li]
    if card == "one-to-one":
        if len(set(sig_l)) != len(sig_l):
            raise EvalError("multiple matches for labels: many-to-one matching must be explicit "
                            "(group_left/group_right)")
        if not node.has_matching and not node.include:
            drop = op in ARITHMETIC_OPS or node.return_bool
            out = [lab.without_name() for lab in ll] if drop else ll
            return IVec(out, np.asarray(values, dtype=np.float64), None,
                        True if drop else lhs.same_name)
    rl = list(map(rhs.labels.__getitem__, ri))
    rcache: dict[tuple[Labels, Labels], Labels] = node.cache.setdefault("result", {})
    keys = list(zip(ll, rl))
    out_labels = list(map(rcache.get, keys))
    if has_none(out_labels):
        if len(rcache) > 200_000:
            rcache.clear()
        for k, metric in enumerate(out_labels):
            if metric is None:
                out_labels[k] = rcache[keys[k]] = _result_metric(node, keys[k][0], keys[k][1])
    if card != "one-to-one":
        pairs = set(zip(sig_l, out_labels))
        if len(pairs) != len(out_labels):
            raise EvalError("multiple matches for labels: grouping labels must ensure unique "
                            "matches")
    check_unique(out_labels)
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

