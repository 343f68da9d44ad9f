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
