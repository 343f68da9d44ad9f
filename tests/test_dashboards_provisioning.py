"""Grafana provisioning and the Prometheus example: consistent with the dashboards, accepted by promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.dashboards import build
from monitor.dashboards.dashboard import DATASOURCE_UID
from tests.conftest import REPO_ROOT, require_binary

PROVISIONING = REPO_ROOT / "grafana" / "provisioning"
EXAMPLE = REPO_ROOT / "examples" / "prometheus"


def test_datasource_has_the_fixed_uid_the_dashboards_default_to() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "model-monitor.yml").read_text())
    (ds,) = doc["datasources"]
    assert ds["uid"] == DATASOURCE_UID and ds["type"] == "prometheus"
    for dash in build.dashboards():
        var = next(v for v in dash.to_json()["templating"]["list"] if v["name"] == "datasource")
        assert var["current"]["value"] == DATASOURCE_UID


def test_datasource_is_not_marked_default() -> None:
    """Grafana refuses to start when two provisioned datasources of one organization are both marked
    default ("Only one datasource per organization can be marked as default"); kube-prometheus-stack
    provisions its Prometheus as default, and this file is meant to be added beside it. The
    dashboards pick the datasource by its uid, so they need no default."""
    doc = yaml.safe_load((PROVISIONING / "datasources" / "model-monitor.yml").read_text())
    (ds,) = doc["datasources"]
    assert ds.get("isDefault", False) is False


def test_dashboard_provider_loads_the_generated_folder() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "model-monitor.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "$MODEL_MONITOR_DASHBOARDS"
    assert provider["allowUiUpdates"] is False  # edits belong in the generator, not the UI
    assert build.DEFAULT_DIR == REPO_ROOT / "grafana" / "dashboards"


def test_prometheus_example_with_exported_rules_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    shutil.copy(EXAMPLE / "prometheus.yml", tmp_path / "prometheus.yml")
    rules = sorted(str(p) for p in (REPO_ROOT / "rules").glob("*.yml"))
    res = CliRunner().invoke(main, ["rules", "export", *rules, "-o", str(tmp_path / "model-monitor.rules.yml")])
    assert res.exit_code == 0, res.output
    out = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout and "model-monitor.rules.yml" in out.stdout
