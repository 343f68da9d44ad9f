"""The shipped rule packs: promtool accepts them unchanged, every alert follows the
monitoring-mixins conventions, and every metric they query is one the agent exports."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from monitor import catalog
from monitor.promql import ast as promql_ast
from tests.conftest import REPO_ROOT, require_binary

PACKS = sorted((REPO_ROOT / "rules").glob("*.yml"))
EXPORTED = {n for spec in catalog.CATALOG.values() for n in spec.series_names()} | {"ALERTS", "ALERTS_FOR_STATE"}


def rules_of(path):
    doc = yaml.safe_load(path.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield group["name"], rule


def test_there_are_rule_packs():
    assert (REPO_ROOT / "rules" / "core.yml") in PACKS


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_promtool_accepts_the_pack_unchanged(pack):
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "rules", str(pack)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_alerts_follow_the_mixin_conventions(pack):
    for group, rule in rules_of(pack):
        if "alert" not in rule:
            continue
        where = f"{pack.name}: {group}: {rule['alert']}"
        assert rule["alert"][0].isupper() and " " not in rule["alert"], where
        assert rule.get("labels", {}).get("severity") in ("critical", "warning", "info"), where
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key), f"{where}: missing annotation {key}"
        assert annotations["runbook_url"].startswith("https://"), where


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_every_queried_metric_is_exported(pack):
    recorded = {rule["record"] for _, rule in rules_of(pack) if "record" in rule}
    for group, rule in rules_of(pack):
        tree = promql_ast.parse_expr(rule["expr"])
        for node in promql_ast.walk(tree):
            if isinstance(node, promql_ast.VectorSel) and node.name:
                assert node.name in EXPORTED | recorded, (
                    f"{pack.name}: {group}: {rule.get('alert') or rule.get('record')} queries {node.name}, "
                    "which is not in the metric catalog"
                )


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_the_agent_loads_the_pack(pack):
    from monitor.rules.loader import load_rule_files

    groups = load_rule_files([str(pack)])
    assert groups


def test_every_alert_has_a_runbook_in_the_readme():
    from monitor import runbooks

    alerts = {rule["alert"]: rule for pack in PACKS for _, rule in rules_of(pack) if "alert" in rule}
    assert set(alerts) == set(runbooks.RUNBOOKS), "monitor/runbooks.py and rules/*.yml disagree on the alerts"
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("<!-- runbooks:start -->"):readme.index("<!-- runbooks:end -->")]
    expected = runbooks.markdown(runbooks._pack_alerts(str(REPO_ROOT / "rules")))
    assert section.split("\n", 1)[1].strip() == expected.strip(), "stale runbooks: python -m monitor.runbooks README.md"
    for name, rule in alerts.items():
        assert rule["annotations"]["runbook_url"] == runbooks.runbook_url(name)
        assert f"### {name}\n" in readme
