"""A decorated ``predict()`` where ``predict_proba()`` was meant (session 26 audit).

A binary classifier's labels, an integer array of 0 and 1, were read as P(positive) 0 and 1 under
the default ``output.kind: probabilities``: every row had confidence 1 (no abstention, calibration
error equal to the error rate, confidence drift against a reference of real probabilities) and
nothing was logged or counted. A multi-class model's labels 0 and 1 were read so too, its other
labels refused as out of range. Integer and boolean arrays are now refused as
``labels_as_probabilities``, with a log line naming the fix; real probabilities, and integer
regression outputs, are read as before.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor


def _monitor(config: dict | None = None) -> Monitor:
    return Monitor(model="m", registry=CollectorRegistry(), config=config, start_worker=False, live=False)


def refused(mon: Monitor, caplog, call: Callable[[], object], reason: str) -> tuple[float | None, str]:
    """Rows refused for ``reason`` once ``call`` ran and the monitor flushed, and what was logged."""
    with caplog.at_level(logging.WARNING, logger="monitor"):
        call()
        mon.flush()
    return mon.store.value("monitor_rows_rejected", {"reason": reason}), " ".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("labels", [np.array([0, 1, 1, 0, 1, 0, 0, 1]), np.array([0, 1, 2, 1, 0, 2, 2, 1]),
                                    np.array([True, False] * 4), np.array([[0, 1], [1, 0]] * 4, dtype=np.int8)])
def test_a_decorated_predict_returning_labels_is_refused_with_the_fix(labels: np.ndarray, caplog) -> None:
    mon = _monitor()
    clf_predict = mon.watch(lambda X: labels[: len(X)])
    try:
        n, said = refused(mon, caplog, lambda: [clf_predict(np.zeros((len(labels), 3))) for _ in range(3)],
                          "labels_as_probabilities")
        assert n == 3 * len(labels)
        assert mon.store.value("monitor_predictions") in (None, 0.0)
        assert "predict_proba" in said and "output.kind: labels" in said
    finally:
        mon.close()


def test_probabilities_and_labels_kind_and_integer_regression_are_read() -> None:
    p = np.linspace(0.1, 0.9, 8)
    mon = _monitor()
    try:
        mon.observe(np.zeros((8, 3)), np.c_[1 - p, p])
        mon.observe(np.zeros((8, 3)), p.astype(np.float32))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 16
    finally:
        mon.close()
    for config in ({"output": {"kind": "labels"}}, {"output": {"kind": "regression"}}):
        mon = _monitor(config)
        try:
            mon.observe(np.zeros((8, 3)), np.array([0, 1, 1, 0, 1, 0, 0, 1]))
            mon.flush()
            assert mon.store.value("monitor_predictions") == 8, config
        finally:
            mon.close()


def test_a_reference_built_from_predict_says_so(caplog) -> None:
    """``Reference.from_arrays(X, scores=clf.predict(X))`` was taken silently: a classifier's
    detectors read its labels as probabilities 0 and 1 (confidence 1 on every reference row)."""
    from monitor import Reference

    x = np.zeros((10, 2))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        Reference.from_arrays(x, scores=np.array([0, 1] * 5))
        Reference.from_arrays(x, scores=np.full((10, 2), 0.5))
    said = [r.getMessage() for r in caplog.records if "reference scores are integers" in r.getMessage()]
    assert len(said) == 1 and "predict_proba" in said[0]


def test_a_tuple_returned_by_predict_is_named(caplog) -> None:
    """``predict`` returning ``(labels, probabilities)`` was refused as "rows of different lengths",
    which sent the user to output.classes; the log now names the tuple and the extractor to write."""
    mon = _monitor()
    f = mon.watch(lambda X: (np.array([0, 1]), np.array([[0.2, 0.8], [0.7, 0.3]])))
    try:
        answers = []
        n, said = refused(mon, caplog, lambda: answers.append(f(np.zeros((2, 3)))), "output_shape")
        assert answers[0][0].tolist() == [0, 1]  # the user's result, unchanged
        assert n == 2
        assert "a tuple of 2 arrays (shapes (2,), (2, 2))" in said and "outputs=lambda result: result[1]" in said
    finally:
        mon.close()
