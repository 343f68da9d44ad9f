"""ModelInputDrift lists the features driving the alarm "strongest first" with ``sortByLabel
"rank"`` (Prometheus's template function, the same in the agent), which sorts label text: with
``top_k`` of 10 or more, rank 10 came between 1 and 2 on the page ("1. a; 10. j; 11. k; 2. b").
Ranks are now written with as many digits as ``top_k`` has ("01" ... "12"), so that their text
order is their order; with the default ``top_k`` (3) they are "1", "2", "3" as before."""

from __future__ import annotations

import re

import numpy as np

from monitor.batch import Batch
from monitor.detectors.drift import FeatureDriftDetector
from monitor.promql.storage import SeriesStore
from monitor.reference import Reference
from monitor.rules.evaluator import RuleEvaluator
from monitor.store import MetricStore
from tests.conftest import REPO_ROOT

NAMES = [f"f{i:02d}" for i in range(12)]


def _alarm_text(top_k: int) -> tuple[list[str], str]:
    """Drive a drift detector until its alarm and evaluate the shipped drift pack on its series:
    (the rank labels written, ModelInputDrift's description)."""
    rng = np.random.default_rng(0)
    ref = Reference.from_arrays(rng.normal(size=(3000, len(NAMES))), numeric_names=NAMES)
    det = FeatureDriftDetector(ref, top_k=top_k, window_s=600, n_slots=6)
    store, series = MetricStore("m"), SeriesStore(retention_s=3600)
    ev = RuleEvaluator.from_files([str(REPO_ROOT / "rules" / "drift.yml")], storage=series, default_interval_s=15)
    t0 = 1.7e9
    for tick in range(1, 40):
        x = rng.normal(size=(200, len(NAMES))) + np.linspace(1.0, 3.0, len(NAMES))  # every feature shifted, unequally
        now = t0 + tick * 15.0
        det.update(Batch.from_arrays(x, ts=np.full(len(x), now - 1.0), numeric_names=NAMES))
        det.advance(now)
        det.export(store)
        series.append_scrape(now, [({"__name__": n, **labels}, v) for n, labels, v in store.samples()], source="scrape:m")
        ev.evaluate(now)
        firing = [a for a in ev.alerts() if a.name == "ModelInputDrift" and a.state.name.lower() == "firing"]
        if firing:
            ranks = [labels["rank"] for n, labels, _ in store.samples() if n == "monitor_drift_top_feature"]
            return ranks, firing[0].annotations["summary"] + "\n" + firing[0].annotations["description"]
    raise AssertionError("the shifted stream never raised ModelInputDrift")


def test_features_are_listed_in_rank_order_with_ten_or_more() -> None:
    ranks, text = _alarm_text(top_k=12)
    assert len(ranks) >= 10, ranks  # enough to need two digits
    listed = [int(r) for r in re.findall(r"(\d+)\. `", text)]
    assert listed == sorted(listed) and listed[0] == 1, text
    first = re.search(r"1\. `(\w+)`", text)
    assert first and f"feature `{first.group(1)}`" in text.splitlines()[0], text  # the summary names rank 1


def test_default_ranks_are_unchanged() -> None:
    ranks, text = _alarm_text(top_k=3)
    assert sorted(ranks) == ["1", "2", "3"]
    assert re.findall(r"(\d+)\. `", text) == ["1", "2", "3"], text
