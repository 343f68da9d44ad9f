"""Where the files shipped beside the code are: the rule packs (``rules/``) and the Grafana
dashboards and provisioning (``grafana/``).

In a checkout (and an editable install of one) they are the repository's folders, which the
dashboards builder writes to. A wheel carries the same folders as the data packages
``monitor._rules`` and ``monitor._grafana`` (``pyproject.toml`` maps them there), so that a
``pip install`` gives the packs that ``rules.packs`` names and the dashboards that go with them,
without a checkout.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["rules_dir", "grafana_dir", "rule_packs", "rule_pack_files"]

_ROOT = Path(__file__).resolve().parent.parent


def _shipped(package: str, folder: str) -> Path | None:
    checkout = _ROOT / folder
    if (_ROOT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if Path(location).is_dir():
            return Path(location)
    return None


def rules_dir() -> Path | None:
    """The folder of the shipped rule packs (``<pack>.yml``), None if the installation has none."""
    return _shipped("monitor._rules", "rules")


def grafana_dir() -> Path | None:
    """The folder of the shipped Grafana files (``dashboards/``, ``provisioning/``), None if the
    installation has none."""
    return _shipped("monitor._grafana", "grafana")


def rule_packs() -> dict[str, Path]:
    """Shipped rule packs by name (``core``, ``confidence``, ...), sorted."""
    folder = rules_dir()
    return {} if folder is None else {p.stem: p for p in sorted(folder.glob("*.yml"))}


def rule_pack_files(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The files of the named packs (``all``: every pack), in the order given.

    Raises
    ------
    ValueError
        For a name that is not a shipped pack (the message lists those that are), or when the
        installation carries no packs at all.
    """
    packs = rule_packs()
    if not packs:
        raise ValueError("no rule packs are installed with this package (neither a checkout's rules/ nor the "
                         "monitor._rules data of a wheel); list rule files under rules.files instead")
    out: list[str] = []
    for name in names:
        chosen = list(packs) if name == "all" else [name]
        for pack in chosen:
            if pack not in packs:
                raise ValueError(f"{pack!r} is not a shipped rule pack; the packs: {', '.join(packs)} (or all)")
            if str(packs[pack]) not in out:
                out.append(str(packs[pack]))
    return tuple(out)
