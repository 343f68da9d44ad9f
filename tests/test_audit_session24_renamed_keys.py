"""Input rows given as objects (dict rows, DataFrames, JSON events, an OIP v2 request with one
tensor per feature) whose keys are not the configured features, found by session 24's audit: a
misspelled key (``sepal_widht``), a renamed column, or OIP v2 tensors named otherwise than the
features. Their values were dropped without a word and the features read as missing: only
ModelFeatureMissingValues could hint at it, without the key that was sent. The first such row
says, once, which keys are no feature and which features they left missing, with the fix. Rows
that carry every feature and other keys besides (an id, metadata the model ignores) say nothing."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

__all__: list[str] = []

CONFIG = {"features": ["sepal_length", "sepal_width"], "output": {"classes": ["a", "b"]}}


def _said(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if "no configured feature" in r.getMessage()]


@pytest.mark.parametrize("inputs", [
    [{"sepal_length": 1.0, "sepal_widht": 2.0}],
    {"sepal_length": [1.0], "sepal_widht": [2.0]},
    pd.DataFrame({"sepal_length": [1.0], "sepal_widht": [2.0]}),
], ids=["dict_rows", "columnar", "dataframe"])
def test_a_key_that_is_no_feature_is_said_once_with_the_feature_it_left_missing(inputs: Any, caplog: Any) -> None:
    mon = Monitor(model="k", config=CONFIG, registry=CollectorRegistry(auto_describe=False))
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for _ in range(3):
                mon.observe(inputs, [[0.4, 0.6]])
                mon.flush()
        said = _said(caplog)
        assert len(said) == 1, said
        assert "'sepal_widht'" in said[0] and "'sepal_width'" in said[0] and "Fix:" in said[0]
        text = mon.metrics_text()
        assert sample(text, "monitor_predictions_total", model="k") == 3  # the rows are still monitored
        assert sample(text, "monitor_data_invalid_rows_total", model="k", feature="sepal_width", reason="missing") == 3
    finally:
        mon.close()


def test_extra_keys_beside_every_feature_say_nothing(caplog: Any) -> None:
    mon = Monitor(model="k", config=CONFIG, registry=CollectorRegistry(auto_describe=False))
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe([{"sepal_length": 1.0, "sepal_width": 2.0, "request_uuid": "x"}], [[0.4, 0.6]])
            mon.observe([{"sepal_length": 1.0}], [[0.4, 0.6]])  # a feature missing, no other key: a missing value
            mon.flush()
        assert _said(caplog) == []
        assert sample(mon.metrics_text(), "monitor_predictions_total", model="k") == 2
    finally:
        mon.close()
