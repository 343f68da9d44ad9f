"""Audit (session 27, s27f): the restore's log line on a checkpoint of other outputs.

With another class order (or output kind, or quantile levels), a restore drops the predictions
waiting for their label (their columns are of the old layout; README: counted in
monitor_labels_evicted_total), but its warning said "alert states, event clock, label joins and
counters restored": an operator looking for why the labelled figures stalled after a deploy read
that the joins had survived. It now says they were dropped, how many, and where they are counted.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from monitor.core import Monitor


def _monitor(path, classes: list[str]) -> Monitor:
    return Monitor(config={"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": classes},
                           "checkpoint": {"path": str(path)}},
                   registry=CollectorRegistry(auto_describe=False), live=False, start_worker=False)


def test_the_restore_says_the_waiting_predictions_were_dropped(tmp_path, caplog):
    path = tmp_path / "m.ckpt"
    first = _monitor(path, ["x", "y"])
    first.observe([[1.0, 2.0], [3.0, 4.0]], [[0.2, 0.8], [0.6, 0.4]], request_id=["r1", "r2"], timestamp=1_700_000_000.0)
    first.flush()
    first.save_checkpoint(final=True)
    first.close()

    second = _monitor(path, ["y", "x"])
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.checkpoint"):
            assert second.restore_checkpoint()
        assert second.store.value("monitor_labels_evicted") == 2
        line = next(r.getMessage() for r in caplog.records if "restored without its detector states" in r.getMessage())
        assert "alert states, event clock and counters restored" in line, line
        assert "2 predictions waiting for their label were dropped" in line and "monitor_labels_evicted_total" in line, line
    finally:
        second.close()


def test_with_the_same_outputs_the_joins_are_said_restored(tmp_path, caplog):
    path = tmp_path / "m.ckpt"
    first = Monitor(config={"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]}},
                    registry=CollectorRegistry(auto_describe=False), live=False, start_worker=False)
    first.observe([[1.0, 2.0]], [[0.2, 0.8]], request_id=["r1"], timestamp=1_700_000_000.0)
    first.flush()
    first.save_checkpoint(path, final=True)
    first.close()
    second = Monitor(config={"model": "m", "features": ["a", "c"], "output": {"kind": "probabilities", "classes": ["x", "y"]}},
                     registry=CollectorRegistry(auto_describe=False), live=False, start_worker=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.checkpoint"):
            assert second.restore_checkpoint(path)
        line = next(r.getMessage() for r in caplog.records if "restored without its detector states" in r.getMessage())
        assert "label joins" in line and "dropped" not in line, line
        assert second.store.value("monitor_labels_pending") == 1
    finally:
        second.close()
