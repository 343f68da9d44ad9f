"""Rows of a generative model (``output.kind: text``) that carry nothing but the answers' key
``output`` (a logger that put the response among the inputs, without the prompt) were refused as
``wrong_type`` saying "the inputs are list, not rows of numbers or of feature values", with the
fix for numeric rows. They are still refused (no input to monitor), counted as ``wrong_type``,
and the log line now says what they carry and the fix: the inputs under their own keys, the
answer as the call's outputs."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor


@pytest.mark.parametrize("key", ["output", "output.length"])
def test_rows_of_the_answers_key_alone_are_refused_saying_why_and_the_fix(key, caplog) -> None:
    mon = Monitor(model="llm", config={"output": {"kind": "text"}}, registry=CollectorRegistry(), start_worker=False,
                  live=False)
    try:
        with caplog.at_level("WARNING", logger="monitor"):
            mon.observe([{key: "an answer"}, {key: "another answer"}], ["an answer", "another answer"])
            mon.flush()
            mon.observe([{"prompt": "tell me a story"}], ["once upon a time"])  # a good call is read
            mon.flush()
        assert mon.store.value("monitor_rows_rejected", labels=("wrong_type",)) == 2.0
        assert mon.pipeline.builder.schema.names == ("prompt",)
        said = [r.getMessage() for r in caplog.records if "wrong_type" in r.getMessage()]
        assert len(said) == 1, caplog.text
        assert f"only the key(s) {key!r}" in said[0] and "the call's outputs" in said[0], said[0]
        assert "send numeric rows" not in said[0]
    finally:
        mon.close()
