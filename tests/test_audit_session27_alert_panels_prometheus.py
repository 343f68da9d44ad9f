"""The dashboards' alert panels count the alerts Prometheus fires too.

README and examples/prometheus/ offer two ways to evaluate the shipped packs: in the agent
(``monitor_alerts``) or in a Prometheus that loads the exported rules (``ALERTS``), where the agent
then has no rules (its default). The panels on-call reads first ("Firing alerts" on the Overview,
"Alerts by name", each dashboard's pack alerts) read ``monitor_alerts`` only: with Prometheus
evaluating, the Overview said "0" in green on a model whose alerts were firing.

Each panel query is evaluated by the real ``promtool test rules`` (``promql_expr_test``): model
``prom`` has only Prometheus's alerts (two replicas), ``agent`` only the agent's, ``both`` is
evaluated by both (counted once, the agent's), ``quiet`` fires nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.dashboards import build
from monitor.dashboards.queries import iter_queries, substitute
from tests.conftest import require_binary

DASHBOARDS = {d.uid: d.to_json() for d in build.dashboards()}
VARIABLES = {"model": ".*", "instance": ".*", "segment": ".*", "detector": ".*", "feature": ".*",
             "datasource": "model-monitor-prometheus"}
_ALWAYS = "monitor_queue_capacity"

SERIES = [
    *({"series": f'{_ALWAYS}{{model="{m}",instance="{i}",job="app"}}', "values": "100x10"}
      for m, i in (("prom", "a"), ("prom", "b"), ("agent", "a"), ("both", "a"), ("quiet", "a"))),
    # Prometheus evaluating ModelInputDrift (drift pack) on both replicas of "prom", and on "both"
    *({"series": f'ALERTS{{alertname="ModelInputDrift",alertstate="firing",severity="warning",model="{m}",'
                 f'detector="input_drift",instance="{i}",job="app"}}', "values": "1x10"}
      for m, i in (("prom", "a"), ("prom", "b"), ("both", "a"))),
    # the agent's own evaluation: one series per (alertname, alertstate, model, severity), the count as value
    *({"series": f'monitor_alerts{{alertname="ModelInputDrift",alertstate="firing",severity="warning",model="{m}",'
                 f'instance="a",job="app"}}', "values": "1x10"} for m in ("agent", "both")),
]


def _query(uid: str, title: str) -> str:
    (q,) = [q for q in iter_queries(DASHBOARDS[uid]) if q.kind == "panel" and q.title == title]
    return substitute(q.expr, VARIABLES)


def _promtool(tmp_path: Path, expr: str, expected: list[dict]) -> None:
    promtool = require_binary("promtool")
    (tmp_path / "empty.yml").write_text("groups: []\n")
    unit = {"rule_files": ["empty.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": SERIES,
        "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": expected}]}]}
    test = tmp_path / "test.yml"
    test.write_text(yaml.safe_dump(unit, sort_keys=False, width=10_000))
    result = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, f"{expr}\n{result.stdout}{result.stderr}"


def test_firing_alerts_stat_counts_prometheus_alerts_where_the_agent_has_none(tmp_path: Path) -> None:
    _promtool(tmp_path, _query("monitor-overview", "Firing alerts"), [
        {"labels": '{model="prom"}', "value": 2}, {"labels": '{model="agent"}', "value": 1},
        {"labels": '{model="both"}', "value": 1}, {"labels": '{model="quiet"}', "value": 0}])


@pytest.mark.parametrize("uid,title", [("monitor-overview", "Alerts by name"),
                                       ("monitor-drift", "Drift and data quality alerts")])
def test_alerts_by_name_panels_show_prometheus_alerts_where_the_agent_has_none(tmp_path: Path, uid: str,
                                                                                title: str) -> None:
    def alert(model: str, value: int) -> dict:
        return {"labels": f'{{model="{model}",alertname="ModelInputDrift",alertstate="firing"}}', "value": value}

    _promtool(tmp_path, _query(uid, title), [alert("prom", 2), alert("agent", 1), alert("both", 1),
                                             {"labels": '{model="quiet"}', "value": 0}])


def test_every_shipped_alert_keeps_model_which_the_alert_panels_group_alerts_by() -> None:
    from monitor.promql import ast
    from tests.promql_labels import output_labels
    from tests.test_oncall_session7 import ALERTS

    for name, (pack, rule) in ALERTS.items():
        labels = output_labels(ast.parse_expr(rule["expr"]))
        assert labels is not None and "model" in labels, f"{pack.name}: {name} has no model label: no panel shows it"
