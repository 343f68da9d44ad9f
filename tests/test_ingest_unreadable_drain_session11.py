"""A drain that starts with thousands of unreadable events (final review).

Since a decorated web handler's request objects are refused rather than learnt as a 1-feature
schema (8b09881), a model without ``features:`` whose handler is decorated without ``inputs=``
sends only unreadable events; the batch builder recursed once per leading unreadable event and
a drain of 3,000 of them raised RecursionError (caught by the pipeline, which then converted
one event at a time). Counted in a loop now, each one, the readable rows after them kept.
"""

from __future__ import annotations

import numpy as np

from monitor.config import OutputSpec
from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder


class _Request:  # what a web framework hands a handler
    pass


def test_thousands_of_leading_unreadable_events_are_counted_without_recursion() -> None:
    builder = BatchBuilder(None, OutputSpec(classes=("a", "b", "c")))
    bad = [(PREDICTION, 1.0, _Request(), [[0.2, 0.5, 0.3]], None, None, None, None, None)] * 3000
    good = [(PREDICTION, 1.0, [[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]], None, None, None, None, None)] * 5
    result = builder.build(bad + good)
    assert result.rejected == {"wrong_type": 3000}
    assert result.rows_per_event == [0] * 3000 + [1] * 5
    assert result.batch is not None and len(result.batch) == 5
    assert np.asarray(result.batch.numeric).shape == (5, 4)
