"""``rules.external_url`` with a trailing slash, as it is often written (``http://prometheus:9090/``):
Prometheus trims the slashes ending its ``--web.external-url`` path (``computeExternalURL``), so
that ``$externalURL`` and ``{{ externalURL }}`` read ``http://prometheus:9090`` and ``{{ pathPrefix }}``
reads ``""`` (``/prefix`` for ``.../prefix/``). The agent kept the slash: a runbook link written
``{{ $externalURL }}/graph?...`` read ``http://prometheus:9090//graph?...`` and ``pathPrefix`` read
``/``, where the same rule file in Prometheus renders without. Expected texts are what Prometheus
v2.42 renders with ``--web.external-url=http://prom.example:9090/prefix/`` (checked against the
real server's ``/api/v1/alerts``)."""

from __future__ import annotations

import pytest

from monitor.config import parse_config
from monitor.promql.storage import SeriesStore
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.loader import parse_rules_text

RULES = """
groups:
  - name: g
    interval: 1s
    rules:
      - alert: A
        expr: vector(1)
        annotations:
          ev: "{{ $externalURL }}"
          fn: "{{ externalURL }}"
          pp: "[{{ pathPrefix }}]"
          link: "{{ $externalURL }}/graph"
"""


def _external_url(written: str) -> str:
    cfg = parse_config({"model": "m", "features": ["a"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
                        "rules": {"external_url": written}})
    return cfg.model().rules.external_url


def _rendered(written: str) -> dict[str, str]:
    groups, errs = parse_rules_text(RULES, "r.yml")
    assert errs == []
    ev = RuleEvaluator(groups, storage=SeriesStore(retention_s=3600), external_url=_external_url(written))
    ev.evaluate(1000.0)
    (alert,) = ev.alerts()
    return alert.annotations


@pytest.mark.parametrize("written, base, prefix", [
    ("http://prom.example:9090/prefix/", "http://prom.example:9090/prefix", "/prefix"),
    ("http://prom.example:9090/prefix//", "http://prom.example:9090/prefix", "/prefix"),
    ("http://prom.example:9090/", "http://prom.example:9090", ""),
    ("http://prom.example:9090", "http://prom.example:9090", ""),
    ("https://prom.example/a/b", "https://prom.example/a/b", "/a/b"),
])
def test_templates_read_the_external_url_without_its_trailing_slash(written: str, base: str, prefix: str) -> None:
    assert _rendered(written) == {"ev": base, "fn": base, "pp": f"[{prefix}]", "link": base + "/graph"}
