"""Two findings of a walkthrough of ``monitor config check`` (s38d)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main


def _check(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, [line for line in res.output.splitlines() if line.startswith("FAILED: ")]


@pytest.mark.parametrize("text, quoted", [
    # a flow mapping whose value holds braces: "expected ',' or '}', but got '{'"
    ("model: m\ncheckpoint: {path: state/{model}.ckpt}\n", "path: 'state/{model}.ckpt'"),
    ("model: m\ncheckpoint: {path: state/{model}.ckpt, interval: 5m}\n", "path: 'state/{model}.ckpt'"),
    # a block value that starts with a brace: "expected <block end>, but found '<scalar>'"
    ("model: m\ncheckpoint:\n  path: {model}.ckpt\n", "path: '{model}.ckpt'"),
    ("model: m\nrules: {external_labels: {team: a{b}}}\n", "team: 'a{b}'"),
])
def test_a_value_holding_braces_is_told_to_be_quoted(tmp_path, text, quoted):
    code, failed = _check(tmp_path, text)
    assert code == 1 and len(failed) == 1, failed
    assert "invalid YAML at line" in failed[0]
    assert f"Fix: quote the value: {quoted} " in failed[0], failed[0]


@pytest.mark.parametrize("text", [
    "model: m\ncheckpoint: {path: state/x.ckpt\n",  # an unclosed mapping: no value to quote
    "model: m\nfeatures: [a, {b]\n",  # a list with a broken mapping in it
    "model: m\nqueue:\ncapacity: 5\n  batch_max: 3\n",  # indentation
])
def test_other_syntax_errors_keep_the_general_fix(tmp_path, text):
    code, failed = _check(tmp_path, text)
    assert code == 1 and len(failed) == 1, failed
    assert failed[0].endswith("Fix: fix the YAML syntax (indentation, colons, quotes)"), failed[0]


def test_the_quoted_value_the_fix_gives_is_read_as_written(tmp_path):
    (tmp_path / "state").mkdir()
    code, failed = _check(tmp_path, "model: m\ncheckpoint: {path: 'state/{model}.ckpt'}\n")
    assert code == 0, failed
