"""``monitor serve`` command-line errors: clear messages, no traceback."""

from __future__ import annotations

from click.testing import CliRunner

from monitor.cli.serve import serve


def test_bad_config_is_reported_with_the_key(tmp_path):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("model: iris\nserver:\n  port: 99999\n")
    result = CliRunner().invoke(serve, ["--config", str(cfg)])
    assert result.exit_code == 1
    assert "server.port" in result.output and "Traceback" not in result.output


def test_unknown_server_key_is_reported(tmp_path):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("model: iris\nserver:\n  proxy:\n    upstrem: http://x\n")
    result = CliRunner().invoke(serve, ["--config", str(cfg)])
    assert result.exit_code == 1 and "server.proxy.upstrem" in result.output


def test_proxy_port_needs_a_proxy(tmp_path):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("model: iris\n")
    result = CliRunner().invoke(serve, ["--config", str(cfg), "--proxy-port", "8081"])
    assert result.exit_code == 1 and "--proxy-port needs a model server to forward to. Fix: start with --proxy URL" in result.output


def test_missing_config_file(tmp_path):
    result = CliRunner().invoke(serve, ["--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "cannot read the config" in result.output
