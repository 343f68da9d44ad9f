"""A caller's object whose conversions (``float()``, ``str()``, ``==``, iteration) raise something
other than TypeError or ValueError, found by session 38's in-process fuzz (helper c's seeded fuzz,
its ``Evil`` object): each lost its call as an internal error (monitor_internal_errors_total
{stage="ingest"}), which on-call reads as a monitor bug. Each now follows the path its kind of bad
value already follows (helper l): an unreadable cell counted ``wrong_type``, an argument dropped and
counted in monitor_row_arguments_dropped_total. Each test failed before its fix; each object raises
from one dunder only."""

from __future__ import annotations

import pickle
from typing import Any

from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.cell_values import UNREADABLE_CATEGORY, category_text
from monitor.text import text_value

__all__: list[str] = []

_CAT = {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}], "output": {"kind": "regression"}}


class _NoFloat:
    """A value whose ``float()`` raises RuntimeError (not TypeError or ValueError)."""

    def __float__(self) -> float:
        raise RuntimeError("no number")


class _NoEquality:
    """A value whose ``==`` and ``!=`` raise RuntimeError (not TypeError)."""

    __hash__ = object.__hash__

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("no comparison")


class _NoIteration:
    """A sized value whose iteration raises RuntimeError (not TypeError)."""

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Any:
        raise RuntimeError("no values")


class _NoText:
    """A value whose ``str()`` raises RuntimeError."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


def _monitor(config: dict[str, Any]) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def _internal_errors(mon: Monitor) -> float:
    return sum(mon.store.value("monitor_internal_errors", {"stage": s}) or 0 for s in ("ingest", "pipeline", "cycle"))


def test_a_numeric_value_whose_float_raises_among_list_rows_with_categories_is_unreadable() -> None:
    """List rows of a model with a categorical feature are cast at once (``astype``), which caught
    TypeError, ValueError and OverflowError only: a value whose ``__float__`` raised RuntimeError
    lost the call. It is read one by one now, as any value that is no number: unreadable, counted
    wrong_type, the row (and the call's other row) monitored."""
    mon = _monitor(_CAT)
    try:
        mon.observe([[_NoFloat(), "x"], [2.0, "y"]], [1.0, 2.0])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 2
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1
    finally:
        mon.close()


def test_an_embedding_whose_float_raises_is_dropped_and_counted() -> None:
    """An embedding holding a value whose ``__float__`` raised RuntimeError lost the call as an
    internal error (row_embeddings caught TypeError and ValueError): it is dropped now, as any
    embedding that is no numbers, its rows counted in monitor_row_arguments_dropped_total."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    try:
        mon.observe([[1.0, 2.0]], [1.0], embedding=[_NoFloat(), 1.0])
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 1
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "embedding"}) == 1
    finally:
        mon.close()


def test_a_segment_client_or_request_id_that_cannot_be_read_is_dropped_and_counted() -> None:
    """A segment, client or request id given as an object whose iteration raised (a per-row
    argument's values could not be taken) or whose ``str()`` raised (a segment's or client's text)
    lost the call as an internal error. The call's rows are processed without it now (no segment,
    the anonymous client, no request id), counted in monitor_row_arguments_dropped_total as a
    per-row list of another length is."""
    mon = _monitor({"features": ["a", "b"], "output": {"kind": "regression"}})
    try:
        for argument in ("segment", "client", "request_id"):
            mon.observe([[1.0, 2.0]], [1.0], **{argument: _NoIteration()})
            mon.observe([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0], **{argument: [_NoText(), "x"]})
        mon.observe([[1.0, 2.0]], [1.0], segment=_NoText())
        mon.observe([[1.0, 2.0]], [1.0], client=_NoText())
        mon.observe([[1.0, 2.0]], [1.0], segment="eu")  # a plain call in the same drain
        mon.flush()
        assert _internal_errors(mon) == 0
        assert mon.store.value("monitor_predictions") == 12
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "segment"}) == 1 + 2 + 1
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "client"}) == 1 + 2 + 1
        # a request id whose text cannot be taken was already read as too long (_id_text): the row alone
        assert mon.store.value("monitor_row_arguments_dropped", {"argument": "request_id"}) == 1 + 1
    finally:
        mon.close()


def test_a_categorical_or_text_value_whose_comparison_or_text_raises_is_read_not_lost() -> None:
    """A categorical or text feature's value whose ``!=`` raised RuntimeError (the missing-value
    test ``v != v``) or whose ``str()`` raised lost the call as an internal error. A value whose
    comparison raises is no missing value, read by its text as any object is; a categorical value
    with no text is unreadable (counted wrong_type by data quality, as a value that is neither text
    nor missing), a text value with no text is missing."""
    assert category_text(_NoText()) is UNREADABLE_CATEGORY
    assert pickle.loads(pickle.dumps(UNREADABLE_CATEGORY)) is UNREADABLE_CATEGORY
    assert category_text(_NoEquality()).startswith("<")  # its object text, as object() is read
    assert text_value(_NoText()) is None
    assert text_value(_NoEquality()).startswith("<")
    cat = _monitor(_CAT)
    text = _monitor({"features": [{"name": "a", "kind": "numeric"}, {"name": "c", "kind": "text"}],
                     "output": {"kind": "regression"}})
    try:
        cat.observe({"a": 1.0, "b": _NoText()}, [1.0])
        cat.observe([[1.0, _NoText()]], [1.0])
        cat.observe({"a": 1.0, "b": _NoEquality()}, [1.0])
        text.observe({"a": 1.0, "c": _NoText()}, [1.0])
        text.observe({"a": 1.0, "c": _NoEquality()}, [1.0])
        cat.flush()
        text.flush()
        assert _internal_errors(cat) == _internal_errors(text) == 0
        assert cat.store.value("monitor_predictions") == 3
        assert text.store.value("monitor_predictions") == 2
        assert cat.store.value("monitor_data_invalid_rows", {"feature": "b", "reason": "wrong_type"}) == 2
    finally:
        cat.close()
        text.close()
