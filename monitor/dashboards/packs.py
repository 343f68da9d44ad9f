"""Alert names of the shipped rule packs (``rules/<pack>.yml``), for the "alerts of this pack" panels.

Reading the pack at build time keeps a dashboard's alert panel in step with the rules: a new alert in
``rules/probing.yml`` appears on the Probing dashboard when the dashboards are regenerated (and the
committed-JSON test says so until they are).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["RULES_DIR", "pack_alerts"]

RULES_DIR = Path(__file__).resolve().parent.parent.parent / "rules"


def pack_alerts(pack: str, rules_dir: Path = RULES_DIR) -> tuple[str, ...]:
    """Sorted alert names of ``rules_dir/<pack>.yml``; empty when the pack does not exist (yet)."""
    import yaml

    path = rules_dir / f"{pack}.yml"
    if not path.exists():
        return ()
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = {rule["alert"] for group in doc.get("groups", []) for rule in group.get("rules", []) if "alert" in rule}
    return tuple(sorted(names))
