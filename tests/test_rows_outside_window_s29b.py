"""Prediction rows older than the window (session 29 review): a live event stamped more than
``window`` behind the newest event time (a sender's clock or buffer lagging) was counted in
``monitor_predictions_total`` and then dropped by every windowed detector, counted only in the
windows' own ``expired``, which nothing exports. Such rows are now counted in
``monitor_rows_outside_window_total``, by the windows' own rule."""

from __future__ import annotations

import time

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.windows import rows_outside_window
from monitor.windows import SlidingWindow


def test_rows_a_window_behind_are_counted() -> None:
    mon = Monitor(model="m", registry=CollectorRegistry(), start_worker=False)
    try:
        now = time.time()
        p = np.linspace(0.1, 0.9, 50)
        mon.observe(np.zeros((50, 3)), np.c_[1 - p, p], timestamp=now)
        mon.observe(np.zeros((50, 3)), np.c_[1 - p, p], timestamp=now - 600)
        mon.flush()
        assert mon.store.value("monitor_rows_outside_window") == 0
        mon.observe(np.zeros((50, 3)), np.c_[1 - p, p], timestamp=now - 3 * 3600)
        mon.flush()
        assert mon.store.value("monitor_rows_outside_window") == 50
        assert mon.store.value("monitor_predictions") == 150
    finally:
        mon.close()


def test_the_count_is_what_a_window_drops() -> None:
    rng = np.random.default_rng(1)
    window = SlidingWindow(3600.0, n_slots=12)
    window.add(np.array([10_000.0]))
    ts = rng.uniform(0.0, 12_000.0, 500)
    counted = rows_outside_window(ts, max(10_000.0, float(ts.max())), 3600.0)
    window.add(ts)
    assert counted == window.expired > 0
