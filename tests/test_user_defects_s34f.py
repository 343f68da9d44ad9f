"""Small user-facing defects found by audits (session 34, helper s34f), each test failing before
its fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference

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
