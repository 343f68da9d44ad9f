"""A proxy upstream that is the sidecar's own address is refused at the start: it was taken, and
each proxied request was forwarded to the proxy again, 100 times over (the connection pool), until
the timeout answered 504 and the log blamed the model server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main

TWO = [{"model": "a"}, {"model": "b"}]

LOOPS: dict[str, tuple[dict[str, Any], str]] = {
    "the sidecar's port": ({"port": 19200, "proxy": {"upstream": "http://127.0.0.1:19200"}}, "server.port / --port"),
    "localhost, the proxy's own port": ({"port": 19200, "proxy": {"upstream": "http://localhost:19201", "port": 19201}},
                                        "server.proxy.port / --proxy-port"),
    "the default port": ({"proxy": {"upstream": "http://127.0.0.1:9108"}}, "server.port / --port"),
    "the listening address": ({"addr": "10.1.2.3", "port": 19200, "proxy": {"upstream": "http://10.1.2.3:19200"}},
                              "server.port / --port"),
}


def _check(tmp_path: Path, server: dict[str, Any]) -> Any:
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({"models": TWO, "server": server}))
    return CliRunner().invoke(main, ["config", "check", str(cfg)])


@pytest.mark.parametrize("case", sorted(LOOPS))
def test_config_check_refuses_an_upstream_that_is_the_sidecar(tmp_path: Path, case: str) -> None:
    server, which = LOOPS[case]
    res = _check(tmp_path, server)
    assert res.exit_code == 1, res.output
    assert "server.proxy.upstream: is the sidecar itself" in res.output and which in res.output, res.output


@pytest.mark.parametrize("server", [{"port": 19200, "proxy": {"upstream": "http://127.0.0.1:8080"}},
                                    {"port": 19200, "proxy": {"upstream": "http://10.0.0.9:19200"}},
                                    {"port": 19200, "proxy": {"upstream": "http://127.0.0.1:8080", "port": 19201}}])
def test_a_model_server_elsewhere_is_taken(tmp_path: Path, server: dict[str, Any]) -> None:
    res = _check(tmp_path, server)
    assert res.exit_code == 0 and "SUCCESS" in res.output, res.output


def test_serve_refuses_proxy_flag_at_its_own_port(tmp_path: Path) -> None:
    """``monitor serve --proxy URL --port N`` with the URL at N, before anything listens."""
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({"models": TWO}))
    res = CliRunner().invoke(main, ["serve", "--config", str(cfg), "--port", "19203", "--proxy", "http://127.0.0.1:19203"])
    assert res.exit_code == 1 and "server.proxy.upstream: is the sidecar itself (127.0.0.1:19203" in res.output, res.output
