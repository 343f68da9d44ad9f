"""PromQL snippets for dashboard queries, built from catalog specs so that a renamed metric breaks the
build instead of silently emptying a panel.

Every selector carries ``model=~"$model"`` (the dashboard's model variable) and every rate, irate and
increase uses Grafana's ``$__rate_interval`` (four scrape intervals at least, so a panel never shows
gaps because a window held fewer than two samples).
"""

from __future__ import annotations

from monitor import catalog
from monitor.catalog import COUNTER, HISTOGRAM, MetricSpec

__all__ = [
    "MODEL",
    "PROCESS_MODEL",
    "RATE_INTERVAL",
    "ALWAYS_PRESENT",
    "spec",
    "series",
    "selector",
    "rate",
    "increase",
    "quantile",
    "zero_fill",
    "alert_counts",
]

#: The matcher every query carries: the dashboard's ``model`` variable (multi-value, "All" = ``.*``).
MODEL = 'model=~"$model"'
#: The matcher of process-level sidecar series (``model="_sidecar"``), shown whatever models are chosen.
PROCESS_MODEL = 'model=~"$model|_sidecar"'
#: Grafana's rate window: max(4 x scrape interval, step + scrape interval).
RATE_INTERVAL = "$__rate_interval"
#: Labels Prometheus gives every series of a scrape target: a selector may match them on any metric.
TARGET_LABELS = frozenset({"instance", "job"})
#: A gauge every monitor sets at creation; the model variable and zero-filled queries read it.
ALWAYS_PRESENT = "monitor_queue_capacity"


def spec(name: str) -> MetricSpec:
    """The catalog entry of ``name`` (fails the build, with close names, if it is unknown)."""
    return catalog.get(name)


def series(name: str, suffix: str = "") -> str:
    """The exposed series name of catalog metric ``name``: ``_total`` for counters, ``_bucket``,
    ``_sum`` or ``_count`` (``suffix``) for histograms."""
    s = spec(name)
    if s.type == HISTOGRAM:
        if suffix not in ("_bucket", "_sum", "_count"):
            raise ValueError(f"{name} is a histogram: pick suffix _bucket, _sum or _count")
        return name + suffix
    if suffix:
        raise ValueError(f"{name} is a {s.type}; only histograms take a series suffix")
    return s.exposed_name


def selector(name: str, *matchers: str, suffix: str = "", process: bool = False) -> str:
    """``series{model=~"$model", <matchers>}``; matchers are written as PromQL (``'reason="x"'``).

    ``process=True`` also matches the sidecar's process-level series (:data:`PROCESS_MODEL`). A
    matcher on a label the metric does not have is refused: it would match nothing.
    """
    s = spec(name)
    allowed = set(s.labels) | {"le"} if s.type == HISTOGRAM else set(s.labels)
    allowed |= TARGET_LABELS
    for m in matchers:
        label = m.split("=", 1)[0].rstrip("!~").strip()
        if label not in allowed:
            raise ValueError(f"{name} has no label {label!r} (labels: {', '.join(s.labels) or 'none'})")
    model = PROCESS_MODEL if process else MODEL
    return f"{series(name, suffix)}{{{', '.join((model,) + matchers)}}}"


def _counter_like(name: str, suffix: str) -> None:
    s = spec(name)
    if not (s.type == COUNTER or (s.type == HISTOGRAM and suffix)):
        raise ValueError(f"{name} is a {s.type}: rate/increase only make sense on counters and histogram series")


def rate(name: str, *matchers: str, suffix: str = "", process: bool = False) -> str:
    """``rate(<selector>[$__rate_interval])``."""
    _counter_like(name, suffix)
    return f"rate({selector(name, *matchers, suffix=suffix, process=process)}[{RATE_INTERVAL}])"


def increase(name: str, *matchers: str, suffix: str = "") -> str:
    """``increase(<selector>[$__rate_interval])``."""
    _counter_like(name, suffix)
    return f"increase({selector(name, *matchers, suffix=suffix)}[{RATE_INTERVAL}])"


def quantile(q: float, name: str, by: tuple[str, ...] = ("model",), process: bool = False) -> str:
    """``histogram_quantile`` of a catalog histogram over ``$__rate_interval``, by ``by``."""
    if spec(name).type != HISTOGRAM:
        raise ValueError(f"{name} is not a histogram")
    labels = ", ".join(by + ("le",))
    return f"histogram_quantile({q:g}, sum by ({labels}) ({rate(name, suffix='_bucket', process=process)}))"


def zero_fill(expr: str) -> str:
    """``expr``, or 0 for every watched model for which it has no series.

    Counters of rare events (errors, shed events, refused rows) have no series until the first one;
    a panel would then say "No data", which on-call cannot tell from a broken scrape. Filling with 0
    per model from a gauge every monitor exports keeps the two apart: a missing model still shows
    "No data". ``expr`` must keep the ``model`` label.
    """
    return f"({expr}) or on (model) sum by (model) (0 * {selector(ALWAYS_PRESENT)})"


def alert_counts(by: tuple[str, ...], *matchers: str) -> str:
    """Pending and firing alerts per ``by`` (which holds ``model``) from whichever evaluator fires
    them: the agent's ``monitor_alerts`` or, for an alert the agent does not evaluate, Prometheus's
    ``ALERTS`` (the packs loaded into Prometheus, the agent without rules: README's other setup).

    Why: panels reading ``monitor_alerts`` alone showed 0 for a model whose alerts Prometheus was
    firing. Matched per model and alert name, so an alert both evaluate counts once (the agent's)."""
    key = ("model", "alertname")
    grouped = ", ".join(dict.fromkeys(by + key))
    agent = f"sum by ({grouped}) ({selector('monitor_alerts', *matchers)})"
    prometheus = f"sum by ({grouped}) (ALERTS{{{', '.join((MODEL,) + matchers)}}})"
    both = f"{agent} or on ({', '.join(key)}) {prometheus}"
    return both if set(by) >= set(key) else f"sum by ({', '.join(by)}) ({both})"
