"""Review of session 39's evil-object hardening (helper s39e): each test failed before its fix."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from tests.test_bad_input_s38l import _NoIteration, _NoText

__all__: list[str] = []


def _argument_lines(caplog: Any, start: int = 0) -> dict[str, str]:
    """The pipeline's line about each dropped row argument, by argument (the worker's own lines,
    which name its log only, left aside)."""
    lines = {}
    for record in caplog.records[start:]:
        text = record.getMessage()
        for argument in ("client", "segment", "request_id"):
            if text.startswith(f"model 'm': {argument}: "):
                lines[argument] = text
    return lines


@pytest.mark.parametrize("case", ["unreadable", "empty list"])
def test_a_forwarded_argument_that_cannot_be_read_is_said_at_the_sidecar_as_in_process(tmp_path, caplog, case: str) -> None:
    """A prediction's client, segment or request id whose iteration or ``str()`` raises: in
    process its rows are counted in monitor_row_arguments_dropped_total and the line says "a call's
    segment for 2 row(s) could not be read (RuntimeError reading its values or their text)". A
    forwarding worker sent it as an empty per-row list, which the sidecar's line told as "a call gave
    0 values for 2 rows": a list the caller never gave. The sidecar now says what in process says;
    a per-row list the caller gave empty is still told as one (the control)."""
    from tests.test_forwarded_parity_s38g import PROBS, forwarded, in_process

    rows, scores = np.zeros((2, 2)), [[0.2, 0.3, 0.5]] * 2
    values: dict[str, Any] = ({"client": _NoIteration(), "segment": [_NoText(), "x"], "request_id": _NoIteration()}
                              if case == "unreadable" else {"client": [], "segment": [], "request_id": []})
    calls = [("observe", (rows, scores), {argument: value}) for argument, value in values.items()]
    caplog.set_level(logging.WARNING, logger="monitor")
    expected = in_process(PROBS, calls)
    said = _argument_lines(caplog)
    assert set(said) == set(values), said
    start = len(caplog.records)
    got, _ = forwarded(PROBS, calls, tmp_path)
    assert got == expected
    assert _argument_lines(caplog, start) == said
    if case == "unreadable":
        assert "could not be read (RuntimeError reading its values or their text)" in said["segment"], said


def test_the_unreadable_key_is_a_forwarded_predictions_only() -> None:
    """``unreadable`` (the arguments a worker could not read, with the error's name) is read from
    a forwarded prediction only: ``POST /v1/events`` refuses it as an unknown key, and a value that
    names no such argument is refused as the worker never writes it."""
    import json

    from monitor.events import EventFormatError, UnreadableValues, parse_event
    from monitor.forwarding import encode_event

    event = (0, 1.0, [[1.0, 2.0]] * 2, [[0.5, 0.5]] * 2, None, _NoIteration(), None, [_NoText(), "x"], None)
    said: list[tuple[str, str]] = []
    obj = json.loads(encode_event(event, lambda argument, why: said.append((argument, why))))
    assert obj["client"] == obj["segment"] == [] and obj["unreadable"] == {"client": "RuntimeError", "segment": "RuntimeError"}
    assert [a for a, _ in said] == ["client", "segment"]
    parsed = parse_event(obj, 2.0, forwarded=True).event
    assert type(parsed[5]) is type(parsed[7]) is UnreadableValues and parsed[7].error == "RuntimeError" and parsed[6] is None
    with pytest.raises(EventFormatError) as err:
        parse_event(obj, 2.0)
    assert err.value.reason == "unknown_key"
    for bad in ({"inputs": 1}, {}, {"segment": 5}, "segment"):
        with pytest.raises(EventFormatError) as err:
            parse_event({**obj, "unreadable": bad}, 2.0, forwarded=True)
        assert err.value.reason == "bad_unreadable"


def test_an_error_of_the_monitors_own_in_reading_list_rows_is_an_internal_error(monkeypatch) -> None:
    """float_rows read any exception but TypeError, ValueError and OverflowError as a caller's
    object's own conversion (e8670c2) and returned None (rows read one by one), over all of its
    code: a bug of this package's own there (here odd_values raising AttributeError, as a typo
    would) was hidden, the rows read the slow way with no word. Only numpy's reading of the lists
    and the object array's cast (the caller's code) are read so now: the bug is counted as an
    internal error of the ingest stage. The caller's object whose __array__ raises is still one
    unreadable value (test_bad_input_s39a)."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor, cell_values

    def bug(cells: Any) -> bool:
        raise AttributeError("a bug of the monitor's own")

    monkeypatch.setattr(cell_values, "odd_values", bug)
    with pytest.raises(AttributeError):
        cell_values.float_rows([[1.0, None]])
    mon = Monitor(model="m", config={"features": ["a", "b"], "output": {"kind": "regression"}}, registry=CollectorRegistry(),
                  start_worker=False, live=False)
    try:
        for _ in range(3):
            mon.observe([1.0, None], [0.5])
        mon.flush()
        assert (mon.store.value("monitor_internal_errors", {"stage": "ingest"}) or 0) >= 1
    finally:
        mon.close()


class _NoAttributes:
    """A value whose ``__getattr__`` raises RuntimeError (a proxy, a lazy object): ``getattr(v,
    name, default)`` gives the default for AttributeError only, so the readers' look at ``dtype``
    or ``ndim`` raised."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name}")


def _zero_d(value: Any) -> np.ndarray:
    cell = np.empty((), dtype=object)
    cell[()] = value
    return cell


@pytest.mark.parametrize("field", ["latency_s", "cell", "cell_0d", "labels_0d", "inputs"])
def test_a_value_whose_getattr_raises_costs_no_drain(field: str) -> None:
    """A caller's value whose ``__getattr__`` raises (outside the s39a fuzz's dunders): as a
    latency it lost the whole drain as a pipeline internal error (latency_seconds read its
    ``ndim``: every call in the drain), as a numeric cell (temporal_seconds read its ``dtype``)
    or in a 0-d object array among a list's values (holds_complex -> complex_array) the drain's
    predictions so too; as the inputs, the queue's look at their ``nbytes`` dropped the event on the
    caller's thread as the monitor's internal_error. Each is now a value that is no number (the
    latency left out, the cell unreadable, the label refused as a label that is an array, the
    inputs refused as no rows), counted as such; the drain's other calls are kept."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    labels = field == "labels_0d"
    config = {"features": [{"name": "a"}, {"name": "b", "kind": "categorical"}], "output": {"kind": "labels", "classes": ["x", "y"]}} \
        if labels else {"features": ["a", "b"], "output": {"kind": "regression"}}
    mon = Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    good = ([[1.0, "u"]], ["x"]) if labels else ([[1.0, 2.0]], [0.5])
    try:
        mon.observe(*good)
        if field == "latency_s":
            mon.observe(*good, latency_s=_NoAttributes())
        elif field == "labels_0d":
            mon.observe([[1.0, "u"]], [_zero_d(_NoAttributes())])
        elif field == "inputs":
            mon.observe(_NoAttributes(), [0.5])
        else:
            mon.observe([[1.0, _NoAttributes() if field == "cell" else _zero_d(_NoAttributes())]], [0.5])
        mon.observe(*good)
        mon.flush()
        errors = sum(mon.store.value("monitor_internal_errors", {"stage": s}) or 0 for s in ("ingest", "pipeline", "cycle"))
        assert errors == 0 and not mon.store.value("monitor_events_dropped", {"reason": "internal_error"})
        assert mon.store.value("monitor_calls") == 3
        assert mon.store.value("monitor_predictions") == (2 if labels or field == "inputs" else 3)
    finally:
        mon.close()


def test_the_evil_object_fuzz_with_getattr_raising_costs_no_internal_error(monkeypatch) -> None:
    """s39a's seeded fuzz of evil objects in every field (4 kinds x 3 seeds x 30 calls), its
    objects' classes also raising from ``__getattr__`` (about one in three draws): no internal
    error, no call raising other than a ValueError. Before: whole drains lost at the pipeline
    stage (a latency's ``ndim``), calls at ingest (a cell's ``dtype``), and RuntimeError and others
    raised out of feedback() (``hasattr(ids, "__iter__")``)."""
    import tests.test_bad_input_s39a as fuzz

    monkeypatch.setattr(fuzz, "_DUNDERS", [*fuzz._DUNDERS, *["__getattr__"] * 6])
    logging.disable(logging.WARNING)  # its lines are the s39a fuzz's, about the other dunders
    try:
        fuzz.test_seeded_fuzz_of_evil_objects_in_every_field_costs_no_internal_error()
    finally:
        logging.disable(logging.NOTSET)
