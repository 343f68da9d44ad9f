"""``monitor rules check|test|export``: output and exit codes like promtool; exports load unchanged
in promtool and in the agent."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli.rules import rules
from monitor.rules.loader import parse_rules_text
from tests.conftest import require_binary

GOOD = """
groups:
  - name: model
    interval: 30s
    rules:
      - record: model:errors:rate5m
        expr: sum by (model) (rate(model_errors_total[5m]))
      - alert: ModelErrors
        expr: model:errors:rate5m > 0.1
        for: 5m
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.model }}: {{ $value | humanize }} errors/s"
          description: |
            Multi-line text with "quotes" and {{ $labels.model }}.
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def invoke(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(rules, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout, res.stderr


def test_check_success(tmp_path: Path) -> None:
    p = write(tmp_path, "good.yml", GOOD)
    assert invoke("check", str(p)) == (0, f"Checking {p}\n  SUCCESS: 2 rules found\n\n", "")


def test_check_failure_lists_errors_and_exits_1(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yml", GOOD)
    bad = write(tmp_path, "bad.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 'up =='\n    for: 5 m\n")
    code, out, err = invoke("check", str(good), str(bad))
    assert code == 1
    assert "SUCCESS: 2 rules found" in out and f"Checking {bad}" in out
    assert err.startswith("  FAILED:\n")
    assert f'{bad}: 5:11: group "g", rule 1, "A": could not parse expression' in err
    assert "field 'for': not a valid duration string" in err


def test_check_lint_duplicates_is_not_fatal_unless_asked(tmp_path: Path) -> None:
    p = write(tmp_path, "dup.yml", "groups:\n- name: g\n  rules:\n  - {record: r, expr: up}\n  - {record: r, expr: up}\n")
    code, out, err = invoke("check", str(p))
    assert code == 0 and "lint error 1 duplicate rule(s) found.\nMetric: r\nLabel(s):\n" in err
    assert invoke("check", "--lint-fatal", str(p))[0] == 3
    assert invoke("check", "--lint=none", str(p))[0:2] == (0, f"Checking {p}\n  SUCCESS: 2 rules found\n\n")


def test_check_refuses_unsupported_promql_unless_syntax_only(tmp_path: Path) -> None:
    p = write(tmp_path, "u.yml", "groups:\n- name: g\n  rules:\n  - {record: r, expr: 'histogram_count(x)'}\n")
    code, _, err = invoke("check", str(p))
    assert code == 1 and "does not implement it" in err
    assert invoke("check", "--syntax-only", str(p))[0] == 0


def test_test_command_exit_codes(tmp_path: Path) -> None:
    write(tmp_path, "good.yml", GOOD)
    ok = write(tmp_path, "t.yml", """
        rule_files: [good.yml]
        tests:
          - interval: 30s
            input_series:
              - series: 'model_errors_total{model="m"}'
                values: 0+60x40
            alert_rule_test:
              - eval_time: 4m
                alertname: ModelErrors
                exp_alerts: []
              - eval_time: 12m
                alertname: ModelErrors
                exp_alerts:
                  - exp_labels: {model: m, severity: warning}
                    exp_annotations:
                      summary: "m: 2 errors/s"
                      description: "Multi-line text with \\"quotes\\" and m.\\n"
        """)
    code, out, err = invoke("test", str(ok))
    assert (code, err) == (0, "") and "  SUCCESS" in out
    bad = write(tmp_path, "t2.yml", "tests:\n- input_series: [{series: a, values: '1'}]\n  promql_expr_test: [{expr: a, eval_time: 0, exp_samples: []}]\n")
    code, out, err = invoke("test", str(bad))
    assert code == 1 and "  FAILED:" in err and "got: {__name__=\"a\"} 1E+00" in err


def test_export_prometheus_round_trips(tmp_path: Path) -> None:
    src = write(tmp_path, "good.yml", GOOD)
    out = tmp_path / "exported.yml"
    assert invoke("export", str(src), "-o", str(out))[0] == 0
    original, _ = parse_rules_text(src.read_text(), "x")
    exported, errs = parse_rules_text(out.read_text(), "x")
    assert errs == [] and [g.to_dict() for g in exported] == [g.to_dict() for g in original]


def test_export_keeps_a_group_s_query_offset(tmp_path: Path) -> None:
    """``query_offset`` (Prometheus >= 2.53) is not applied by the agent, whose metrics have no
    ingestion delay, but the Prometheus the rules are exported to applies it: it was dropped."""
    src = write(tmp_path, "offset.yml", "groups:\n- name: g\n  interval: 30s\n  query_offset: 1m\n  rules:\n"
                "  - record: r\n    expr: vector(1)\n")
    code, out, _ = invoke("export", str(src))
    assert code == 0
    assert yaml.safe_load(out)["groups"][0]["query_offset"] == "1m"


def test_export_operator(tmp_path: Path) -> None:
    src = write(tmp_path, "good.yml", GOOD)
    code, out, _ = invoke("export", str(src), "--format", "operator", "--namespace", "monitoring",
                          "--label", "release=prom", "--name", "ml-rules")
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    assert doc["metadata"] == {"name": "ml-rules", "namespace": "monitoring", "labels": {"release": "prom"}}
    assert [g["name"] for g in doc["spec"]["groups"]] == ["model"]
    assert doc["spec"]["groups"][0]["interval"] == "30s"


def test_export_refuses_bad_input(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n")
    code, _, err = invoke("export", str(bad))
    assert code == 1 and "field 'expr' must be set" in err
    a = write(tmp_path, "a.yml", GOOD)
    b = write(tmp_path, "b.yml", GOOD)
    code, _, err = invoke("export", str(a), str(b))
    assert code == 1 and "group names must be unique" in err
    code, _, err = invoke("export", str(a), "--format", "operator", "--label", "novalue")
    assert code == 2 and "KEY=VALUE" in err


@pytest.mark.parametrize("fmt", ["prometheus", "operator"])
def test_exported_files_pass_real_promtool(fmt: str, tmp_path: Path) -> None:
    exe = require_binary("promtool")
    src = write(tmp_path, "good.yml", GOOD)
    out = tmp_path / "exported.yml"
    assert invoke("export", str(src), "--format", fmt, "-o", str(out))[0] == 0
    if fmt == "operator":  # promtool checks the spec part, as the operator hands it to Prometheus
        out.write_text(yaml.safe_dump(yaml.safe_load(out.read_text())["spec"], sort_keys=False))
    proc = subprocess.run([exe, "check", "rules", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "SUCCESS: 2 rules found" in proc.stdout, proc.stdout + proc.stderr
