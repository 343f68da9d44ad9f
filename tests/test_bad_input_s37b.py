"""Bad input, follow-ups of session 36's review (session 37, helper s37b): each test failed before
its fix. The standard: a clear error naming the field and the fix, counted when refused, never a
crash of the agent, a figure poisoned or a value silently read as another."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor

__all__: list[str] = []

_P = [0.7, 0.2, 0.1]
_CLASSES = {"output": {"kind": "probabilities", "classes": ["x", "y", "z"]}}


def _monitor(config: dict) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _observe(mon: Monitor, form: str, values: list, other: list) -> None:
    """``values`` under key ``b`` (and ``other`` under ``a``) in one of the input forms a schema is learned from."""
    n = len(values)
    if form == "dict rows":
        mon.observe([{"a": a, "b": b} for a, b in zip(other, values)], [_P] * n)
    elif form == "calls of one dict row":
        for a, b in zip(other, values):
            mon.observe({"a": a, "b": b}, _P)
    elif form == "dict of columns":
        mon.observe({"a": other, "b": values}, [_P] * n)
    else:
        mon.observe(pd.DataFrame({"a": other, "b": values}), [_P] * n)
    mon.flush()


_FORMS = ["dict rows", "calls of one dict row", "dict of columns", "DataFrame"]


@pytest.mark.parametrize("form", _FORMS)
@pytest.mark.parametrize("first", ["N/A", "", None])
def test_a_learned_key_is_numeric_by_its_values_not_its_first_one(form: str, first: object,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A learned key's kind was its first value's: a numeric key whose first value was "N/A" (or
    empty text) became categorical for good, every amount a category of its own (a DataFrame's
    object column with one "N/A" anywhere too). It is now numeric when more of its values are
    numbers than text; the texts are counted wrong values, as for a configured numeric feature."""
    values = [first] + [float(i) for i in range(1, 20)] + ["N/A"]
    mon = _monitor(_CLASSES)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            _observe(mon, form, values, [1.0] * len(values))
        kinds = {f.name: f.kind for f in mon.pipeline.builder.schema.features}
        assert kinds == {"a": "numeric", "b": "numeric"}
        assert mon.store.value("monitor_predictions") == len(values)  # no row refused
        wrong = 2 if first == "N/A" else 1
        assert mon.store.value("monitor_data_invalid_rows", labels=("b", "wrong_type")) == wrong
        assert any("not numbers" in r.getMessage() and "'b'" in r.getMessage() for r in caplog.records)
    finally:
        mon.close()


@pytest.mark.parametrize("form", _FORMS)
def test_a_learned_key_of_mostly_text_stays_categorical(form: str) -> None:
    """The other way: a key whose values are mostly text is categorical even when its first one is
    a number (numbers under a categorical feature are read as their text, nothing lost)."""
    values = [3.0, "red", "blue", "red", "green", "blue", 4.0]
    mon = _monitor(_CLASSES)
    try:
        _observe(mon, form, values, [1.0] * len(values))
        kinds = {f.name: f.kind for f in mon.pipeline.builder.schema.features}
        assert kinds == {"a": "numeric", "b": "categorical"}
        assert mon.store.value("monitor_predictions") == len(values)
    finally:
        mon.close()
