"""RegressionQuantileMiscalibrated's text for a count model's quantiles (session 27 audit).

A quantile that targets equal (whole numbers) is measured by its distance to the range between
the shares of targets below it and at or below it (``monitor_quantile_coverage_gap_ratio``), but
the alert said its figure was the share "at or below" minus the level: a median of Poisson(3)
targets predicted at 4 alerted "81.3% at or below" as 14.35 points off, where at or below minus
the level is 31.3 (14.35 is the share strictly below, 64.35%, minus 50%).
"""

from __future__ import annotations

import re

import numpy as np

from monitor.batch import Batch, LabeledBatch
from monitor.detectors.regression import RegressionDetector
from monitor.promql import SeriesStore
from monitor.rules.evaluator import RuleEvaluator
from monitor.store import MetricStore
from tests.conftest import REPO_ROOT

RULES = REPO_ROOT / "rules" / "confidence.yml"


def test_the_alert_says_how_a_tied_quantile_is_measured() -> None:
    rng = np.random.default_rng(0)
    det = RegressionDetector(window_s=1800.0, quantiles=(0.05, 0.5, 0.95))
    store, series = MetricStore("m"), SeriesStore(retention_s=7200.0)
    evaluator = RuleEvaluator.from_files([RULES], storage=series, default_interval_s=30.0)
    below: list[np.ndarray] = []
    alert = None
    for t0 in range(0, 3600, 30):
        ts = t0 + np.arange(30, dtype=np.float64)
        y = rng.poisson(3.0, 30).astype(np.float64)
        q = np.tile([0.0, 4.0, 7.0], (30, 1))  # the median of Poisson(3) is 3: predicted one too high
        det.update(Batch.from_arrays(np.zeros((30, 1)), q[:, 1], ts=ts))
        det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=y, segment=None, scores=q[:, 1], intervals=q))
        det.advance(float(t0 + 30))
        det.export(store)
        series.append_scrape(float(t0 + 30), [({**lab, "__name__": n}, v) for n, lab, v in store.samples()])
        evaluator.evaluate(float(t0 + 30))
        below.append(y)
        alert = next((a for a in evaluator.alerts() if a.name == "RegressionQuantileMiscalibrated"
                      and a.labels.get("level") == "0.5" and a.state.name.lower() == "firing"), alert)
    assert alert is not None
    text = alert.annotations["description"]
    points = float(re.search(r"(-?[0-9.]+) percentage points", text).group(1))
    gap = store.value("monitor_quantile_coverage_gap_ratio", ("0.5",))
    assert abs(points / 100 - alert.value) < 1e-4 and abs(gap - alert.value) < 0.05
    at_or_below = store.value("monitor_quantile_coverage_ratio", ("0.5",))
    assert at_or_below - 0.5 > gap + 0.1  # the figure is not "at or below minus the level" here...
    assert "equal" in text and "strictly below" in text, text  # ...and the text says what it is
