"""Decorator semantics: sync, async, methods, exceptions, batch and single row, extractors."""

from __future__ import annotations

import asyncio
import inspect

import numpy as np
import pytest

from monitor import Monitor


@pytest.fixture
def mon(registry):
    m = Monitor(model="dec", registry=registry, start_worker=False)
    yield m
    m.close()


def test_sync_function_keeps_signature_docstring_and_result(mon):
    @mon.watch
    def predict(x: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Predict things."""
        return np.array([0.25, 0.75])

    assert predict.__doc__ == "Predict things."
    assert predict.__name__ == "predict"
    assert list(inspect.signature(predict).parameters) == ["x", "threshold"]
    out = predict(np.zeros(3))
    assert out.tolist() == [0.25, 0.75]
    mon.flush()
    assert mon.store.value("monitor_calls") == 1.0
    assert mon.store.value("monitor_predictions") == 1.0
    assert mon.store.value("monitor_predicted_class", ("1",)) == 1.0
    lat = mon.store.value("monitor_latency_seconds")
    assert lat.count == 1.0 and lat.sum >= 0.0


def test_batch_calls_count_rows_and_batch_sizes(mon):
    @mon.watch
    def predict(X):
        p = np.full((len(X), 3), 0.1)
        p[:, 2] = 0.8
        return p

    predict(np.ones((7, 4)))
    predict(np.ones((2, 4)))
    mon.flush()
    assert mon.store.value("monitor_calls") == 2.0
    assert mon.store.value("monitor_predictions") == 9.0
    sizes = mon.store.value("monitor_batch_size_rows")
    assert sizes.count == 2.0 and sizes.sum == 9.0
    assert mon.store.value("monitor_predicted_class", ("2",)) == 9.0


def test_model_exception_is_counted_and_reraised_unchanged(mon):
    class ModelBroke(RuntimeError):
        pass

    err = ModelBroke("boom")

    @mon.watch
    def predict(x):
        raise err

    with pytest.raises(ModelBroke) as info:
        predict([1.0, 2.0])
    assert info.value is err
    mon.flush()
    assert mon.store.value("monitor_errors", ("ModelBroke",)) == 1.0
    assert mon.store.value("monitor_predictions") is None


def test_methods_take_the_input_after_self(mon):
    class Model:
        def __init__(self):
            self.calls = 0

        @mon.watch(client="api_key")
        def predict(self, X, api_key=None):
            self.calls += 1
            return np.tile([0.9, 0.1], (len(X), 1))

    m = Model()
    m.predict(np.ones((3, 2)), api_key="k1")
    assert m.calls == 1
    mon.flush()
    assert mon.store.value("monitor_predictions") == 3.0
    assert mon.store.value("monitor_predicted_class", ("0",)) == 3.0


def test_async_function(mon):
    @mon.watch
    async def predict(x):
        await asyncio.sleep(0)
        return [0.4, 0.6]

    assert inspect.iscoroutinefunction(predict)
    assert asyncio.run(predict([1.0, 2.0])) == [0.4, 0.6]
    mon.flush()
    assert mon.store.value("monitor_predictions") == 1.0


def test_async_exception_reraised(mon):
    @mon.watch
    async def predict(x):
        raise KeyError("missing")

    with pytest.raises(KeyError):
        asyncio.run(predict([1.0]))
    mon.flush()
    assert mon.store.value("monitor_errors", ("KeyError",)) == 1.0


def test_extractors_request_id_and_segment_reach_the_batch(mon):
    seen = []

    class Spy:
        kind = "spy"

        def update(self, batch):
            seen.append((batch.request_id.tolist(), batch.segment.tolist(), batch.client.tolist()))

        def update_labels(self, labeled):
            seen.append(("labels", labeled.label.tolist()))

        def advance(self, now):
            pass

        def export(self, out):
            pass

    mon.pipeline.detectors.append(Spy())

    @mon.watch(request_id=lambda x, rid, region: rid, segment="region", client=lambda x, rid, region: "c-" + rid)
    def predict(x, rid, region):
        return [0.3, 0.7]

    predict([1.0, 2.0], "r1", "eu")
    mon.flush()
    assert seen[0] == (["r1"], ["eu"], ["c-r1"])
    mon.feedback(["r1"], [1])
    mon.flush()
    assert seen[-1] == ("labels", [1])
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 1.0


def test_a_failing_extractor_never_breaks_the_model(mon):
    @mon.watch(client=lambda x: 1 / 0)
    def predict(x):
        return [0.5, 0.5]

    assert predict([1.0]) == [0.5, 0.5]
    mon.flush()
    # the user's extractor failed, not the monitor: counted apart (and logged once, with its name)
    assert mon.store.value("monitor_events_dropped", ("extractor_error",)) == 1.0


def test_unreadable_rows_are_counted_by_reason_not_raised(mon):
    @mon.watch
    def predict(x):
        return x  # echoes inputs as outputs: nonsense for a classifier

    predict(np.ones(4))  # learns a 4-feature schema; outputs are not probabilities
    predict(np.ones(3))  # wrong width
    predict([float("nan"), 1.0, 1.0, 1.0])
    mon.flush()
    assert mon.store.value("monitor_rows_rejected", ("probabilities_not_normalised",)) == 1.0
    assert mon.store.value("monitor_rows_rejected", ("wrong_shape",)) == 1.0
    assert mon.store.value("monitor_rows_rejected", ("nan_output",)) == 1.0
    assert mon.store.value("monitor_predictions") is None


def test_module_level_watch_uses_a_named_monitor():
    import monitor

    @monitor.watch(model="module-level-test")
    def predict(x):
        return [0.1, 0.9]

    predict([0.0])
    mon = predict.monitor
    try:
        assert mon.model == "module-level-test"
        assert monitor.get_monitor("module-level-test") is mon
        mon.flush()
        assert mon.store.value("monitor_predictions") == 1.0
    finally:
        mon.close()


def test_input_arg_must_exist(mon):
    with pytest.raises(ValueError, match="input_arg='features'"):
        mon.watch(lambda x: x, input_arg="features")


def test_calls_after_close_are_counted_as_closed_not_queued(registry):
    m = Monitor(model="closing", registry=registry, start_worker=False)

    @m.watch
    def predict(x: np.ndarray) -> np.ndarray:
        return np.array([0.4, 0.6])

    predict(np.zeros(3))
    m.close()
    assert predict(np.zeros(3)).tolist() == [0.4, 0.6]  # the model still answers
    assert len(m.queue) == 0  # nothing waits for a worker that has stopped
    assert m.queue.counters()[0] == {"closed": 1}
    assert m.store.value("monitor_predictions") == 1.0


def test_watch_above_staticmethod_and_classmethod_keeps_the_method_kind(mon):
    """``@mon.watch`` written above ``@staticmethod`` / ``@classmethod``: the method is still a
    static or class method (wrapped as a plain function, a staticmethod was bound to the instance
    and every call raised TypeError; a classmethod was refused at decoration), and the rows are
    read from the first argument after ``cls``."""

    class Model:
        @mon.watch
        @staticmethod
        def predict(x):
            """Static."""
            return np.tile([0.25, 0.75], (len(x), 1))

        @mon.watch
        @classmethod
        def predict_cls(cls, x):
            assert cls is Model
            return np.tile([0.25, 0.75], (len(x), 1))

    rows = np.zeros((2, 3))
    assert Model().predict(rows).shape == (2, 2)
    assert Model.predict(rows).shape == (2, 2)
    assert Model().predict_cls(rows).shape == (2, 2)
    assert Model.predict_cls(rows).shape == (2, 2)
    assert Model.predict.__doc__ == "Static."
    assert isinstance(inspect.getattr_static(Model, "predict"), staticmethod)
    assert isinstance(inspect.getattr_static(Model, "predict_cls"), classmethod)
    mon.flush()
    assert mon.store.value("monitor_predictions") == 8.0  # every call's two rows, none refused
    assert mon.store.value("monitor_errors", ("TypeError",)) is None


def test_a_generator_function_is_refused_at_decoration_with_the_fix(mon):
    """A generator's outputs come as the caller iterates, after the call: recorded, the generator
    object was refused on every call as non_numeric_output with a fix that did not apply."""

    def stream(x):
        for row in x:
            yield [0.25, 0.75]

    async def astream(x):
        for row in x:
            yield [0.25, 0.75]

    for fn in (stream, astream):
        with pytest.raises(TypeError, match="generator function.*Fix: decorate the function that returns"):
            mon.watch(fn)


def test_a_long_exception_type_name_is_cut_as_observe_error_and_the_http_intake_cut_it(mon):
    """``monitor_errors_total``'s ``exception`` label is cut to ``events.MAX_EXCEPTION_CHARS``
    characters by ``observe_error`` and ``POST /v1/events`` (c8626df); a watched function's error
    kept its type's name whole, so an exception class of a generated name (a long one) was a label
    of any length, and the same error counted under another label than observe_error(exc) gives."""
    from monitor.events import MAX_EXCEPTION_CHARS

    long_error = type("Generated" + "E" * 150, (RuntimeError,), {})

    @mon.watch
    def predict(x):
        raise long_error("boom")

    with pytest.raises(long_error):
        predict([1.0, 2.0])
    mon.observe_error(long_error("boom"))
    mon.flush()
    cut = long_error.__name__[:MAX_EXCEPTION_CHARS]
    assert mon.store.value("monitor_errors", (cut,)) == 2.0
    assert mon.store.value("monitor_errors", (long_error.__name__,)) is None
