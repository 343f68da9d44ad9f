"""Binary operators: arithmetic, comparisons (with ``bool``), ``atan2`` and the set operators,
between scalars and vectors, with one-to-one and many-to-one/one-to-many vector matching.

Matching signatures and result label sets are cached per AST node, keyed by the input label sets,
so a rule evaluated every interval over stable series only does dictionary lookups; the values
are computed for all matched pairs in one numpy call.
"""

from __future__ import annotations

from dataclasses import dataclass

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
            return drop_name_checked(vec, keep.astype(np.float64), node.cache)
        if keep.all():
            return IVec(vec.labels, vec.values, None, vec.same_name)
        return vec.take(np.flatnonzero(keep))
    if op in ARITHMETIC_OPS:
        return drop_name_checked(vec, res, node.cache)
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


@dataclass
class _MatchPlan:
    """How two label lists match: pair indices, result labels and what still needs checking."""

    lidx: np.ndarray
    ridx: np.ndarray
    sig_l: list[tuple]
    labels: list[Labels]
    same_name: bool
    sigs_unique: bool    # no two pairs share a left signature
    pairs_unique: bool   # no two pairs share (signature, result labels)
    labels_unique: bool  # result label sets are all distinct


def _match_plan(node: Binary, lhs: IVec, rhs: IVec, one_to_many: bool) -> _MatchPlan | None:
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
        return None
    ri = [matches[i] for i in li]
    ll = list(map(lhs.labels.__getitem__, li))
    sig_l = [lsigs[i] for i in li]
    sigs_unique = len(set(sig_l)) == len(sig_l)
    op = node.op
    if node.card == "one-to-one" and not node.has_matching and not node.include:
        drop = op in ARITHMETIC_OPS or node.return_bool
        labels = [lab.without_name() for lab in ll] if drop else ll
        same_name = True if drop else lhs.same_name
        # signatures are the label sets without the name: unique signatures => unique labels
        return _MatchPlan(np.asarray(li, dtype=np.int64), np.asarray(ri, dtype=np.int64), sig_l,
                          labels, same_name, sigs_unique, True, sigs_unique)
    rl = list(map(rhs.labels.__getitem__, ri))
    rcache: dict[tuple[Labels, Labels], Labels] = node.cache.setdefault("result", {})
    if len(rcache) > 200_000:
        rcache.clear()
    keys = list(zip(ll, rl))
    labels = list(map(rcache.get, keys))
    if has_none(labels):
        for k, metric in enumerate(labels):
            if metric is None:
                labels[k] = rcache[keys[k]] = _result_metric(node, keys[k][0], keys[k][1])
    pairs_unique = len(set(zip(sig_l, labels))) == len(labels)
    labels_unique = len(set(labels)) == len(labels)
    return _MatchPlan(np.asarray(li, dtype=np.int64), np.asarray(ri, dtype=np.int64), sig_l,
                      labels, False, sigs_unique, pairs_unique, labels_unique)


def vector_binop(node: Binary, lhs: IVec, rhs: IVec) -> IVec:
    """Vector op vector (arithmetic/comparison/atan2) with vector matching.

    The matching plan depends only on the two label lists, so it is memoised on the node for the
    identical list objects the selectors hand out at the next evaluation.
    """
    if node.op in ("and", "or", "unless"):
        return set_binop(node, lhs, rhs)
    if len(lhs) == 0 or len(rhs) == 0:
        return empty_ivec()
    card = node.card
    one_to_many = card == "one-to-many"
    if one_to_many:
        lhs, rhs = rhs, lhs
    m = node.cache.get("match")
    if m is not None and m[0] is lhs.labels and m[1] is rhs.labels:
        plan = m[2]
    else:
        plan = _match_plan(node, lhs, rhs, one_to_many)
        node.cache["match"] = (lhs.labels, rhs.labels, plan)
    if plan is None:
        return empty_ivec()
    vl, vr = lhs.values[plan.lidx], rhs.values[plan.ridx]
    if one_to_many:
        vl, vr = vr, vl
    op = node.op
    res = apply_op(op, vl, vr)
    labels = plan.labels
    sig_l = plan.sig_l
    if op in COMPARISON_OPS:
        keep = res.astype(bool)
        if node.return_bool:
            values = keep.astype(np.float64)
        else:
            values = vl
            if not keep.all():
                sel = np.flatnonzero(keep)
                values = vl[sel]
                sel_l = sel.tolist()
                labels = list(map(labels.__getitem__, sel_l))
                sig_l = list(map(sig_l.__getitem__, sel_l))
    else:
        values = res
    # Prometheus checks these on the pairs that survive the comparison filter.
    if card == "one-to-one":
        if not plan.sigs_unique and len(set(sig_l)) != len(sig_l):
            raise EvalError("multiple matches for labels: many-to-one matching must be explicit "
                            "(group_left/group_right)")
    elif not plan.pairs_unique and len(set(zip(sig_l, labels))) != len(labels):
        raise EvalError("multiple matches for labels: grouping labels must ensure unique matches")
    if not plan.labels_unique:
        check_unique(labels)
    return IVec(labels, np.asarray(values, dtype=np.float64), None, plan.same_name)


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

