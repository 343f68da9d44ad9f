"""``monitor config check`` reports every independent error of the ``server:`` section's sidecar
settings (``proxy``, ``cloudevents``, ``forward``, limits, tokens) and of the ``output`` section's
structural checks, as it does for the rest of the file since s38d: before, each of these stopped
at its first error, and a file with three mistakes there took three runs. ``monitor serve``,
``Monitor(...)`` and a reload still raise (and print) the first error, in the same words."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, parse_config
from monitor.server.settings import settings_from


def _check(tmp_path: Path, text: str) -> tuple[int, str, list[str]]:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    failed = [line for line in res.output.splitlines() if line.startswith("FAILED: ")]
    return res.exit_code, res.output, failed


SERVER = """\
model: iris
server:
  proxy:
    upstream: http://127.0.0.1:8080
    engine: fast
    routes:
      - {path: predict}
      - {path: /score, model: irsi}
  cloudevents: {require_token: "no", max_pending: 0}
  forward: {udp: nohost}
  shutdown_timeout: soon
"""


def test_every_independent_error_of_the_sidecar_settings_is_reported(tmp_path):
    code, out, failed = _check(tmp_path, SERVER)
    assert code == 1
    keys = [line.split(": ")[2] for line in failed]
    assert keys == ["server.proxy.routes[0].path", "server.proxy.routes[1].model", "server.proxy.engine",
                    "server.cloudevents.require_token", "server.cloudevents.max_pending", "server.forward.udp",
                    "server.shutdown_timeout"], failed
    assert all(". Fix: " in line for line in failed), failed
    assert "names no served model: 'irsi' (served: iris)" in failed[1]
    assert "must be auto, lean or aiohttp, got 'fast'" in failed[2]
    assert "SUCCESS" not in out


def test_the_sidecar_still_raises_the_first_error_of_its_settings_in_the_same_words():
    import yaml

    agent = parse_config(yaml.safe_load(SERVER))
    with pytest.raises(ConfigError) as err:
        settings_from(agent)  # what `monitor serve` and a reload call, and print
    assert str(err.value) == ("<config>: server.proxy.routes[0].path: must be a URL path starting with /, got "
                              "'predict'. Fix: write path: /predict")
    assert err.value.key == "server.proxy.routes[0].path"
