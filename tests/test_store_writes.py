"""`MetricStore` writes: the bulk ``set_many`` is exactly a sequence of ``set`` calls (values, label
conversion, series cap and refusals, errors), and the label fast path converts like the slow one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitor import catalog
from monitor.catalog import SpecError
from monitor.store import MetricStore

NAME = "monitor_data_invalid_ratio"  # labels (feature, reason)


class Tagged(str):
    """A str subclass with its own __str__ (e.g. a str-valued enum): converted with str()."""

    def __str__(self) -> str:
        return "tagged-" + super().__str__()


def _store(cap: int | None = None) -> MetricStore:
    specs = dict(catalog.CATALOG)
    if cap is not None:
        specs[NAME] = replace(specs[NAME], max_series=cap)
    return MetricStore("m", specs)


def _flat(store: MetricStore) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted((name, tuple(sorted(labels.items())), value) for name, labels, value in store.samples())


ITEMS = [
    (("age", "missing"), 0.25),
    ({"reason": "nan", "feature": "age"}, 0.5),
    (("income", 3), 1),  # non-str label values become strings
    ((Tagged("x"), "missing"), 0.75),
    (("age", "missing"), 0.125),  # a later write of the same series wins
]


@pytest.mark.parametrize("cap", [None, 2])
def test_set_many_equals_a_sequence_of_set(cap: int | None) -> None:
    one, bulk = _store(cap), _store(cap)
    for labels, value in ITEMS:
        one.set(NAME, value, labels)
    bulk.set_many(NAME, ITEMS)
    assert _flat(bulk) == _flat(one)
    assert bulk.value(NAME, ("age", "missing")) == 0.125
    if cap is None:
        assert bulk.value(NAME, ("income", "3")) == 1.0
        assert bulk.value(NAME, ("tagged-x", "missing")) == 0.75
        assert bulk.value("monitor_series_refused", ("monitor_data_invalid_ratio",)) is None
    else:  # the third and fourth series are refused and counted, exactly as with set()
        assert bulk.value(NAME, ("income", "3")) is None
        assert bulk.value("monitor_series_refused", (NAME,)) == 2.0


def test_set_many_refuses_bad_labels_before_writing_anything() -> None:
    store = _store()
    with pytest.raises(SpecError, match="1 label values given"):
        store.set_many(NAME, [(("age", "missing"), 0.5), (("age",), 0.5)])
    assert store.value(NAME, ("age", "missing")) is None
    with pytest.raises(SpecError, match="not enabled|unknown|catalog"):
        store.set_many("monitor_no_such_metric", [(("a", "b"), 1.0)])


def test_tuple_labels_of_str_are_used_as_given_and_others_converted() -> None:
    store = _store()
    store.set(NAME, 0.5, ("age", "missing"))
    store.set(NAME, 0.5, (Tagged("age"), "nan"))
    store.set(NAME, 0.5, ["income", 7])
    keys = sorted(tuple(labels[k] for k in ("feature", "reason")) for name, labels, _ in store.samples() if name == NAME)
    assert keys == [("age", "missing"), ("income", "7"), ("tagged-age", "nan")]
    assert all(type(v) is str for k in keys for v in k)


def test_inc_many_equals_a_sequence_of_inc_and_refuses_negative_amounts() -> None:
    name = "monitor_data_invalid_rows"  # counter, labels (feature, reason)
    items = [(("age", "missing"), 2), (("age", "nan"), 0), (("age", "missing"), 3.5)]
    one, bulk = _store(), _store()
    for labels, amount in items:
        one.inc(name, amount, labels)
    bulk.inc_many(name, items)
    bulk.inc_many(name, [])
    assert _flat(bulk) == _flat(one)
    assert bulk.value(name, ("age", "missing")) == 5.5 and bulk.value(name, ("age", "nan")) == 0.0
    with pytest.raises(ValueError, match="counters only go up"):
        bulk.inc_many(name, [(("age", "missing"), 1.0), (("age", "nan"), -1.0)])
    assert bulk.value(name, ("age", "missing")) == 5.5


def test_remove_many_is_a_sequence_of_removes() -> None:
    one, many = _store(), _store()
    for store in (one, many):
        store.set_many(NAME, [(("a", "missing"), 0.1), (("b", "missing"), 0.2), (("c", "nan"), 0.3)])
    gone = [("a", "missing"), ("zz", "missing"), (Tagged("c"), "nan"), ("c", "nan")]
    for labels in gone:
        one.remove(NAME, labels)
    many.remove_many(NAME, gone)
    assert one.snapshot() == many.snapshot()
    assert many.value(NAME, ("b", "missing")) == 0.2 and many.value(NAME, ("a", "missing")) is None
    with pytest.raises(SpecError):
        many.remove_many("monitor_no_such_metric", [("a",)])
