"""``${VAR}`` outside ``rules.external_labels``, the one place it is expanded (session 29)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, load_config, parse_config


@pytest.mark.parametrize("raw, key", [
    # written to a folder literally named ${STATE_DIR}, without a word
    ({"model": "a", "checkpoint": {"path": "${STATE_DIR}/a.ckpt"}}, "checkpoint.path"),
    # every alert failed to send to a host named ${AM_HOST}
    ({"models": [{"model": "a", "rules": {"alertmanager": ["http://${AM_HOST}:9093"]}}]}, "models[0].rules.alertmanager[0]"),
    ({"model": "a", "rules": {"alertmanager": ["http://am:9093"]}, "server": {"proxy": {"upstream": "http://${UP}:8080"}}},
     "server.proxy.upstream"),
])
def test_an_env_reference_the_agent_does_not_expand_is_refused(raw: dict, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIR", "/state")
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.key == key and "only in rules.external_labels" in info.value.problem, str(info.value)
    assert "envsubst" in info.value.fix


def test_external_labels_still_expand_at_the_top_and_in_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "pod-7")
    agent = parse_config({"rules": {"external_labels": {"replica": "${POD_NAME}"}},
                          "models": [{"model": "a"}, {"model": "b", "rules": {"external_labels": {"team": "x-${POD_NAME}"}}}]})
    assert agent.model("a").rules.external_labels == {"replica": "pod-7"}
    assert agent.model("b").rules.external_labels == {"replica": "pod-7", "team": "x-pod-7"}


def test_config_check_fails_on_an_env_reference_in_a_path(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text('model: a\nreference:\n  path: "${DATA}/ref.npz"\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1 and "reference.path: names the environment variable DATA" in res.output, res.output
