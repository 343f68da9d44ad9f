"""What ``pip install`` gives a user who has no checkout: every package of the code, and the
rule packs and Grafana files shipped as data (``monitor.shipped``), usable through ``rules.packs``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from monitor.config import ConfigError, parse_config
from monitor.shipped import grafana_dir, rule_pack_files, rule_packs, rules_dir

REPO = Path(__file__).resolve().parent.parent
PACKS = sorted(p.stem for p in (REPO / "rules").glob("*.yml"))


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_package_list_names_every_package_of_the_code() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    code = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "monitor").rglob("__init__.py")}
    assert code - listed == set(), "packages of monitor/ missing from pyproject's [tool.setuptools] packages"
    data = {name for name in listed if name.startswith(("monitor._rules", "monitor._grafana"))}
    assert listed - code == data


def test_in_a_checkout_the_shipped_files_are_the_repository_folders() -> None:
    assert rules_dir() == REPO / "rules" and grafana_dir() == REPO / "grafana"
    assert list(rule_packs()) == PACKS


def test_rules_packs_in_the_config_name_the_shipped_packs(tmp_path: Path) -> None:
    (tmp_path / "mine.yml").write_text("groups: []\n")
    cfg = parse_config({"model": "m", "rules": {"packs": ["core", "confidence"], "files": ["mine.yml"]}},
                       base_dir=tmp_path).model()
    assert cfg.rules.files == (str(REPO / "rules" / "core.yml"), str(REPO / "rules" / "confidence.yml"),
                               str(tmp_path / "mine.yml"))
    everything = parse_config({"model": "m", "rules": {"packs": ["all", "core"]}}).model()
    assert [Path(f).stem for f in everything.rules.files] == PACKS  # each pack once


def test_an_unknown_pack_is_refused_naming_the_key_and_the_packs() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "m", "rules": {"packs": ["cor"]}})
    assert err.value.key == "rules.packs"
    assert "'cor' is not a shipped rule pack" in str(err.value) and all(p in str(err.value) for p in PACKS)
    with pytest.raises(ValueError, match="not a shipped rule pack"):
        rule_pack_files(["nope"])


@pytest.mark.slow
def test_a_wheel_carries_the_packs_and_the_dashboards(tmp_path: Path) -> None:
    """Build the wheel as pip would, install it into a folder of its own and use it from there:
    the packs load through rules.packs and the dashboards are where monitor.shipped says."""
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("model_monitor-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    probe = (
        "import json, monitor, monitor.shipped as s\n"
        "from monitor.config import parse_config\n"
        "from monitor.rules.loader import load_rule_files\n"
        "cfg = parse_config({'model': 'm', 'rules': {'packs': ['all']}}).model()\n"
        "groups = load_rule_files(cfg.rules.files)\n"
        "print(json.dumps({'monitor': monitor.__file__, 'rules': str(s.rules_dir()), 'files': list(cfg.rules.files),\n"
        "  'groups': len(groups), 'dashboards': sorted(p.name for p in (s.grafana_dir() / 'dashboards').glob('*.json')),\n"
        "  'provisioning': sorted(p.name for p in (s.grafana_dir() / 'provisioning').rglob('*.yml'))}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert Path(got["monitor"]).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(got["rules"]) == site / "monitor" / "_rules"
    assert [Path(f).stem for f in got["files"]] == PACKS and got["groups"] >= len(PACKS)
    assert got["dashboards"] == sorted(p.name for p in (REPO / "grafana" / "dashboards").glob("*.json"))
    assert got["provisioning"] == ["model-monitor.yml", "model-monitor.yml"]


def test_rules_packs_lists_the_shipped_packs_with_their_alerts() -> None:
    import yaml
    from click.testing import CliRunner

    from monitor.cli.rules import rules

    listed = CliRunner().invoke(rules, ["packs"])
    assert listed.exit_code == 0, listed.output
    for name in PACKS:
        doc = yaml.safe_load((REPO / "rules" / f"{name}.yml").read_text())
        alerts = sorted(r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r)
        assert f"{name}: {REPO / 'rules' / (name + '.yml')}\n  {len(alerts)} alerts: {', '.join(alerts)}" in listed.output
    only = CliRunner().invoke(rules, ["packs", "--paths"])
    assert only.exit_code == 0 and only.output.split() == [str(REPO / "rules" / f"{n}.yml") for n in PACKS]
