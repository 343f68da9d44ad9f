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


def test_proxy_upstream_without_a_readable_host_or_port_is_refused_at_config_check(tmp_path):
    """A typo in the upstream's port (``http://127.0.0.1:80800``) or a URL without a host passed
    `monitor config check` (SUCCESS) and stopped `monitor serve` with tracebacks from the proxy's
    start, in its data path process and then in the sidecar; now both name the key and the fix."""
    from monitor.cli import main

    for upstream, what in (("http://127.0.0.1:80800", "has no valid port ('80800')"),
                           ("http://127.0.0.1:abc", "has no valid port ('abc')"), ("http://:8080", "names no host")):
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(f"model: iris\nserver:\n  proxy:\n    upstream: {upstream}\n")
        checked = CliRunner().invoke(main, ["config", "check", str(cfg)])
        assert checked.exit_code == 1 and f"server.proxy.upstream: the URL {what}" in checked.output, checked.output
        served = CliRunner().invoke(serve, ["--config", str(cfg), "--port", "0"])
        assert served.exit_code == 1 and "port from 1 to 65535" in served.output and "Traceback" not in served.output
        flag = tmp_path / "flag.yaml"
        flag.write_text("model: iris\n")
        given = CliRunner().invoke(serve, ["--config", str(flag), "--port", "0", "--proxy", upstream])
        assert given.exit_code == 1 and f"--proxy: the URL {what}" in given.output, given.output
