"""Defects found reviewing session 37's bad-input changes (helper s37d): each test failed before
its fix. The standard: never a crash of the agent's worker, never a value silently read as
another, and a reference that was taken before is taken still."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor

__all__: list[str] = []


def _monitor(config: dict) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def test_a_nan_output_given_as_a_zero_dimensional_array_is_refused_not_an_internal_error() -> None:
    """A one-row call of a regression model whose output is a 0-d array (``np.array(nan)``, a
    0-d tensor, ``predict(x).squeeze()``): the nan_output message's lookup of the row as the call
    gave it took ``len()`` of it and raised, so the call was lost as ``internal_error`` (and
    MonitorInternalErrors paged) instead of being counted ``nan_output``."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    try:
        mon.observe([[1.0, 2.0]], np.array(np.nan))
        mon.observe([[1.0, 2.0]], np.array(1.0))
        mon.flush()
        value = mon.store.value
        assert value("monitor_rows_rejected", labels=("nan_output",)) == 1
        assert not value("monitor_internal_errors", labels=("ingest",))
        assert not value("monitor_rows_rejected", labels=("internal_error",))
        assert value("monitor_predictions") == 1
    finally:
        mon.close()
