"""promtool's own test files (../shared/conformance/prometheus-v2.42.0/promtool/): ``monitor rules
test`` and ``monitor rules check`` give promtool's verdicts, and its exact report where the agent
reproduces promtool's messages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli.rules import rules
from tests.conftest import require_binary, require_shared

CONFORMANCE = ("conformance", "prometheus-v2.42.0", "promtool")


def _dir() -> Path:
    return require_shared(*CONFORMANCE)


def _files() -> list[str]:
    path = Path(__file__).resolve().parent.parent.parent / "shared" / Path(*CONFORMANCE)
    return sorted(p.name for p in path.glob("*.yml")) if path.exists() else ["<missing>"]


def ours(command: str, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.chdir(_dir())
    res = CliRunner().invoke(rules, [command, name])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout, res.stderr


def promtool(command: str, name: str) -> tuple[int, str, str]:
    exe = require_binary("promtool")
    proc = subprocess.run([exe, command, "rules", name], cwd=_dir(), capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


# Verdicts asserted by Prometheus v2.42's own tests (cmd/promtool/unittest_test.go, with the
# @ modifier and negative offsets enabled as promtool's CLI does by default).
PROMETHEUS_TEST_VERDICTS = {
    "unittest.yml": 0, "long-period.yml": 0, "bad-input-series.yml": 1, "bad-promql.yml": 1,
    "bad-rules-syntax-test.yml": 1, "bad-rules-error-test.yml": 1, "failing.yml": 1,
    "at-modifier-test.yml": 0, "negative-offset-test.yml": 0,
}


@pytest.mark.parametrize("name", sorted(PROMETHEUS_TEST_VERDICTS))
def test_unit_test_verdicts_of_prometheus_suite(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = ours("test", name, monkeypatch)
    assert code == PROMETHEUS_TEST_VERDICTS[name], out + err
    assert out.startswith(f"Unit Testing:  {name}\n")
    assert ("  SUCCESS" in out) == (code == 0) and ("  FAILED:" in err) == (code != 0)


@pytest.mark.parametrize("command", ["test", "check"])
@pytest.mark.parametrize("name", _files())
def test_same_verdict_as_real_promtool(command: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    want_code, want_out, want_err = promtool(command, name)
    code, out, err = ours(command, name, monkeypatch)
    assert code == want_code, (
        f"monitor rules {command} {name}: exit {code}, promtool: exit {want_code}\n"
        f"--- ours ---\n{out}{err}\n--- promtool ---\n{want_out}{want_err}")


@pytest.mark.parametrize("command,name", [("test", "failing.yml"), ("test", "unittest.yml"),
                                          ("test", "long-period.yml"), ("check", "rules.yml"),
                                          ("check", "rules_duplicates.yml")])
def test_same_report_text_as_real_promtool(command: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    want = promtool(command, name)
    got = ours(command, name, monkeypatch)
    assert got == want


def test_failing_report_lists_every_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = ours("test", "failing.yml", monkeypatch)
    assert code == 1
    assert err.count("alertname:") == 3 and err.count('expr: "test"') == 1
    assert "got: {__name__=\"test\"} 0E+00" in err
    assert 'Annotations:{description=" of job test has been down for more than 5 minutes.", summary="Instance  down"}' in err
