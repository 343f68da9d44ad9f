"""The one catalog of every metric the agent exports.

Everything that names a metric reads it from here: the metric store refuses names that are not in
the catalog, the exporter takes types and help texts from it, the README table and the Grafana
dashboards are generated from it, and the shipped rule packs are tested against it. A metric can
therefore never be exported without documentation, and a dashboard can never query a metric that
does not exist.

Specs are declared per concern in the sibling modules (one list each) and assembled here.
This package imports nothing heavy: the decorator's hot path may import it.
"""

from __future__ import annotations

from monitor.catalog.spec import COUNTER, GAUGE, HISTOGRAM, MetricSpec, SpecError
from monitor.catalog import core as _core
from monitor.catalog import rules as _rules
from monitor.catalog import sidecar as _sidecar
from monitor.catalog import confidence as _confidence
from monitor.catalog import drift as _drift
from monitor.catalog import probing as _probing

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "MetricSpec",
    "SpecError",
    "CATALOG",
    "get",
    "markdown_table",
]


def _assemble(*groups: tuple[MetricSpec, ...]) -> dict[str, MetricSpec]:
    catalog: dict[str, MetricSpec] = {}
    for group in groups:
        for spec in group:
            if spec.name in catalog:
                raise SpecError(f"metric {spec.name!r} is declared twice in the catalog")
            catalog[spec.name] = spec
    return catalog


#: Every exported metric by name. Concern modules append their tuple here.
CATALOG: dict[str, MetricSpec] = _assemble(
    _core.METRICS,
    _rules.METRICS,
    _sidecar.METRICS,
    _confidence.METRICS,
    _drift.METRICS,
    _probing.METRICS,
)


def get(name: str) -> MetricSpec:
    """Return the spec of ``name``, with an error that lists close names when it is unknown."""
    try:
        return CATALOG[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, CATALOG, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SpecError(f"metric {name!r} is not in the catalog (monitor/catalog){hint}") from None


def markdown_table() -> str:
    """The README's metric table: name, type, labels, meaning. Generated, never written by hand."""
    rows = ["| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]
    for spec in sorted(CATALOG.values(), key=lambda s: (s.concern, s.name)):
        labels = ", ".join(("model",) + spec.labels)
        rows.append(f"| `{spec.exposed_name}` | {spec.type} | {labels} | {spec.help} |")
    return "\n".join(rows)
