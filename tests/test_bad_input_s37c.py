"""Bad input, follow-ups of session 36's review (session 37, helper s37c): each test failed before
its fix. The standard: a clear error naming the field and the fix, counted when refused, never a
crash of the agent, a figure poisoned or a value silently read as another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.config import ConfigError
from tests.test_bad_input_s37b import complex_outputs_refused

__all__: list[str] = []

_REGRESSION = {"output": {"kind": "regression"}, "features": ["a"],
               "detectors": [{"kind": "regression", "min_rows": 5, "min_labels": 5}, "output_drift"]}


def _monitor(config: dict, reference: Reference | None = None) -> Monitor:
    return Monitor(model="m", config=config, reference=reference, registry=CollectorRegistry(), start_worker=False,
                   live=False)


def _regression_reference(rows: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(37)
    x = rng.normal(size=(rows, 1))
    pred = x[:, 0] + 1.0
    return x, pred, pred + rng.normal(scale=0.5, size=rows)


@pytest.mark.parametrize("shape", ["(n,)", "(n, 1)"])
@pytest.mark.parametrize("big", [1e300, -1e300, 1e151])
def test_regression_reference_values_beyond_the_live_bound_are_refused(shape: str, big: float) -> None:
    """Live regression outputs beyond 1e150 in size are refused (output_too_large), and so were a
    reference's (value, lower, upper) or quantile rows; its single values were kept: one 1e300 in
    400 rows became the reference's mean prediction and MAE (2.5e297: RegressionErrorHigh could
    never fire) and the output drift detector's spread. They are now refused at start, naming the
    scores, the row and the fix."""
    x, pred, y = _regression_reference()
    scores = pred.copy()
    scores[7] = big
    if shape == "(n, 1)":
        scores = scores[:, None]
    with pytest.raises(ConfigError) as info:
        _monitor(_REGRESSION, Reference.from_arrays(x, numeric_names=["a"], scores=scores, labels=y)).close()
    message = str(info.value)
    assert "reference's scores" in message and "scores=" in message and "row 7" in message, message
    assert f"{big:.6g}" in message and "output_too_large" in message and "Fix:" in message, message


def test_regression_reference_values_at_the_bound_are_read_as_before() -> None:
    """1e150 itself is read, as live. (NaN and infinite values, left out of the reference's
    figures here until s37e, are refused at start as live traffic refuses them:
    tests/test_bad_input_s37e.py.)"""
    x, pred, y = _regression_reference()
    scores = pred.copy()
    scores[3] = 1e150
    mon = _monitor(_REGRESSION, Reference.from_arrays(x, numeric_names=["a"], scores=scores, labels=y))
    try:
        det = next(d for d in mon.pipeline.detectors if d.kind == "regression")
        assert det._ref_mean == pytest.approx(scores.mean())
        assert det._ref_mae == pytest.approx(np.abs(scores - y).mean())
    finally:
        mon.close()


def test_a_regression_reference_file_with_a_huge_output_is_refused(tmp_path: Path) -> None:
    """A reference file's single output column (``--output-columns``, read as ``(n, 1)``) alike."""
    from monitor.profile import build_profile

    x, pred, y = _regression_reference()
    pred[11] = 1e300
    path = tmp_path / "ref.csv"
    pd.DataFrame({"a": x[:, 0], "pred": pred, "y": y}).to_csv(path, index=False)
    ref = build_profile(path, output_columns=["pred"], label_column="y", progress=False).to_reference()
    with pytest.raises(ConfigError, match="row 11"):
        _monitor(_REGRESSION, ref).close()


_LABELS = {"output": {"kind": "labels"}, "features": ["a"]}


@pytest.mark.parametrize("outputs, given", [
    ([np.complex128(0.2), np.complex128(0.5), np.complex128(0.9)], "a list of them"),
    (np.array([0.2, 0.5, 0.9 + 1j]), "complex128"),
    ([0.2j, 1, 2], "a list of them"),  # Python's complex beside integer labels
    (["a", "b", np.complex64(1)], "a list of them"),  # one among class names
    (pd.Series([1, 2, 3], dtype=complex), "complex128"),
], ids=["list of complex128", "complex array", "python complex", "one among names", "complex Series"])
def test_complex_outputs_of_a_labels_model_are_refused_as_the_other_kinds_do(
        outputs: object, given: str, caplog: pytest.LogCaptureFixture) -> None:
    """With output.kind: labels complex outputs became classes named "(0.2+0j)" (every row read,
    nothing said), where the other kinds refuse them (non_numeric_output). They are now refused
    the same way, with the same message."""
    said = complex_outputs_refused(_LABELS, outputs, caplog)
    assert f"outputs are complex numbers ({given})" in said and "Fix:" in said and "np.abs(out)" in said, said


def test_calls_of_one_complex_label_are_refused_and_real_labels_beside_them_read() -> None:
    """Calls of one row each (a decorated predict called per row): the complex label refused, the
    others read as before (text, integers, whole floats)."""
    mon = _monitor(_LABELS)
    try:
        for label in (np.complex128(0.3), 0.3 + 0j, np.array([1 + 0j])):
            mon.observe([1.0], label)
        for label in ("cat", 2, 2.0):
            mon.observe([1.0], label)
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", labels=("non_numeric_output",)) == 3
        assert mon.store.value("monitor_predictions") == 3
        assert sorted(mon.pipeline.builder.classes.names) == ["2", "cat"]
    finally:
        mon.close()


class _Unprintable:
    def __str__(self) -> str:
        raise ValueError("no text")

    __repr__ = __str__


@pytest.mark.parametrize("rid, described", [
    (10 ** 4999, "of 5,000 digits"),  # str() refuses an integer of more than 4,300 digits
    (-(10 ** 5000) + 1, "of 5,000 digits"),
    (_Unprintable(), "_Unprintable whose text cannot be taken (str() raised ValueError)"),
], ids=["10**4999", "-(10**5000 - 1)", "str() raises"])
def test_feedback_for_a_request_id_whose_text_cannot_be_taken_is_said_once(
        rid: object, described: str, caplog: pytest.LogCaptureFixture) -> None:
    """A feedback id whose text cannot be taken was counted unknown_id at once (no prediction is
    held under such an id: its rows are kept without it) but never said, where an over-long id is
    (5e83681). It is now said once, in that line, describing the id."""
    import logging

    mon = _monitor({"output": {"kind": "probabilities", "classes": ["x", "y"]}, "features": ["a"]})
    try:
        mon.observe([[1.0], [2.0]], [[0.6, 0.4]] * 2, request_id=["r0", "r1"])
        mon.flush()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback([rid, "r0"], [1, 0])
            mon.feedback([rid], [0])
            mon.flush()
        assert mon.store.value("monitor_feedback_labels", labels=("unknown_id",)) == 2
        assert mon.store.value("monitor_feedback_labels", labels=("joined",)) == 1
        assert not mon.store.value("monitor_labels_early")
        said = [r.getMessage() for r in caplog.records if "a label came for a request id" in r.getMessage()]
        assert len(said) == 1 and described in said[0] and "Fix:" in said[0] and "unknown_id" in said[0], said
    finally:
        mon.close()
