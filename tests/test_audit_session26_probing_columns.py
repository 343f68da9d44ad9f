"""The probing detector reads live rows by the reference's feature names (session 26 audit).

It read them by position: a DataFrame whose columns came in another order than the reference's
(the schema of a reference with categorical features is learned from the first live inputs) was
standardised against the wrong features, and every query read as out of distribution
(``monitor_probing_ood_ratio`` 1.0 on unchanged traffic, ModelProbingOutOfDistributionTraffic);
one with an extra numeric column (an id that the model's ColumnTransformer drops) failed every
update, counted as a detector error with a message about column order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50_000, 8_000, n),
                         "city": rng.choice(["a", "b"], n)})


def _run(columns: list[str]) -> Monitor:
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    ref = Reference.from_arrays(_frame(rng, 2000), scores=np.c_[1 - p, p])
    mon = Monitor(model="m", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
    live = _frame(rng, 3000)
    live["id"] = np.arange(3000.0)
    q = rng.random(3000)
    for i in range(0, 3000, 100):
        mon.observe(live[columns].iloc[i:i + 100], np.c_[1 - q[i:i + 100], q[i:i + 100]], client=f"c{i % 7}")
    mon.flush()
    return mon


@pytest.mark.parametrize("columns", [["income", "age", "city"], ["id", "age", "income", "city"]])
def test_dataframe_columns_in_another_order_or_with_extras_read_by_name(columns: list[str]) -> None:
    mon = _run(columns)
    try:
        assert mon.store.value("monitor_probing_queries", {"outcome": "analysed"}) == 3000
        assert mon.store.value("monitor_detector_errors", {"detector": "probing"}) in (None, 0.0)
        # as in the reference's own order (about the configured ood_fpr), not every query
        assert mon.store.value("monitor_probing_ood_ratio") < 0.05
    finally:
        mon.close()


def test_a_missing_reference_feature_is_named() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(500)
    ref = Reference.from_arrays(_frame(rng, 500), scores=np.c_[1 - p, p])
    mon = Monitor(model="m", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        det = next(d for d in mon.detectors if d.kind == "probing")
        from monitor.batch import Batch

        batch = Batch.from_arrays(np.ones((3, 1)), np.full((3, 2), 0.5), ts=0.0, numeric_names=("age",))
        with pytest.raises(ValueError, match="income"):
            det.update(batch)
    finally:
        mon.close()
