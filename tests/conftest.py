"""Shared fixtures: fresh registries, repo paths, and real binaries (Prometheus, Alertmanager, promtool)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_binary(name: str) -> str:
    """Path of a real binary the test needs. Locally a missing binary skips the test with a
    visible reason; in CI (CI=true) it fails, because CI must install it (see .ci/run)."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        message = f"{name} is not installed (apt-get install -y prometheus prometheus-alertmanager)"
        if IN_CI:
            pytest.fail(message + "; CI must install it")
        pytest.skip(message)
    return path


def require_shared(*parts: str) -> Path:
    """A path under ../shared (read-only material beside the checkout); fails clearly if missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared/ folder must sit beside the repository (../shared)")
    return path


def load_benchmark(name: str) -> Any:
    """Import ``benchmarks/<name>.py`` as module ``name`` (the benchmarks are scripts, not a
    package); registered in ``sys.modules`` because dataclasses look their module up."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def registry():
    """A fresh prometheus-client registry per test."""
    from prometheus_client import CollectorRegistry

    return CollectorRegistry(auto_describe=False)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Show the PromQL conformance table (run/passed/failed/unsupported per file) when it ran."""
    import sys

    table = getattr(sys.modules.get("tests.test_promql_conformance"), "SUMMARY_TABLE", None)
    if table:
        terminalreporter.write_sep("-", "PromQL conformance (Prometheus v2.42 test scripts)")
        terminalreporter.write_line(table)
