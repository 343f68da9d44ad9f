"""Links from the shipped packs' alerts to the bundled Grafana dashboards (``rules.dashboard_url``,
``monitor rules export --dashboard-url``).

Each alert of a shipped pack gets a ``dashboard_url`` annotation, beside its ``runbook_url``: the
dashboard of ``grafana/dashboards/`` that shows it (its pack's "alerts" panel), with the alert's
``model`` (and ``instance``, ``detector``, ``feature``, ``segment`` where the dashboard has that
variable and the alert that label) selected. Prometheus has no setting for a Grafana address, so
as the monitoring mixins do (a ``grafanaUrl`` of their build), the base URL is written into the
annotation when the rules are loaded or exported: the annotation is an ordinary template of
``$labels``, which Prometheus and the agent expand alike. An alert that already has a
``dashboard_url`` keeps its own.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor.dashboards.packs import pack_alerts

if TYPE_CHECKING:
    from monitor.rules.model import RuleGroup

__all__ = ["ANNOTATION", "DASHBOARD_VARIABLES", "dashboard_of", "dashboard_annotation", "with_dashboard_links"]

#: the annotation's name (as the mixins' ``dashboard_url``, beside the packs' ``runbook_url``)
ANNOTATION = "dashboard_url"

#: the dashboard uid of each pack's alerts (core: the model-level alerts on the overview, the
#: monitor's own on the agent's health)
_PACK_DASHBOARD = {"confidence": "monitor-confidence", "drift": "monitor-drift", "data_quality": "monitor-drift",
                   "probing": "monitor-probing"}
_CORE_MODEL_DASHBOARD, _CORE_AGENT_DASHBOARD = "monitor-overview", "monitor-agent"

#: each dashboard's variables that an alert's label of the same name selects (datasource aside)
DASHBOARD_VARIABLES: dict[str, tuple[str, ...]] = {
    "monitor-overview": ("model",),
    "monitor-agent": ("model",),
    "monitor-confidence": ("model", "instance", "segment"),
    "monitor-drift": ("model", "instance", "detector", "feature"),
    "monitor-probing": ("model",),
}

#: the ``model`` of the sidecar's own series, which no dashboard's model variable lists: all models
_SIDECAR_MODEL = "_sidecar"


@functools.lru_cache(maxsize=1)
def _dashboards() -> dict[str, str]:
    """Alert name -> dashboard uid, of every shipped pack (read once)."""
    out = {name: _CORE_AGENT_DASHBOARD if name.startswith("Monitor") else _CORE_MODEL_DASHBOARD
           for name in pack_alerts("core")}
    for pack, uid in _PACK_DASHBOARD.items():
        out.update(dict.fromkeys(pack_alerts(pack), uid))
    return out


def dashboard_of(alertname: str) -> str | None:
    """The uid of the bundled dashboard showing ``alertname``, None for an alert of no shipped pack."""
    return _dashboards().get(alertname)


def dashboard_annotation(base_url: str, alertname: str) -> str | None:
    """The ``dashboard_url`` template of ``alertname`` under the Grafana at ``base_url`` (its root
    URL, a sub-path included), None for an alert of no shipped pack."""
    uid = dashboard_of(alertname)
    if uid is None:
        return None
    model = (f'{{{{ if eq $labels.model "{_SIDECAR_MODEL}" }}}}var-model=$__all'
             "{{ else }}var-model={{ $labels.model | urlquery }}{{ end }}")
    others = "".join(f"{{{{ with $labels.{v} }}}}&var-{v}={{{{ . | urlquery }}}}{{{{ end }}}}"
                     for v in DASHBOARD_VARIABLES[uid] if v != "model")
    return f"{base_url.rstrip('/')}/d/{uid}?{model}{others}"


def with_dashboard_links(groups: Sequence["RuleGroup"], base_url: str) -> list["RuleGroup"]:
    """``groups`` with a ``dashboard_url`` annotation on each alert of a shipped pack (by name: a
    copy of a pack loaded by its path too) that has none; ``base_url`` empty: unchanged."""
    from monitor.rules.model import AlertingRule

    if not base_url:
        return list(groups)
    out = []
    for group in groups:
        rules = []
        for rule in group.rules:
            link = dashboard_annotation(base_url, rule.alert) if isinstance(rule, AlertingRule) else None
            if link is not None and ANNOTATION not in rule.annotations:
                rule = dataclasses.replace(rule, annotations={**rule.annotations, ANNOTATION: link})
            rules.append(rule)
        out.append(dataclasses.replace(group, rules=tuple(rules)))
    return out
