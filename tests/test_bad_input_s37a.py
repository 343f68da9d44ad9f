"""Bad input at the entry points, the fixes of session 36's helper s36a redone on top of the reading
of unreadable numeric values (session 37, helper s37a): each test failed before its fix. The
standard: a clear error naming the field and the fix, counted when refused, never a crash of the
agent, a change to the user's predict or data silently lost."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference

__all__: list[str] = []


def _monitor(config: dict, model: str = "m") -> Monitor:
    return Monitor(model=model, config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def test_masked_entries_of_a_masked_array_are_read_as_missing() -> None:
    """A numpy masked array was read without its mask (``np.asarray`` keeps the data alone): the
    masked entries were monitored as the values they hid (a fill value of 1e20 read as a real
    input, or as a reference row's value), and the quality detector counted nothing missing. They
    are now missing (NaN), in inputs (arrays, a dict of columns), outputs and the reference alike."""
    mon = _monitor({"features": ["a", "b", "c"], "output": {"classes": ["n", "y"]}})
    try:
        x = np.ma.masked_array(np.full((4, 3), 1.0), mask=[[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]], fill_value=1e20)
        mon.observe(x, np.full((4, 2), 0.5))
        mon.observe(np.ma.masked_array(np.ones((2, 3), dtype=int), mask=[[0, 0, 1], [0, 0, 0]]), np.full((2, 2), 0.5))
        mon.observe({"a": np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "b": [1.0, 1.0], "c": [1.0, 1.0]}, np.full((2, 2), 0.5))
        mon.observe(np.ones((2, 3)), np.ma.masked_array(np.full((2, 2), 0.5), mask=[[1, 1], [0, 0]]))
        mon.flush()
        value = mon.store.value
        assert value("monitor_predictions") == 9 and value("monitor_rows_rejected", {"reason": "nan_output"}) == 1
        missing = {f: value("monitor_data_invalid_rows", {"feature": f, "reason": "missing"}) for f in "abc"}
        assert missing == {"a": 3.0, "b": 1.0, "c": 1.0}, missing
        assert not value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"})  # masked is missing, not wrong
    finally:
        mon.close()
    rows = np.random.default_rng(3).normal(size=(50, 2))
    ref = Reference.from_arrays(np.ma.masked_array(rows, mask=np.c_[np.arange(50) < 5, np.zeros(50, bool)]),
                                numeric_names=["a", "b"])
    assert np.isnan(ref.numeric[:5, 0]).all() and np.isfinite(ref.numeric[5:]).all()
