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
          "true": None, "2001-12-14": None, '"5"': None, "'5'": None}

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
    else:
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
