"""Review of the command line as a user and a script see it: bad arguments and unreadable inputs
are one line naming the argument or file and the fix (exit 1, or click's 2 for an option out of
range), never a traceback, and ``--json`` output is strict JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from monitor.cli import main
from tests.test_review_cli_outputs import _reference_csv, run


# -- arguments out of range ----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("serve", "--config", "monitor.yaml", "--port", "70000"),  # was bound as 70000 % 65536 = 4464
    ("serve", "--config", "monitor.yaml", "--proxy-port", "70000"),  # was an OverflowError traceback
    ("demo", "--port", "70000"),
    ("demo", "--rate", "0"),  # was a ZeroDivisionError in the traffic thread, and the demo ran on without traffic
    ("demo", "--duration", "-5"),  # ran nothing and exited 0
    ("demo", "--speed", "0"),
])
def test_out_of_range_options_are_usage_errors(args: tuple[str, ...]) -> None:
    res = run(*args)
    assert res.exit_code == 2 and "is not in the range" in res.output, res.output


# -- unreadable inputs ---------------------------------------------------------------------------


def test_rules_test_on_a_non_utf8_file_is_a_failure_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_bytes(b"\xff\xfe rule_files: []\n")
    res = CliRunner().invoke(main, ["rules", "test", str(tmp_path / "t.yml")])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1 and "test file is not valid UTF-8" in res.output, res.output


def test_reference_build_of_a_cut_npz_does_not_talk_of_pickles(tmp_path: Path) -> None:
    np.savez(tmp_path / "ref.npz", X=np.random.default_rng(0).random((300, 3)))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ref.npz").read_bytes()[:500])
    res = run("reference", "build", str(tmp_path / "cut.npz"), "-o", str(tmp_path / "p.npz"), "--quiet")
    assert res.exit_code == 1 and "cut short" in res.output and "pickle" not in res.output, res.output


def test_reference_build_of_a_profile_says_it_is_a_profile(tmp_path: Path) -> None:
    data = _reference_csv(tmp_path / "ref.csv")
    assert run("reference", "build", str(data), "-o", str(tmp_path / "p.npz"), "--output-columns", "p0,p1",
               "--label-column", "label", "--quiet").exit_code == 0
    res = run("reference", "build", str(tmp_path / "p.npz"), "-o", str(tmp_path / "q.npz"), "--quiet")
    assert res.exit_code == 1 and "is a saved profile, not data" in res.output, res.output


def test_reference_show_json_is_strict_json_for_an_all_missing_feature(tmp_path: Path) -> None:
    """A feature that is always missing has NaN for min, max, mean and std: written as ``NaN``,
    which strict JSON parsers refuse."""
    rng = np.random.default_rng(0)
    lines = ["a,b,p0,p1"] + [f"{rng.normal()},,{p},{1 - p}" for p in rng.random(200)]
    (tmp_path / "ref.csv").write_text("\n".join(lines) + "\n")
    assert run("reference", "build", str(tmp_path / "ref.csv"), "-o", str(tmp_path / "p.npz"), "--output-columns",
               "p0,p1", "--quiet").exit_code == 0
    res = CliRunner().invoke(main, ["reference", "show", str(tmp_path / "p.npz"), "--json"])
    assert res.exit_code == 0, res.output

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    info = json.loads(res.stdout, parse_constant=refuse)
    b = next(f for f in info["features"] if f["feature"] == "b")
    assert b["missing"] == 1.0 and b["min"] is None and b["mean"] is None


def test_runbooks_tool_on_a_file_without_markers_says_so_and_leaves_it(tmp_path: Path, capsys) -> None:
    """``python -m monitor.runbooks FILE`` raised ``ValueError: substring not found``."""
    from monitor.runbooks import main as runbooks

    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert runbooks([str(readme)]) == 1
    assert "no <!-- runbooks:start --> line" in capsys.readouterr().err and readme.read_text() == "# no markers\n"


def test_serve_ready_file_in_a_missing_folder_is_named_not_told_as_a_port(tmp_path: Path) -> None:
    """The ready file's folder missing stopped the sidecar with "cannot listen: No such file or
    directory", which sent the user after the port."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("model: m\nserver: {port: 0}\n")
    ready = tmp_path / "missing" / "ready.txt"
    done = subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config", str(cfg),
                           "--ready-file", str(ready)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"--ready-file {ready}: No such file or directory" in done.stderr and "cannot listen" not in done.stderr


def test_help_states_the_exit_codes_scripts_branch_on() -> None:
    res = run("--help")
    assert res.exit_code == 0 and "Exit codes: 0 success; 1 a check failed" in res.output and "2 a usage error" in res.output


def test_config_check_names_a_folder_given_for_a_file(tmp_path: Path) -> None:
    """A folder named as a rule file or reference was reported as not existing."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "ref").mkdir()
    (tmp_path / "monitor.yaml").write_text("model: m\nrules: {files: [rules]}\nreference: {path: ref}\n")
    res = run("config", "check", str(tmp_path / "monitor.yaml"))
    assert res.exit_code == 1, res.output
    assert "rules.files: " in res.output and "it is a folder, not a file" in res.output
    assert "reference.path: " in res.output and "ref is a folder, not a file" in res.output


@pytest.mark.parametrize("module", ["monitor", "monitor.cli"])
def test_python_dash_m_runs_the_command(module: str) -> None:
    """Where the console script is not on PATH (a venv's python by its full path), ``python -m``
    runs the same command; ``monitor.cli`` had no ``__main__`` ("cannot be directly executed")."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", module, "rules", "packs"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "confidence" in res.stdout


def test_demo_refuses_an_alertmanager_that_is_no_url() -> None:
    """Checked as rules.alertmanager is: it was taken, and every alert then failed to send five
    times while the demo ran."""
    res = CliRunner().invoke(main, ["demo", "--alertmanager", "notaurl"])
    assert res.exit_code == 2
    assert "--alertmanager" in res.output and "not an http(s) URL" in res.output
