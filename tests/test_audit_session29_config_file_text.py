"""``monitor.yaml`` as a file: a key written twice, and a file that is not UTF-8 (session 29)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, load_config


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "monitor.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("text, key, where", [
    # the forgotten first value was taken over without a word: the agent ran with a 5m window
    ("model: a\nwindow: 1h\nqueue: {capacity: 10}\nwindow: 5m\n", "window", "at lines 2 and 4"),
    # a second rules: section replaced the first whole: its alertmanager URL was gone, alerts reached nobody
    ("model: a\nrules:\n  alertmanager: [http://am:9093]\nrules:\n  interval: 30s\n", "rules", "at lines 2 and 4"),
    ("models:\n  - model: a\n    rules: {interval: 1m, interval: 2m}\n", "models[0].rules.interval", "on line 3"),
])
def test_a_key_written_twice_is_refused_with_its_path_and_both_lines(tmp_path: Path, text: str, key: str,
                                                                     where: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert info.value.key == key and where in info.value.problem, str(info.value)


def test_config_check_fails_on_a_key_written_twice(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: a\nwindow: 1h\nwindow: 5m\n")
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1 and "window: is written twice, at lines 2 and 3" in res.output, res.output


def test_a_merge_key_may_be_overridden_and_aliases_still_load(tmp_path: Path) -> None:
    """YAML's ``<<`` merge is meant to be overridden: not a key written twice."""
    text = "model: a\nqueue: &q {capacity: 10}\nrules:\n  <<: {interval: 1m}\n  interval: 2m\n"
    cfg = load_config(_write(tmp_path, text)).model()
    assert cfg.rules.interval_s == 120.0 and cfg.queue.capacity == 10


def test_a_latin1_config_names_the_line_and_the_iconv_that_converts_it(tmp_path: Path) -> None:
    """A file saved in Latin-1 (a Windows editor's ANSI) read "byte 31: invalid continuation byte",
    which located nothing and said nothing of how to convert it."""
    path = tmp_path / "monitor.yaml"
    path.write_bytes("model: a\nfeatures:\n  - {name: caf\u00e9}\n".encode("latin-1"))
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1, res.output
    assert "line 3, column 15" in res.output and "0xe9" in res.output, res.output
    assert f"iconv -f latin1 -t utf-8 {path}" in res.output and "save the file as UTF-8" in res.output, res.output


def test_a_utf16_config_is_told_as_utf16(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_bytes("model: a\n".encode("utf-16"))
    with pytest.raises(ConfigError, match="UTF-16.*iconv -f utf-16 -t utf-8"):
        load_config(path)
