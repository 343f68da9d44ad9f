"""The default detector set leaves out what the reference cannot feed; the operator hears of it.

Found by the session-11 ML-engineer walkthrough: a reference built without the model's outputs
(``monitor reference build`` without ``--output-columns``) silently dropped confidence drift,
prediction drift and the accuracy estimate, while the probing detector's omission was logged.
"""

from __future__ import annotations

import logging

import numpy as np

from monitor.config import OutputSpec
from monitor.detectors.defaults import default_detectors
from monitor.reference import Reference


def _kinds(output: OutputSpec, ref: Reference | None) -> list[str]:
    return [d.kind for d in default_detectors(output, ref)]


def test_a_reference_without_scores_names_the_detectors_left_out_and_the_fix(caplog) -> None:
    rng = np.random.default_rng(0)
    ref = Reference.from_arrays(rng.normal(size=(500, 3)))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        kinds = _kinds(OutputSpec(classes=("a", "b", "c")), ref)
    assert "confidence_drift" not in kinds and "input_drift" in kinds
    (line,) = [r.getMessage() for r in caplog.records if "no model outputs" in r.getMessage()]
    for kind in ("confidence_drift", "prediction_drift", "accuracy_estimation", "probing"):
        assert repr(kind) in line, line
    assert "--output-columns" in line


def test_a_reference_with_scores_but_no_labels_names_the_accuracy_estimate(caplog) -> None:
    rng = np.random.default_rng(1)
    ref = Reference.from_arrays(rng.normal(size=(500, 3)), scores=rng.dirichlet([1, 1, 1], size=500))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        kinds = _kinds(OutputSpec(classes=("a", "b", "c")), ref)
    assert "confidence_drift" in kinds and "accuracy_estimation" not in kinds
    lines = [r.getMessage() for r in caplog.records if "left out of the defaults" in r.getMessage()]
    assert len(lines) == 1 and "'accuracy_estimation'" in lines[0] and "--label-column" in lines[0], lines


def test_no_reference_at_all_is_not_reported_as_a_reference_lacking_parts(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor"):
        kinds = _kinds(OutputSpec(classes=("a", "b", "c")), None)
    assert "confidence" in kinds and "input_drift" not in kinds
    assert not [r for r in caplog.records if "left out of the defaults" in r.getMessage()]


def test_one_numeric_input_is_said_at_info_not_warned(caplog) -> None:
    rng = np.random.default_rng(2)
    ref = Reference.from_arrays(rng.normal(size=(500, 1)), scores=rng.dirichlet([1, 1], size=500),
                                labels=rng.integers(0, 2, size=500))
    with caplog.at_level(logging.INFO, logger="monitor"):
        kinds = _kinds(OutputSpec(classes=("a", "b")), ref)
    assert "pca_drift" not in kinds and "input_drift" in kinds
    (record,) = [r for r in caplog.records if "left out of the defaults" in r.getMessage()]
    assert record.levelno == logging.INFO and "'pca_drift'" in record.getMessage()
