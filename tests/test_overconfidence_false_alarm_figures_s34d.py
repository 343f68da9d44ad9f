"""The pages ModelOverconfident makes on a calibrated model, as the pack and the README quote them.

`rules/confidence.yml` said "about one warning per 100 hours" of labelled traffic, and one per
1,000 hours for a copy at 0.001, figures no run had produced: the rule's level holds per window,
but how many pages it makes depends on how long a sliding window's flagged episodes last.
`benchmarks/overconfidence_rule_false_alarms.py` counts them (2,000 hours per row, the calibration
detector, the agent's series store and rule evaluator): one per 59 hours at 0.01, one per 533 at
0.001. These checks read the results file and fail, naming the figure, when the pack's comment or the
README quotes another.
"""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

RESULTS = REPO_ROOT / "benchmarks" / "results" / "overconfidence_rule_false_alarms.md"
RERUN = "python benchmarks/overconfidence_rule_false_alarms.py (see the results file's head)"


def _hours_per_alert() -> list[str]:
    """'one per N hours' of each run in the results file: the shipped rule's, then the 0.001 copy's."""
    return re.findall(r"^In all: [\d,]+ alerts in [\d,]+ hours, one per ([\d,]+) hours", RESULTS.read_text(), re.M)


def _comment_text() -> str:
    lines = (REPO_ROOT / "rules" / "confidence.yml").read_text().splitlines()
    return " ".join(ln.strip().lstrip("#").strip() for ln in lines if ln.strip().startswith("#"))


def test_the_pack_quotes_the_measured_pages_of_both_levels() -> None:
    shipped, strict = _hours_per_alert()
    comment = _comment_text()
    assert f"one warning per {shipped} hours" in comment, f"rules/confidence.yml should say one warning per {shipped} hours ({RERUN})"
    assert f"0.001 in a copy of this pack gives one per {strict} hours" in comment, (
        f"rules/confidence.yml should say 0.001 gives one per {strict} hours ({RERUN})")


def test_the_readme_quotes_the_shipped_rules_pages() -> None:
    shipped, _ = _hours_per_alert()
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert f"pages about once per {shipped} hours of labelled traffic" in readme, (
        f"README's rules paragraph should quote one page per {shipped} hours ({RERUN})")
