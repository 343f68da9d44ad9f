"""A Parquet reference that is not a whole Parquet file (truncated by a copy, or another file
renamed) is said as the other unreadable references are (review s30d).

Before, pyarrow's ArrowInvalid went through unwrapped: ``monitor config check`` ended in a
traceback, and a sidecar's reload (which checks the reference as the check does since session 29)
blamed the config: "monitor.yaml could not be read (ArrowInvalid: ...)".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_config
from monitor.config_files import reference_problems

pytest.importorskip("pyarrow")


def _config(tmp_path: Path) -> Path:
    (tmp_path / "ref.parquet").write_bytes(b"PAR1 the first bytes of a copy cut short")
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump({"model": "m", "features": ["a"],
                                      "output": {"kind": "probabilities", "classes": ["x", "y"]},
                                      "reference": {"path": "ref.parquet", "output_columns": ["x", "y"]}}),
                      encoding="utf-8")
    return config


def test_the_reference_check_names_the_file_and_the_fix(tmp_path: Path) -> None:
    [problem] = reference_problems(load_config(_config(tmp_path)).models[0])
    assert problem.startswith("model 'm': reference.path: ") and "ref.parquet" in problem, problem
    assert "not a readable Parquet file" in problem and "Fix:" in problem, problem


def test_config_check_fails_with_a_line_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["config", "check", str(_config(tmp_path))])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "FAILED" in result.output and "reference.path" in result.output and "ref.parquet" in result.output, result.output
