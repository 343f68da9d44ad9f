"""Detector kinds by config name, imported lazily so that only configured detectors load."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.detectors.base import Detector

__all__ = ["KINDS", "create", "detector_class", "parameter_defaults"]

#: config ``kind`` -> "module:Class". Each detector module adds its line here.
KINDS: dict[str, str] = {
    # adversarial probing and model stealing, per client (issue 5)
    "probing": "monitor.detectors.probing:ProbingDetector",
    # confidence, calibration and accuracy estimation (issue 3)
    "confidence": "monitor.detectors.confidence:ConfidenceDetector",
    "confidence_drift": "monitor.detectors.confidence_drift:ConfidenceDriftDetector",
    "prediction_drift": "monitor.detectors.prediction_drift:PredictionDriftDetector",
    "accuracy_estimation": "monitor.detectors.accuracy_estimation:AccuracyEstimationDetector",
    "calibration": "monitor.detectors.calibration:CalibrationDetector",
    "segments": "monitor.detectors.segments:SegmentDetector",
    "regression": "monitor.detectors.regression:RegressionDetector",
    "output_repeats": "monitor.detectors.repetition:OutputRepeatDetector",
    # multi-label models (output.kind: multilabel): per-label rates, cardinality, rate drift
    "multilabel": "monitor.detectors.multilabel:MultilabelDetector",
    # input drift, output drift, multivariate drift, data quality (issue 4)
    "input_drift": "monitor.detectors.drift:FeatureDriftDetector",
    "output_drift": "monitor.detectors.output_drift:OutputDriftDetector",
    "pca_drift": "monitor.detectors.multivariate:PCADriftDetector",
    "data_quality": "monitor.detectors.data_quality:DataQualityDetector",
    "alibi_drift": "monitor.detectors.alibi_backend:AlibiDriftDetector",
}


def detector_class(kind: str) -> type["Detector"]:
    try:
        target = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown detector kind {kind!r}; known kinds: {', '.join(sorted(KINDS)) or 'none'}") from None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def parameter_defaults(kind: str) -> dict[str, Any]:
    """The parameters a config may give detector ``kind`` (what its ``from_config`` validates
    against) with each one's default: a config can be checked without building the detector,
    which may need the reference, and a value of the wrong type is refused with its key
    (``min_labels: many``) rather than by the constructor's own arithmetic (``'<' not supported
    between instances of 'str' and 'int'``)."""
    from monitor.detectors._common import constructor_defaults

    return constructor_defaults(detector_class(kind))


def create(kind: str, *, reference: Any = None, params: dict[str, Any] | None = None, context: Any = None) -> "Detector":
    """Instantiate a detector: ``Class.from_config(reference=..., context=..., **params)``.

    ``context`` is a :class:`monitor.detectors.context.DetectorContext` (schema, output spec,
    window defaults) shared by all detectors of one monitor.
    """
    cls = detector_class(kind)
    factory = getattr(cls, "from_config", None)
    if factory is not None:
        return factory(reference=reference, context=context, **(params or {}))
    return cls(**(params or {}))
