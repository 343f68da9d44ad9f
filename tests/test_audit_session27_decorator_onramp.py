"""Audit (session 27), the ML engineer's on-ramp: the decorator as a user writes it."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from monitor import Monitor


@pytest.fixture
def mon(registry):
    m = Monitor(model="onramp", registry=registry, start_worker=False)
    yield m
    m.close()


def test_a_partial_with_a_wrong_input_arg_is_refused_naming_it(mon):
    """``watch(functools.partial(predict, model), input_arg=...)`` naming no parameter raised
    AttributeError ('functools.partial' object has no attribute '__qualname__') instead of the
    ValueError naming the argument, since a partial has no ``__qualname__``."""
    def predict(model: object, X: np.ndarray) -> np.ndarray:
        return np.full((len(X), 2), 0.5)

    with pytest.raises(ValueError, match=r"input_arg='features' is not a parameter of .*predict.*\('X',\)"):
        mon.watch(functools.partial(predict, None), input_arg="features")
    watched = mon.watch(functools.partial(predict, None))  # the rows: the first parameter left
    watched(np.zeros((3, 4)))
    mon.flush()
    assert mon.store.value("monitor_predictions") == 3.0


def test_events_left_queued_at_exit_are_counted_and_said(registry, monkeypatch, caplog):
    """At interpreter exit a running monitor gets ``EXIT_TIMEOUT_S`` to process what is queued.
    A backlog longer than that (590,000 rows with a reference, measured: 11,808 events) was lost
    without a count or a word, though the README says "what waits is processed, not lost"; what is
    left is now taken out of the queue, counted as dropped (``closed``) and logged with the fix."""
    import threading
    import time

    import monitor.core as core

    m = Monitor(model="exiting", registry=registry, config={"queue": {"batch_max": 10, "batch_min": 1}})
    slow = threading.Event()
    real_process = m.pipeline.process

    def process(events):
        slow.wait(0.05)  # a drain slower than the exit's bound
        return real_process(events)

    monkeypatch.setattr(m.pipeline, "process", process)
    monkeypatch.setattr(core, "EXIT_TIMEOUT_S", 0.2)

    @m.watch
    def predict(X):
        return np.full((len(X), 2), 0.5)

    for _ in range(200):
        predict(np.zeros((1, 3)))
    with caplog.at_level("WARNING", logger="monitor"):
        core._close_at_exit()
    left = m.queue.counters()[0].get("closed", 0)
    assert left > 0 and len(m.queue) == 0
    said = [r.getMessage() for r in caplog.records if "interpreter exit" in r.getMessage()]
    assert said and f"{left} event(s)" in said[0] and "mon.flush()" in said[0]
    deadline = time.monotonic() + 10
    while m.worker.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    processed = m.store.value("monitor_predictions") or 0.0
    assert processed + left == 200  # every event processed or counted, none twice


def test_a_close_that_timed_out_leaves_its_backlog_counted_at_exit(registry, monkeypatch, caplog):
    """``mon.close(timeout)`` returns with its worker still draining; the monitor has left the
    running ones, so at exit what it had not reached was lost without a count as well."""
    import threading

    import monitor.core as core

    m = Monitor(model="closed-slow", registry=registry, config={"queue": {"batch_max": 10, "batch_min": 1}})
    real_process = m.pipeline.process
    monkeypatch.setattr(m.pipeline, "process", lambda events: (threading.Event().wait(0.05), real_process(events)))
    monkeypatch.setattr(core, "EXIT_TIMEOUT_S", 0.1)
    for _ in range(200):
        m.observe(np.zeros((1, 3)), np.full((1, 2), 0.5))
    m.close(0.1)
    assert m.worker.alive
    with caplog.at_level("WARNING", logger="monitor"):
        core._close_at_exit()
    left = m.queue.counters()[0].get("closed", 0)
    assert left > 0
    assert any(f"{left} event(s)" in r.getMessage() for r in caplog.records)


class _Tensor:
    """What a PyTorch model returns without ``torch.no_grad()``: ``np.asarray`` raises
    RuntimeError ("Can't call numpy() on Tensor that requires grad"), ``.detach().cpu().numpy()``
    gives the array (torch itself is not installed for the tests)."""

    def __init__(self, a: np.ndarray, requires_grad: bool = True) -> None:
        self.a, self.requires_grad, self.shape = a, requires_grad, a.shape

    def __len__(self) -> int:
        return len(self.a)

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.a if dtype is None else self.a.astype(dtype)

    def detach(self) -> "_Tensor":
        return _Tensor(self.a, requires_grad=False)

    def cpu(self) -> "_Tensor":
        return self

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.a


def test_tensors_that_require_grad_are_read_not_blamed_on_the_monitor(mon):
    """A PyTorch predict returning ``model(x).softmax(-1)`` outside ``torch.no_grad()`` (and taking
    tensors): every such event was lost as the monitor's own ``internal_error``, an ERROR
    traceback logged and MonitorInternalErrors paged, with no word of the fix. Tensors are read
    as ``.detach().cpu().numpy()`` (the caller's tensors untouched)."""
    @mon.watch
    def predict(x):
        return _Tensor(np.tile([0.2, 0.8], (len(x), 1)))

    for n in (3, 1, 5):
        predict(_Tensor(np.zeros((n, 4))))
    predict(np.zeros((2, 4)))
    with_embedding = mon.watch(lambda x: _Tensor(np.tile([0.2, 0.8], (len(x), 1))), embedding=lambda out: out)
    with_embedding(np.zeros((2, 4)))
    mon.flush()
    assert mon.store.value("monitor_predictions") == 13.0
    assert mon.store.value("monitor_predicted_class", ("1",)) == 13.0
    assert not mon.store.value("monitor_internal_errors", ("ingest",))


def test_outputs_numpy_cannot_read_are_refused_with_the_error_not_as_internal(mon, caplog):
    """An output object whose conversion raises something other than TypeError/ValueError was the
    monitor's ``internal_error``; it is the model's output that is unreadable: refused as
    ``non_numeric_output`` with the error's own words."""
    class Odd:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("device-side tensor")

    @mon.watch
    def predict(x):
        return Odd()

    with caplog.at_level("WARNING", logger="monitor"):
        predict(np.zeros((2, 4)))
        mon.flush()
    assert mon.store.value("monitor_rows_rejected", ("non_numeric_output",)) == 2.0
    assert not mon.store.value("monitor_internal_errors", ("ingest",))
    assert any("device-side tensor" in r.getMessage() for r in caplog.records)


def test_calls_after_close_are_said_once_with_the_fix(registry, caplog):
    """A function decorated with a monitor that was then closed (its ``with`` block ended, or
    ``close()`` before the model stopped serving) still answers, and its events were counted as
    dropped (``closed``) in a store close() had just taken off /metrics: nothing anyone could see
    said that the model was no longer monitored. The first such event is now logged, with the fix."""
    with Monitor(model="closed-early", registry=registry, start_worker=False) as m:
        @m.watch
        def predict(X):
            return np.full((len(X), 2), 0.5)

        predict(np.zeros((2, 3)))
    with caplog.at_level("WARNING", logger="monitor"):
        assert predict(np.zeros((2, 3))).shape == (2, 2)  # the model still answers
        predict(np.zeros((2, 3)))
        m.feedback(["r1"], [1])
    said = [r.getMessage() for r in caplog.records if "closed" in r.getMessage()]
    assert len(said) == 1, said
    assert "'closed-early'" in said[0] and "not monitored" in said[0] and "Fix:" in said[0]
    assert m.queue.counters()[0]["closed"] == 3


def test_a_misspelled_keyword_of_watch_or_get_monitor_is_named_with_the_nearest(mon):
    """``mon.watch(predict, clinet="api_key")`` and ``get_monitor(model, refrence=ref)`` said only
    "got an unexpected keyword argument"; they now name the keyword meant."""
    import monitor

    with pytest.raises(TypeError, match=r"clinet.*did you mean 'client'"):
        mon.watch(lambda X, api_key=None: X, clinet="api_key")
    with pytest.raises(TypeError, match=r"request_ids.*did you mean 'request_id'"):
        mon.watch(request_ids="rid")
    with pytest.raises(TypeError, match=r"refrence.*did you mean 'reference'"):
        monitor.get_monitor("onramp-typo", refrence=None)
    with pytest.raises(TypeError, match=r"monitor=.*mon.watch"):
        mon.watch(lambda X: X, monitor=mon)


def test_string_labels_of_a_decorated_sklearn_model_are_told_how_to_name_the_classes(registry, caplog):
    """``feedback(ids, ["fraud", ...])`` for a decorated ``clf.predict_proba`` whose classes are
    strings: every label was skipped, and the fix said "list the class names under output.classes
    in the config", where the decorator's user has no config file: it now gives the code, with
    the columns' order (scikit-learn's ``classes_``)."""
    m = Monitor(model="str-classes", registry=registry, start_worker=False)
    predict = m.watch(lambda X, rid=None: np.tile([0.3, 0.7], (len(X), 1)), request_id="rid")
    predict(np.zeros((2, 3)), rid="r")
    with caplog.at_level("WARNING", logger="monitor"):
        m.feedback(["r/0", "r/1"], ["fraud", "ok"])
        m.flush()
    said = [r.getMessage() for r in caplog.records if "joined label" in r.getMessage()]
    assert said and 'config={"output": {"classes": list(clf.classes_)}}' in said[0] and "get_monitor(" in said[0]
    m.close()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork is POSIX only")
def test_a_worker_forked_after_start_http_server_says_its_figures_are_not_served(registry):
    """The Quick start's ``get_monitor(...).start_http_server(9108)`` at import in a gunicorn
    ``--preload`` app: the server thread runs in the master only, which answers no prediction,
    so /metrics showed no monitor_predictions_total while the workers served 40 (measured): the
    workers' figures were never exported, and nothing said so. A forked worker now says it at its
    first event, with the fix."""
    import json
    import logging
    import os

    m = Monitor(model="served-parent", registry=registry)
    m.start_http_server(0)

    @m.watch
    def predict(X):
        return np.full((len(X), 2), 0.5)

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read)
            said: list[str] = []

            class Keep(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    said.append(record.getMessage())

            logging.getLogger("monitor").addHandler(Keep(logging.WARNING))
            predict(np.zeros((2, 3)))
            predict(np.zeros((2, 3)))
            os.write(write, json.dumps(said).encode())
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    m.close()
    assert os.WEXITSTATUS(status) == 0 and report
    said = [s for s in json.loads(report) if "/metrics" in s]
    assert len(said) == 1, said
    assert f"parent process ({os.getpid()})" in said[0] and "ForwardingMonitor" in said[0]


def test_a_method_s_extractor_written_without_self_is_told_it_receives_self(mon, caplog):
    """``@mon.watch(inputs=lambda req: req.rows)`` on a method: the extractor is called with the
    method's arguments, ``self`` first, and raised TypeError on every call (every event dropped);
    the log said only "make inputs= accept what Handler.handle is called with"."""
    class Req:
        rows = [[1.0, 2.0]]

    class Handler:
        @mon.watch(inputs=lambda req: req.rows)
        def handle(self, req):
            return np.full((len(req.rows), 2), 0.5)

    with caplog.at_level("WARNING", logger="monitor"):
        assert Handler().handle(Req()).shape == (1, 2)
    said = [r.getMessage() for r in caplog.records if "extractor" in r.getMessage()]
    assert said and "inputs=lambda self, req: ..." in said[0]


def test_two_models_watched_without_a_name_are_told_they_share_a_monitor(caplog):
    """``monitor.watch(clf_a.predict_proba)`` and ``monitor.watch(clf_b.predict_proba)``: both
    monitors are named after the function, so both models fed one monitor, and the second one's
    rows were refused as wrong_shape with a fix about the config. Said at the second decoration,
    with the fix (model=); the same function decorated again (a module reloaded) is not."""
    import monitor
    import monitor.core as core

    class Model:
        def __init__(self, width: int) -> None:
            self.width = width

        def predict_proba(self, X):
            return np.full((len(X), self.width), 1 / self.width)

    a, b = Model(2), Model(3)
    try:
        with caplog.at_level("WARNING", logger="monitor"):
            monitor.watch(a.predict_proba)
            monitor.watch(a.predict_proba)  # the same model's method again: nothing to say
            assert not [r for r in caplog.records if "already feeds" in r.getMessage()]
            monitor.watch(b.predict_proba)
        said = [r.getMessage() for r in caplog.records if "already feeds" in r.getMessage()]
        assert len(said) == 1 and "'predict_proba'" in said[0] and "model=" in said[0]
    finally:
        core.get_monitor("predict_proba").close()


def test_a_decorated_regressor_is_told_to_set_the_regression_kind(mon, caplog):
    """``monitor.watch(reg.predict)`` for a scikit-learn regressor: every row was refused as
    probability_out_of_range and the fix named only output.kind: logits."""
    predict = mon.watch(lambda X: np.full(len(X), 153.2))
    with caplog.at_level("WARNING", logger="monitor"):
        predict(np.zeros((4, 3)))
        mon.flush()
    said = [r.getMessage() for r in caplog.records if "probability_out_of_range" in r.getMessage()]
    assert said and "output.kind: regression" in said[0] and 'config={"output": {"kind": "regression"}}' in said[0]


def test_extractors_of_the_wrong_kind_are_refused_at_decoration_naming_them(mon):
    """``outputs="probabilities"`` (a key meant) was accepted and then dropped every event as
    extractor_error ("'str' object is not callable"); ``client=123`` said "extractor must be a
    parameter name or a callable" without naming which."""
    def predict(X, k=None):
        return {"probabilities": np.full((len(X), 2), 0.5)}

    with pytest.raises(TypeError, match=r"outputs='probabilities'.*outputs=lambda result: result\['probabilities'\]"):
        mon.watch(predict, outputs="probabilities")
    with pytest.raises(TypeError, match=r"embedding='emb'.*callable"):
        mon.watch(predict, embedding="emb")
    with pytest.raises(TypeError, match=r"client=123.*parameter name or a callable"):
        mon.watch(predict, client=123)


def test_a_model_s_classes_are_accepted_as_scikit_learn_gives_them(registry):
    """``config={"output": {"classes": list(clf.classes_)}}`` (the fix the logs give) was refused
    for a model of integer classes: ``must be a list of class names, got [np.int64(1), ...]``;
    ``clf.classes_`` itself (an array) and float classes (y of 0.0 and 1.0) too."""
    for classes in ([np.int64(1), np.int64(2), np.int64(3)], np.array([1, 2, 3]), (1, 2, 3), np.array([1.0, 2.0, 3.0])):
        m = Monitor(model="int-classes", registry=registry, start_worker=False, config={"output": {"classes": classes}})
        assert m.config.output.classes == (1, 2, 3) or tuple(map(str, m.config.output.classes)) == ("1", "2", "3")
        m.close()
    m = Monitor(model="str-classes", registry=registry, start_worker=False,
                config={"output": {"classes": np.array(["fraud", "ok"])}})
    assert tuple(map(str, m.config.output.classes)) == ("fraud", "ok")
    m.close()


def test_integer_labels_past_the_columns_warn_that_the_others_may_be_misread(mon, caplog):
    """A scikit-learn model fitted on classes 1, 2, 3 (``classes_ == [1, 2, 3]``), its labels fed
    back as they are: 1 and 2 were joined as the columns 1 and 2 (the classes 2 and 3), so the
    accuracy read 0.04 where the model's is 0.95 (measured), and the line said only that the 3s
    were skipped. It now says the others were read as column indices, with the fix."""
    predict = mon.watch(lambda X, rid=None: np.tile([0.8, 0.1, 0.1], (len(X), 1)), request_id="rid")
    predict(np.zeros((4, 2)), rid=["a", "b", "c", "d"])
    with caplog.at_level("WARNING", logger="monitor"):
        mon.feedback(["a", "b", "c", "d"], [1, 1, 2, 3])
        mon.flush()
    said = [r.getMessage() for r in caplog.records if "joined label" in r.getMessage()]
    assert said and "column index" in said[0] and "wrong column" in said[0] and "classes_" in said[0]


def test_rows_read_from_the_wrong_parameter_are_said_with_the_parameter_to_name(mon, caplog):
    """An MLflow pyfunc, ``def predict(self, context, model_input, params=None)``, decorated as it
    is: the rows are read from the first parameter after self, ``context``, and every call was
    refused as wrong_type with a fix about request objects, naming neither the parameter read nor
    the one to name. The line now names the type read, the parameter and ``input_arg=``."""
    class Context:
        artifacts: dict = {}

    class Model:
        @mon.watch
        def predict(self, context, model_input, params=None):
            return np.tile([0.3, 0.7], (len(model_input), 1))

    with caplog.at_level("WARNING", logger="monitor"):
        Model().predict(Context(), [[1.0, 2.0]])
        mon.flush()
    said = [r.getMessage() for r in caplog.records if "wrong_type" in r.getMessage()]
    assert said and "Context" in said[0] and "'context'" in said[0] and "input_arg='model_input'" in said[0]


def test_looking_for_a_tensor_never_breaks_reading_other_objects(mon):
    """The look for a ``numpy()`` method reads attributes of whatever the function got: a property
    that raises was the monitor's internal_error for the whole event."""
    class Odd:
        @property
        def numpy(self):
            raise RuntimeError("no")

        def __array__(self, dtype=None, copy=None):
            return np.zeros((2, 3)) if dtype is None else np.zeros((2, 3), dtype=dtype)

    predict = mon.watch(lambda X: np.full((2, 2), 0.5))
    predict(Odd())
    mon.flush()
    assert mon.store.value("monitor_predictions") == 2.0
    assert not mon.store.value("monitor_internal_errors", ("ingest",))
