"""Audit (session 27), the ML engineer's on-ramp: the decorator as a user writes it."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from monitor import Monitor


@pytest.fixture
def mon(registry):
    m = Monitor(model="onramp", registry=registry, start_worker=False)
    yield m
    m.close()


def test_a_partial_with_a_wrong_input_arg_is_refused_naming_it(mon):
    """``watch(functools.partial(predict, model), input_arg=...)`` naming no parameter raised
    AttributeError ('functools.partial' object has no attribute '__qualname__') instead of the
    ValueError naming the argument, since a partial has no ``__qualname__``."""
    def predict(model: object, X: np.ndarray) -> np.ndarray:
        return np.full((len(X), 2), 0.5)

    with pytest.raises(ValueError, match=r"input_arg='features' is not a parameter of .*predict.*\('X',\)"):
        mon.watch(functools.partial(predict, None), input_arg="features")
    watched = mon.watch(functools.partial(predict, None))  # the rows: the first parameter left
    watched(np.zeros((3, 4)))
    mon.flush()
    assert mon.store.value("monitor_predictions") == 3.0


def test_events_left_queued_at_exit_are_counted_and_said(registry, monkeypatch, caplog):
    """At interpreter exit a running monitor gets ``EXIT_TIMEOUT_S`` to process what is queued.
    A backlog longer than that (590,000 rows with a reference, measured: 11,808 events) was lost
    without a count or a word, though the README says "what waits is processed, not lost"; what is
    left is now taken out of the queue, counted as dropped (``closed``) and logged with the fix."""
    import threading
    import time

    import monitor.core as core

    m = Monitor(model="exiting", registry=registry, config={"queue": {"batch_max": 10, "batch_min": 1}})
    slow = threading.Event()
    real_process = m.pipeline.process

    def process(events):
        slow.wait(0.05)  # a drain slower than the exit's bound
        return real_process(events)

    monkeypatch.setattr(m.pipeline, "process", process)
    monkeypatch.setattr(core, "EXIT_TIMEOUT_S", 0.2)

    @m.watch
    def predict(X):
        return np.full((len(X), 2), 0.5)

    for _ in range(200):
        predict(np.zeros((1, 3)))
    with caplog.at_level("WARNING", logger="monitor"):
        core._close_at_exit()
    left = m.queue.counters()[0].get("closed", 0)
    assert left > 0 and len(m.queue) == 0
    said = [r.getMessage() for r in caplog.records if "interpreter exit" in r.getMessage()]
    assert said and f"{left} event(s)" in said[0] and "mon.flush()" in said[0]
    deadline = time.monotonic() + 10
    while m.worker.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    processed = m.store.value("monitor_predictions") or 0.0
    assert processed + left == 200  # every event processed or counted, none twice


def test_a_close_that_timed_out_leaves_its_backlog_counted_at_exit(registry, monkeypatch, caplog):
    """``mon.close(timeout)`` returns with its worker still draining; the monitor has left the
    running ones, so at exit what it had not reached was lost without a count as well."""
    import threading

    import monitor.core as core

    m = Monitor(model="closed-slow", registry=registry, config={"queue": {"batch_max": 10, "batch_min": 1}})
    real_process = m.pipeline.process
    monkeypatch.setattr(m.pipeline, "process", lambda events: (threading.Event().wait(0.05), real_process(events)))
    monkeypatch.setattr(core, "EXIT_TIMEOUT_S", 0.1)
    for _ in range(200):
        m.observe(np.zeros((1, 3)), np.full((1, 2), 0.5))
    m.close(0.1)
    assert m.worker.alive
    with caplog.at_level("WARNING", logger="monitor"):
        core._close_at_exit()
    left = m.queue.counters()[0].get("closed", 0)
    assert left > 0
    assert any(f"{left} event(s)" in r.getMessage() for r in caplog.records)
