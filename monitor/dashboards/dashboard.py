"""A dashboard: fixed uid, template variables, alert-state annotations, and panels laid out on Grafana's
24-column grid.

The JSON follows Grafana 10's dashboard schema. The datasource is a ``datasource`` template variable
(type ``datasource``, query ``prometheus``) rather than a ``${DS_...}`` import input, because file
provisioning does not resolve import inputs; the provisioned datasource has a fixed uid and is the
variable's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.dashboards.panels import DATASOURCE, Panel, Row
from monitor.dashboards.promql import ALWAYS_PRESENT, MODEL, selector

__all__ = ["Annotation", "Variable", "Dashboard", "label_variable", "model_variable", "alert_annotations", "DATASOURCE_UID", "TAG"]

#: uid of the provisioned Prometheus datasource (grafana/provisioning/datasources).
DATASOURCE_UID = "model-monitor-prometheus"
#: Every generated dashboard carries this tag; the dashboard links menu lists them by it.
TAG = "model-monitor"
_SCHEMA_VERSION = 39


@dataclass(frozen=True)
class Variable:
    """A ``label_values(<selector>, <label>)`` query variable (multi-value, with "All")."""

    name: str
    label: str
    metric_selector: str
    label_name: str
    all_value: str = ".*"

    @property
    def query(self) -> str:
        return f"label_values({self.metric_selector}, {self.label_name})"

    def to_json(self) -> dict[str, Any]:
        return {
            "allValue": self.all_value,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DATASOURCE,
            "definition": self.query,
            "hide": 0,
            "includeAll": True,
            "label": self.label,
            "multi": True,
            "name": self.name,
            "options": [],
            "query": {"qryType": 1, "query": self.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2,
            "regex": "",
            "skipUrlSync": False,
            "sort": 1,
            "type": "query",
        }


def model_variable() -> Variable:
    """The ``model`` variable: every model whose monitor exports its queue capacity (all do)."""
    return Variable("model", "Model", ALWAYS_PRESENT, "model")


def label_variable(name: str, label: str, metric: str, label_name: str | None = None, suffix: str = "") -> Variable:
    """A variable over label ``label_name`` (default ``name``) of catalog ``metric`` for the chosen models."""
    return Variable(name, label, selector(metric, suffix=suffix), label_name or name)


def _datasource_variable() -> dict[str, Any]:
    return {
        "current": {"selected": False, "text": "Prometheus", "value": DATASOURCE_UID},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


@dataclass(frozen=True)
class Annotation:
    """A Prometheus-query annotation: a marker on every time series while ``expr`` has a value."""

    name: str
    expr: str
    color: str
    title: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "datasource": DATASOURCE,
            "enable": True,
            "expr": self.expr,
            "hide": False,
            "iconColor": self.color,
            "name": self.name,
            "step": "15s",
            "tagKeys": "alertname,severity,alertstate",
            "textFormat": self.text,
            "titleFormat": self.title,
            "useValueForTime": False,
        }


def alert_annotations() -> tuple[Annotation, ...]:
    """Alert-state markers from both evaluators: the agent's own (``monitor_alerts``) and
    Prometheus's (``ALERTS``, when the rule packs are loaded into Prometheus)."""
    agent = selector("monitor_alerts", 'alertstate="firing"')
    return (
        Annotation("Agent alerts (firing)", agent, "red", "{{alertname}}", "{{model}} {{severity}} (evaluated by the agent)"),
        Annotation("Prometheus alerts (firing)", f'ALERTS{{alertstate="firing", {MODEL}}}', "orange",
                   "{{alertname}}", "{{model}} {{severity}} (evaluated by Prometheus)"),
    )


@dataclass(frozen=True)
class Dashboard:
    """One dashboard, rendered by :meth:`to_json` with panels packed left to right, top to bottom."""

    uid: str
    title: str
    description: str
    items: tuple[Panel | Row, ...]
    variables: tuple[Variable, ...] = ()
    refresh: str = "30s"
    time_from: str = "now-1h"
    extra_tags: tuple[str, ...] = field(default_factory=tuple)

    def panels(self) -> list[Panel]:
        return [p for p in self.items if isinstance(p, Panel)]

    def all_variables(self) -> tuple[Variable, ...]:
        return (model_variable(),) + self.variables

    def _layout(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        x = y = line_h = 0
        for i, item in enumerate(self.items, start=1):
            if isinstance(item, Row):
                if x:
                    y, x, line_h = y + line_h, 0, 0
                out.append(item.to_json(i, y))
                y += 1
                continue
            if x + item.width > 24:
                y, x, line_h = y + line_h, 0, 0
            out.append(item.to_json(i, x, y))
            x += item.width
            line_h = max(line_h, item.height)
        return out

    def to_json(self) -> dict[str, Any]:
        titles = [p.title for p in self.panels()]
        dupes = {t for t in titles if titles.count(t) > 1}
        if dupes:
            raise ValueError(f"dashboard {self.uid}: duplicate panel titles {sorted(dupes)}")
        return {
            "annotations": {"list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *(a.to_json() for a in alert_annotations()),
            ]},
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": [{
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": [TAG],
                "targetBlank": False,
                "title": "Model monitor",
                "type": "dashboards",
            }],
            "panels": self._layout(),
            "refresh": self.refresh,
            "schemaVersion": _SCHEMA_VERSION,
            "tags": [TAG, *self.extra_tags],
            "templating": {"list": [_datasource_variable(), *(v.to_json() for v in self.all_variables())]},
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }
