"""ModelEstimatedAccuracyDrop on a healthy model at low traffic, and on a real drop.

The rule compared ATC's estimate with the reference accuracy by size alone (5 points, `for: 15m`).
The estimate is the share of the window's rows above a threshold fitted on the reference, so at a
few hundred rows an hour its sampling error alone is several points: a healthy 10-class model right
about 70% of the time, at 150 rows an hour (the estimate over ~150 rows, sd about 0.037), paged 8
and 14 times in two runs of 48 hours, 5 to 14 times in each of ten (tests/test_confidence_rules.py's
streams are 1 row per second, 3,600 rows a window, where 5 points is more than 10 sd). The rule now also asks the drop to be significant,
z > 3 over the rows the estimate was computed on (`monitor_estimated_accuracy_rows_in_window`), as
ModelAccuracyDrop asks over the window's labels: under an unchanged model z > 3 holds in about
0.13% of independent windows (one 1-hour window in about 770). Measured:
no page in those ten runs (480 hours); a drop of about 24 points pages 25 to 40 minutes after its
onset (seeds 0-3).

Both runs below go through the accuracy_estimation detector, the metric store and the agent's rule
evaluator every 30 s of event time, `for:` included; the 5-point condition alone is evaluated beside
the shipped rule on the same stream, so that a silent shipped rule cannot pass for a stream that
never tested it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.store import MetricStore
from tests.conftest import REPO_ROOT
from tests.test_confidence_rules import K, outputs

RULES = REPO_ROOT / "rules" / "confidence.yml"
HOUR = 3600.0
STEP = 30
#: Beta(a, 1.5) confidences: a = 3 gives a model right about 70% of the time (calibrated);
#: a = 1 after the onset takes it to about 46%, a drop of about 24 points.
HEALTHY_A, DROPPED_A = 3.0, 1.0
RATE = 150.0  # rows an hour


def _size_only_rule(tmp_path: Path) -> Path:
    """The shipped alert without its significance term: ATC's estimate 5 points below, 15 minutes."""
    shipped = next(r for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
                   if r.get("alert") == "ModelEstimatedAccuracyDrop")
    rule = {"alert": "SizeOnly", "for": shipped["for"],
            "expr": 'monitor_reference_accuracy_ratio - ignoring(estimator) group_right '
                    'monitor_estimated_accuracy_ratio{estimator="atc"} > 0.05'}
    path = tmp_path / "size_only.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "size-only", "rules": [rule]}]}))
    return path


@pytest.fixture(scope="module")
def reference() -> Reference:
    probs, y = outputs(np.random.default_rng(42), 3000, a=HEALTHY_A)
    return Reference.from_arrays(np.zeros((3000, 1)), scores=probs, labels=y, classes=[f"c{i}" for i in range(K)])


def run(reference: Reference, rule_files: list[Path], *, seed: int, hours: float, onset_h: float | None = None,
        rate: float = RATE) -> dict[str, list[float]]:
    """Poisson traffic at ``rate`` rows an hour; returns, per alert name, the event times (s) at
    which it went to firing."""
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator

    rng = np.random.default_rng(seed)
    det = create("accuracy_estimation", reference=reference)
    store = MetricStore("m")
    series = SeriesStore(retention_s=2 * HOUR)
    evaluators = [RuleEvaluator.from_files([f], storage=series, default_interval_s=float(STEP)) for f in rule_files]
    firing: dict[str, list[float]] = {}
    before: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for t0 in range(0, int(hours * HOUR), STEP):
        n = int(rng.poisson(rate * STEP / HOUR))
        if n:
            a = DROPPED_A if onset_h is not None and t0 >= onset_h * HOUR else HEALTHY_A
            probs, _ = outputs(rng, n, a=a)
            det.update(Batch.from_arrays(np.zeros((n, 1)), probs, ts=t0 + np.sort(rng.uniform(0, STEP, n))))
        now = float(t0 + STEP)
        det.advance(now)
        det.export(store)
        before = scrape_and_evaluate(store, series, evaluators, now, before, firing)
    return firing


def scrape_and_evaluate(store: MetricStore, series, evaluators: list, now: float,
                        before: set[tuple[str, tuple[tuple[str, str], ...]]],
                        firing: dict[str, list[float]]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Scrape ``store`` into ``series`` at ``now``, evaluate the rules and add to ``firing`` the
    alerts that went to firing since ``before`` (the alerts firing then); returns those firing now."""
    series.append_scrape(now, [({**labels, "__name__": name}, value) for name, labels, value in store.samples()])
    now_firing = set()
    for ev in evaluators:
        ev.evaluate(now)
        now_firing |= {(a.name, tuple(sorted(a.labels.items()))) for a in ev.alerts() if a.state.name.lower() == "firing"}
    for name, _ in now_firing - before:
        firing.setdefault(name, []).append(now)
    return now_firing


def test_a_healthy_model_at_low_traffic_does_not_page(reference: Reference, tmp_path: Path) -> None:
    files = [RULES, _size_only_rule(tmp_path)]
    shipped = size_only = 0
    for seed in (0, 1):
        fired = run(reference, files, seed=seed, hours=48.0)
        shipped += len(fired.get("ModelEstimatedAccuracyDrop", []))
        size_only += len(fired.get("SizeOnly", []))
    # the stream does test the rule: the 5-point condition alone held for 15 minutes again and
    # again (22 times in these 96 hours when measured)
    assert size_only >= 3, f"the size-only condition fired {size_only} times: the stream no longer tests the rule"
    # z > 3 under an unchanged model: ~0.13% of independent windows, ~0.1 expected in 96 one-hour windows
    assert shipped <= 1, f"ModelEstimatedAccuracyDrop paged {shipped} times in 96 h of a healthy model at {RATE:.0f} rows/h"


def test_a_real_drop_at_low_traffic_still_pages(reference: Reference) -> None:
    onset_h = 6.0
    for seed in (0, 1):
        fired = run(reference, [RULES], seed=seed, hours=onset_h + 3.0, onset_h=onset_h)
        times = fired.get("ModelEstimatedAccuracyDrop", [])
        assert times, f"seed {seed}: a 24-point drop at {RATE:.0f} rows/h did not page within 3 h"
        assert min(times) > onset_h * HOUR, f"seed {seed}: paged before the onset"
        # 15 minutes of `for:` plus the time the window needs to hold enough dropped rows
        assert min(times) - onset_h * HOUR <= 2 * HOUR


def test_the_rows_behind_the_estimates_are_exported_below_min_rows_too(reference: Reference) -> None:
    rng = np.random.default_rng(3)
    det = create("accuracy_estimation", reference=reference)
    store = MetricStore("m")
    probs, _ = outputs(rng, 60, a=HEALTHY_A)
    det.update(Batch.from_arrays(np.zeros((60, 1)), probs, ts=np.linspace(0.0, 59.0, 60)))
    det.advance(60.0)
    det.export(store)
    assert store.value(names.ESTIMATED_ACCURACY_ROWS) == 60
    assert store.value(names.ESTIMATED_ACCURACY, ("atc",)) is None  # below min_rows (100): absent
    probs, _ = outputs(rng, 90, a=HEALTHY_A)
    det.update(Batch.from_arrays(np.zeros((90, 1)), probs, ts=np.linspace(60.0, 149.0, 90)))
    det.advance(150.0)
    det.export(store)
    assert store.value(names.ESTIMATED_ACCURACY_ROWS) == 150
    assert store.value(names.ESTIMATED_ACCURACY, ("atc",)) is not None
