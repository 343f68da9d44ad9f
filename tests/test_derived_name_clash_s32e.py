"""A feature named as a column a text feature derives (``review.length`` beside the text feature
``review``) is refused where it is configured and left out where it is learned, with the feature
named and the fix. Before, batches held two columns named ``review.length``, the sender's number
and the text's length, each read as the other by the detectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import ConfigError, parse_config
from monitor.ingest import BatchBuilder
from monitor.reference import Reference
from monitor.schema import Feature, OutputSpec, Schema

TEXTS = [f"review number {i} says the product was {'good ' * (i % 5)}enough" for i in range(80)]


def test_a_configured_feature_named_as_a_text_features_column_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"features": [{"name": "review", "kind": "text"}, {"name": "x"}, {"name": "review.oov_share"}]})
    said = str(err.value)
    assert "features[2].name" in said and "'review.oov_share'" in said and "text feature 'review'" in said
    assert "review_oov_share" in said
    with pytest.raises(ValueError, match="review_length"):
        BatchBuilder(Schema((Feature("review", "text"), Feature("review.length"))), OutputSpec())


def test_a_reference_frame_with_such_a_column_is_refused_naming_it() -> None:
    frame = pd.DataFrame({"review": TEXTS, "review.length": np.arange(80.0)})
    with pytest.raises(ValueError) as err:
        Reference.from_arrays(frame)
    assert "'review.length'" in str(err.value) and "text feature 'review'" in str(err.value)
    assert "review_length" in str(err.value)


def test_a_learned_row_key_named_so_is_left_out_counted_and_said_once(caplog) -> None:
    ref = Reference.from_arrays(pd.DataFrame({"review": TEXTS, "stars": np.arange(80.0) % 5}))
    mon = Monitor(model="reviews", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
    seen: list = []
    mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                   "__getattr__": lambda self, n: (lambda *a, **k: None)})())
    try:
        with caplog.at_level("WARNING", logger="monitor"):
            mon.observe([{"review": "a fine thing", "review.length": 999.0, "stars": 4.0}] * 3, [[0.2, 0.8]] * 3)
            mon.flush()
            mon.observe([{"review": "a fine thing", "review.length": 999.0, "stars": 4.0}], [[0.2, 0.8]])
            mon.flush()
        assert mon.pipeline.builder.schema.names == ("review", "stars")
        batch = next(b for b in seen if hasattr(b, "numeric_names"))
        assert len(set(batch.numeric_names)) == len(batch.numeric_names), batch.numeric_names
        length = batch.numeric[:, list(batch.numeric_names).index("review.length")]
        assert length.tolist() == [len("a fine thing")] * 3
        assert mon.store.value("monitor_row_arguments_dropped", labels=("reserved_key",)) == 4.0
        said = [r.getMessage() for r in caplog.records if "'review.length'" in r.getMessage()]
        assert len(said) == 1 and "text feature 'review'" in said[0] and "review_length" in said[0], caplog.text
    finally:
        mon.close()
