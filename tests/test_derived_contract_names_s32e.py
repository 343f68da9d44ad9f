"""The derived features' columns are named by :mod:`monitor.derived` alone (``TextDerived.columns``,
``TensorDerived.columns``). The CSV profile's checks and messages, the ``reference build`` summary,
a reference's renamed tensor feature and the detectors' build messages named them by calling the
descriptor modules themselves: a change of a derived feature's columns in the contract would
have left them naming others."""

from __future__ import annotations

import re
from pathlib import Path

import monitor

#: The contract and the descriptor modules it reads the names from.
OWNERS = {"derived.py", "text.py", "tensor.py"}


def test_only_the_contract_names_derived_columns() -> None:
    root = Path(monitor.__file__).parent
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if p.name not in OWNERS and re.search(r"\bdescriptor_names\(", p.read_text(encoding="utf-8")))
    assert callers == [], f"name derived columns through monitor.derived (TextDerived/TensorDerived.columns): {callers}"
