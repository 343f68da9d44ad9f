"""Review of the output-repeat detector's fingerprints: values a model cannot tell apart are one
input or one output, different ones are told apart (no cancellation, no overflow), and a table
saved with other fingerprints is not restored as if its keys still matched."""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.detectors.repetition import (FINGERPRINT_VERSION, OutputRepeatDetector, input_fingerprints,
                                          output_fingerprints)


def test_sign_flipped_rows_have_different_fingerprints() -> None:
    """Summed 64-bit words let the two sign bits cancel: (a, b) and (-a, -b) always collided."""
    x = np.random.default_rng(0).normal(size=(1000, 2))
    assert not np.any(input_fingerprints(x) == input_fingerprints(-x))


def test_rows_of_small_integers_get_distinct_fingerprints() -> None:
    """Every distinct row of five features in 0..9 (86,572 of them from 200,000 draws) has its
    own fingerprint; the former hash gave them 29,257 (a float's differences sit in its high bits)."""
    x = np.unique(np.random.default_rng(0).integers(0, 10, size=(200_000, 5)).astype(float), axis=0)
    assert len(np.unique(input_fingerprints(x))) == len(x)
    y = np.unique(np.random.default_rng(1).integers(0, 10, size=(200_000, 5)).astype(float) / 1e6, axis=0)
    assert len(np.unique(output_fingerprints(y))) == len(y)  # outputs too, once rounded


def test_negative_zero_and_nan_payloads_are_one_value() -> None:
    x = np.array([[0.0, 1.0], [-0.0, 1.0], [np.nan, 2.0], [-np.nan, 2.0]])
    x[3, 0] = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    fp = input_fingerprints(x)
    assert fp[0] == fp[1] and fp[2] == fp[3] and fp[0] != fp[2]
    out = output_fingerprints(x)
    assert out[0] == out[1] and out[2] == out[3] and out[0] != out[2]


def test_large_and_non_finite_outputs_do_not_collapse_into_one() -> None:
    """Above 9.2e12 (at 6 decimals) the cast to int64 overflowed: every such output, NaN and the
    infinities were one word."""
    big = np.array([1e13, 2e13, 1e13 + 0.5, 1e200, np.nan, np.inf, -np.inf, -1e13])
    assert len(set(output_fingerprints(big).tolist())) == len(big)


def test_distinct_large_regression_outputs_are_not_repeats() -> None:
    """A regression model whose outputs are in the 1e13s (amounts in cents, say), every row a
    different input and output: the former fingerprints made nearly every row a repeat."""
    rng = np.random.default_rng(7)
    det = OutputRepeatDetector(min_rows=1, window_s=1e6)
    for i in range(5):
        x = rng.normal(size=(500, 3))
        y = 1e13 + rng.random(500) * 1e12
        det.update(Batch.from_arrays(x, y, ts=i * 500.0 + np.arange(500.0)))
    assert det.repeat_ratio == 0.0


def test_a_number_and_its_text_are_one_categorical_value_and_true_is_not_one() -> None:
    """The intake gives detectors categorical values as text; values given as numbers hash as
    their text. ``1`` and ``True`` are equal dict keys but different texts: whichever came first
    no longer decides the other's code."""
    a = input_fingerprints(None, np.array([[True], [1], ["1"], ["True"]], dtype=object))
    b = input_fingerprints(None, np.array([[1], [True], ["True"], ["1"]], dtype=object))
    assert a[0] == a[3] == b[1] == b[2] and a[1] == a[2] == b[0] == b[3] and a[0] != a[1]


def test_a_table_saved_with_other_fingerprints_is_not_restored() -> None:
    rng = np.random.default_rng(3)
    det = OutputRepeatDetector(min_rows=1, window_s=1e6, table_size=64, horizon_rows=50)
    x = rng.normal(size=(40, 2))
    det.update(Batch.from_arrays(x, np.full((40, 2), 0.5), ts=np.arange(40.0)))
    state = det.state_dict()
    assert state["fingerprint_version"] == FINGERPRINT_VERSION
    old = dict(state)
    del old["fingerprint_version"]  # a checkpoint of the former hash
    for saved, table_kept in ((state, True), (old, False)):
        clone = OutputRepeatDetector(min_rows=1, window_s=1e6, table_size=64, horizon_rows=50)
        clone.load_state_dict(saved)
        assert clone.repeat_ratio == det.repeat_ratio  # the window is restored either way
        assert bool(clone._table.keys.any()) is table_kept
        clone.update(Batch.from_arrays(rng.normal(size=(1, 2)), np.full((1, 2), 0.5), ts=np.array([41.0])))
        # the same answer to a new input: a repeat only when the table's keys are this hash's
        assert clone.repeat_ratio == (39 + table_kept) / 41


def test_rows_without_features_get_one_fingerprint_each() -> None:
    """A batch of rows with no feature column had no fingerprint at all (length 0, not n)."""
    assert input_fingerprints(np.empty((5, 0)), np.empty((5, 0), dtype=object)).shape == (5,)
