"""ModelCalibrationErrorHigh as shipped (rules/confidence.yml) in a promtool rule unit test, run by
the agent's own runner and by the real promtool: it fires on an error above 0.1 whose p-value is
under 0.01 (after its 30 minutes), and on nothing else; the error's and the p-value's label sets
match once ``estimator`` is ignored, and only those of the same model and instance pair up."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import yaml

from monitor.rules.unittest import run_unit_tests
from tests.conftest import REPO_ROOT, require_binary

RULES = REPO_ROOT / "rules" / "confidence.yml"
ALERT = "ModelCalibrationErrorHigh"
ERROR = 'monitor_calibration_error_ratio{{estimator="debiased_l2_equal_mass",model="{model}",instance="{instance}"}}'
PVALUE = 'monitor_calibration_error_pvalue{{model="{model}",instance="{instance}"}}'

#: model -> (error values, p-value values, the p-value's instance), one value a minute for an hour
CASES = {
    "bad": ("0.15x60", "0.001x60", "a"),        # large and significant: fires after 30m
    "chance": ("0.15x60", "0.2x60", "a"),       # large, not significant: silent
    "no_pvalue": ("0.15x60", None, "a"),        # p-value absent: silent
    "small": ("0.05x60", "0.001x60", "a"),      # significant, under the bound: silent
    "elsewhere": ("0.15x60", "0.001x60", "b"),  # the p-value of another instance: no pair, silent
    "late": ("0.15x60", "0.5x29 0.001x30", "a"),  # significant from minute 30: fires from minute 60
}


def _rule() -> dict:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    return next(r for r in rules if r.get("alert") == ALERT)


def _expected_alert(model: str) -> dict:
    annotations = {k: v.replace("{{ $labels.model }}", model).replace("{{ $value | humanizePercentage }}", "15%")
                   for k, v in _rule()["annotations"].items()}
    assert "{{" not in "".join(annotations.values()), "the test renders every template of the annotations"
    return {"exp_labels": {"severity": "warning", "model": model, "instance": "a", "estimator": "debiased_l2_equal_mass"},
            "exp_annotations": annotations}


def _test_file(tmp_path: Path) -> Path:
    series = []
    for model, (error, pvalue, p_instance) in CASES.items():
        series.append({"series": ERROR.format(model=model, instance="a"), "values": error})
        if pvalue is not None:
            series.append({"series": PVALUE.format(model=model, instance=p_instance), "values": pvalue})
    at = {"25m": [], "35m": [_expected_alert("bad")], "55m": [_expected_alert("bad")],
          "60m": [_expected_alert("bad"), _expected_alert("late")]}
    doc = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
           "tests": [{"interval": "1m", "input_series": series,
                      "alert_rule_test": [{"eval_time": t, "alertname": ALERT, "exp_alerts": exp} for t, exp in at.items()]}]}
    path = tmp_path / "calibration_rule_test.yml"
    path.write_text(json.dumps(doc, indent=1))
    return path


def test_the_expression_needs_the_bound_and_the_pvalue() -> None:
    expr = " ".join(_rule()["expr"].split())
    assert expr == ('monitor_calibration_error_ratio{estimator="debiased_l2_equal_mass"} > 0.1 and ignoring(estimator) '
                    "monitor_calibration_error_pvalue < 0.01")
    assert _rule()["for"] == "30m"


def test_the_agents_runner_fires_only_on_a_significant_error(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_unit_tests([str(_test_file(tmp_path))], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()


def test_promtool_agrees(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    path = _test_file(tmp_path)
    proc = subprocess.run([promtool, "test", "rules", path.name], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
