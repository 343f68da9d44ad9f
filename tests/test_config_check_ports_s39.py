"""``monitor config check`` compares the sidecar's ports only when it read them: a port in error
was left at its default (9108) and then compared, so a file whose ``server.port`` was mistyped
beside a proxy on 9108 was told two errors, the second one about a port the file never gave."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main

__all__: list[str] = []


def _failed(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1, res.output
    return [line for line in res.output.splitlines() if line.startswith("FAILED: ")]


def test_a_port_in_error_is_not_compared_as_its_default(tmp_path):
    failed = _failed(tmp_path, "model: iris\nserver:\n  port: nine\n  proxy: {upstream: 'http://127.0.0.1:8080', port: 9108}\n")
    assert [line.split(": ")[2] for line in failed] == ["server.port"], failed


def test_ports_the_file_gives_are_still_compared_beside_another_error(tmp_path):
    failed = _failed(tmp_path, "model: iris\nserver:\n  port: 9000\n  shutdown_timeout: soon\n"
                               "  proxy: {upstream: 'http://127.0.0.1:8080', port: 9000}\n")
    assert [line.split(": ")[2] for line in failed] == ["server.shutdown_timeout", "server.proxy.port"], failed
    assert "is the sidecar's own port (9000" in failed[1]
