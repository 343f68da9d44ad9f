"""Multi-label classifiers (tagging, toxicity categories, medical codes): each of k columns is an
independent sigmoid probability, so rows do not sum to 1. A decorated ``predict`` returning such
rows had every row refused as ``probabilities_not_normalised`` with the fix "for raw scores set
output.kind: logits", which softmaxed would be another model. The refusal now names
``output.kind: multilabel``, and that kind reads the rows as they are."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import ConfigError, parse_config
from monitor.ingest import BatchBuilder
from monitor.outputs import ClassIndex, decode_outputs
from monitor.schema import OutputSpec
from tests.sidecar_support import sample

__all__: list[str] = []


def _monitor(config: dict[str, Any] | None = None) -> Monitor:
    return Monitor(model="tags", config=config or {}, registry=CollectorRegistry(auto_describe=False))


def test_unnormalised_rows_in_unit_interval_name_multilabel_as_the_fix(caplog: Any) -> None:
    rng = np.random.default_rng(0)
    mon = _monitor()
    try:
        @mon.watch
        def predict(x: np.ndarray) -> np.ndarray:
            return rng.uniform(size=(len(x), 5))

        with caplog.at_level(logging.WARNING, logger="monitor"):
            predict(rng.normal(size=(40, 3)))
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "probabilities_not_normalised" in r.getMessage()]
        assert len(said) == 1, said
        assert "output.kind: multilabel" in said[0] and "5 values in [0, 1]" in said[0], said[0]
        assert "output.kind: logits" in said[0]  # raw scores are still the other cause
        assert sample(mon.metrics_text(), "monitor_rows_rejected_total", model="tags", reason="probabilities_not_normalised") == 40
    finally:
        mon.close()


def test_multilabel_rows_are_read_as_they_are() -> None:
    rng = np.random.default_rng(1)
    mon = _monitor({"output": {"kind": "multilabel", "classes": ["spam", "toxic", "adult", "ad", "other"]}})
    try:
        @mon.watch
        def predict(x: np.ndarray) -> np.ndarray:
            return rng.uniform(size=(len(x), 5))

        predict(rng.normal(size=(40, 3)))
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_predictions_total", model="tags") == 40
        assert "probabilities_not_normalised" not in text or sample(
            text, "monitor_rows_rejected_total", model="tags", reason="probabilities_not_normalised") == 0
    finally:
        mon.close()


def test_multilabel_decoding_keeps_values_and_refuses_what_is_no_probability() -> None:
    x = np.array([[0.9, 0.8, 0.1], [0.0, 1.0, 1.0], [0.5, np.nan, 0.2], [1.2, 0.1, 0.1]])
    d = decode_outputs(x, OutputSpec("multilabel"), ClassIndex())
    assert d.valid.tolist() == [True, True, False, False]
    assert d.reasons == {"nan_output": 1, "probability_out_of_range": 1}
    assert np.array_equal(d.scores[:2], x[:2]) and d.predicted is None


def test_one_column_multilabel_is_one_label_not_a_binary_pair() -> None:
    b = BatchBuilder(None, OutputSpec("multilabel", classes=("a", "b")))
    ev = (0, 1.0, np.ones((2, 2)), np.array([[0.3], [0.4]]), None, None, None, None, None)
    r = b.build([ev])
    assert r.batch is None and "output_shape" in r.rejected


def test_config_accepts_multilabel_and_the_refusal_of_a_kind_names_it() -> None:
    cfg = parse_config({"model": "m", "output": {"kind": "multilabel", "classes": ["a", "b"]}}).model()
    assert cfg.output.is_multilabel and cfg.output.classes == ("a", "b")
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "m", "output": {"kind": "multi"}})
    assert "multilabel" in str(err.value)


def test_delayed_labels_of_a_multilabel_model_are_read_as_readme_says() -> None:
    """README's "Multi-label models": a 0/1 vector and a list of label names are each a row's
    ground truth (they were refused as invalid, when the README said delayed labels were missing)."""
    mon = _monitor({"output": {"kind": "multilabel", "classes": ["a", "b", "c"]}})
    try:
        mon.observe(np.zeros((2, 1)), np.array([[0.9, 0.1, 0.6], [0.2, 0.7, 0.1]]), request_id=["r1", "r2"])
        mon.feedback(["r1", "r2"], [[1, 0, 1], ["b"]])
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_feedback_labels_total", model="tags", outcome="joined") == 2
        assert sample(text, "monitor_multilabel_labels_in_window", model="tags") == 2
    finally:
        mon.close()
