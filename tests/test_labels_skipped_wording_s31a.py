"""monitor_calibration_labels_skipped_total counts the joined labels every labelled figure skipped
(calibration, regression and multi-label detectors export it), not only calibration's (s31a).

The name stays (dashboards and rules read it); what a user reads beside it says what it counts: the
confidence dashboard described it as "joined labels the calibration window could not use", which a
regression or multi-label model's user read as none of theirs.
"""

from __future__ import annotations

import json
from pathlib import Path

from monitor.catalog import CATALOG

NAME = "monitor_calibration_labels_skipped"


def test_the_help_names_the_figures_of_every_model_kind() -> None:
    help_text = CATALOG[NAME].help
    assert "labelled figures" in help_text and "regression" in help_text and "multi-label" in help_text


def test_the_dashboard_panel_does_not_narrow_it_to_calibration() -> None:
    board = json.loads((Path(__file__).parents[1] / "grafana/dashboards/monitor-confidence.json").read_text())
    panels = [p for p in board["panels"] if any(NAME in t.get("expr", "") for t in p.get("targets", ()))]
    assert panels
    for panel in panels:
        assert "calibration window could not" not in panel["description"]
        assert "labelled figures could not use" in panel["description"]
