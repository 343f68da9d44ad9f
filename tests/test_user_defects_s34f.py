"""Small user-facing defects found by audits (session 34, helper s34f), each test failing before
its fix."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from tests.sidecar_support import http, start_sidecar, total
from tests.test_proxy import IRIS

__all__: list[str] = []


def _prompts(rng: np.random.Generator, n: int) -> list[str]:
    words = np.array(["reset", "password", "weather", "city", "invoice", "refund", "order", "late", "please", "how"])
    return [" ".join(rng.choice(words, rng.integers(3, 12))).capitalize() + "?" for _ in range(n)]


def test_a_reference_of_text_alone_needs_no_numeric_array() -> None:
    """``Reference.from_arrays(text=..., text_names=...)`` (an LLM's prompts) raised a bare
    ``TypeError`` (missing ``numeric``), while a DataFrame of the same texts was a reference; it
    is now the same reference, and a monitor of the prompts reads them against it."""
    rng = np.random.default_rng(5)
    prompts = _prompts(rng, 400)
    alone = Reference.from_arrays(text=prompts, text_names=["prompt"])
    framed = Reference.from_arrays(pd.DataFrame({"prompt": prompts}), text_names=["prompt"])
    assert alone.text_names == ("prompt",) and alone.numeric_names == framed.numeric_names
    np.testing.assert_array_equal(alone.numeric, framed.numeric)
    assert alone.vocabularies == framed.vocabularies and len(alone) == 400
    mon = Monitor(model="llm", config={"features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}},
                  reference=alone, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(_prompts(rng, 50), None)
        mon.flush()
        assert mon.store.value("monitor_predictions") == 50
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "prompt.oov_share", "reason": "missing"}) == 0
    finally:
        mon.close()


def test_a_reference_of_nothing_says_which_arguments_give_its_rows() -> None:
    with pytest.raises(ValueError, match=r"numeric=.*text=.*text_names="):
        Reference.from_arrays()


def _refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused (rows_mismatch)" in r.getMessage()]


def test_a_predict_returning_none_is_said_to_return_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A decorated predict returning None (its outputs never returned) was said to give "20 input
    rows but 1 outputs" (None read as one NaN output; for a one-row call a NaN output, counted as
    nan_output). It is now said to be None with the fix, counted under rows_mismatch either way,
    and predict's own answer is unchanged."""
    rng = np.random.default_rng(6)
    ref = Reference.from_arrays(rng.normal(size=(500, 3)), numeric_names=["a", "b", "c"])
    mon = Monitor(model="none_out", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        @mon.watch
        def predict(x: np.ndarray) -> None:
            return None

        with caplog.at_level(logging.WARNING, logger="monitor"):
            assert predict(rng.normal(size=(20, 3))) is None and predict(rng.normal(size=(1, 3))) is None
            mon.observe(rng.normal(size=(5, 3)), None)
            mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "rows_mismatch"}) == 26
        assert not mon.store.value("monitor_rows_rejected", {"reason": "nan_output"})
        (line,) = _refusal_lines(caplog)
        assert "outputs are None for 20 input row(s)" in line and "return the model's outputs" in line, line
        assert "1 outputs" not in line, line
    finally:
        mon.close()


def test_a_json_null_output_is_said_to_be_null(tmp_path: Path) -> None:
    """The same over HTTP: an event of 20 rows with ``"outputs": null`` (accepted, then counted
    in the worker) was said to give 1 output. Since session 35 it is refused at intake, 400
    naming ``outputs`` as null (tests/test_bad_input_s35a.py), and never reaches the worker."""
    s = start_sidecar(IRIS, tmp_path)
    try:
        body = json.dumps({"inputs": [[5.1, 3.5, 1.4, 0.2]] * 20, "outputs": None})
        r = http("POST", s.url + "/v1/events", body, {"Content-Type": "application/json"})
        assert r.status == 400 and r.json()["field"] == "outputs" and "is null" in r.json()["error"], r.body
        s.flush()
        assert total(s.metrics(), "monitor_rows_rejected_total", reason="rows_mismatch") == 0
        assert total(s.metrics(), "monitor_intake_events_refused_total", reason="missing_outputs") == 1
    finally:
        s.close()
