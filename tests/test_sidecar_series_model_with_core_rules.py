"""The sidecar's own series (``model="_sidecar"``) go to the rules of the first model that reads
them. With rules per model (a ``models:`` entry's ``rules:`` merged with the shared ones), the
first model could evaluate another pack (``packs: [confidence]``) while the next one had core:
the series went to the first, MonitorProxyUpstreamFailing was evaluated by nobody, and a sidecar
whose model server was down paged nobody.

Real HTTP: a sidecar proxying to a port where nothing listens (its clients get 502)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.sidecar_support import http, total, wait_until
from tests.test_proxy import oip, start_proxying

T0 = 1_800_000_000.0
SIDE_RULE = """groups:
  - name: side
    rules:
      - alert: UpstreamErrors
        expr: sum by (model) (monitor_proxy_upstream_errors_total) > 0
        labels: {severity: page}
"""
FEATURES = {"features": ["a", "b", "c", "d"], "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _fired(models: list[dict[str, Any]], folder: Path) -> dict[str, list[str]]:
    """The alerts each model's evaluator fires after three proxied requests answered 502."""
    (folder / "side.yml").write_text(SIDE_RULE)
    raw = {**FEATURES, "rules": {"files": ["side.yml"], "log": False}, "models": models}
    s = start_proxying(raw, folder, "aiohttp", proxy_upstream=f"http://127.0.0.1:{free_port()}")
    try:
        for _ in range(3):
            assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 502
        assert wait_until(lambda: total(s.metrics(), "monitor_proxy_upstream_errors_total", model="_sidecar") >= 3)
        out = {}
        for m in models:
            mon = s.monitor(m["model"])
            out[m["model"]] = [f"{tr.alertname}/{tr.labels['model']}" for tr in mon.evaluate_rules(T0) if tr.to_state == "firing"]
        return out
    finally:
        s.close()


@pytest.mark.parametrize("first_rules", [{"files": [], "packs": ["confidence"]}, {"files": []}])
def test_the_first_model_reading_sidecar_series_gets_them(tmp_path: Path, first_rules: dict[str, Any]) -> None:
    """The first model evaluates rules that read no sidecar series (or none): the second, whose
    rules do, sees them, and only it fires the alert."""
    fired = _fired([{"model": "web", "rules": first_rules}, {"model": "iris"}], tmp_path)
    assert fired == {"web": [], "iris": ["UpstreamErrors/_sidecar"]}, fired


def test_the_first_model_with_rules_keeps_them_when_several_read_them(tmp_path: Path) -> None:
    """Both read them: the first one in the config evaluates the ``_sidecar`` rows, once."""
    fired = _fired([{"model": "web"}, {"model": "iris"}], tmp_path)
    assert fired == {"web": ["UpstreamErrors/_sidecar"], "iris": []}, fired
