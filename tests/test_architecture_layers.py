"""The package's data flows one way (caller -> queue -> worker -> detectors -> metric catalog ->
exporter and rule store -> rule evaluator -> notifier), and its imports say so. Every import of
every module is read from its source (function-level and TYPE_CHECKING imports included: a lazy
import is still a dependency), and each layer's rule is checked:

- detectors are pure computation: no server, rules, PromQL, CLI, nor the runtime that feeds them;
- the rule engine (rules, PromQL) sees metrics only: no detector, batch, reference or ingest;
- the core never imports the server or the CLI (only they, and ``python -m monitor``, do);
- the decorator's hot path (the wrapper and the queue it appends to) imports no detector.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "monitor"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``monitor.*`` module ``path`` imports, resolved (relative imports, ``from monitor
    import x`` as ``monitor.x``)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "monitor" or m.startswith("monitor.")}


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(importers: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(f"{m} imports {i}" for m, imports in MODULES.items()
                  if _under(m, *importers) and not _under(m, *allowed)
                  for i in imports if _under(i, *forbidden))


def test_the_import_reader_sees_the_imports_it_checks() -> None:
    """The reader itself: known imports of known modules, lazy ones included (a reader that saw
    none would pass every rule below)."""
    assert "monitor.cli" in MODULES["monitor.__main__"]
    assert "monitor.detectors.base" in MODULES["monitor.detectors.drift"]
    assert "monitor.promql" in MODULES["monitor.rules.evaluator"] or any(
        i.startswith("monitor.promql.") for i in MODULES["monitor.rules.evaluator"])
    assert any(i.startswith("monitor.server") for m, imports in MODULES.items() if m.startswith("monitor.cli")
               for i in imports)
    assert len(MODULES) > 100


def test_detectors_are_pure_computation() -> None:
    assert _violations(("monitor.detectors",),
                       ("monitor.server", "monitor.rules", "monitor.promql", "monitor.cli", "monitor.core",
                        "monitor.worker", "monitor.pipeline", "monitor.queue", "monitor.decorator",
                        "monitor.exporter")) == []


def test_the_rule_engine_sees_metrics_only() -> None:
    assert _violations(("monitor.rules", "monitor.promql"),
                       ("monitor.detectors", "monitor.batch", "monitor.reference", "monitor.profile",
                        "monitor.ingest", "monitor.pipeline", "monitor.worker", "monitor.stats",
                        "monitor.server", "monitor.cli")) == []


def test_the_core_never_imports_the_server_or_the_cli() -> None:
    assert _violations(("monitor",), ("monitor.server", "monitor.cli"),
                       allowed=("monitor.server", "monitor.cli", "monitor.__main__")) == []


@pytest.mark.parametrize("module", ["monitor.decorator", "monitor.queue"])
def test_the_decorators_hot_path_imports_no_detector(module: str) -> None:
    assert module in MODULES
    assert sorted(i for i in MODULES[module] if _under(i, "monitor.detectors", "monitor.stats")) == []
