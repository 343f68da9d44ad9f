"""ModelMultilabelDrift (rules/confidence.yml): a label's positive rate against the reference's.

Checked three ways: its PromQL and text by real ``promtool test rules`` and the agent's own engine
on one unit-test file; and on seeded streams through the multilabel detector and the agent's rule
evaluator (``for:`` included), with a rule tick every 30 s of event time at 1 row/s, the
detector's window at the monitor's default of 1 hour, 5 labels at rates 0.05-0.5 against 5,000
reference rows (tests/test_multilabel_detector.py's model):

* false alarms: none over 48 hours of the unchanged stream (5,760 evaluations, seed 0);
* detection delay: one label's rate moved from 0.2 to 0.3 fires within 25 to 50 minutes of event
  time after the change for each of seeds 1-10 (measured: 30 to 45 minutes, median 36.5; the
  p-value falls under 0.001 once a quarter to a half of the 1-hour window is shifted, then 15
  minutes of ``for:``), naming that label only.

Event time, not wall time: the figures are the same on any machine."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.multilabel import MultilabelDetector
from tests.conftest import REPO_ROOT
from tests.test_multilabel_detector import LABELS, RATES, reference, scores
from tests.test_oncall_session7 import _run_unit_test

RULES = REPO_ROOT / "rules" / "confidence.yml"
HOUR = 3600.0
STEP = 30
URL = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelmultilabeldrift"


def test_the_rule_with_promtool_and_the_agent(tmp_path) -> None:
    """Fires for a label whose rate moved 10 points with p < 0.001, once held 15 minutes; silent
    on a significant move of 1 point (under the 2-point floor) and on a large move that is not
    significant (p 0.01)."""
    series = []
    for label, rate, ref, pvalue in (("adult", 0.30, 0.20, 1e-5), ("spam", 0.06, 0.05, 1e-5), ("other", 0.7, 0.5, 0.01)):
        keys = f'model="m",label="{label}"'
        series += [{"series": f"monitor_multilabel_positive_rate_ratio{{{keys}}}", "values": f"{rate}x30"},
                   {"series": f"monitor_multilabel_reference_positive_rate_ratio{{{keys}}}", "values": f"{ref}x30"},
                   {"series": f"monitor_multilabel_drift_pvalue{{{keys}}}", "values": f"{pvalue}x30"}]
    description = ("The share of the window's rows given label adult (probability at least the multilabel detector's "
                   "threshold) differs from its share on the reference by 10 percentage points (window minus reference; "
                   "chi-squared test, p < 0.001 after multiplying by the number of labels): the inputs changed, the world "
                   "did (the label's prevalence), or the model did.")
    import yaml

    _run_unit_test(tmp_path, "confidence.yml", yaml.safe_dump({"tests": [{
        "interval": "1m", "input_series": series, "alert_rule_test": [
            {"eval_time": "10m", "alertname": "ModelMultilabelDrift", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "ModelMultilabelDrift", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "model": "m", "label": "adult"},
                "exp_annotations": {"summary": "Model m gives label adult at another rate than on the reference",
                                    "description": description, "runbook_url": URL}}]}]}]}, sort_keys=False))


def first_firing(seed: int, hours: float, shift_at: float | None, rates: np.ndarray = RATES) -> tuple[float | None, set[str]]:
    """Run the stream through the detector and the rule evaluator: the event time at which
    ModelMultilabelDrift first fired (None: never), and the labels it fired for."""
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from monitor.store import MetricStore

    rng = np.random.default_rng(seed)
    det = MultilabelDetector(reference(), window_s=HOUR)
    store = MetricStore("m")
    series = SeriesStore(retention_s=2 * HOUR)
    evaluator = RuleEvaluator.from_files([RULES], storage=series, default_interval_s=float(STEP))
    first, labels = None, set()
    for t0 in range(0, int(hours * HOUR), STEP):
        shifted = shift_at is not None and t0 >= shift_at
        x = scores(rng, STEP, rates if shifted else RATES)
        det.update(Batch.from_arrays(np.zeros((STEP, 1)), x, ts=t0 + np.arange(STEP, dtype=np.float64), classes=tuple(LABELS)))
        now = float(t0 + STEP)
        det.advance(now)
        det.on_tick(now)
        det.export(store)
        series.append_scrape(now, [({**lab, "__name__": name}, value) for name, lab, value in store.samples()])
        evaluator.evaluate(now)
        for alert in evaluator.alerts():
            if alert.name == "ModelMultilabelDrift" and alert.state.name.lower() == "firing":
                labels.add(alert.labels["label"])
                first = now if first is None else first
        if first is not None and shift_at is not None:
            break
    return first, labels


def test_silent_over_48_hours_of_an_unchanged_stream() -> None:
    assert first_firing(0, 48.0, None) == (None, set())


@pytest.mark.parametrize("seed", range(1, 11))
def test_one_label_rate_moved_fires_within_50_minutes(seed: int) -> None:
    shifted = RATES.copy()
    shifted[2] = 0.3  # "adult": 0.2 -> 0.3
    at = 2 * HOUR
    first, labels = first_firing(seed, 4.0, at, shifted)
    assert first is not None, "did not fire within 2 hours of the change"
    delay_min = (first - at) / 60.0
    assert 25.0 <= delay_min <= 50.0, delay_min
    assert labels == {"adult"}
