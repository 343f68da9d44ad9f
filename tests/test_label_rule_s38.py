"""The HTTP intake refuses a label by the rule the label join counts ``invalid`` by: one rule
(``events.read_label``), so the two cannot drift apart (they were two functions before session 38,
and the intake's knew nothing of None, containers or numpy's scalars)."""
from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from monitor.events import decimal_digits, label_problem
from monitor.labels import _INVALID, _read_label

VALUES = [0, 1, -3, True, 2**256, 2**257, -(2**300), 0.5, float("nan"), float("inf"), -float("inf"), 1e300, 1e150,
          "cat", "", "1e400", "nan", None, [1], (1, 2), {"a": 1}, {1}, np.int64(7), np.float32("nan"), np.float64("inf"),
          np.str_("dog"), np.bool_(True), np.array(3), np.array([1, 0]), np.ma.masked, pd.NA, pd.NaT,
          pd.Series([1]), Fraction(1, 3), b"bytes", np.array([2.0]), np.ma.masked_array([2.0]), np.array(2.0),
          np.array(3), 1 + 0j, np.complex64(1)]


@pytest.mark.parametrize("regression", [False, True])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_what_the_intake_refuses_is_what_the_join_counts_invalid(value: object, regression: bool) -> None:
    refused = label_problem(value, regression) is not None
    assert refused == (_read_label(value, regression) is _INVALID), (value, regression, label_problem(value, regression))


def test_the_refusals_say_what_is_wrong() -> None:
    assert label_problem(None, False) == "is None, which names no class"
    assert "several values" in label_problem(np.array([1, 0]), False)
    assert label_problem(2**300, False) == "is an integer of 91 digits, which names no class"
    assert label_problem(float("nan"), True) == "is NaN, which is no value"
    assert "which is no number" in label_problem("soon", True)


def test_arrays_of_one_value_are_read_alike_and_complex_numbers_name_no_class() -> None:
    """A masked array of one value was taken as a regression label where an array of one was
    refused; a complex number was joined as a class (then skipped as unknown_class, counted joined)."""
    from monitor.events import read_label

    for regression in (False, True):
        assert read_label(np.array([2.0]), regression)[0] is None
        assert read_label(np.ma.masked_array([2.0]), regression)[0] is None
        assert read_label(np.array(2.0), regression)[0] == 2.0  # a 0-d array is its value
    assert label_problem(1 + 0j, False) == "is the complex number (1+0j), which names no class"
    assert label_problem(np.complex64(1), False).startswith("is the complex number np.complex64(1+0j)")


def test_decimal_digits_counts_past_what_str_prints() -> None:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        for v in (0, 9, 10, 99, 100, -100, 2**256, 10**5000 - 1, 10**5000, 7 * 10**4400):
            assert decimal_digits(v) == len(str(abs(v))), v
    finally:
        sys.set_int_max_str_digits(old)
