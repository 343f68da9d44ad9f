"""Free text under a row key or DataFrame column, learned without a reference, is a text feature
(its descriptors monitored, as a reference DataFrame's free text is), said once with the way to
read it as categories. It was learned as categorical: every comment a category of its own and
nothing of the text monitored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder
from monitor.schema import OutputSpec

COMMENTS = [f"the parcel number {i} arrived {'very ' * (i % 4)}late and the box was open" for i in range(50)]


def ev(inputs, outputs):
    return (PREDICTION, 0.0, inputs, outputs, None, None, None, None, None)


def _forms():
    rows = [{"x": float(i), "channel": ["web", "app"][i % 2], "comment": c} for i, c in enumerate(COMMENTS)]
    return {"rows": rows, "columns": {k: [r[k] for r in rows] for k in rows[0]}, "frame": pd.DataFrame(rows)}


@pytest.mark.parametrize("form", ["rows", "columns", "frame"])
def test_free_text_is_learned_as_text_and_said_once(form, caplog) -> None:
    b = BatchBuilder(None, OutputSpec())
    with caplog.at_level("WARNING", logger="monitor"):
        r = b.build([ev(_forms()[form], np.array([[0.3, 0.7]] * 50))])
        b.build([ev(_forms()[form], np.array([[0.3, 0.7]] * 50))])
    assert b.schema.text_names == ("comment",) and b.schema.categorical_names == ("channel",)
    names = list(r.batch.numeric_names)
    assert r.batch.numeric[:, names.index("comment.length")].tolist() == [float(len(c)) for c in COMMENTS]
    said = [m.getMessage() for m in caplog.records if "'comment'" in m.getMessage()]
    assert len(said) == 1 and "free text" in said[0] and "kind: categorical" in said[0], said


def test_the_references_kind_and_short_codes_are_kept() -> None:
    b = BatchBuilder(None, OutputSpec(), reference_names=("x", "comment"), reference_categorical=("comment",))
    b.build([ev(_forms()["rows"], [[0.3, 0.7]] * 50)])
    assert b.schema.categorical_names == ("channel", "comment") and b.schema.text_names == ()
    b = BatchBuilder(None, OutputSpec())
    b.build([ev([{"city": f"town{i}"} for i in range(50)], [[0.3, 0.7]] * 50)])
    assert b.schema.categorical_names == ("city",)
