"""Panel builders: one function per Grafana panel type, each taking its description and unit from the
metric catalog so that dashboards say what the exporter says.

A panel names the catalog metrics it shows (``metrics``); the description defaults to their help
texts and the unit to the first one's unit. Every query goes through the ``${datasource}`` template
variable, never a fixed or ``${DS_...}`` input datasource, so that file provisioning works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Unpack

from monitor.dashboards.packs import pack_alerts
from monitor.dashboards.promql import alert_counts, spec, zero_fill

__all__ = [
    "DATASOURCE",
    "Query",
    "Panel",
    "Row",
    "timeseries",
    "stat",
    "heatmap",
    "barchart",
    "Text",
    "pack_alerts_panel",
]

#: Every panel and query reads the dashboard's datasource variable.
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

_REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel.

    Parameters
    ----------
    expr
        The PromQL expression, with ``$model`` and ``$__rate_interval`` left for Grafana.
    legend
        Grafana legend format (``{{model}} {{reason}}``).
    instant
        Instant query (stat, table, bar chart) instead of a range query.
    format
        ``time_series``, ``table`` or ``heatmap`` (bucket series ordered by ``le``).
    """

    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"

    def to_json(self, ref_id: str) -> dict[str, Any]:
        return {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "format": self.format,
            "instant": self.instant,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "refId": ref_id,
        }


@dataclass(frozen=True)
class Panel:
    """A panel before layout: Grafana type, texts, unit, queries and type-specific options.

    ``metrics`` are catalog names; the tests check each query reads only catalog series.
    """

    type: str
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    metrics: tuple[str, ...]
    width: int = 12
    height: int = 8
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    transformations: tuple[dict[str, Any], ...] = ()
    #: Grafana field overrides (e.g. one field of a bar chart on its own axis and unit).
    overrides: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.title or not self.description or not self.unit:
            raise ValueError(f"panel {self.title!r}: a title, a description and a unit are required")
        if not self.queries:
            raise ValueError(f"panel {self.title!r} has no query")
        if not 1 <= self.width <= 24:
            raise ValueError(f"panel {self.title!r}: width must be 1..24")
        for name in self.metrics:
            spec(name)

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults = {"unit": self.unit, **self.defaults}
        return {
            "datasource": DATASOURCE,
            "description": self.description,
            "fieldConfig": {"defaults": defaults, "overrides": list(self.overrides)},
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "id": panel_id,
            "options": self.options,
            "targets": [q.to_json(_REF_IDS[i]) for i, q in enumerate(self.queries)],
            "title": self.title,
            "transformations": list(self.transformations),
            "type": self.type,
        }


@dataclass(frozen=True)
class Row:
    """A collapsible row header that starts a new line of panels."""

    title: str

    def to_json(self, panel_id: int, y: int) -> dict[str, Any]:
        return {
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "id": panel_id,
            "panels": [],
            "title": self.title,
            "type": "row",
        }


class Text(TypedDict, total=False):
    """Keywords every builder takes besides its queries: ``unit`` and ``description`` override the
    catalog's (the first metric's unit, the metrics' help texts), ``note`` is appended to the
    description, ``width`` (of 24 columns) and ``height`` size the panel."""

    unit: str
    description: str
    note: str
    width: int
    height: int


def _unit(metrics: tuple[str, ...], text: Text) -> str:
    return text.get("unit") or spec(metrics[0]).unit


def _panel(kind: str, title: str, queries: tuple[Query, ...], metrics: tuple[str, ...], text: Text, *,
           width: int = 12, height: int = 8, **extra: Any) -> Panel:
    """A :class:`Panel` whose texts and unit come from the catalog unless ``text`` overrides them."""
    described = text.get("description") or " ".join(spec(m).help for m in metrics)
    description = f"{described} {text.get('note', '')}".strip()
    return Panel(kind, title, description, _unit(metrics, text), queries, metrics,
                 text.get("width", width), text.get("height", height), **extra)


def _thresholds(steps: tuple[tuple[float | None, str], ...]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


_GREEN: tuple[tuple[float | None, str], ...] = ((None, "green"),)


def timeseries(
    title: str,
    *queries: Query,
    metrics: tuple[str, ...],
    stack: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    threshold: float | tuple[float, ...] | None = None,
    bars: bool = False,
    **text: Unpack[Text],
) -> Panel:
    """A time series panel; ``threshold`` draws a dashed red line (e.g. an alert bound), one per
    value when several (a two-sided bound)."""
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 20 if stack or bars else 8,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
    }
    defaults: dict[str, Any] = {"custom": custom, "color": {"mode": "palette-classic"}}
    if threshold is not None:
        custom["thresholdsStyle"] = {"mode": "dashed"}
        bounds = threshold if isinstance(threshold, tuple) else (threshold,)
        defaults["thresholds"] = _thresholds(((None, "transparent"), *((b, "red") for b in sorted(bounds))))
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return _panel(
        "timeseries", title, tuple(queries), metrics, text,
        options={
            "legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        defaults=defaults,
    )


def stat(
    title: str,
    query: Query,
    *,
    metrics: tuple[str, ...],
    steps: tuple[tuple[float | None, str], ...] = _GREEN,
    **text: Unpack[Text],
) -> Panel:
    """A single-value panel per series (instant query), coloured by ``steps`` (value, colour)."""
    q = Query(query.expr, query.legend, instant=True, format="time_series")
    return _panel(
        "stat", title, (q,), metrics, text, width=6, height=4,
        options={
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name",
        },
        defaults={"thresholds": _thresholds(steps), "color": {"mode": "thresholds"}},
    )


def heatmap(title: str, expr: str, *, metrics: tuple[str, ...], **text: Unpack[Text]) -> Panel:
    """A heatmap of histogram buckets over time (``expr`` sums ``increase`` of ``_bucket`` by ``le``)."""
    return _panel(
        "heatmap", title, (Query(expr, "{{le}}", format="heatmap"),), metrics, text,
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {"exponent": 0.5, "mode": "scheme", "scale": "exponential", "scheme": "Oranges", "steps": 64},
            "filterValues": {"le": 1e-9},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"show": True, "yHistogram": True},
            "yAxis": {"axisPlacement": "left", "unit": _unit(metrics, text)},
        },
    )


def barchart(title: str, *queries: Query, x_field: str, metrics: tuple[str, ...], counts: tuple[str, ...] = (),
             **text: Unpack[Text]) -> Panel:
    """Bars per value of label ``x_field`` (instant table queries joined on it), e.g. the
    reliability diagram: confidence and accuracy side by side per confidence bin. Queries should
    aggregate to ``by (<x_field>)`` so that the joined table has one row per bar.

    ``counts`` names the legends of queries that count (rows, not ratios): their bars go on a
    right-hand axis of plain numbers, so that hundreds of rows do not flatten bars of 0 to 1.
    """
    qs = tuple(Query(q.expr, q.legend, instant=True, format="table") for q in queries)
    overrides = tuple({"matcher": {"id": "byName", "options": legend},
                       "properties": [{"id": "unit", "value": "short"}, {"id": "custom.axisPlacement", "value": "right"}]}
                      for legend in counts)
    return _panel(
        "barchart", title, qs, metrics, text,
        options={
            "barWidth": 0.8,
            "groupWidth": 0.7,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "orientation": "vertical",
            "showValue": "never",
            "stacking": "none",
            "xField": x_field,
            "xTickLabelRotation": 0,
        },
        defaults={"color": {"mode": "palette-classic"}, "min": 0},
        transformations=(
            {"id": "joinByField", "options": {"byField": x_field, "mode": "outer"}},
            {"id": "organize", "options": {"excludeByName": {"Time": True, **{f"Time {i + 1}": True for i in range(len(qs))}},
                                           "renameByName": {f"Value #{_REF_IDS[i]}": q.legend or f"Value #{_REF_IDS[i]}"
                                                            for i, q in enumerate(qs)}}},
            {"id": "sortBy", "options": {"sort": [{"field": x_field}]}},
        ),
        overrides=overrides,
    )


def pack_alerts_panel(packs: str | tuple[str, ...], title: str, width: int = 24) -> "Panel | None":
    """Pending and firing alerts of the rule packs ``rules/<pack>.yml`` over time, 0 when none (None
    when the packs have no alerts yet)."""
    packs = (packs,) if isinstance(packs, str) else packs
    names = tuple(sorted({n for pack in packs for n in pack_alerts(pack)}))
    if not names:
        return None
    alerts = alert_counts(("model", "alertname", "alertstate"), f'alertname=~"{"|".join(names)}"')
    files = ", ".join(f"rules/{p}.yml" for p in packs)
    return timeseries(
        title,
        Query(zero_fill(alerts), "{{model}} {{alertname}} {{alertstate}}"),
        metrics=("monitor_alerts",), bars=True, width=width,
        description=f"Pending and firing alerts of {files} ({', '.join(names)}), as the agent evaluates them, or as "
                    "Prometheus does (ALERTS) for those the agent does not evaluate; 0 when none.",
    )
