"""The decorated application of the end-to-end test: the model behind ``@watch``, with every detector
that is installed, the rule files, and Alertmanager delivery, serving ``/metrics``."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from monitor.config import DetectorConfig, MonitorConfig, RulesConfig
from monitor.core import Monitor
from monitor.detectors.registry import KINDS
from monitor.schema import OutputSpec, Schema
from tests.e2e.traffic import World

__all__ = ["APP_MODEL", "WANTED_DETECTORS", "available_detectors", "missing_detectors", "build_app"]

APP_MODEL = "breast-cancer"

#: Detector kinds the test runs (regression and the alibi backend do not apply to this classifier).
WANTED_DETECTORS = (
    "confidence", "confidence_drift", "prediction_drift", "accuracy_estimation", "calibration", "segments",
    "output_repeats",
    "input_drift", "output_drift", "pca_drift", "data_quality", "probing",
)

#: Options of some detectors: their figures per segment too (the traffic carries two segments).
SEGMENTED: dict[str, dict[str, Any]] = {"confidence_drift": {"by_segment": True}, "prediction_drift": {"by_segment": True}}


def _importable(kind: str) -> bool:
    module = KINDS.get(kind, "").partition(":")[0]
    return bool(module) and importlib.util.find_spec(module) is not None


def available_detectors() -> tuple[str, ...]:
    return tuple(k for k in WANTED_DETECTORS if _importable(k))


def missing_detectors() -> tuple[str, ...]:
    """Wanted kinds whose module does not exist (yet) in this checkout."""
    return tuple(k for k in WANTED_DETECTORS if not _importable(k))


def build_app(world: World, *, rule_files: list[str], alertmanager_urls: tuple[str, ...] = (), window_s: float = 15.0,
              interval_s: float = 1.0, registry: Any = None) -> tuple[Monitor, Callable[..., Any]]:
    """The watched predict function and its monitor (live event time, wall clock)."""
    config = MonitorConfig(
        model=APP_MODEL,
        schema=Schema.numeric(world.names),
        output=OutputSpec("probabilities", world.classes),
        window_s=window_s,
        detectors=tuple(DetectorConfig(k, dict(SEGMENTED.get(k, {}))) for k in available_detectors()),
        rules=RulesConfig(files=tuple(rule_files), interval_s=interval_s, alertmanager_urls=alertmanager_urls,
                          log_alerts=False),
    )
    mon = Monitor(config=config, reference=world.reference, registry=registry)

    @mon.watch(client="client", request_id="request_id", segment="segment")
    def predict(X: Any, client: str | None = None, request_id: str | None = None, segment: str | None = None) -> Any:
        return world.model.predict_proba(X)

    return mon, predict
