"""A call on no rows given as an empty list (``predict([])``, a JSON event's ``"inputs": []``:
a batching server's empty batch), found by session 24's audit. An empty array or DataFrame was
read as no rows, but an empty list became one row of no feature, refused as
``wrong_shape`` ("expected rows of 3 features, got shape (1, 0)"): a row that was never sent,
counted in monitor_rows_rejected_total, logged as the model's inputs being wrong and, at a
steady share of empty batches, enough for ModelInputsUnreadable. It is no row now, like an
empty array."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample, total

__all__: list[str] = []


@pytest.mark.parametrize("config", [{"features": ["a", "b", "c"]},
                                    {"features": ["a", "b", {"name": "c", "kind": "categorical"}]}],
                         ids=["numeric", "with_categorical"])
@pytest.mark.parametrize("empty", [[], (), np.empty((0, 3))], ids=["list", "tuple", "array"])
def test_an_empty_call_is_no_row(config: dict[str, Any], empty: Any) -> None:
    mon = Monitor(model="e", config={**config, "output": {"classes": ["x", "y"]}},
                  registry=CollectorRegistry(auto_describe=False))
    try:
        mon.observe([[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]], [[0.4, 0.6], [0.7, 0.3]])
        mon.observe(empty, [])
        mon.observe(empty, np.empty((0, 2)))
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_predictions_total", model="e") == 2
        assert total(text, "monitor_rows_rejected_total", model="e") == 0
    finally:
        mon.close()
