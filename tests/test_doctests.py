"""Every docstring example in the package runs, and gives what it shows (examples that pin a
behaviour are tests; one that went stale would mislead the reader)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import monitor

PACKAGE = Path(monitor.__file__).resolve().parent


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="monitor."):
        if info.ispkg:
            path = PACKAGE.joinpath(*info.name.split(".")[1:], "__init__.py")
        else:
            path = PACKAGE.joinpath(*info.name.split(".")[1:]).with_suffix(".py")
        if path.is_file() and ">>> " in path.read_text(encoding="utf-8"):
            names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_the_package_has_examples_to_run() -> None:
    assert {"monitor.once", "monitor.reference", "monitor.stats.calibration"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_hold(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
