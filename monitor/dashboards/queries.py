"""Every PromQL query a generated dashboard runs, with Grafana's variables substituted.

Used by the tests (every query must parse, read only catalog series and, against a real Prometheus,
return data) and by the static previews, which run the same queries Grafana would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DashboardQuery", "iter_queries", "substitute", "grafana_regex", "rate_interval"]

_VAR = re.compile(r"\$(__rate_interval|__interval|__range|\w+)|\$\{(\w+)(?::\w+)?\}")


@dataclass(frozen=True)
class DashboardQuery:
    """One query of a dashboard: a panel target, an annotation, or a variable's ``label_values``."""

    dashboard: str
    title: str
    kind: str  # "panel", "annotation", "variable"
    expr: str
    instant: bool = False
    legend: str = ""

    @property
    def where(self) -> str:
        return f"dashboard {self.dashboard!r}, {self.kind} {self.title!r}"


def iter_queries(dashboard: Mapping[str, Any]) -> Iterator[DashboardQuery]:
    """Panel targets (rows' nested panels too), annotations and query variables of a dashboard JSON."""
    title = str(dashboard.get("title", dashboard.get("uid", "?")))
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield DashboardQuery(title, str(panel.get("title", "")), "panel", target["expr"],
                                     bool(target.get("instant")), str(target.get("legendFormat", "")))
    for ann in dashboard.get("annotations", {}).get("list", []):
        if ann.get("expr"):
            yield DashboardQuery(title, str(ann["name"]), "annotation", ann["expr"])
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var["query"]["query"] if isinstance(var.get("query"), dict) else str(var.get("query"))
            yield DashboardQuery(title, str(var["name"]), "variable", q)


def grafana_regex(values: list[str]) -> str:
    """How Grafana formats a multi-value variable inside ``=~``: ``(a|b)`` with regex escapes."""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def rate_interval(scrape_interval_s: float, step_s: float) -> str:
    """Grafana's ``$__rate_interval``: max(step + scrape interval, 4 x scrape interval)."""
    return f"{int(max(step_s + scrape_interval_s, 4 * scrape_interval_s))}s"


def substitute(expr: str, variables: Mapping[str, str], *, rate_window: str = "1m", range_window: str = "1h",
               interval: str = "15s") -> str:
    """``expr`` with ``$var`` / ``${var}`` and Grafana's built-ins replaced; an unknown variable is an error
    (it would reach Prometheus verbatim and match nothing)."""
    builtins = {"__rate_interval": rate_window, "__range": range_window, "__interval": interval}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        raise KeyError(f"variable ${name} in {expr!r} has no value")

    return _VAR.sub(repl, expr)
