"""``monitor config check`` on what ``monitor serve`` refuses or cannot use well (session 29)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main


def _check(tmp_path: Path, text: str):
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(main, ["config", "check", str(path)])


def test_a_proxy_port_without_an_upstream_fails_the_check(tmp_path: Path) -> None:
    """SUCCESS, then `monitor serve --config` refused to start: "server.proxy.port needs a model server"."""
    res = _check(tmp_path, "model: a\nserver:\n  proxy:\n    port: 9200\n")
    assert res.exit_code == 1 and "server.proxy.port: needs a model server to forward to" in res.output, res.output
    assert "server.proxy.upstream" in res.output and "--proxy URL" in res.output


def test_a_proxy_port_with_an_upstream_passes(tmp_path: Path) -> None:
    res = _check(tmp_path, "model: a\nserver:\n  proxy:\n    port: 9200\n    upstream: http://127.0.0.1:8080\n")
    assert res.exit_code == 0, res.output


def test_a_rule_interval_below_a_tenth_of_a_second_is_refused(tmp_path: Path) -> None:
    """``rules.interval: 1ms`` was taken: a thousand evaluations of every rule a second."""
    res = _check(tmp_path, "model: a\nrules:\n  interval: 1ms\n")
    assert res.exit_code == 1 and "rules.interval: '1ms' is below 0.1s" in res.output and "at least 100ms" in res.output, res.output
    assert _check(tmp_path, "model: a\nrules:\n  interval: 50ms\n").exit_code == 1
    assert _check(tmp_path, "model: a\nrules:\n  interval: 100ms\n").exit_code == 0


def test_an_empty_detector_list_is_said(tmp_path: Path) -> None:
    """``detectors: []`` passed without a word: the model then exported no figure for any alert."""
    res = _check(tmp_path, "model: a\ndetectors: []\n")
    assert res.exit_code == 0 and "NOTE: model 'a': detectors: [] runs no detector" in res.output, res.output
    assert "NOTE" not in _check(tmp_path, "model: a\n").output


def test_external_url_and_client_id_salt_are_checked(tmp_path: Path) -> None:
    """Any value was taken: an external_url without a scheme gave every alert a link to nothing, and
    a salt written as a number (YAML's 0123, octal) was salted with another text than written."""
    res = _check(tmp_path, "model: a\nrules:\n  external_url: prometheus:9090\n")
    assert res.exit_code == 1 and "rules.external_url: 'prometheus:9090' is not an http(s) URL" in res.output, res.output
    res = _check(tmp_path, "model: a\nprobing:\n  client_id_salt: 0123\n")
    assert res.exit_code == 1 and "probing.client_id_salt: must be a string, got 83" in res.output, res.output
    ok = _check(tmp_path, 'model: a\nrules:\n  external_url: http://prometheus:9090\nprobing:\n  client_id_salt: "0123"\n')
    assert ok.exit_code == 0, ok.output
