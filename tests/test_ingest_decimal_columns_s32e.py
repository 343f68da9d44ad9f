"""A DataFrame column of numbers held as Python objects (``Decimal`` from a SQL ``NUMERIC``) is a
numeric feature, live and in the reference: it was learned as categorical, each amount a
category of its own."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder
from monitor.reference import Reference
from monitor.schema import OutputSpec

pd = pytest.importorskip("pandas")


def ev(inputs, outputs):
    return (PREDICTION, 0.0, inputs, outputs, None, None, None, None, None)


def _frame() -> "pd.DataFrame":
    return pd.DataFrame({
        "amount": [Decimal("1.50"), None, Decimal("2.25"), float("nan")],
        "share": [Fraction(1, 2), Fraction(1, 4), pd.NA, 1],
        "mixed": [Decimal("1"), "n/a", Decimal("3"), None],
        "city": ["paris", "lyon", "nice", "metz"],
    })


def test_a_live_column_of_decimals_is_learned_numeric_with_its_gaps():
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev(_frame(), np.array([[0.2, 0.8]] * 4))])
    # a text among more numbers is a wrong value of a numeric feature (it made the column categorical,
    # every amount a category of its own, until session 37)
    assert b.schema.numeric_names == ("amount", "share", "mixed")
    assert b.schema.categorical_names == ("city",)
    amount, share, mixed = r.batch.numeric[:, 0], r.batch.numeric[:, 1], r.batch.numeric[:, 2]
    assert mixed[[0, 2]].tolist() == [1.0, 3.0] and math.isnan(mixed[1]) and math.isnan(mixed[3])
    assert amount[[0, 2]].tolist() == [1.5, 2.25] and math.isnan(amount[1]) and math.isnan(amount[3])
    assert share[[0, 1, 3]].tolist() == [0.5, 0.25, 1.0] and math.isnan(share[2])
    assert r.rejected == {}


def test_a_reference_of_the_same_frame_holds_it_numeric_and_live_rows_read_it_so():
    ref = Reference.from_arrays(pd.concat([_frame()] * 10, ignore_index=True))
    assert ref.numeric_names == ("amount", "share")
    assert ref.numeric[:2, 0][0] == 1.5 and math.isnan(ref.numeric[1, 0])
    b = BatchBuilder(None, OutputSpec(), reference_names=ref.feature_names,
                     reference_categorical=tuple(ref.categorical_names))
    b.build([ev(_frame(), np.array([[0.2, 0.8]] * 4))])
    assert b.schema.numeric_names == ("amount", "share")


def test_an_object_column_of_missing_values_or_complex_numbers_stays_categorical():
    b = BatchBuilder(None, OutputSpec())
    b.build([ev(pd.DataFrame({"gap": [None, None], "z": [1 + 2j, 3j], "x": [1.0, 2.0]}), np.array([[0.2, 0.8]] * 2))])
    assert b.schema.categorical_names == ("gap", "z") and b.schema.numeric_names == ("x",)
