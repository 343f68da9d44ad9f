"""Input rows of a generative model (``output.kind: text``) carrying a key its answers' features are named.

The answers are the text feature ``output`` (``output.length``, ``output.words``...). Row objects
carrying a key ``output`` (a format setting, a logged earlier answer) or ``output.length`` had that
key learned as an input feature: ``output`` took the answers' place in the detectors' schema (the
answers' columns were in every batch, and no detector was told of them), and ``output.length``
gave batches two numeric columns of one name, the input's and the answers', each read as the
other. Such keys are now left out of the learned schema: never read as inputs, said once with the
fix (rename the key; an answer is the call's outputs), and each row that carried one counted in
``monitor_row_arguments_dropped_total{argument="reserved_key"}``. The answers and the other keys
are monitored as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor

PROMPT = "Tell me a story about a dragon please"


def _monitor() -> Monitor:
    return Monitor(model="llm", config={"output": {"kind": "text"}}, registry=CollectorRegistry(), start_worker=False,
                   live=False)


def _spy(mon: Monitor) -> list:
    seen: list = []
    mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                   "__getattr__": lambda self, n: (lambda *a, **k: None)})())
    return seen


@pytest.mark.parametrize("key, value", [("output", "json"), ("output.length", 3.0), ("output.oov_share", 0.5)])
@pytest.mark.parametrize("form", ["rows", "frame", "columns"])
def test_a_row_key_named_as_the_answers_features_is_left_out_said_and_counted(key, value, form, caplog) -> None:
    mon = _monitor()
    try:
        seen = _spy(mon)
        rows = [{"prompt": PROMPT, key: value, "n": 2}, {"prompt": PROMPT, key: value, "n": 3}]
        inputs = {"rows": rows, "frame": pd.DataFrame(rows),
                  "columns": {k: [r[k] for r in rows] for k in rows[0]}}[form]
        with caplog.at_level("WARNING", logger="monitor"):
            mon.observe(inputs, ["an answer", "a longer answer here"])
            mon.observe([{"prompt": PROMPT, "n": 4}], ["one answer"])  # a row without it: nothing dropped
            mon.flush()
        schema = mon.pipeline.builder.schema
        assert schema.names == ("prompt", "n"), schema
        names = [n for b in seen if hasattr(b, "numeric_names") for n in b.numeric_names]
        batch = next(b for b in seen if hasattr(b, "numeric_names"))
        assert len(set(batch.numeric_names)) == len(batch.numeric_names), batch.numeric_names
        assert batch.numeric_names[-4:] == ("output.length", "output.words", "output.non_letter_share",
                                              "output.non_ascii_share")
        assert sorted(batch.numeric[:, list(batch.numeric_names).index("output.length")].tolist()) == \
            sorted([len("an answer"), len("a longer answer here"), len("one answer")])
        assert "output.length" in names
        assert mon.store.value("monitor_row_arguments_dropped", labels=("reserved_key",)) == 2.0
        assert mon.store.value("monitor_predictions") == 3.0
        said = [r.getMessage() for r in caplog.records if repr(key) in r.getMessage()]
        assert said and "rename" in said[0] and "output.kind: text" in said[0], caplog.text
    finally:
        mon.close()


def test_other_kinds_keep_a_key_named_output() -> None:
    mon = Monitor(model="m", config={"output": {"kind": "none"}}, registry=CollectorRegistry(), start_worker=False,
                  live=False)
    try:
        mon.observe([{"x": 1.0, "output": 2.0}], None)
        mon.flush()
        assert mon.pipeline.builder.schema.names == ("x", "output")
        assert mon.store.value("monitor_row_arguments_dropped", labels=("reserved_key",)) in (None, 0.0)
    finally:
        mon.close()


def test_a_configured_feature_named_as_an_answers_column_is_refused_naming_it() -> None:
    from monitor.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"model": "llm", "features": [{"name": "prompt", "kind": "text"}, {"name": "output.length"}],
                      "output": {"kind": "text"}})
    assert "features[1].name" in str(err.value) and "'output.length'" in str(err.value) and "rename" in str(err.value)
    parse_config({"model": "llm", "features": [{"name": "output.length"}], "output": {"kind": "none"}})
