"""What the worker refuses is counted in rows, whatever the reason (``monitor_rows_rejected_total``
is a count of rows: the accounting of rows sent against rows predicted and refused adds up only
so); and its one log line per reason stays readable whatever the event held. Found by session
24's audit: a call lost to a conversion bug counted one row whatever its rows, and a timestamp of
1e300 was logged as 301 digits of seconds ahead."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

__all__: list[str] = []

NOW = 1_700_000_000.0


def _monitor() -> Monitor:
    return Monitor(model="rej", registry=CollectorRegistry(auto_describe=False), clock=lambda: NOW)


def test_a_call_lost_to_a_conversion_failure_counts_its_rows(monkeypatch: Any) -> None:
    mon = _monitor()
    try:
        mon.observe(np.ones((3, 2)), np.full((3, 2), 0.5))
        mon.flush()  # the schema is learned from a good call first
        build = mon.pipeline.builder.build

        def broken(events: list[tuple]) -> Any:  # a conversion bug that one event sets off
            if any(len(e[2]) == 7 for e in events):
                raise RuntimeError("conversion bug")
            return build(events)

        monkeypatch.setattr(mon.pipeline.builder, "build", broken)
        mon.observe(np.ones((7, 2)), np.full((7, 2), 0.5))
        mon.observe(np.ones((4, 2)), np.full((4, 2), 0.5))
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_rows_rejected_total", model="rej", reason="internal_error") == 7
        assert sample(text, "monitor_internal_errors_total", model="rej", stage="ingest") == 1
        assert sample(text, "monitor_predictions_total", model="rej") == 3 + 4
    finally:
        mon.close()


def test_a_timestamp_far_in_the_future_is_logged_in_few_digits(caplog: Any) -> None:
    mon = _monitor()
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe(np.ones((2, 2)), np.full((2, 2), 0.5), timestamp=1e300)
            mon.observe(np.ones((1, 2)), np.full((1, 2), 0.5), timestamp=time.time() + 3600.0)  # ahead of both clocks
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "future_timestamp" in r.getMessage()]
        assert len(said) == 1 and "1e+300 s ahead" in said[0] and len(said[0]) < 1000, said
        assert sample(mon.metrics_text(), "monitor_rows_rejected_total", model="rej", reason="future_timestamp") == 3
    finally:
        mon.close()
