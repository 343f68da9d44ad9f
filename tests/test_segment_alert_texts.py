"""What the texts say about the segment alerts is what the rules and dashboards do.

The README and the catalog told to compare a segment's over-confidence p-value with 0.01 divided
by the segments, while ModelSegmentOverconfident uses 0.001; the README said both segment drift
rules divide by the segments, while ModelSegmentConfidenceDrift divides by segments times scores;
the ModelSegmentOverconfident runbook sent on-call to a "Segments dashboard" that does not exist.
"""

from __future__ import annotations

import re

import yaml

from monitor import catalog, runbooks
from monitor.dashboards import build
from tests.conftest import REPO_ROOT

RULES = {rule["alert"]: rule for pack in sorted((REPO_ROOT / "rules").glob("*.yml"))
         for group in yaml.safe_load(pack.read_text())["groups"] for rule in group["rules"] if "alert" in rule}
README = " ".join((REPO_ROOT / "README.md").read_text().split())  # one space between words, lines joined
DASHBOARDS = [d.to_json() for d in build.dashboards()]


def _panel_titles() -> set[str]:
    out: set[str] = set()
    for dash in DASHBOARDS:
        stack = list(dash["panels"])
        while stack:
            panel = stack.pop()
            stack.extend(panel.get("panels", []))
            out.add(panel["title"])
    return out


def test_the_overconfidence_pvalue_texts_give_the_rules_threshold() -> None:
    expr = " ".join(RULES["ModelSegmentOverconfident"]["expr"].split())
    (alpha,) = re.findall(r"monitor_segments_tracked < ([0-9.]+)", expr)
    said = f"{alpha} divided by the segments tracked"
    assert said in catalog.get("monitor_segment_overconfidence_pvalue").help
    assert f"compare it with {said}, as ModelSegmentOverconfident does" in README


def test_the_readme_gives_each_segment_drift_rules_divisor() -> None:
    confidence = " ".join(RULES["ModelSegmentConfidenceDrift"]["expr"].split())
    prediction = " ".join(RULES["ModelSegmentPredictionDrift"]["expr"].split())
    assert "0.001 / count without(segment, score)" in confidence  # one test per segment and score
    assert "0.001 / count without(segment)" in prediction  # one test per segment
    assert ("ModelSegmentConfidenceDrift compares the p-values with 0.001 divided by the tests made (the segments "
            "tested times the scores, confidence and entropy), and ModelSegmentPredictionDrift with 0.001 divided by "
            "the segments tested.") in README


def test_runbooks_and_annotations_name_dashboards_and_panels_that_exist() -> None:
    dashboards = {d["title"].split(" / ", 1)[1].split()[0] for d in DASHBOARDS}  # Overview, Confidence, ...
    panels = _panel_titles()
    texts = list(runbooks.RUNBOOKS.values()) + [str(r.get("annotations", {})) for r in RULES.values()]
    named = [m for text in texts for m in re.findall(r"\b([A-Z]\w*) dashboard", text)]
    assert named and set(named) <= dashboards, set(named) - dashboards
    quoted = [q for text in runbooks.RUNBOOKS.values() for q in re.findall(r'"([A-Z][^"]+)"', text)]
    assert "Reliability diagram of the selected segments" in quoted
    assert set(quoted) <= panels, set(quoted) - panels
