"""What a page quotes from other series must be its own replica's.

Where Prometheus scrapes one model from several replicas (pods, or gunicorn workers' sidecars),
every series carries ``instance``, and an alert fires per replica. An annotation that looks up
more figures with ``query`` (the drift alarm's top features, a stuck feature's run length) must
select the alerting replica's series (``instance=%q`` with ``$labels.instance``), or ``first``
picks whichever replica sorts first and ``range`` lists every replica's series mixed: the page
of replica y then quoted replica x's run length or features. The agent's own series have no
``instance``, which ``instance=""`` matches, so the same text works there.

Checked statically for every shipped alert, and by behaviour on two replicas with the real
``promtool test rules`` and the agent's ``monitor rules test`` on the same unit-test file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.promql import ast
from tests.conftest import REPO_ROOT, require_binary
from tests.test_oncall_session7 import ALERTS, _keeps

#: A ``printf "<selector>" args... | query`` inside an annotation.
_QUERY = re.compile(r'printf\s+"((?:[^"\\]|\\.)*)"((?:\s+\$labels\.\w+)*)\s*\|\s*query')
_URL = "https://github.com/model-monitor/model-monitor/blob/main/README.md#"


def _queries(rule: dict) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for text in rule.get("annotations", {}).values()
            for m in _QUERY.finditer(str(text))]


def _unscoped_queries(rule: dict) -> list[str]:
    """The annotation queries of an alert whose series keep ``instance`` that do not select it."""
    if not _keeps(ast.parse_expr(rule["expr"]), "instance"):
        return []
    return [sel for sel, args in _queries(rule) if "instance=%q" not in sel or "$labels.instance" not in args]


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_annotation_queries_read_the_alerting_replicas_series(alert: str) -> None:
    pack, rule = ALERTS[alert]
    assert _unscoped_queries(rule) == [], f"{pack.name}: {alert} quotes series of any replica"


def test_the_check_sees_queries_and_spares_aggregated_alerts() -> None:
    assert sum(len(_queries(rule)) for _, rule in ALERTS.values()) >= 10  # the regex reads the packs
    rule = {"expr": "monitor_data_stuck == 1", "annotations": {"description":
            '{{ with printf "monitor_data_stuck_run_rows{model=%q,feature=%q}" $labels.model $labels.feature | query }}'}}
    assert _unscoped_queries(rule) == ["monitor_data_stuck_run_rows{model=%q,feature=%q}"]
    rule["expr"] = "max by (model, feature) (monitor_data_stuck) == 1"  # no instance on the alert: nothing to select
    assert _unscoped_queries(rule) == []


def _run_both(tmp_path: Path, unit: dict) -> None:
    test = tmp_path / "test.yml"
    test.write_text(yaml.safe_dump(unit, sort_keys=False, width=1000))
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "promtool: " + result.stdout + result.stderr
    agent = CliRunner().invoke(main, ["rules", "test", str(test)])
    assert agent.exit_code == 0, "monitor rules test: " + agent.output


def test_stuck_feature_text_quotes_its_own_replicas_run(tmp_path: Path) -> None:
    """Replica x's feature is stuck for 900 rows; replica y's is not (its run: 1 row). x's page
    says 900; the agent's own series (model m, no instance) reads its own 500."""
    series = [
        {"series": 'monitor_data_stuck{model="r",instance="a-y",feature="f"}', "values": "0x20"},
        {"series": 'monitor_data_stuck_run_rows{model="r",instance="a-y",feature="f"}', "values": "1x20"},
        {"series": 'monitor_data_stuck{model="r",instance="b-x",feature="f"}', "values": "1x20"},
        {"series": 'monitor_data_stuck_run_rows{model="r",instance="b-x",feature="f"}', "values": "900x20"},
        {"series": 'monitor_data_stuck{model="m",feature="f"}', "values": "1x20"},
        {"series": 'monitor_data_stuck_run_rows{model="m",feature="f"}', "values": "500x20"},
    ]

    def expected(model: str, rows: int, **extra: str) -> dict:
        return {"exp_labels": {"severity": "warning", "model": model, "feature": "f", **extra}, "exp_annotations": {
            "summary": f"Feature `f` of model {model} is stuck",
            "description": f"`f` has repeated the same value for {rows} consecutive rows, longer than the reference "
                           "makes plausible: a stuck sensor, a default filled in by a failing join, or a cache serving "
                           "one record.",
            "runbook_url": _URL + "modelfeaturestuck"}}

    _run_both(tmp_path, {"rule_files": [str(REPO_ROOT / "rules" / "data_quality.yml")], "evaluation_interval": "1m",
                         "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [
                             {"eval_time": "10m", "alertname": "ModelFeatureStuck",
                              "exp_alerts": [expected("m", 500), expected("r", 900, instance="b-x")]}]}]})


def test_input_drift_text_lists_its_own_replicas_features(tmp_path: Path) -> None:
    """Both replicas in alarm, on different features: each page names and lists its own."""
    def top(instance: str, rank: int, feature: str, score: float) -> dict:
        return {"series": f'monitor_drift_top_feature{{model="r",instance="{instance}",detector="input_drift",'
                          f'rank="{rank}",feature="{feature}",change="shifted",since="t0"}}', "values": f"{score}x10"}

    series = [{"series": f'monitor_drift_detected{{model="r",instance="{i}",detector="input_drift"}}', "values": "1x10"}
              for i in ("a", "b")]
    series += [top("a", 1, "age", 3.0), top("a", 2, "income", 2.0), top("b", 1, "zip", 5.0)]

    def expected(instance: str, features: list[tuple[str, float]]) -> dict:
        listed = "".join(f" {rank}. `{f}` shifted ({score:.1f} x threshold);"
                         for rank, (f, score) in enumerate(features, start=1))
        return {"exp_labels": {"severity": "warning", "model": "r", "instance": instance, "detector": "input_drift"},
                "exp_annotations": {
                    "summary": f"Input drift on model r: feature `{features[0][0]}` shifted since t0",
                    "description": "The input distribution left the reference (sequential test, calibrated false-alarm "
                                   f"rate). Features driving it, by how far each one's distribution moved (value: its "
                                   f"score at the latest test, x threshold):{listed} See "
                                   "monitor_drift_feature_effect for effect sizes per feature.",
                    "runbook_url": _URL + "modelinputdrift"}}

    _run_both(tmp_path, {"rule_files": [str(REPO_ROOT / "rules" / "drift.yml")], "evaluation_interval": "1m",
                         "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [
                             {"eval_time": "5m", "alertname": "ModelInputDrift",
                              "exp_alerts": [expected("a", [("age", 3.0), ("income", 2.0)]),
                                             expected("b", [("zip", 5.0)])]}]}]})
