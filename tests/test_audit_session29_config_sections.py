"""A key written in the wrong section, or mistyped under ``server.proxy`` / ``cloudevents`` / ``forward`` (session 29)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, parse_config
from monitor.config_keys import SECTION_KEYS
from monitor.server.settings import settings_from


@pytest.mark.parametrize("raw, key, fix", [
    # listed the top level's keys, proxy not among them, and nothing of server:
    ({"model": "a", "proxy": {"upstream": "http://127.0.0.1:8080"}}, "proxy", "move it under server (server.proxy)"),
    ({"models": [{"model": "a", "proxy": {}}]}, "models[0].proxy", "server (server.proxy)"),
    ({"rules": {"capacity": 3}}, "rules.capacity", "move it under queue (queue.capacity)"),
    ({"interval": "5s"}, "interval", "rules (rules.interval) or checkpoint (checkpoint.interval)"),
    # "did you mean 'shutdown_timeout'?", where the proxy's timeout was meant
    ({"server": {"timeout": "5s"}}, "server.timeout", "server.proxy (server.proxy.timeout)"),
])
def test_a_key_of_another_section_says_where_it_belongs(raw: dict, key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(parse_config(raw))
    assert info.value.key == key and fix in info.value.fix, str(info.value)


@pytest.mark.parametrize("server, key, close", [
    # these listed every allowed key, where the models' sections said "did you mean"
    ({"proxy": {"upstram": "http://127.0.0.1:8080"}}, "server.proxy.upstram", "upstream"),
    ({"cloudevents": {"max_pendng": 5}}, "server.cloudevents.max_pendng", "max_pending"),
    ({"forward": {"udpp": "127.0.0.1:9109"}}, "server.forward.udpp", "udp"),
    ({"proxy": {"routes": [{"path": "/p", "input": "x"}]}}, "server.proxy.routes[0].input", "inputs"),
])
def test_a_mistyped_key_of_the_sidecar_sections_gets_a_did_you_mean(server: dict, key: str, close: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(parse_config({"model": "a", "server": server}))
    assert info.value.key == key and info.value.fix == f"did you mean {close!r}?", str(info.value)


def test_config_check_says_where_a_misplaced_key_belongs(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("model: a\nserver:\n  upstream: http://127.0.0.1:8080\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1 and "server.upstream: unknown key. Fix: upstream is a key of another section: move it " \
        "under server.proxy (server.proxy.upstream)" in res.output, res.output


def test_every_section_key_is_read_by_its_parser() -> None:
    """The one list is the one the parsers check: every key it names loads (none is refused as unknown)."""
    raw = {"model": "a", "queue": {"capacity": 10, "linger": "1s"}, "server": {"proxy": {"timeout": "5s", "process": False},
                                                                               "cloudevents": {"require_token": False},
                                                                               "forward": {"receive_buffer_bytes": 65536}}}
    settings = settings_from(parse_config(raw))
    assert settings.proxy.timeout_s == 5.0 and not settings.cloudevents.require_token
    assert "upstream" in SECTION_KEYS["server.proxy"] and "export_interval" in SECTION_KEYS["queue"]
