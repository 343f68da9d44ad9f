"""An event's ``embedding`` that cannot be read (text, ragged rows, a size that is not a whole
number of values per row), found by session 24's audit. The event format and ``observe`` take
it unchecked; the worker's conversion then raised, so the drain was converted again one event at
a time, the event's prediction was lost as ``monitor_rows_rejected_total{reason="internal_error"}``
and MonitorInternalErrors paged with "file a bug". Bad input is not an internal error: the rows
are processed without the embedding, which is counted in
``monitor_row_arguments_dropped_total{argument="embedding"}`` as a per-row argument of the wrong
length is, and the log says the fix once."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample, total

__all__: list[str] = []

GOOD = np.array([[0.2, 0.8], [0.6, 0.4]])


def _monitor() -> Monitor:
    return Monitor(model="emb", registry=CollectorRegistry(auto_describe=False), clock=lambda: 1_700_000_000.0)


@pytest.mark.parametrize("embedding", ["x", [[1.0, 2.0], [3.0]], [1.0, 2.0, 3.0], {"a": 1}, [["a", "b"], ["c", "d"]]],
                         ids=["text", "ragged", "not_per_row", "object", "text_rows"])
def test_an_unreadable_embedding_is_dropped_and_counted_not_an_internal_error(embedding: Any, caplog: Any) -> None:
    mon = _monitor()
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], GOOD, embedding=embedding)
            mon.observe([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], GOOD, embedding=[[0.1, 0.2], [0.3, 0.4]])
            mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_predictions_total", model="emb") == 4  # both calls' rows, the bad one's too
        assert sample(text, "monitor_internal_errors_total", model="emb", stage="ingest") == 0
        assert total(text, "monitor_rows_rejected_total", model="emb") == 0
        assert sample(text, "monitor_row_arguments_dropped_total", model="emb", argument="embedding") == 2
        said = [r.getMessage() for r in caplog.records if "embedding" in r.getMessage()]
        assert len(said) == 1 and "Fix:" in said[0], said
    finally:
        mon.close()


def test_readable_embeddings_are_kept_whole() -> None:
    """The rows of every call that gave a readable embedding carry it (one row flat, or rows)."""
    from monitor.events import PREDICTION
    from monitor.ingest import BatchBuilder
    from monitor.schema import OutputSpec

    events = [(PREDICTION, 1.0, [[1.0, 2.0], [3.0, 4.0]], GOOD, None, None, None, None, [[1, 2, 3], [4, 5, 6]]),
              (PREDICTION, 2.0, [5.0, 6.0], [0.5, 0.5], None, None, None, None, [7, 8, 9])]
    result = BatchBuilder(None, OutputSpec()).build(events)
    assert result.batch is not None and result.batch.embedding is not None
    np.testing.assert_array_equal(result.batch.embedding, np.arange(1, 10, dtype=np.float64).reshape(3, 3))
    assert result.arguments_dropped == {}
