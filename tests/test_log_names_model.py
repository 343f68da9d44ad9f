"""What a monitor logs while running its detectors names its model.

A sidecar runs several models in one process and one log: a detector failing at every batch, or
the probing detector's "queries came without a usable embedding", said nothing of which model's
detector it was (detectors know no model; only set-up lines were prefixed). Every line logged on
the ``monitor`` logger while a pipeline runs (worker drains, flush, scrape export) now starts with
``model 'name': ``, and lines of another thread (another model's worker) are left alone.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.log_model import model_named_in_log

CONFIG = {"features": [{"name": "a"}, {"name": "b"}], "output": {"kind": "probabilities", "classes": ["n", "y"]},
          "detectors": [{"kind": "confidence"}]}


def _monitor(model: str, **kwargs) -> Monitor:
    return Monitor(config={**CONFIG, "model": model}, registry=CollectorRegistry(auto_describe=False),
                   clock=lambda: 1_700_000_000.0, **kwargs)


def _break_detector(mon: Monitor, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(batch):
        raise ValueError("cannot read this batch")

    monkeypatch.setattr(mon.pipeline.detectors[0], "update", broken)


def _observe(mon: Monitor) -> None:
    mon.observe(np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[0.3, 0.7], [0.6, 0.4]]))


def test_a_failing_detector_is_logged_with_its_model_from_a_flush(monkeypatch, caplog) -> None:
    mon = _monitor("fraud", start_worker=False)
    try:
        _break_detector(mon, monkeypatch)
        with caplog.at_level(logging.ERROR, logger="monitor"):
            _observe(mon)
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "ConfidenceDetector failed" in r.getMessage()]
        assert said and all(m.startswith("model 'fraud': detector ConfidenceDetector failed") for m in said), said
    finally:
        mon.close()


def test_a_failing_detector_is_logged_with_its_model_from_the_worker(monkeypatch, caplog) -> None:
    mon = _monitor("churn")
    try:
        _break_detector(mon, monkeypatch)
        with caplog.at_level(logging.ERROR, logger="monitor"):
            _observe(mon)
            mon.flush()
        said = [r for r in caplog.records if "ConfidenceDetector failed" in r.getMessage()]
        assert said and said[0].getMessage().startswith("model 'churn': "), [r.getMessage() for r in said]
    finally:
        mon.close()


def test_other_threads_and_lines_naming_a_model_are_left_alone(caplog) -> None:
    logger = logging.getLogger("monitor")
    seen: list[str] = []
    with caplog.at_level(logging.WARNING, logger="monitor"):
        with model_named_in_log("fraud"):
            thread = threading.Thread(target=lambda: logger.warning("from another thread"))
            thread.start()
            thread.join()
            logger.warning("model %r: already named", "churn")
            with model_named_in_log("inner"):  # a flush inside a replay keeps the replay's model
                logger.warning("nested")
        logger.warning("after the block")
        seen = [r.getMessage() for r in caplog.records]
    assert seen == ["from another thread", "model 'churn': already named", "model 'fraud': nested", "after the block"]
