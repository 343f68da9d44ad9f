"""Rows folded into the segment ``other`` (past ``segments.cap`` distinct values) were counted in
``monitor_segment_overflow_rows_total`` without a word in the log: a segment of unbounded values
(a user id given as the segment) hid every value past the cap under ``other`` silently. The
agent now says it once per model, with the count and the fix."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from monitor.core import Monitor


def _monitor(cap: int) -> Monitor:
    return Monitor(config={"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
                           "segments": {"cap": cap}, "detectors": [{"kind": "segments"}]},
                   registry=CollectorRegistry(auto_describe=False), live=False, start_worker=False)


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "segments.cap" in r.getMessage()]


def test_the_overflow_into_other_is_said_once_with_its_count(caplog) -> None:
    mon = _monitor(2)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe([[1.0, 2.0]] * 4, [[0.2, 0.8]] * 4, segment=["eu", "us", "eu", "us"])
            mon.flush()
            assert _said(caplog) == []  # within the cap: nothing to say
            mon.observe([[1.0, 2.0]] * 5, [[0.2, 0.8]] * 5, segment=[f"user-{i}" for i in range(5)])
            mon.flush()
            mon.observe([[1.0, 2.0]] * 3, [[0.2, 0.8]] * 3, segment=[f"user-{i}" for i in range(5, 8)])
            mon.flush()
        assert mon.store.value("monitor_segment_overflow_rows") == 8
        (line,) = _said(caplog)
        assert "'m'" in line and 'segment="other"' in line and "5 rows so far" in line and "Fix: " in line, line
    finally:
        mon.close()
