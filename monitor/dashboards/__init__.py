"""Grafana dashboards generated from the metric catalog.

Panels reference catalog specs by name (titles, descriptions and units come from the catalog), so a
renamed or removed metric fails the build instead of silently emptying a panel. ``monitor dashboards
build`` writes ``grafana/dashboards/*.json``; ``--check`` compares the committed files.
"""

from __future__ import annotations

__all__ = ["build"]
