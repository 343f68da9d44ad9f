"""A rule group's ``limit`` is read as Prometheus reads it (yaml.v3 into a Go int): ``5.0`` and
``5.9`` are 5, ``017`` is octal 15, ``-.inf`` a negative limit (none); ``1e20``, ``.nan``, a
uint64 past int64 and a quoted ``"5"`` are refused. Before (s38b's notes) ``limit: 5.0`` was
refused where promtool takes it, ``1e20`` taken where promtool refuses it, and ``017`` read as 17.
Each value is checked against the real ``promtool check rules`` (CI installs it), and the value
applied against ``promtool test rules``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.rules.yamlnodes import go_yaml_float, go_yaml_int
from tests.conftest import require_binary

__all__: list[str] = []

#: value -> the limit Prometheus applies, or None when it refuses the file
LIMITS = {"5": 5, "5.0": 5, "5.9": 5, "-3.7": -3, "1e3": 1000, "1e-3": 0, ".5": 0, "08": 8, "017": 15, "0o17": 15,
          "0x1F": 31, "+5": 5, "1_000": 1000, "9223372036854775807": 2 ** 63 - 1, "-.inf": -2 ** 63,
          "1e20": None, "9.3e18": None, "9223372036854775808": None, ".nan": None, ".inf": None, "inf": None,
          "true": None, "2001-12-14": None, '"5"': None, "'5'": None,
          # helper s39d: an explicit tag (text only for !!str), a float past float64 (text to Go), underscores after "."
          "!!str 5": None, "!!int '5'": 5, "!!float '5'": 5, "-1e400": None, ".5_0": 0, ".5e1_0": 5_000_000_000}

RULES = "groups:\n- name: g\n  limit: {}\n  rules:\n  - alert: A\n    expr: vector(1)\n"


@pytest.mark.parametrize("text", sorted(LIMITS))
def test_a_group_limit_is_taken_or_refused_as_promtool_does(tmp_path: Path, text: str) -> None:
    promtool = require_binary("promtool")
    path = tmp_path / "r.yml"
    path.write_text(RULES.format(text))
    theirs = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    ours = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert (theirs.returncode == 0) == (LIMITS[text] is not None), theirs.stdout + theirs.stderr
    assert (ours.exit_code == 0) == (theirs.returncode == 0), ours.output
    if LIMITS[text] is None:
        assert "field 'limit' must be an integer" in ours.output, ours.output
    elif not text.startswith("!!"):
        assert go_yaml_int(text) == LIMITS[text]


def test_the_limit_applied_is_the_one_promtool_applies(tmp_path: Path) -> None:
    """``limit: 017`` is 15: sixteen alerts exceed it (17 would not)."""
    promtool = require_binary("promtool")
    (tmp_path / "lim.yml").write_text("groups:\n- name: g\n  limit: 017\n  rules:\n  - alert: A\n    expr: up > 0\n")
    series = "\n".join(f"  - series: 'up{{i=\"{i}\"}}'\n    values: '1x5'" for i in range(16))
    (tmp_path / "t.yml").write_text("rule_files: [lim.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n"
                                    f"{series}\n  alert_rule_test:\n  - eval_time: 2m\n    alertname: A\n    exp_alerts: []\n")
    theirs = subprocess.run([promtool, "test", "rules", "t.yml"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    ours = CliRunner().invoke(main, ["rules", "test", str(tmp_path / "t.yml")])
    assert "exceeded limit of 15 with 16 alerts" in theirs.stdout + theirs.stderr
    assert "exceeded limit of 15 with 16 alerts" in ours.output, ours.output


def test_floats_of_unit_test_files_are_read_as_go_reads_them() -> None:
    assert go_yaml_float("017") == 15.0 and go_yaml_float("1.5") == 1.5 and go_yaml_float("-.Inf") == float("-inf")
    assert go_yaml_float("0x1F") == 31.0 and go_yaml_float("1_0") == 10.0 and go_yaml_float("08") == 8.0
    for text in ("inf", "infinity", "nan", "1.5.5", "0x", "true", ".iNf"):
        with pytest.raises(ValueError):
            go_yaml_float(text)


#: a unit-test file's float field (yaml.v2 into a float64: ``exp_samples[].value``) -> its value,
#: or None when promtool refuses the file (helper s39d: quoted and !!str text, a float past float64,
#: were taken; an underscore after "." refused)
FLOATS = {"5": 5.0, "017": 15.0, ".5_0": 0.5, ".5e1_0": 5e9, "1_000.5": 1000.5, "1e-400": 0.0, "'5'": None, '"5"': None,
          "!!str 5": None, "!!float '5'": 5.0, "!!int '5'": 5.0, "1e400": None, "-1e400": None, "inf": None}
UNIT_TEST = ("rule_files: [r.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series: []\n  promql_expr_test:\n"
             "  - expr: vector({expr})\n    eval_time: 0m\n    exp_samples:\n    - labels: '{{}}'\n      value: {value}\n")


@pytest.mark.parametrize("text", sorted(FLOATS))
def test_a_unit_test_float_is_taken_or_refused_as_promtool_does(tmp_path: Path, text: str) -> None:
    """The expected value is read as promtool reads it: the test passes against the value
    expected, and fails (as a file it cannot read) where promtool refuses the text."""
    promtool = require_binary("promtool")
    (tmp_path / "r.yml").write_text("groups:\n- name: g\n  rules:\n  - record: x\n    expr: vector(1)\n")
    want = FLOATS[text]
    (tmp_path / "t.yml").write_text(UNIT_TEST.format(expr=5 if want is None else repr(want), value=text))
    theirs = subprocess.run([promtool, "test", "rules", "t.yml"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    ours = CliRunner().invoke(main, ["rules", "test", str(tmp_path / "t.yml")])
    assert (theirs.returncode == 0) == (want is not None), theirs.stdout + theirs.stderr
    assert ours.exit_code == theirs.returncode, ours.output
    if want is None:
        assert "cannot unmarshal" in theirs.stdout + theirs.stderr and "cannot unmarshal" in ours.output, ours.output
