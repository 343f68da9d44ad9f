"""One-row events (JSON events, CloudEvents, a decorated function called with one dict or one list
of numbers) are read in one pass per drain, not a few arrays per event: with every default
detector the event-by-event reading was half the worker's time. The batch must be exactly the
one the event-by-event path builds, and any event that path would refuse sends the whole drain
back to it, so refusals stay counted per event with their reason."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder, BuildResult, MixedOutputWidths
from monitor.schema import Feature, OutputSpec, Schema

SCHEMA = Schema((Feature("a"), Feature("b"), Feature("c", "categorical")))
NUMERIC = Schema((Feature("a"), Feature("b")))


def _event(i: int, inputs: Any, outputs: Any) -> tuple[Any, ...]:
    return (PREDICTION, 1_700_000_000.0 + i, inputs, outputs, None, f"c{i % 3}", f"r{i}", None, None)


def _both(schema: Schema | None, output: OutputSpec, events: list[tuple[Any, ...]]) -> tuple[BuildResult, BuildResult]:
    fast = BatchBuilder(schema, output).build(events)
    slow_builder = BatchBuilder(schema, output)
    slow_builder._fast_dict_rows = lambda evs: None  # type: ignore[method-assign]
    slow_builder._fast_stack = lambda evs: None  # type: ignore[method-assign]
    return fast, slow_builder.build(events)


def _same(fast: BuildResult, slow: BuildResult) -> None:
    assert fast.rejected == slow.rejected and fast.rows_per_event == slow.rows_per_event
    if slow.batch is None:
        assert fast.batch is None
        return
    a, b = fast.batch, slow.batch
    assert a is not None
    np.testing.assert_array_equal(a.numeric, b.numeric)
    assert a.categorical.tolist() == b.categorical.tolist()
    for name in ("ts", "client", "request_id", "scores", "predicted"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert np.asarray(x).tolist() == np.asarray(y).tolist(), name


def test_dict_rows_read_in_one_pass_equal_event_by_event() -> None:
    rng = np.random.default_rng(2)
    events = []
    for i in range(50):
        p = rng.dirichlet(np.ones(3)).tolist()
        row = {"a": float(rng.normal()), "b": None if i % 7 == 0 else str(round(rng.normal(), 3)), "c": ["x", "y", None][i % 3]}
        events.append(_event(i, row, p))
    fast, slow = _both(SCHEMA, OutputSpec(classes=("n", "m", "o")), events)
    assert fast.batch is not None and len(fast.batch) == 50
    _same(fast, slow)
    assert BatchBuilder(SCHEMA, OutputSpec(classes=("n", "m", "o")))._fast_dict_rows(events) is not None  # the one pass ran


def test_list_rows_and_scalar_outputs_equal_event_by_event() -> None:
    events = [_event(i, [float(i), None if i == 3 else 2.0 * i], 0.1 * (i % 10)) for i in range(30)]
    fast, slow = _both(NUMERIC, OutputSpec(), events)
    assert fast.batch is not None
    _same(fast, slow)
    assert BatchBuilder(NUMERIC, OutputSpec())._fast_stack(events) is not None  # the one pass ran
    regression = [_event(i, [float(i), 1.0], float(i) * 3) for i in range(10)]
    _same(*_both(NUMERIC, OutputSpec("regression"), regression))
    labels = [_event(i, {"a": 1.0, "b": 2.0}, ["cat", "dog"][i % 2]) for i in range(10)]
    _same(*_both(NUMERIC, OutputSpec("labels"), labels))


@pytest.mark.parametrize("bad", [
    {"a": "not a number", "b": 1.0, "c": "x"},  # wrong_type in a row
    {"a": [1.0, 2.0], "b": [3.0, 4.0], "c": ["x", "y"]},  # a columnar dict (two rows) among one-row ones
    {},  # no feature at all
])
def test_a_drain_with_one_odd_event_is_read_event_by_event(bad: dict) -> None:
    events = [_event(i, {"a": 1.0, "b": 2.0, "c": "x"}, [0.2, 0.8]) for i in range(5)]
    events.insert(2, _event(99, bad, [0.5, 0.5] if "a" not in bad or not isinstance(bad["a"], list) else [[0.5, 0.5], [0.4, 0.6]]))
    fast, slow = _both(SCHEMA, OutputSpec(), events)
    _same(fast, slow)


@pytest.mark.parametrize("outputs", [[[0.2, 0.8]], [0.2, 0.8, 0.0], "x"])
def test_outputs_of_another_shape_go_event_by_event(outputs: Any) -> None:
    events = [_event(i, [1.0, 2.0], [0.2, 0.8]) for i in range(4)] + [_event(9, [1.0, 2.0], outputs)]
    fast, slow = _both(NUMERIC, OutputSpec(classes=("n", "y")), events)
    _same(fast, slow)
    assert sum(slow.rejected.values()) + sum(slow.rows_per_event) == 5


def test_a_binary_models_one_column_among_two_is_built_apart_not_refused() -> None:
    """P(y) alone (one column) and both columns are both valid for two classes: in one drain they
    were concatenated, failed, and the minority was refused as output_shape, so the figures
    depended on which events shared a drain. The builder now asks for one build per width."""
    events = [_event(i, [1.0, 2.0], [0.2, 0.8]) for i in range(4)] + [_event(9, [1.0, 2.0], [0.3])]
    builder = BatchBuilder(NUMERIC, OutputSpec(classes=("n", "y")))
    with pytest.raises(MixedOutputWidths) as info:
        builder.build(events)
    assert [len(g) for g in info.value.groups] == [4, 1]
    built = [builder.build(g) for g in info.value.groups]
    assert [r.rejected for r in built] == [{}, {}]
    assert built[1].batch is not None and built[1].batch.scores.tolist() == [[0.7, 0.3]]
