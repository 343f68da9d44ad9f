"""Integer reference labels under named classes (session 29 review). Reference labels of whole
numbers were always read as score-column indices, even when the reference names its classes:
with scikit-learn's ``classes_`` as the names, ``[1, 2, 3]`` made the label 3 an index past the
last column and every label-using detector refused to start, and ``[1, 0]`` read the label 1 as
column 1 (class 0), swapping every label: the reference accuracy was one minus the true one,
silently. Labels are now names first, as live labels are looked up; indices when some label
names no class."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.detectors.registry import create
from monitor.reference import Reference


def _reference_accuracy(probs: np.ndarray, labels: np.ndarray, classes: list[object]) -> float:
    ref = Reference.from_arrays(np.zeros((probs.shape[0], 2)), scores=probs, labels=labels, classes=classes)
    return create("accuracy_estimation", reference=ref, params={}).reference_accuracy


def test_classes_one_zero_read_the_labels_by_name() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.6, 1.0, 400)
    probs = np.c_[p, 1 - p]  # column 0 is class 1, the likelier one
    labels = np.where(rng.uniform(size=400) < p, 1, 0)
    assert _reference_accuracy(probs, labels, [1, 0]) == pytest.approx(float(np.mean(labels == 1)))


def test_classes_one_to_three_start_and_read_the_labels_by_name() -> None:
    rng = np.random.default_rng(4)
    probs = rng.dirichlet([1.0, 1.0, 1.0], 300)
    labels = probs.argmax(axis=1) + 1  # classes_ [1, 2, 3]: the model is always right
    labels[:30] = (labels[:30] % 3) + 1  # wrong on 30 rows
    assert _reference_accuracy(probs, labels, [1, 2, 3]) == pytest.approx(0.9)


def test_float_labels_name_their_integer_classes() -> None:
    rng = np.random.default_rng(5)
    probs = rng.dirichlet([1.0, 1.0, 1.0], 300)
    labels = (probs.argmax(axis=1) + 1).astype(np.float64)  # a pandas column with a gap holds 1.0, 2.0, 3.0
    assert _reference_accuracy(probs, labels, [1, 2, 3]) == pytest.approx(1.0)


def test_indices_under_names_they_do_not_spell_stay_indices() -> None:
    rng = np.random.default_rng(6)
    probs = rng.dirichlet([1.0, 1.0], 200)
    labels = probs.argmax(axis=1)
    assert _reference_accuracy(probs, labels, ["cat", "dog"]) == pytest.approx(1.0)


def test_output_classes_name_an_in_code_references_integer_labels() -> None:
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    rng = np.random.default_rng(7)
    p = rng.uniform(0.6, 1.0, 400)
    labels = np.where(rng.uniform(size=400) < p, 1, 0)
    ref = Reference.from_arrays(np.zeros((400, 2)), scores=np.c_[p, 1 - p], labels=labels)
    mon = Monitor(model="m", registry=CollectorRegistry(), start_worker=False, live=False, reference=ref,
                  config={"output": {"classes": [1, 0]}, "detectors": ["accuracy_estimation"]})
    try:
        (det,) = mon.pipeline.detectors
        assert det.reference_accuracy == pytest.approx(float(np.mean(labels == 1)))
    finally:
        mon.close()
