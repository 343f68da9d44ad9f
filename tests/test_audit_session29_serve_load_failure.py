"""``monitor serve``: a model that cannot be loaded at start is one log line, not a traceback (session 29)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.server.settings import settings_from
from monitor.server.sidecar import Sidecar


def _sidecar(tmp_path: Path, text: str, factory=None) -> Sidecar:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    agent = load_config(path)
    return Sidecar(agent, settings_from(agent), monitor_factory=factory)


def test_a_missing_reference_is_one_line_naming_config_model_and_fix(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """It was ERROR "the sidecar could not load its models" and 20 lines of traceback through
    sidecar.py, lifecycle.py, core.py and profile.py, the cause on the last."""
    sidecar = _sidecar(tmp_path, "model: fraud\nreference:\n  path: gone.npz\n")
    with caplog.at_level(logging.DEBUG, logger="monitor.server"):
        sidecar.load()
    assert not sidecar.ready and sidecar.load_error is not None
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    line = record.getMessage()
    assert record.exc_info is None and "\n" not in line, line
    assert line.startswith(f"{tmp_path / 'monitor.yaml'}: model 'fraud' could not be loaded: "), line
    assert "gone.npz" in line and "monitor reference build" in line and "monitor config check" in line, line
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged for an error that says its fix"


def test_an_unexpected_failure_is_one_line_with_its_traceback_at_debug(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    def factory(cfg):
        raise KeyError("scores")

    sidecar = _sidecar(tmp_path, "model: fraud\n", factory)
    with caplog.at_level(logging.DEBUG, logger="monitor.server"):
        sidecar.load()
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is None and "model 'fraud' could not be loaded: KeyError: 'scores'" in error.getMessage()
    assert "--log-level debug" in error.getMessage()
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)
