"""``GET /api/v1/clients`` says which models no probing detector watches, and why.

Before, a model without a probing detector (no reference, a reference without the model's outputs
or too short for it, a ``detectors:`` list that leaves it out, a regression model) was simply
absent from the answer: the same as a watched model whose clients are all benign, so an operator
checking an alert or an incident saw "no suspicious client" where nothing was looking. Real HTTP
against a sidecar serving one model of each kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.core import Monitor
from tests import probing_streams as S
from tests.sidecar_support import http, start_sidecar

CLASSES = {"kind": "probabilities", "classes": ["a", "b", "c", "d"]}
FEATURES = [f"f{i}" for i in range(S.D)]
REFERENCES = {"watched": S.reference(), "short": S.reference(60)}


def _factory(cfg: MonitorConfig) -> Monitor:
    return Monitor(config=cfg, reference=REFERENCES.get(cfg.model), registry=CollectorRegistry(auto_describe=False),
                   start_worker=False, live=False)


def test_models_without_probing_are_listed_with_the_reason(tmp_path: Path) -> None:
    models: list[dict[str, Any]] = [
        {"model": "watched", "features": FEATURES, "output": CLASSES},
        {"model": "short", "features": FEATURES, "output": CLASSES},
        {"model": "bare", "features": FEATURES, "output": CLASSES},
        {"model": "listed", "features": FEATURES, "output": CLASSES, "detectors": ["confidence"]},
        {"model": "reg", "features": FEATURES, "output": {"kind": "regression"}},
    ]
    s = start_sidecar({"models": models}, tmp_path, factory=_factory)
    try:
        r = http("GET", s.url + "/api/v1/clients")
    finally:
        s.close()
    assert r.status == 200
    data = r.json()["data"]
    assert data["clients"] == []
    reasons = {m["model"]: m["reason"] for m in data["models_without_probing"]}
    assert set(reasons) == {"short", "bare", "listed", "reg"}, reasons
    assert "60" in reasons["short"] and "as {kind: probing} (its model-stealing test stays off" in reasons["short"], reasons["short"]
    assert "reference.path" in reasons["bare"], reasons["bare"]
    assert "not in the config's detectors" in reasons["listed"] and "{kind: probing}" in reasons["listed"]
    assert "is a default for single-label classifiers and " in reasons["reg"], reasons["reg"]
