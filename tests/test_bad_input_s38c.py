"""Bad input found by a seeded in-process fuzz of ``observe`` / ``feedback`` over every output
kind (session 38, helper c): each test failed before its fix. The standard: a clear, counted
refusal or an unreadable value, never an internal error, a detector error, a warning on the
user's stderr, or a value misread."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.cell_values import category_text
from monitor.text import text_value

__all__: list[str] = []

_MIXED = {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}, {"name": "c", "kind": "text"}],
          "output": {"kind": "probabilities", "classes": ["n", "y"]}}


def _monitor(config: dict[str, Any]) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _internal_errors(mon: Monitor) -> float:
    return sum(mon.store.value("monitor_internal_errors", {"stage": s}) or 0 for s in ("ingest", "pipeline", "cycle"))


def _rejected(mon: Monitor, reason: str) -> float:
    return mon.store.value("monitor_rows_rejected", {"reason": reason}) or 0.0


def test_an_array_as_a_categorical_or_text_value_is_read_by_its_text() -> None:
    """A categorical or text feature's value given as an array (a dict row holding the tags of a
    request as a numpy array, a Series) lost the whole call as an internal error: the missing-value
    test ``v != v`` answered one value per element, whose truth raised ValueError. Such a value is
    now read by its text, as a list always was (a category of its own: an unseen category)."""
    assert category_text(np.array(["x", "y"])) == "['x' 'y']"
    assert category_text(pd.Series([1, 2])) == str(pd.Series([1, 2]))
    assert category_text(np.array([], dtype=object)) == "[]"
    assert category_text(np.array([np.nan])) is None  # one missing value, as before
    assert text_value(np.array(["some", "words"])) == "['some' 'words']"
    mon = _monitor(_MIXED)
    try:
        mon.observe({"a": 1.0, "b": np.array(["x", "y"]), "c": "some text here"}, [0.2, 0.8])
        mon.observe({"a": 1.0, "b": "x", "c": np.array(["some", "text"])}, [0.2, 0.8])
        mon.observe(pd.DataFrame({"a": [1.0], "b": [pd.Series([1, 2])], "c": ["t"]}), [[0.2, 0.8]])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 3
    finally:
        mon.close()
