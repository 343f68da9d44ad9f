"""Audit of the README's drift claims from a user's side (session 34, helper s34e): what a user
met that the README, the log or the exposition said otherwise, each test failing before its fix.
"""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference

__all__: list[str] = []

README = Path(__file__).resolve().parents[1] / "README.md"
SINCE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # what monitor.detectors.drift writes (time.strftime of the onset, UTC)
NOW = 1_700_000_000.0


def _since_labels(text: str) -> list[str]:
    return re.findall(r'monitor_drift_top_feature\{[^}]*since="([^"]*)"', text)


def test_the_readme_example_of_since_is_what_the_detector_writes() -> None:
    """The README's example of monitor_drift_top_feature showed since="14:02"; the detector writes
    the onset as a UTC date-time, 2026-12-06T14:02:05Z (a panel or a rule matching the documented
    form would match nothing)."""
    rng = np.random.default_rng(3)
    ref = Reference.from_arrays(rng.normal(size=(2000, 3)), numeric_names=["a", "b", "income"])
    mon = Monitor("since", config={"output": {"kind": "none"}, "detectors": [{"kind": "input_drift"}]},
                  reference=ref, registry=CollectorRegistry(auto_describe=False), start_worker=False, live=False)
    try:
        for b in range(40):
            x = rng.normal(size=(50, 3))
            if b >= 20:
                x[:, 2] *= 10  # a clear unit change: the alarm comes within a few batches
            mon.observe(x, None, timestamp=NOW + 5 * b)
        mon.flush()
        written = _since_labels(mon.metrics_text())
    finally:
        mon.close()
    assert written, "a x10 change over 1,000 rows raised no alarm"
    onset = time.strptime(written[0], SINCE_FORMAT)  # the detector's own form
    assert NOW + 5 * 15 <= calendar.timegm(onset) <= NOW + 5 * 21, written  # near the change
    documented = _since_labels(README.read_text(encoding="utf-8"))
    assert documented, "the README shows no monitor_drift_top_feature with a since label"
    for value in documented:
        time.strptime(value, SINCE_FORMAT)  # ValueError: the README shows a form the agent never writes
