"""``@monitor.watch``: wrap a predict function and feed every call to a Monitor.

The hot path does the least Python can: two ``perf_counter`` reads around the call, one
``time.time``, one tuple, one length check and one ``deque.append``. No detector, no numpy, no
lock; everything else happens in the worker thread. Exceptions raised by the model are counted
and re-raised unchanged; exceptions inside the monitoring are caught and counted.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar, Union

from monitor.events import ERROR, MAX_EXCEPTION_CHARS, PREDICTION

if TYPE_CHECKING:
    from monitor.core import Monitor

__all__ = ["estimator_output", "watch"]

log = logging.getLogger("monitor")

#: The reason an event is dropped when an extractor given to ``watch()`` raised.
EXTRACTOR_ERROR = "extractor_error"

F = TypeVar("F", bound=Callable[..., Any])
Extractor = Union[str, Callable[..., Any], None]


def check_keywords(given: dict[str, Any], allowed: list[str], call: str, taken: dict[str, str] | None = None) -> None:
    """A keyword ``call`` does not take, refused naming the nearest one it does: Python's own
    "got an unexpected keyword argument 'clinet'" names no fix. ``taken``: keywords the call sets
    itself, with what to write instead."""
    import difflib

    for key in given:
        if taken and key in taken:
            raise TypeError(f"{call} got {key}=, which it sets itself. Fix: {taken[key]}")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"it takes {', '.join(allowed)}"
            raise TypeError(f"{call} got an unexpected keyword argument {key!r}. Fix: {hint}")


def _fn_name(fn: Any) -> str:
    """The name the messages give the decorated callable: a ``functools.partial`` (or a callable
    object) has no ``__qualname__``, and reading it raised AttributeError instead of the message."""
    name = getattr(fn, "__qualname__", None)
    if name is None and isinstance(fn, functools.partial):
        name = f"functools.partial({getattr(fn.func, '__qualname__', type(fn.func).__name__)}, ...)"
    return name or type(fn).__name__


def _say_shared_default(monitor: "Monitor", fn: Any) -> None:
    """``watch(clf_a.predict_proba)`` and ``watch(clf_b.predict_proba)`` without ``model=``: both
    monitors are named after the function, so two models fed one monitor (the second one's rows
    refused as wrong_shape, with a fix about the config). Said once per monitor when a function
    other than the one it was named for, or the same method of another live object, joins it;
    the same function decorated again (a module reloaded, a notebook cell run again after its
    model was replaced) is not."""
    import weakref

    key = (getattr(fn, "__module__", None), _fn_name(fn))
    owner = getattr(fn, "__self__", None)
    try:
        ref: Any = weakref.ref(owner) if owner is not None else None
    except TypeError:  # an object without weak references: told apart by its name only
        ref = None
    feeders = monitor._default_feeders
    for other_key, other_ref in feeders:
        other = other_ref() if other_ref is not None else None
        if other_key != key or (other is not None and ref is not None and other is not owner):
            if not monitor._said_shared_default:
                monitor._said_shared_default = True
                feeder = (f"another function, {other_key[1]}," if other_key != key else
                          f"the same method of another {type(other).__name__} object")
                log.warning("model %r: watch(%s) without model= names its monitor after the function, and %s already "
                            "feeds it: both models' calls go to one monitor, whose figures mix them (and whose rows of "
                            "another width are refused). Fix: give each model its own name, watch(..., "
                            "model=\"fraud-v3\"); the same model decorated twice may share one", monitor.model,
                            _fn_name(fn), feeder)
            break
    feeders.append((key, ref))
    del feeders[:-8]  # the last few are enough to tell a new one


#: Parameter names that usually hold a predict function's rows (MLflow's ``model_input`` first).
_ROW_PARAMS = ("model_input", "x", "X", "inputs", "features", "data", "df", "rows", "instances", "batch", "samples")


def _note_input_source(monitor: "Monitor", fn: Any, signature: inspect.Signature, arg_name: str, named: bool) -> None:
    """Tell the monitor which parameter the rows are read from, for its first ``wrong_type``
    refusal: an MLflow pyfunc's ``predict(self, context, model_input)`` decorated as it is read
    ``context`` and refused every call with a fix about request objects, naming neither."""
    notes = getattr(getattr(monitor, "pipeline", None), "input_notes", None)
    if notes is None or len(notes) >= 4:
        return
    others = [n for n, p in signature.parameters.items()
              if n not in (arg_name, "self", "cls") and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    guess = next((n for n in _ROW_PARAMS if n in others), None)
    fix = (f"if the rows are in another parameter, name it: watch(..., input_arg={guess!r})" if guess else
           f"if the rows are in another parameter ({', '.join(others)}), name it with watch(..., input_arg=...)"
           if others else "")
    how = "input_arg" if named else "default: the first parameter"
    note = f"{_fn_name(fn)}'s rows are read from its parameter {arg_name!r} ({how})" + (f"; {fix}" if fix else "")
    if note not in notes:
        notes.append(note)


#: The methods of a fitted scikit-learn-style estimator whose outputs its own attributes describe
_ESTIMATOR_OUTPUTS = {"predict_proba": "probabilities", "predict_log_proba": "logits", "predict": "labels"}


def estimator_output(fn: Any) -> dict[str, Any] | None:
    """The ``output:`` config that a bound method of a fitted scikit-learn-style estimator implies
    (``watch(clf.predict_proba)``), or None when it implies none.

    ``predict_proba`` gives probabilities and ``predict_log_proba`` log-probabilities (logits,
    whose softmax they are) in the order of ``classes_``; a classifier's ``predict`` gives its
    classes; a regressor's ``predict`` is regression. Without it, a monitor the decorator created
    named the score columns 0, 1, 2: labels fed back as the classes (``'fraud'``, or 1, 2, 3 of a
    model fitted on those) were skipped, or joined to the column after their class (accuracy read
    0.04 for a model of 0.95), and ``clf.predict`` and ``reg.predict`` had every row refused.
    Scikit-learn is asked only when it is already imported (a fitted estimator means it is)."""
    import sys

    owner = getattr(fn, "__self__", None)
    kind = _ESTIMATOR_OUTPUTS.get(getattr(fn, "__name__", ""))
    if owner is None or kind is None:
        return None
    base = sys.modules.get("sklearn.base")
    try:
        if kind == "labels" and base is not None and base.is_regressor(owner):
            return {"kind": "regression"}
        classes = getattr(owner, "classes_", None)
        if classes is None or (kind == "labels" and not (base is not None and base.is_classifier(owner))):
            return None
        names = classes.tolist() if hasattr(classes, "tolist") else list(classes)
    except Exception:  # noqa: BLE001 - an object that only looks like an estimator: nothing implied
        return None
    if not names or not all(isinstance(c, (str, int, float)) for c in names):
        return None
    # booleans (a model fitted on y of True/False) are the classes "False" and "True", as labels read
    return {"kind": kind, "classes": [str(c) if isinstance(c, bool) else c for c in names]}


def _process_monitor(name: str, fn: Any) -> "Monitor":
    """The process-wide monitor of ``name``; created here, it takes the outputs a fitted
    estimator's method implies (:func:`estimator_output`), said once at INFO."""
    from monitor.core import existing_monitor, get_monitor

    output = None if existing_monitor(name) is not None else estimator_output(fn)
    if output is None:
        return get_monitor(name)
    try:
        mon = get_monitor(name, config={"output": output})
    except ValueError:  # created meanwhile by another thread, or the classes refused: as before
        return get_monitor(name)
    log.info("model %r: output.kind %s%s, from %s's own attributes", name, output["kind"],
             f", output.classes {output['classes']}" if "classes" in output else "", type(fn.__self__).__name__)
    return mon


def _extractor(spec: Extractor, params: list[str], what: str = "extractor", fn: Any = None,
               var_keyword: bool = False) -> Callable[[tuple[Any, ...], dict[str, Any]], Any] | None:
    """``client=`` / ``request_id=`` / ``segment=``: a parameter name of the predict function, or
    a callable receiving the same arguments as the predict function. A name that is not a
    parameter is refused at decoration (unless the function takes ``**kwargs``, where it may come
    by keyword): it would silently give None on every call, every client "anonymous"."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in params and not var_keyword:
            raise ValueError(f"{what}={spec!r} is not a parameter of {_fn_name(fn)}{tuple(params)}. Fix: name one of its "
                             f"parameters, or pass a callable taking the same arguments (e.g. {what}=lambda X, **kw: ...)")
        pos = params.index(spec) if spec in params else None

        def by_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if spec in kwargs:
                return kwargs[spec]
            return args[pos] if pos is not None and pos < len(args) else None

        return by_name
    if callable(spec):
        return lambda args, kwargs: spec(*args, **kwargs)
    raise TypeError(f"watch(): {what}={spec!r} must be a parameter name or a callable, got {type(spec).__name__}. "
                    f"Fix: name the parameter that holds it, or pass a callable taking the same arguments as the "
                    f"predict function (e.g. {what}=lambda X, **kw: ...)")


def watch(
    fn: F | None = None,
    *,
    monitor: "Monitor | None" = None,
    model: str | None = None,
    input_arg: str | None = None,
    inputs: Extractor = None,
    client: Extractor = None,
    request_id: Extractor = None,
    segment: Extractor = None,
    embedding: Callable[[Any], Any] | None = None,
    outputs: Callable[[Any], Any] | None = None,
) -> Any:
    """Monitor every call of a predict function (sync or async, function or method).

    Parameters
    ----------
    monitor
        The :class:`~monitor.core.Monitor` to feed; default: the process-wide monitor of ``model``
        (named after the function when not given).
    input_arg
        Name of the parameter holding the inputs (default: the first one, after ``self``/``cls``).
    inputs
        Where the rows are when no parameter holds them as they are: a callable taking the same
        arguments as the predict function (e.g. ``inputs=lambda req: req.instances`` for a web
        handler whose parameter is a request object, else every row is refused as ``wrong_type``),
        or a parameter name (as ``input_arg``).
    client, request_id, segment
        Where to find the client identity, the request id and the segment: a parameter name, or a
        callable taking the same arguments as the predict function.
    embedding
        Optional callable turning the *return value* into an embedding (e.g. a penultimate layer
        the model returns alongside its probabilities) for the similarity detectors.
    outputs
        Optional callable turning the return value into the outputs the monitor reads (e.g. pick
        ``result["probabilities"]``). The caller always gets the return value unchanged.

    Examples
    --------
    >>> import monitor
    >>> mon = monitor.Monitor(model="doc", start_worker=False, registry=__import__("prometheus_client").CollectorRegistry())
    >>> @mon.watch
    ... def predict(x):
    ...     "Return probabilities."
    ...     return [[0.2, 0.8]] * len(x)
    >>> predict([[1.0, 2.0]]), predict.__doc__
    ([[0.2, 0.8]], 'Return probabilities.')
    >>> mon.flush(); mon.store.value("monitor_predictions")
    1.0
    >>> mon.close()
    """
    if fn is None:
        return functools.partial(watch, monitor=monitor, model=model, input_arg=input_arg, inputs=inputs, client=client,
                                 request_id=request_id, segment=segment, embedding=embedding, outputs=outputs)
    if isinstance(fn, (staticmethod, classmethod)):
        # ``@watch`` above ``@staticmethod`` / ``@classmethod``: the function inside is watched and
        # wrapped again in its kind. Wrapped as it was, a staticmethod became a plain function in
        # the class, bound to the instance: every call passed the instance as the inputs and
        # raised TypeError (a classmethod, not callable, was refused at decoration).
        return type(fn)(watch(fn.__func__, monitor=monitor, model=model, input_arg=input_arg, inputs=inputs,
                              client=client, request_id=request_id, segment=segment, embedding=embedding,
                              outputs=outputs))
    if not callable(fn):
        raise TypeError(f"watch() decorates a callable, got {type(fn).__name__}")
    streaming = inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
    for what, spec in (("outputs", outputs), ("embedding", embedding)):
        if spec is not None and not callable(spec):
            # a key meant (outputs="probabilities"): accepted, it dropped every event as extractor_error
            example = f"result[{spec!r}]" if isinstance(spec, (str, int)) else "result[...]"
            raise TypeError(f"watch(): {what}={spec!r} must be a callable receiving what the function returns. "
                            f"Fix: {what}=lambda result: {example}")
    if monitor is None:
        monitor = _process_monitor(model or getattr(fn, "__name__", "default"), fn)
        if model is None:
            _say_shared_default(monitor, fn)
    signature = inspect.signature(fn)
    params = list(signature.parameters)
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    if input_arg is not None:
        if input_arg not in params:
            raise ValueError(f"input_arg={input_arg!r} is not a parameter of {_fn_name(fn)}{tuple(params)}. Fix: name "
                             "the parameter that holds the rows, or pass inputs= a callable taking the same arguments")
        idx = params.index(input_arg)
    else:
        idx = 1 if params and params[0] in ("self", "cls") else 0
    arg_name = params[idx] if idx < len(params) else None
    if inputs is not None and input_arg is not None:
        raise ValueError("watch() takes input_arg= or inputs=, not both. Fix: keep inputs= (a parameter name or a callable)")
    get_inputs = _extractor(inputs, params, "inputs", fn, var_keyword)
    if inputs is None and arg_name is not None:
        _note_input_source(monitor, fn, signature, arg_name, input_arg is not None)
    get_client = _extractor(client, params, "client", fn, var_keyword)
    get_request = _extractor(request_id, params, "request_id", fn, var_keyword)
    get_segment = _extractor(segment, params, "segment", fn, var_keyword)
    queue = monitor.queue
    time = monitor.clock
    # output.kind: none: what the function returns is not monitored, so not held in the queue (nor
    # counted against its bytes: a generator's token tensors, a detector's boxes); None is queued
    unread = not getattr(monitor, "reads_outputs", True)
    out_kind = getattr(monitor, "output_kind", None) or getattr(getattr(getattr(monitor, "config", None), "output", None),
                                                            "kind", None)
    if streaming and not (unread or out_kind == "text"):
        # its call returns a generator, recorded as the outputs: every row was refused as
        # non_numeric_output with a fix that did not apply, the latency was that of creating it,
        # and an exception raised while iterating was never counted
        told = ("ForwardingMonitor(..., output_kind='text') (or 'none', for the inputs alone), as the sidecar's config says"
                if getattr(monitor, "config", None) is None else "output.kind: text (or none, for the inputs alone)")
        raise TypeError(f"watch() records what {getattr(fn, '__qualname__', 'the function')} returns, and a generator "
                        "function returns a generator, whose outputs come later, as the caller iterates; scores do not "
                        "stream. Fix: decorate the function that returns a batch's outputs (the one the generator calls), "
                        "or record each batch with mon.observe(inputs, outputs); a streamed text answer (an LLM yielding "
                        f"tokens) is watched with {told}")
    sampling = queue.sample_rate < 1.0
    skip_by_sampling = queue.skip_by_sampling
    simple = (get_client is None and get_request is None and get_segment is None and embedding is None and outputs is None
              and get_inputs is None)
    said = [False]  # whether an extractor's failure was logged (once per decorated function)

    def extractor_failed(which: str, exc: Exception) -> None:
        """An extractor the user gave raised: the call is answered unchanged, its event dropped and
        counted as ``extractor_error`` (not ``internal_error``: the monitor is fine, the extractor
        does not fit what the function receives or returns), and the first one is logged."""
        queue.drop(EXTRACTOR_ERROR)
        if not said[0]:
            said[0] = True
            method = ""
            if isinstance(exc, TypeError) and idx == 1 and which not in ("outputs", "embedding"):
                # a method's extractor gets self first: lambda req: ... raised on every call
                method = (f", a method's arguments, {params[0]} first: e.g. {which}=lambda {params[0]}, "
                          f"{', '.join(params[1:]) or '*args'}: ...")
            log.warning("model %r: the %s= extractor given to watch() for %s raised %s: %s; the call was answered "
                        "unchanged, its event dropped and counted in monitor_events_dropped_total{reason=\"%s\"}, "
                        "further ones without a log line. Fix: make %s= accept what %s %s%s", monitor.model, which,
                        _fn_name(fn), type(exc).__name__, exc, EXTRACTOR_ERROR,
                        which, _fn_name(fn),
                        "returns" if which in ("outputs", "embedding") else "is called with", method)

    def record(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, latency: float) -> None:
        try:
            if sampling and skip_by_sampling():
                return
            if simple:
                x = args[idx] if len(args) > idx else kwargs.get(arg_name)  # type: ignore[arg-type]
                event = (PREDICTION, time(), x, None if unread else out, latency, None, None, None, None)
            else:
                which = "inputs"
                try:
                    if get_inputs is None:
                        x = args[idx] if len(args) > idx else kwargs.get(arg_name)  # type: ignore[arg-type]
                    else:
                        x = get_inputs(args, kwargs)
                    which = "outputs"
                    o = None if unread else out if outputs is None else outputs(out)
                    which = "client"
                    c = None if get_client is None else get_client(args, kwargs)
                    which = "request_id"
                    r = None if get_request is None else get_request(args, kwargs)
                    which = "segment"
                    g = None if get_segment is None else get_segment(args, kwargs)
                    which = "embedding"
                    e = None if embedding is None else embedding(out)
                except Exception as exc:  # noqa: BLE001 - the user's extractor, never the model's answer
                    extractor_failed(which, exc)
                    return
                event = (PREDICTION, time(), x, o, latency, c, r, g, e)
            queue.put(event)
        except Exception:  # noqa: BLE001 - monitoring must never break the model
            queue.drop("internal_error")

    def record_error(args: tuple[Any, ...], kwargs: dict[str, Any], exc: BaseException, latency: float) -> None:
        try:
            if sampling and skip_by_sampling():  # sampled as the others (see EventQueue.skip_by_sampling)
                return
            try:
                cl = None if get_client is None else get_client(args, kwargs)
            except Exception as err:  # noqa: BLE001
                extractor_failed("client", err)
                return
            # the name cut as observe_error and POST /v1/events cut it (a metric label)
            queue.put((ERROR, time(), type(exc).__name__[:MAX_EXCEPTION_CHARS], latency, cl))
        except Exception:  # noqa: BLE001
            queue.drop("internal_error")

    if streaming:  # recorded when the stream ends (monitor/streaming.py)
        from monitor.streaming import watch_async_stream, watch_stream

        wrap = watch_async_stream if inspect.isasyncgenfunction(fn) else watch_stream
        # under output.kind: none nothing reads the answer (but an embedding= extractor): its chunks are not kept;
        # a text answer keeps what its descriptors read, unless an extractor reads it whole
        stream_wrapper = wrap(fn, record, record_error, joined=outputs is None, keep=not unread or embedding is not None,
                              whole=embedding is not None)
        stream_wrapper.monitor = monitor  # type: ignore[attr-defined]
        return stream_wrapper

    # an object with ``async def __call__`` (a model class) is awaited too: wrapped as a plain
    # function, the monitor recorded the coroutine instead of the outputs
    if inspect.iscoroutinefunction(fn) or (not inspect.isclass(fn) and inspect.iscoroutinefunction(getattr(fn, "__call__", None))):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = perf_counter()
            try:
                out = await fn(*args, **kwargs)
            except Exception as exc:
                record_error(args, kwargs, exc, perf_counter() - t0)
                raise
            record(args, kwargs, out, perf_counter() - t0)
            return out

        async_wrapper.monitor = monitor  # type: ignore[attr-defined]
        return async_wrapper

    if simple and not sampling:
        # the hot path: no extractor, no sampling; EventQueue.put does the rest (bounds, bytes, close)

        @functools.wraps(fn)
        def fast_wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = perf_counter()
            try:
                out = fn(*args, **kwargs)
            except Exception as exc:
                record_error(args, kwargs, exc, perf_counter() - t0)
                raise
            latency = perf_counter() - t0
            try:
                queue.put((PREDICTION, time(), args[idx] if len(args) > idx else kwargs.get(arg_name),
                           None if unread else out, latency, None, None, None, None))
            except Exception:  # noqa: BLE001
                queue.drop("internal_error")
            return out

        fast_wrapper.monitor = monitor  # type: ignore[attr-defined]
        return fast_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = perf_counter()
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:
            record_error(args, kwargs, exc, perf_counter() - t0)
            raise
        record(args, kwargs, out, perf_counter() - t0)
        return out

    wrapper.monitor = monitor  # type: ignore[attr-defined]
    return wrapper
