"""One unreadable event never costs the other events of its drain: each is converted (or refused
with a reason) on its own, and outputs that do not fit the model's classes are refused before a
detector sees them."""

from __future__ import annotations

import numpy as np

from monitor.detectors.confidence import ConfidenceDetector
from monitor.detectors.context import DetectorContext
from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder
from monitor.pipeline import Pipeline
from monitor.schema import OutputSpec, Schema
from monitor.store import MetricStore

P = [0.7, 0.2, 0.1]


def _event(ts: float, inputs, outputs) -> tuple:
    return (PREDICTION, ts, inputs, outputs, None, None, None, None, None)


def _pipeline(schema: Schema) -> tuple[Pipeline, MetricStore]:
    output = OutputSpec("probabilities", ("x", "y", "z"))
    store = MetricStore("m")
    det = ConfidenceDetector.from_config(reference=None, context=DetectorContext(schema, output))
    return Pipeline(store, BatchBuilder(schema, output), [det], export_interval_s=0.0), store


def _rejected(store: MetricStore, reason: str) -> float:
    return store.value("monitor_rows_rejected", labels=(reason,)) or 0.0


def test_a_nested_value_in_one_event_does_not_reject_the_rest_of_the_drain():
    pipe, store = _pipeline(Schema.numeric(["a"]))
    events = [_event(1.0, {"a": [1.0]}, [P]),
              _event(2.0, {"a": [1.0, {"b": 2}]}, [P, P]),  # a feature holding an object: that value missing
              _event(3.0, [["x"], ["y"]], [P, P]),  # no value a number: refused
              _event(4.0, {"a": [2.0]}, [P])]
    pipe.process(events)
    assert store.value("monitor_predictions") == 4
    assert _rejected(store, "wrong_type") == 2
    assert _rejected(store, "internal_error") == 0
    assert (store.value("monitor_internal_errors", labels=("ingest",)) or 0) == 0


def test_outputs_narrower_than_the_configured_classes_are_refused_not_fed_to_detectors():
    pipe, store = _pipeline(Schema.numeric(["a", "b", "c", "d"]))
    good = _event(1.0, [[1, 2, 3, 4]], [P])
    # three rows whose outputs are one number each: a binary model's shape, not this 3-class one
    narrow = _event(2.0, [[1, 2, 3, 4]] * 3, [0.2, 0.5, 0.3])
    pipe.process([good])
    pipe.process([narrow])
    pipe.process([good, narrow, good])
    assert store.value("monitor_predictions") == 3
    assert _rejected(store, "output_shape") == 6
    assert (store.value("monitor_detector_errors", labels=("confidence",)) or 0) == 0


def test_a_conversion_failure_after_stacking_falls_back_to_one_event_at_a_time(monkeypatch):
    pipe, store = _pipeline(Schema.numeric(["a"]))
    import monitor.ingest as ingest

    real = ingest.row_ids

    def fragile(events, counts, result):  # a conversion bug that only one event's request id triggers
        if any(ev[6] == "boom" for ev in events):
            raise RuntimeError("conversion bug")
        return real(events, counts, result)

    monkeypatch.setattr(ingest, "row_ids", fragile)
    events = [_event(1.0, [[1.0]], [P]), (PREDICTION, 2.0, [[2.0]], [P], None, None, "boom", None, None),
              _event(3.0, [[3.0]], [P])]
    pipe.process(events)
    assert store.value("monitor_predictions") == 2
    assert _rejected(store, "internal_error") == 1
    assert store.value("monitor_internal_errors", labels=("ingest",)) == 1


def test_stacked_and_one_by_one_conversion_agree():
    rng = np.random.default_rng(0)
    schema = Schema.numeric(["a", "b"])
    output = OutputSpec("probabilities", ("x", "y", "z"))
    events = [_event(float(i), rng.normal(size=(1 + i % 3, 2)).tolist(), rng.dirichlet(np.ones(3), size=1 + i % 3).tolist())
              for i in range(12)]
    whole = BatchBuilder(schema, output).build(events).batch
    one = BatchBuilder(schema, output)
    parts = [one.build([ev]).batch for ev in events]
    assert whole is not None and all(p is not None for p in parts)
    np.testing.assert_array_equal(whole.numeric, np.concatenate([p.numeric for p in parts]))
    np.testing.assert_array_equal(whole.scores, np.concatenate([p.scores for p in parts]))


def test_a_kind_name_given_as_a_built_detector_is_refused_at_once_with_the_fix():
    import pytest
    from monitor import Monitor

    with pytest.raises(TypeError, match=r"detectors\[0\]: str is not a detector; name kinds in the config instead"):
        Monitor(model="m", detectors=["segments"], start_worker=False)


def test_the_output_width_is_learned_from_a_row_that_decoded_not_from_a_refused_one():
    builder = BatchBuilder(Schema.numeric(["a", "b"]), OutputSpec("probabilities"))
    first = builder.build([_event(1.0, [[1, 2]], [[float("nan")] * 5])])
    assert first.batch is None and first.rejected == {"nan_output": 1}
    good = builder.build([_event(2.0, [[1, 2]], [P]) for _ in range(3)])
    assert good.batch is not None and len(good.batch) == 3 and good.rejected == {}
    narrow = builder.build([_event(3.0, [[1, 2]], [[0.5, 0.5]])])
    assert narrow.batch is None and narrow.rejected == {"output_shape": 1}


def test_non_finite_timestamps_are_refused_and_do_not_switch_off_the_future_check():
    import time as _time

    pipe, store = _pipeline(Schema.numeric(["a"]))
    now = _time.time()
    pipe.process([_event(now, [[1.0]], [P]), _event(float("nan"), [[1.0]], [P]), _event(now * 1000, [[1.0]], [P]),
                  _event(float("-inf"), [[1.0]], [P])])
    assert store.value("monitor_predictions") == 1
    assert _rejected(store, "invalid_timestamp") == 2 and _rejected(store, "future_timestamp") == 1
    assert pipe.clock == now
    # counted in rows, as every reason of monitor_rows_rejected: an event of three rows is three
    pipe.process([_event(float("nan"), [[1.0], [2.0], [3.0]], [P, P, P]), _event(now * 1000, np.ones((4, 1)), [P] * 4)])
    assert _rejected(store, "invalid_timestamp") == 5 and _rejected(store, "future_timestamp") == 5


def test_a_detector_failing_on_every_batch_is_counted_each_time_and_logged_once(monkeypatch, caplog):
    """A failure that repeats on every batch (reference scores of another width) logged a
    traceback per batch and detector; each is counted, the log says it once per 10 minutes with
    how many came between."""
    import logging

    from monitor import pipeline as pipeline_module

    pipe, store = _pipeline(Schema.numeric(["a"]))
    det = pipe.detectors[0]

    def broken(batch):
        raise ValueError("reference scores have 2 columns, live ones 3")

    monkeypatch.setattr(det, "update", broken)
    clock = [1000.0]
    monkeypatch.setattr(pipeline_module.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.ERROR, logger="monitor"):
        for i in range(30):
            pipe.process([_event(float(i), {"a": [1.0]}, [P])])
        clock[0] += pipeline_module.DETECTOR_FAILURE_LOG_S
        pipe.process([_event(31.0, {"a": [1.0]}, [P])])
    said = [r for r in caplog.records if "ConfidenceDetector failed" in r.getMessage()]
    assert store.value("monitor_detector_errors", labels=("confidence",)) == 31
    assert len(said) == 2
    assert said[0].exc_info is not None and "live ones 3" in caplog.text  # with its traceback
    assert "29 more such failure(s)" in said[1].getMessage()
