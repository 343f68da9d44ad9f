"""The shipped drift and data-quality rules, evaluated by the agent's own rule engine over the
metric store's samples: silent on unshifted streams, firing on shifted ones, naming the feature."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.data_quality import DataQualityDetector
from monitor.detectors.drift import FeatureDriftDetector
from monitor.reference import Reference
from monitor.store import MetricStore
from tests import drift_streams as S
from tests.conftest import REPO_ROOT

rules_evaluator = pytest.importorskip("monitor.rules.evaluator")
storage = pytest.importorskip("monitor.promql.storage")

PACKS = [REPO_ROOT / "rules" / "drift.yml", REPO_ROOT / "rules" / "data_quality.yml"]


def replay(shift, *, minutes: int, onset_min: float, rows_per_s: float = 5.0, seed: int = 0) -> list:
    """Drive detectors for ``minutes`` of event time, scraping every 15 s into the rule engine;
    return the alert transitions."""
    rng = np.random.default_rng(seed)
    ref = Reference.from_arrays(S.sample(np.random.default_rng(99), 3000), numeric_names=S.NAMES)
    dets = [FeatureDriftDetector(ref, window_s=1800, n_slots=6), DataQualityDetector(ref, window_s=600, n_slots=6)]
    store = MetricStore("m")
    series = storage.SeriesStore(retention_s=7200)
    ev = rules_evaluator.RuleEvaluator.from_files([str(p) for p in PACKS], storage=series, default_interval_s=15)
    out = []
    t0 = 1.7e9
    per_tick = int(rows_per_s * 15)
    onset_row = int(onset_min * 60 * rows_per_s)
    row = 0
    for tick in range(1, minutes * 4 + 1):
        x = S.sample(rng, per_tick)
        t_rows = np.arange(row, row + per_tick)
        if shift is not None and row >= onset_row:
            shift(x, rng, (t_rows - onset_row).astype(float))
        ts = t0 + t_rows / rows_per_s
        batch = Batch.from_arrays(x, ts=ts, numeric_names=S.NAMES)
        now = t0 + tick * 15.0
        for d in dets:
            d.update(batch)
            d.advance(now)
            d.export(store)
        row += per_tick
        samples = [({"__name__": name, **labels}, value) for name, labels, value in store.samples()]
        series.append_scrape(now, samples, source="scrape:m")
        out.extend(ev.evaluate(now))
    return out


def fired(transitions: list) -> list:
    return [t for t in transitions if t.to_state == "firing"]


def test_rules_silent_on_unshifted_stream() -> None:
    tr = replay(None, minutes=120, onset_min=0)  # 36,000 rows
    assert fired(tr) == []


def test_input_drift_alert_names_the_feature_and_change() -> None:
    tr = replay(S.x10(0), minutes=40, onset_min=20)
    alerts = [t for t in fired(tr) if t.alertname == "ModelInputDrift"]
    assert alerts, [t.alertname for t in tr]
    a = alerts[0]
    assert a.time - (1.7e9 + 20 * 60) <= 120  # within two minutes (600 rows) of the onset
    assert "feature `income`" in a.annotations["summary"], a.annotations
    assert "scaled x" in a.annotations["summary"] or "shifted" in a.annotations["summary"]
    assert "income" in a.annotations["description"]


def test_missing_and_stuck_rules_fire() -> None:
    tr = replay(S.rising_missing(6, per_row=1 / 1000), minutes=50, onset_min=10)
    names = {t.alertname for t in fired(tr)}
    assert "ModelFeatureMissingValues" in names and "ModelInputDrift" in names
    miss = [t for t in fired(tr) if t.alertname == "ModelFeatureMissingValues"][0]
    assert miss.labels["feature"] == "ratio"
    tr = replay(S.stuck(2, 0.5), minutes=30, onset_min=10)
    stuck = [t for t in fired(tr) if t.alertname == "ModelFeatureStuck"]
    assert stuck and stuck[0].labels["feature"] == "score"
    assert "consecutive rows" in stuck[0].annotations["description"]
