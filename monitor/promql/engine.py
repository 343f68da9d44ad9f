"""PromQL evaluation engine: compile an expression once, evaluate it at instants or over a range.

Semantics follow Prometheus v2.42 (``promql/engine.go``): instant selection looks back
``lookback_delta`` (inclusive at both ends) and drops series whose latest sample is a stale
marker; range selection covers ``[t - range, t]`` and ignores stale markers; ``offset`` and ``@``
shift the reference time; subqueries evaluate their inner expression at step-aligned instants;
functions and arithmetic drop the metric name; results must not contain two series with the same
label set. Times in the public API are float seconds; internally everything is int64 milliseconds,
exactly as Prometheus computes them.

Typical use by the rule evaluator::

    engine = Engine()
    query = engine.compile('rate(http_requests_total{job="api"}[5m]) > 1')  # may raise
    vector = query.instant(store, now)                                      # list[Sample]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from monitor.promql import ast as A
from monitor.promql.aggregation import aggregate
from monitor.promql.binops import scalar_binop, vector_binop, vector_scalar_binop
from monitor.promql.errors import EvalError
from monitor.promql.functions import (
    DATE_FUNCTIONS,
    SIMPLE_FUNCTIONS,
    date_function,
    histogram_quantile,
    label_join,
    label_replace,
    sort_vector,
)
from monitor.promql.matchers import MatchOp
from monitor.promql.range_functions import RANGE_FUNCTIONS, RangeCall
from monitor.promql.storage import SeriesStore
from monitor.promql.types import METRIC_NAME, Labels, Sample, Scalar, Series, String
from monitor.promql.values import IVec, RVec, check_unique, drop_name_checked, empty_ivec

__all__ = ["Engine", "Query"]

_Value = Union[float, IVec, RVec, String]


def _to_ms(t: float) -> int:
    tf = float(t)
    if not math.isfinite(tf):
        raise ValueError(f"evaluation time must be finite seconds since the epoch, got {t!r}")
    return int(round(tf * 1000.0))


class Engine:
    """Compiles PromQL expressions into :class:`Query` objects.

    Parameters
    ----------
    lookback_delta_s : float
        How far back an instant selector looks for the latest sample (Prometheus default 5m).
    default_subquery_step_s : float
        Step of subqueries written without one (``x[1h:]``); Prometheus uses the global
        evaluation interval, 1 minute by default.
    """

    def __init__(self, lookback_delta_s: float = 300.0,
                 default_subquery_step_s: float = 60.0) -> None:
        if lookback_delta_s <= 0:
            raise ValueError(f"lookback_delta_s must be > 0 seconds, got {lookback_delta_s!r}")
        if default_subquery_step_s <= 0:
            raise ValueError("default_subquery_step_s must be > 0 seconds, got "
                             f"{default_subquery_step_s!r}")
        self.lookback_ms = _to_ms(lookback_delta_s)
        self.subquery_step_ms = _to_ms(default_subquery_step_s)

    def compile(self, expr: str) -> Query:
        """Parse and check ``expr``.

        Raises
        ------
        ParseError
            Syntax or type error.
        UnsupportedError
            A valid construct this evaluator does not implement (naming the construct).
        """
        return Query(expr, A.parse_expr(expr), self)


@dataclass
class Query:
    """A compiled expression; evaluate it with :meth:`instant` or :meth:`range`."""

    expr: str
    node: A.Node
    engine: Engine

    @property
    def value_type(self) -> str:
        """Static result type: ``"vector"``, ``"scalar"``, ``"matrix"`` or ``"string"``."""
        return self.node.type

    def with_at(self, at_ms: int) -> Query:
        """Return this query with ``@ at_ms`` pinned on every selector lacking an ``@``.

        Used by the conformance runner to reproduce the ``@`` variants of Prometheus's harness.
        """
        return Query(self.expr, A.with_at(self.node, at_ms), self.engine)

    def uses_functions(self, names: frozenset[str]) -> bool:
        """Whether the expression calls any of the given functions."""
        return any(isinstance(n, A.Call) and n.func in names for n in A.walk(self.node))

    # ---------------------------------------------------------------- instant
    def instant(self, storage: SeriesStore, t: float
                ) -> list[Sample] | Scalar | String | list[Series]:
        """Evaluate at time ``t`` (seconds): a vector, scalar, string or (range selector) matrix."""
        return self.instant_ms(storage, _to_ms(t))

    def instant_ms(self, storage: SeriesStore, t_ms: int
                   ) -> list[Sample] | Scalar | String | list[Series]:
        """Millisecond variant of :meth:`instant`."""
        ev = _Evaluator(storage, t_ms, t_ms, self.engine)
        val = ev.eval(self.node, t_ms)
        if isinstance(val, IVec):
            return [Sample(lab, float(v)) for lab, v in zip(val.labels, val.values.tolist())]
        if isinstance(val, RVec):
            return _rvec_to_series(val)
        if isinstance(val, String):
            return val
        return Scalar(float(val))

    # ---------------------------------------------------------------- range
    def range(self, storage: SeriesStore, start: float, end: float, step: float) -> list[Series]:
        """Evaluate at ``start, start+step, ... <= end`` (seconds); one series per label set."""
        return self.range_ms(storage, _to_ms(start), _to_ms(end), _to_ms(step))

    def range_ms(self, storage: SeriesStore, start_ms: int, end_ms: int,
                 step_ms: int) -> list[Series]:
        """Millisecond variant of :meth:`range`."""
        if step_ms <= 0:
            raise EvalError(f"range query step must be > 0, got {step_ms} ms")
        if end_ms < start_ms:
            raise EvalError("range query end must not be before start")
        if self.node.type not in (A.VECTOR, A.SCALAR):
            raise EvalError(f'invalid expression type "{_type_name(self.node.type)}" for range '
                            f"query, must be Scalar or instant Vector")
        ev = _Evaluator(storage, start_ms, end_ms, self.engine)
        rows: dict[Labels, tuple[list[int], list[float]]] = {}
        for t in range(start_ms, end_ms + 1, step_ms):
            val = ev.eval(self.node, t)
            if isinstance(val, IVec):
                for lab, v in zip(val.labels, val.values.tolist()):
                    entry = rows.get(lab)
                    if entry is None:
                        entry = rows[lab] = ([], [])
                    entry[0].append(t)
                    entry[1].append(v)
            else:
                entry = rows.setdefault(Labels(), ([], []))
                entry[0].append(t)
                entry[1].append(float(val))  # type: ignore[arg-type]
        out = [Series(lab, np.asarray(ts, dtype=np.int64), np.asarray(vs, dtype=np.float64))
               for lab, (ts, vs) in rows.items()]
        out.sort(key=lambda s: s.labels.items())
        return out


def _type_name(t: str) -> str:
    return {"matrix": "range vector", "vector": "instant vector"}.get(t, t)


def _rvec_to_series(rv: RVec) -> list[Series]:
    out = []
    for i, lab in enumerate(rv.labels):
        m = rv.mask[i]
        out.append(Series(lab, rv.ts[m].astype(np.int64), rv.vals[i][m].astype(np.float64)))
    return out


class _Evaluator:
    """Evaluates one query at one or more instants against one store."""

    def __init__(self, store: SeriesStore, start_ms: int, end_ms: int, engine: Engine) -> None:
        self.store = store
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.lookback_ms = engine.lookback_ms
        self.sub_step_ms = engine.subquery_step_ms
        self._dispatch: dict[type, Callable[[Any, int], _Value]] = {
            A.NumberLit: lambda n, ts: float(n.val),
            A.StringLit: lambda n, ts: String(n.val),
            A.Paren: lambda n, ts: self.eval(n.expr, ts),
            A.VectorSel: self.vector_selector,
            A.MatrixSel: self.matrix_selector,
            A.Subquery: self.subquery,
            A.Unary: self.unary,
            A.Binary: self.binary,
            A.Aggregate: self.aggregate,
            A.Call: self.call,
        }

    def eval(self, node: A.Node, ts: int) -> _Value:
        try:
            fn = self._dispatch[type(node)]
        except KeyError:  # pragma: no cover - the compiler only builds known nodes
            raise EvalError(f"cannot evaluate node {type(node).__name__}") from None
        return fn(node, ts)

    def eval_vector(self, node: A.Node, ts: int) -> IVec:
        val = self.eval(node, ts)
        if not isinstance(val, IVec):  # pragma: no cover - guaranteed by type checks
            raise EvalError(f"expected instant vector, got {type(val).__name__}")
        return val

    def eval_scalar(self, node: A.Node, ts: int) -> float:
        val = self.eval(node, ts)
        if isinstance(val, (IVec, RVec, String)):  # pragma: no cover
            raise EvalError(f"expected scalar, got {type(val).__name__}")
        return float(val)

    # ---------------------------------------------------------------- selectors
    def _ref(self, at: A.At | None, offset_ms: int, ts: int) -> int:
        if at is None:
            base = ts
        elif at.kind == "start":
            base = self.start_ms
        elif at.kind == "end":
            base = self.end_ms
        else:
            base = at.ms
        return base - offset_ms

    def vector_selector(self, node: A.VectorSel, ts: int) -> IVec:
        ref = self._ref(node.at, node.offset_ms, ts)
        store = self.store
        ids = store.lookup(node.matchers)
        if ids.size == 0:
            return empty_ivec()
        pos, values, sample_ts = store.instant(ids, ref, self.lookback_ms)
        # Reuse last evaluation's label list when the same series were selected, so identity-
        # keyed memos up the tree (matching, grouping, name dropping) hit.
        m = node.cache.get("sel")
        if m is not None and m[0] is ids and np.array_equal(m[1], pos):
            labels = m[2]
        else:
            labels = list(map(store._labels.__getitem__, ids[pos].tolist()))
            node.cache["sel"] = (ids, pos, labels)
        return IVec(labels, values, sample_ts, bool(node.name))

    def _matrix_window(self, node: A.MatrixSel, ts: int) -> tuple[RVec, int, int]:
        vs = node.vs
        ref = self._ref(vs.at, vs.offset_ms, ts)
        start = ref - node.range_ms
        store = self.store
        ids = store.lookup(vs.matchers)
        wts, vals, state = store.window(ids, start, ref)
        mask = state == 1
        keep = np.flatnonzero(mask.any(axis=1)) if mask.shape[1] else np.zeros(0, dtype=np.int64)
        m = node.cache.get("sel")
        if m is not None and m[0] is ids and np.array_equal(m[1], keep):
            labels = m[2]
        else:
            labels = list(map(store._labels.__getitem__, ids[keep].tolist()))
            node.cache["sel"] = (ids, keep, labels)
        if keep.size == ids.size:
            return RVec(labels, wts, vals, mask, bool(vs.name)), start, ref
        return RVec(labels, wts, vals[keep], mask[keep], bool(vs.name)), start, ref

    def matrix_selector(self, node: A.MatrixSel, ts: int) -> RVec:
        return self._matrix_window(node, ts)[0]

    def _subquery_window(self, node: A.Subquery, ts: int) -> tuple[RVec, int, int]:
        ref = self._ref(node.at, node.offset_ms, ts)
        step = node.step_ms or self.sub_step_ms
        target = ref - node.range_ms
        first = -((-target) // step) * step
        times = list(range(first, ref + 1, step))
        rows: dict[Labels, int] = {}
        cells: list[tuple[int, int, float]] = []
        for j, t in enumerate(times):
            vec = self.eval_vector(node.expr, t)
            for lab, v in zip(vec.labels, vec.values.tolist()):
                r = rows.get(lab)
                if r is None:
                    r = rows[lab] = len(rows)
                cells.append((r, j, v))
        n, width = len(rows), len(times)
        vals = np.zeros((n, width))
        mask = np.zeros((n, width), dtype=bool)
        if cells:
            rr, cc, vv = zip(*cells)
            vals[list(rr), list(cc)] = vv
            mask[list(rr), list(cc)] = True
        return RVec(list(rows), np.asarray(times, dtype=np.int64), vals, mask), target, ref

    def subquery(self, node: A.Subquery, ts: int) -> RVec:
        return self._subquery_window(node, ts)[0]

    # ---------------------------------------------------------------- operators
    def unary(self, node: A.Unary, ts: int) -> _Value:
        val = self.eval(node.expr, ts)
        if isinstance(val, IVec):
            return drop_name_checked(val, -val.values, node.cache)
        return -float(val)  # type: ignore[arg-type]

    def binary(self, node: A.Binary, ts: int) -> _Value:
        lhs = self.eval(node.lhs, ts)
        rhs = self.eval(node.rhs, ts)
        # Each operator guarantees unique result label sets itself (see binops), checking only
        # where a duplicate can actually arise.
        if isinstance(lhs, IVec) and isinstance(rhs, IVec):
            return vector_binop(node, lhs, rhs)
        if isinstance(lhs, IVec):
            return vector_scalar_binop(node, lhs, float(rhs), swap=False)  # type: ignore[arg-type]
        if isinstance(rhs, IVec):
            return vector_scalar_binop(node, rhs, float(lhs), swap=True)  # type: ignore[arg-type]
        return scalar_binop(node.op, float(lhs), float(rhs))  # type: ignore[arg-type]

    def aggregate(self, node: A.Aggregate, ts: int) -> IVec:
        param: Any = None
        if node.param is not None:
            pval = self.eval(node.param, ts)
            param = pval.value if isinstance(pval, String) else float(pval)  # type: ignore
        # group label sets are unique by construction; topk/bottomk keep unique input labels
        return aggregate(node, self.eval_vector(node.expr, ts), param)

    # ---------------------------------------------------------------- functions
    def call(self, node: A.Call, ts: int) -> _Value:
        name = node.func
        if name in RANGE_FUNCTIONS:
            return self.range_call(node, ts)
        args = node.args
        if name == "time":
            return ts / 1000.0
        if name == "pi":
            return float(np.pi)
        if name == "timestamp":
            arg = A.unwrap_parens(args[0])
            vec = self.eval_vector(arg, ts)
            if isinstance(arg, A.VectorSel) and vec.ts is not None:
                values = vec.ts.astype(np.float64) / 1000.0
            else:
                values = np.full(len(vec), ts / 1000.0)
            return drop_name_checked(vec, values, node.cache)
        if name in DATE_FUNCTIONS:
            vec = self.eval_vector(args[0], ts) if args else None
            out = date_function(name, vec, ts)
            check_unique(out.labels)
            return out
        if name == "vector":
            return IVec([Labels()], np.array([self.eval_scalar(args[0], ts)]))
        if name == "scalar":
            vec = self.eval_vector(args[0], ts)
            return float(vec.values[0]) if len(vec) == 1 else float("nan")
        if name == "absent":
            vec = self.eval_vector(args[0], ts)
            if len(vec):
                return empty_ivec()
            return IVec([_absent_labels(A.unwrap_parens(args[0]))], np.ones(1))
        if name == "histogram_quantile":
            q = self.eval_scalar(args[0], ts)
            out = histogram_quantile(q, self.eval_vector(args[1], ts), node.cache)
            check_unique(out.labels)
            return out
        if name in ("label_replace", "label_join"):
            vec = self.eval_vector(args[0], ts)
            strs = [_string_arg(a) for a in args[1:]]
            if name == "label_replace":
                out = label_replace(vec, strs[0], strs[1], strs[2], strs[3])
            else:
                out = label_join(vec, strs[0], strs[1], strs[2:])
            check_unique(out.labels)
            return out
        if name in ("sort", "sort_desc"):
            return sort_vector(self.eval_vector(args[0], ts), name == "sort_desc")
        vec = self.eval_vector(args[0], ts)
        with np.errstate(all="ignore"):
            if name in SIMPLE_FUNCTIONS:
                values = SIMPLE_FUNCTIONS[name](vec.values)
            elif name == "clamp":
                lo, hi = self.eval_scalar(args[1], ts), self.eval_scalar(args[2], ts)
                if hi < lo:
                    return empty_ivec()
                values = _go_max(lo, _go_min(hi, vec.values))
            elif name == "clamp_max":
                values = _go_min(self.eval_scalar(args[1], ts), vec.values)
            elif name == "clamp_min":
                values = _go_max(self.eval_scalar(args[1], ts), vec.values)
            elif name == "round":
                to_nearest = self.eval_scalar(args[1], ts) if len(args) > 1 else 1.0
                inv = 1.0 / to_nearest if to_nearest != 0 else np.inf
                values = np.floor(vec.values * inv + 0.5) / inv
            else:  # pragma: no cover - the compiler refuses unknown functions
                raise EvalError(f"function {name}() is not implemented")
        return drop_name_checked(vec, np.asarray(values, dtype=np.float64), node.cache)

    def range_call(self, node: A.Call, ts: int) -> IVec:
        name = node.func
        types = A.FUNCTIONS[name][0]
        scalars: list[float] = []
        rv: RVec | None = None
        start = end = range_ms = 0
        absent_labels = Labels()
        for arg, typ in zip(node.args, types):
            arg = A.unwrap_parens(arg)
            if typ == A.MATRIX:
                if isinstance(arg, A.MatrixSel):
                    rv, start, end = self._matrix_window(arg, ts)
                    range_ms = arg.range_ms
                    absent_labels = _absent_labels(arg.vs)
                elif isinstance(arg, A.Subquery):
                    rv, start, end = self._subquery_window(arg, ts)
                    range_ms = arg.range_ms
                else:  # pragma: no cover - the parser only allows range vectors here
                    raise EvalError(f"expected range vector argument to {name}()")
            else:
                scalars.append(self.eval_scalar(arg, ts))
        assert rv is not None
        if len(rv) == 0:
            rows, values = np.zeros(0, dtype=np.int64), np.zeros(0)
        else:
            rows, values = RANGE_FUNCTIONS[name](RangeCall(rv, start, end, range_ms, ts,
                                                           tuple(scalars)))
        if name == "absent_over_time":
            if rows.size:
                return empty_ivec()
            return IVec([absent_labels], np.ones(1))
        m = node.cache.get("rows")
        if m is not None and m[0] is rv.labels and np.array_equal(m[1], rows):
            labels = m[2]
        else:
            labels = list(map(rv.labels.__getitem__, rows.tolist()))
            node.cache["rows"] = (rv.labels, rows, labels)
        values = np.asarray(values, dtype=np.float64)
        if name == "last_over_time":  # acts like an offset: keeps the metric name
            return IVec(labels, values, None, rv.same_name)
        return drop_name_checked(IVec(labels, values, None, rv.same_name), values, node.cache)


def _go_min(a: float, values: np.ndarray) -> np.ndarray:
    """Go's ``math.Min``: -Inf if either is -Inf (even against NaN), else NaN if either is NaN;
    -0 is below +0."""
    v = np.asarray(values, dtype=np.float64)
    out = np.minimum(a, v)
    out = np.where((out == 0) & (np.signbit(a) | np.signbit(v)), -0.0, out)
    return np.where(np.isneginf(v) | np.isneginf(a), -np.inf, out)


def _go_max(a: float, values: np.ndarray) -> np.ndarray:
    """Go's ``math.Max``: +Inf if either is +Inf (even against NaN), else NaN if either is NaN;
    +0 is above -0."""
    v = np.asarray(values, dtype=np.float64)
    out = np.maximum(a, v)
    out = np.where((out == 0) & ~(np.signbit(a) & np.signbit(v)), 0.0, out)
    return np.where(np.isposinf(v) | np.isposinf(a), np.inf, out)


def _string_arg(node: A.Node) -> str:
    node = A.unwrap_parens(node)
    if not isinstance(node, A.StringLit):  # pragma: no cover - guaranteed by the parser
        raise EvalError("expected a string literal argument")
    return node.val


def _absent_labels(node: A.Node) -> Labels:
    """Labels of ``absent()``'s output: the equality matchers, unless a name repeats."""
    if not isinstance(node, A.VectorSel):
        return Labels()
    out: dict[str, str] = {}
    seen: set[str] = set()
    for m in node.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.op == MatchOp.EQ and m.name not in seen:
            out[m.name] = m.value
            seen.add(m.name)
        else:
            out.pop(m.name, None)
    return Labels(out)

