"""The shape of one catalog entry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["COUNTER", "GAUGE", "HISTOGRAM", "MetricSpec", "SpecError"]

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = {"model", "le", "quantile", "__name__"}


class SpecError(ValueError):
    """A metric spec (or a use of one) breaks the catalog's rules."""


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric.

    Parameters
    ----------
    name
        The metric family name without the ``_total`` suffix of counters: Prometheus naming with
        base units (``_seconds``, ``_bytes``, ``_ratio``), as prometheus-client expects it.
    type
        ``counter``, ``gauge`` or ``histogram``.
    help
        One sentence for the README table, the exposition's HELP line and dashboard descriptions.
    labels
        Label names besides ``model``, which every series carries. Keep them low in cardinality;
        the store caps the number of series of each metric.
    buckets
        Upper bounds of a histogram's buckets (``+Inf`` is implied).
    unit
        The Grafana unit of the value (``s``, ``percentunit``, ``short``...), used by dashboards.
    concern
        Which part of the agent exports it; orders the README table.
    max_series
        Cap on label combinations; further ones are refused and counted, so that a bug or an
        attacker cannot blow up memory or the scrape.
    """

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    unit: str = "short"
    concern: str = "core"
    max_series: int = 1000
    _label_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise SpecError(f"invalid metric name {self.name!r}")
        if self.type not in (COUNTER, GAUGE, HISTOGRAM):
            raise SpecError(f"{self.name}: type must be counter, gauge or histogram, not {self.type!r}")
        if self.type == COUNTER and self.name.endswith("_total"):
            raise SpecError(f"{self.name}: declare counters without the _total suffix; it is added on export")
        if self.type == HISTOGRAM:
            if not self.buckets or list(self.buckets) != sorted(set(self.buckets)):
                raise SpecError(f"{self.name}: a histogram needs strictly increasing buckets")
        elif self.buckets:
            raise SpecError(f"{self.name}: only histograms have buckets")
        for label in self.labels:
            if not _LABEL.match(label) or label in _RESERVED_LABELS or label.startswith("__"):
                raise SpecError(f"{self.name}: label {label!r} is invalid or reserved")
        if len(set(self.labels)) != len(self.labels):
            raise SpecError(f"{self.name}: duplicate label names")
        object.__setattr__(self, "_label_set", frozenset(self.labels))

    @property
    def exposed_name(self) -> str:
        """The name as it appears in the exposition and in PromQL (counters get ``_total``)."""
        return self.name + "_total" if self.type == COUNTER else self.name

    def series_names(self) -> tuple[str, ...]:
        """Every sample name this family produces in the exposition."""
        if self.type == HISTOGRAM:
            return (self.name + "_bucket", self.name + "_sum", self.name + "_count")
        return (self.exposed_name,)
