"""Free text as a model's inputs (text classifiers: sentiment, intent, toxicity).

``predict(["great movie", "terrible plot", "meh"])`` refused every row as ``wrong_type`` ("inputs
must be numeric rows"): nothing was monitored, not even the outputs' confidence, and 50 calls of 3
texts counted 50 refused rows. A flat sequence of texts, one per output row, is now that many rows
of one text feature (``text``), which is monitored through numbers describing each text
(:mod:`monitor.text`); a text feature can be configured (``kind: text``) among others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import ConfigError, load_config
from monitor.ingest import BatchBuilder
from monitor.schema import OutputSpec
from monitor.server.payloads import decode_inputs
from monitor.text import describe

TEXTS = ["great movie", "terrible plot", "meh"]


def _monitor(config: dict | None = None) -> Monitor:
    return Monitor(model="sentiment", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _probs(texts) -> np.ndarray:
    return np.array([[0.8, 0.2]] * len(texts))


@pytest.mark.parametrize("as_", ["list", "tuple", "array", "series"])
def test_a_call_on_a_list_of_texts_is_one_row_per_text_and_its_outputs_are_monitored(as_) -> None:
    mon = _monitor()
    try:
        @mon.watch
        def predict(texts):
            return _probs(texts)

        wrap = {"list": list, "tuple": tuple, "array": np.array, "series": pd.Series}[as_]
        for _ in range(50):
            predict(wrap(TEXTS))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 150
        assert mon.store.value("monitor_rows_rejected", {"reason": "wrong_type"}) in (None, 0.0)
        assert mon.pipeline.builder.schema.names == ("text",)
        assert mon.store.value("monitor_confidence_rows_in_window") == 150
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "text.length", "reason": "missing"}) == 0
    finally:
        mon.close()


def test_one_text_alone_is_one_row() -> None:
    mon = _monitor()
    try:
        mon.observe("great movie", np.array([0.9, 0.1]))
        mon.observe(["so so", None], np.array([[0.5, 0.5], [0.4, 0.6]]))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 3
        # the missing text is a missing value of each descriptor, as a missing number is
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "text.words", "reason": "missing"}) == 1
    finally:
        mon.close()


def test_a_configured_text_feature_among_others_is_read_from_row_objects() -> None:
    mon = _monitor({"features": [{"name": "review", "kind": "text"}, {"name": "stars", "kind": "numeric"}]})
    try:
        rows = [{"review": "A long, winding review of the film.", "stars": 3}, {"review": "Bof.", "stars": 1}]
        mon.observe(rows, _probs(rows))
        mon.observe(pd.DataFrame(rows), _probs(rows))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 4
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "review.length", "reason": "missing"}) == 0
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "stars", "reason": "missing"}) == 0
    finally:
        mon.close()


def test_the_batch_holds_descriptors_not_the_texts() -> None:
    builder = BatchBuilder(None, OutputSpec("probabilities"))
    result = builder.build([(0, 1.0, ["Hello, world!", "café", ""], _probs("abc"), 0.0, None, None, None, None)])
    batch = result.batch
    assert batch is not None and batch.categorical.shape == (3, 0)
    assert batch.numeric_names == ("text.length", "text.words", "text.non_letter_share", "text.non_ascii_share")
    np.testing.assert_allclose(batch.numeric, [[13, 2, 2 / 12, 0], [4, 1, 0, 1 / 4], [0, 0, 0, 0]])


def test_a_list_of_texts_that_is_one_row_of_a_configured_schema_stays_one_row() -> None:
    mon = _monitor({"features": [{"name": "country", "kind": "categorical"}, {"name": "channel", "kind": "categorical"}]})
    try:
        mon.observe(["FR", "web"], np.array([0.3, 0.7]))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 1
    finally:
        mon.close()


def test_config_accepts_kind_text_and_names_the_kinds_when_wrong(tmp_path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("model: m\nfeatures:\n  - {name: review, kind: text}\n")
    assert load_config(path).model().schema.text_names == ("review",)
    path.write_text("model: m\nfeatures:\n  - {name: review, kind: words}\n")
    with pytest.raises(ConfigError, match="kind: text"):
        load_config(path)


def test_descriptors_of_long_texts_and_other_scripts() -> None:
    d = describe(["word " * 5000, "Привет мир", None])
    assert d[0, 0] == 25000 and d[0, 1] == pytest.approx(5000)
    assert d[1, 3] == pytest.approx(9 / 10)
    assert np.isnan(d[2]).all()


def test_an_oip_v2_bytes_tensor_of_texts_is_one_row_per_text() -> None:
    body = {"inputs": [{"name": "text", "shape": [3, 1], "datatype": "BYTES", "data": TEXTS}]}
    inputs = decode_inputs(body)
    mon = _monitor()
    try:
        mon.observe(inputs, _probs(TEXTS))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 3
        assert mon.pipeline.builder.schema.text_names == ("text",)
    finally:
        mon.close()
