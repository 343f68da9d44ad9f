"""`MetricStore`'s bulk writes take a tuple of str of the right length as the series key without a
call per series; every other form of labels goes through the same checks and conversions as
``set``/``remove`` (``tests/test_store_writes.py`` has the general equivalence)."""

from __future__ import annotations

import pytest

from monitor.catalog import SpecError
from monitor.store import MetricStore

NAME = "monitor_data_invalid_ratio"  # labels (feature, reason)
COUNTER = "monitor_data_invalid_rows"  # counter, labels (feature, reason)


class Tagged(str):
    """A str subclass with its own __str__, equal to and hashed as the plain string."""

    def __str__(self) -> str:
        return "tagged-" + super().__str__()


def _series(store: MetricStore, name: str) -> dict[tuple[str, str], float]:
    return {(labels["feature"], labels["reason"]): v for n, labels, v in store.samples() if n == name}


def test_a_str_subclass_equal_to_a_written_key_is_converted_not_taken_as_that_key() -> None:
    store = MetricStore("m")
    store.set_many(NAME, [(("x", "missing"), 0.25)])
    store.set_many(NAME, [((Tagged("x"), "missing"), 0.5)])
    assert _series(store, NAME) == {("x", "missing"): 0.25, ("tagged-x", "missing"): 0.5}
    store.remove_many(NAME, [(Tagged("x"), "missing")])
    assert _series(store, NAME) == {("x", "missing"): 0.25}
    store.inc_many(COUNTER, [((Tagged("x"), "nan"), 2.0), (("x", "nan"), 1.0)])
    assert store.value(COUNTER, ("tagged-x", "nan")) == 2.0 and store.value(COUNTER, ("x", "nan")) == 1.0


@pytest.mark.parametrize("labels", [("age",), ("age", "missing", "extra"), ()])
def test_tuples_of_str_of_another_length_are_refused_by_every_bulk_write(labels: tuple[str, ...]) -> None:
    store = MetricStore("m")
    store.set_many(NAME, [(("age", "missing"), 0.5)])
    for write in (lambda: store.set_many(NAME, [(("b", "nan"), 1.0), (labels, 1.0)]),
                  lambda: store.inc_many(COUNTER, [(labels, 1.0)]),
                  lambda: store.remove_many(NAME, [("age", "missing"), labels])):
        with pytest.raises(SpecError, match="label values given"):
            write()
    assert _series(store, NAME) == {("age", "missing"): 0.5}  # nothing written or removed
    assert not [n for n, _, _ in store.samples() if n.startswith(COUNTER)]


def test_bulk_writes_take_generators_lists_mappings_and_values_to_convert() -> None:
    store = MetricStore("m")
    store.set_many(NAME, ((("age", str(i)), i) for i in range(3)))
    store.set_many(NAME, [(["income", 7], "0.5"), ({"reason": "nan", "feature": "age"}, 1)])
    assert _series(store, NAME) == {("age", "0"): 0.0, ("age", "1"): 1.0, ("age", "2"): 2.0, ("income", "7"): 0.5,
                                    ("age", "nan"): 1.0}
    store.remove_many(NAME, (labels for labels in [["income", 7], ("age", "0")]))
    assert set(_series(store, NAME)) == {("age", "1"), ("age", "2"), ("age", "nan")}
    with pytest.raises(ValueError):
        store.set_many(NAME, [(("age", "1"), 5.0), (("age", "2"), "not a number")])
    assert store.value(NAME, ("age", "1")) == 1.0
