"""Alert names of the shipped rule packs (``rules/<pack>.yml``), for the "alerts of this pack" panels.

Reading the pack at build time keeps a dashboard's alert panel in step with the rules: a new alert in
``rules/probing.yml`` appears on the Probing dashboard when the dashboards are regenerated (and the
committed-JSON test says so until they are).
"""

from __future__ import annotations

from pathlib import Path

from monitor.shipped import rules_dir as shipped_rules_dir

__all__ = ["pack_alerts"]


def pack_alerts(pack: str, rules_dir: Path | None = None) -> tuple[str, ...]:
    """Sorted alert names of ``rules_dir/<pack>.yml`` (by default the shipped packs, see
    :mod:`monitor.shipped`); empty when the pack does not exist (yet)."""
    import yaml

    folder = rules_dir if rules_dir is not None else shipped_rules_dir()
    path = None if folder is None else folder / f"{pack}.yml"
    if path is None or not path.exists():
        return ()
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = {rule["alert"] for group in doc.get("groups", []) for rule in group.get("rules", []) if "alert" in rule}
    return tuple(sorted(names))
