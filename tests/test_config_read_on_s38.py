"""``parse_config`` reads on past an error to tell every independent one (a1468f4); a value no
check expected, met while reading on, raised a traceback in place of the file's first error
(Monitor(...), monitor serve and /-/reload said the traceback). The errors kept are said instead;
with no error kept, the exception is raised as it comes (a bug stays visible)."""

from __future__ import annotations

import pytest

from monitor import config as config_module
from monitor.config import ConfigError, parse_config


def _boom(*args: object, **kwargs: object) -> int:
    raise RuntimeError("a value no check expected")


def test_an_unexpected_failure_after_an_error_keeps_the_first_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "_segment_cap", _boom)
    with pytest.raises(ConfigError) as caught:
        parse_config({"model": "m", "output": {"kind": "probabilites"}})
    assert caught.value.key == "output.kind", str(caught.value)


def test_an_unexpected_failure_without_an_error_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "_segment_cap", _boom)
    with pytest.raises(RuntimeError):
        parse_config({"model": "m", "output": {"kind": "probabilities"}})
