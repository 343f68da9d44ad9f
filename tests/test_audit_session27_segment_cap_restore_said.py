"""Audit (session 27, s27f): a restart with another ``segments.cap`` said nothing.

README: the cap "can be raised across a restart, the per-segment figures then refilling". With
two real ``monitor serve`` processes (cap 20, then 1) every per-segment series (rows, confidence,
calibration, gaps) vanished after the restart while the log said only "restored iris ... reference
same": the per-segment states saved under the old cap are set aside without a word, where a
changed window is logged and counted. The restore now says which detectors' per-segment figures
start empty and refill over one window (their other figures are restored).
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from monitor.core import Monitor


def _monitor(cap: int, detectors: list) -> Monitor:
    return Monitor(config={"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
                           "segments": {"cap": cap}, "detectors": detectors},
                   registry=CollectorRegistry(auto_describe=False), live=False, start_worker=False)


@pytest.mark.parametrize("detectors", [[{"kind": "segments"}], [{"kind": "confidence"}, {"kind": "segments"}]])
def test_a_restore_under_another_cap_says_the_segments_refill(tmp_path, caplog, detectors):
    path = tmp_path / "m.ckpt"
    first = _monitor(20, detectors)
    first.observe([[1.0, 2.0]] * 4, [[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]],
                  segment=["eu", "us", "eu", "us"], timestamp=1_700_000_000.0)
    first.flush()
    first.save_checkpoint(path, final=True)
    first.close()

    for cap, said in ((20, False), (1, True)):
        second = _monitor(cap, detectors)
        try:
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="monitor.checkpoint"):
                assert second.restore_checkpoint(path)
            lines = [r.getMessage() for r in caplog.records if "per-segment" in r.getMessage()]
            assert bool(lines) is said, lines
            if said:
                assert "segments" in lines[0] and "refill over one window" in lines[0] and "segments.cap" in lines[0]
        finally:
            second.close()
