"""Which labels the series of a PromQL expression carry, from the metric catalog.

A static reading of an expression tree (the project's parser, monitor/promql/ast.py) as Prometheus
builds result labels: aggregations keep their ``by`` labels (or drop their ``without`` ones),
one-to-one vector matching with ``on (...)`` keeps only the matching labels, ``group_left``
keeps the many side's labels plus the included ones, ``histogram_quantile`` drops ``le``. Used by
the tests of the rule packs (every ``{{ $labels.x }}`` of an annotation must be on the series the
alert's expression returns) and of the dashboards (every legend label must be on the panel's
series). ``None`` means "not known" (a series outside the catalog), which the callers treat as a
failure of their own.
"""

from __future__ import annotations

from typing import Optional

from monitor import catalog
from monitor.catalog.spec import COUNTER, HISTOGRAM
from monitor.promql import ast

__all__ = ["SERIES", "output_labels", "series_type"]


def _series() -> dict[str, tuple[str, frozenset[str]]]:
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for spec in catalog.CATALOG.values():
        for name in spec.series_names():
            extra = {"le"} if name.endswith("_bucket") else set()
            kind = spec.type if spec.type != HISTOGRAM else f"histogram{name[len(spec.name):]}"
            # instance and job: what Prometheus gives every series of a scrape target (dashboards read those)
            out[name] = (kind, frozenset(spec.labels) | {"model", "instance", "job"} | extra)
    # Prometheus's own series of the shipped packs loaded there (the dashboards' alert panels read
    # them beside monitor_alerts): every shipped alert keeps model (test_audit_session27_alert_panels_prometheus)
    out["ALERTS"] = ("gauge", frozenset({"alertname", "alertstate", "severity", "model", "instance", "job"}))
    return out


#: sample name -> (kind, labels); kind is counter, gauge, histogram_bucket, histogram_sum or histogram_count
SERIES = _series()

_KEEP_LABELS = {
    "rate", "irate", "increase", "delta", "idelta", "deriv", "abs", "ceil", "floor", "round", "clamp",
    "clamp_min", "clamp_max", "exp", "ln", "log2", "log10", "sqrt", "sgn", "resets", "changes",
    "predict_linear", "holt_winters", "double_exponential_smoothing", "sort", "sort_desc",
    "timestamp", "last_over_time",
}


def series_type(name: str) -> Optional[str]:
    """The kind of a catalog sample name (``counter``, ``gauge``, ``histogram_bucket``...), or None."""
    entry = SERIES.get(name)
    return entry[0] if entry else None


def output_labels(node: ast.Node) -> Optional[frozenset[str]]:
    """Labels every series of ``node``'s result carries (``frozenset()`` for scalars), or None."""
    if isinstance(node, ast.Paren):
        return output_labels(node.expr)
    if isinstance(node, (ast.NumberLit, ast.StringLit)):
        return frozenset()
    if isinstance(node, ast.Unary):
        return output_labels(node.expr)
    if isinstance(node, ast.VectorSel):
        entry = SERIES.get(node.name)
        return entry[1] if entry else None
    if isinstance(node, ast.MatrixSel):
        return output_labels(node.vs)
    if isinstance(node, ast.Subquery):
        return output_labels(node.expr)
    if isinstance(node, ast.Aggregate):
        inner = output_labels(node.expr)
        if inner is None:
            return None
        if node.op in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        if node.without:
            base = inner - set(node.grouping)
        else:
            base = frozenset(node.grouping) & inner
        if node.op == "count_values" and isinstance(node.param, ast.StringLit):
            base = base | {node.param.val}
        return base
    if isinstance(node, ast.Call):
        return _call_labels(node)
    if isinstance(node, ast.Binary):
        return _binary_labels(node)
    return None


def _call_labels(node: ast.Call) -> Optional[frozenset[str]]:
    func, args = node.func, node.args
    if func in ("vector", "time", "scalar", "pi"):
        return frozenset()
    if func == "histogram_quantile":
        inner = output_labels(args[1])
        return None if inner is None else inner - {"le"}
    if func == "label_replace":
        inner = output_labels(args[0])
        dst = args[1]
        return None if inner is None else inner | ({dst.val} if isinstance(dst, ast.StringLit) else set())
    if func in ("absent", "absent_over_time"):
        sel = args[0].vs if isinstance(args[0], ast.MatrixSel) else args[0]
        if isinstance(sel, ast.VectorSel):
            return frozenset(m.name for m in sel.matchers if m.op == "=" and m.name != "__name__")
        return frozenset()
    if func in _KEEP_LABELS or func.endswith("_over_time"):
        for arg in args:
            if arg.type in ("vector", "matrix"):
                return output_labels(arg)
    return None


def _binary_labels(node: ast.Binary) -> Optional[frozenset[str]]:
    lhs, rhs = output_labels(node.lhs), output_labels(node.rhs)
    if node.lhs.type == "scalar" or node.lhs.type == "number":
        return rhs
    if node.rhs.type == "scalar" or node.rhs.type == "number":
        return lhs
    if lhs is None or rhs is None:
        return None
    if node.op == "or":
        return lhs & rhs
    if node.op in ("and", "unless"):
        return lhs
    if node.card == "one-to-one":
        if node.on:
            return frozenset(node.matching) & lhs
        return lhs - set(node.matching)
    if node.card == "many-to-one":
        return lhs | (frozenset(node.include) & rhs)
    if node.card == "one-to-many":
        return rhs | (frozenset(node.include) & lhs)
    return None
