"""Test-only copies of rule files with short ``for:`` durations and a 1 s group interval.

The shipped packs hold alerts for minutes (``for: 10m``) as production should; a three-minute
end-to-end test cannot wait that long. The copies keep every expression, label and annotation
exactly as shipped and only shorten ``for`` / ``keep_firing_for`` (to at most ``max_for``) and the
group ``interval``, so both evaluators are tested on the shipped expressions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.rules.duration import parse_duration

__all__ = ["fast_copy", "alert_rules"]


def _shorten(value: Any, max_s: float, max_text: str) -> Any:
    return max_text if value is not None and parse_duration(str(value)) > max_s else value


def fast_copy(src: Path, dst: Path, *, max_for: str = "2s", interval: str = "1s") -> Path:
    """Write ``dst``: ``src`` (a rule file, or a PrometheusRule whose ``spec`` holds the groups)
    with ``for`` and ``keep_firing_for`` capped at ``max_for`` and every group evaluated every
    ``interval``."""
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    body = doc["spec"] if doc.get("kind") == "PrometheusRule" else doc
    max_s = parse_duration(max_for)
    for group in body["groups"]:
        group["interval"] = interval
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = _shorten(rule[key], max_s, max_for)
    dst.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=1000), encoding="utf-8")
    return dst


def alert_rules(path: Path) -> dict[str, dict[str, Any]]:
    """alert name -> rule (expr, labels, annotations) of a rule file or PrometheusRule."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    body = doc["spec"] if doc.get("kind") == "PrometheusRule" else doc
    return {r["alert"]: r for g in body["groups"] for r in g["rules"] if "alert" in r}
