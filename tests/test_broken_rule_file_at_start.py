"""A rule file that does not load at start is left out, said and counted; the monitor and every
other model run (session 26 audit).

It raised while the monitor was built, so a sidecar's whole load failed: every model's intake
refused events (``load_failed``) and ``/readyz`` answered 503, which takes the pod out of its
Service (the examples' readiness probe) and stops the predictions the monitor only watches, over
a typo in one model's alert rules. Reload (SIGHUP, ``POST /-/reload``) loads the fixed file.
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import http, quiet_factory, start_sidecar

GOOD = textwrap.dedent("""
    groups:
      - name: good
        rules:
          - alert: AlwaysOn
            expr: vector(1)
            labels: {severity: info}
""")
BROKEN = "groups:\n- name: bad\n  rules:\n  - alert: Typo\n    expr: sum(\n"


def test_the_files_that_load_are_evaluated_and_the_broken_one_is_said(tmp_path: Path, caplog) -> None:
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / "bad.yml").write_text(BROKEN)
    config = {"model": "m", "rules": {"files": [str(tmp_path / "bad.yml"), str(tmp_path / "good.yml")], "log": False}}
    with caplog.at_level(logging.ERROR, logger="monitor"):
        mon = Monitor(config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        assert [g.name for g in mon.rules.groups] == ["good"]
        assert mon.store.value("monitor_rule_last_reload_successful") == 0.0
        said = [r.getMessage() for r in caplog.records if "rule files not loaded" in r.getMessage()]
        assert len(said) == 1 and "bad.yml" in said[0] and "unclosed left parenthesis" in said[0] and "Fix:" in said[0]
        assert [tr.alertname for tr in mon.evaluate_rules(1_800_000_000.0)] == ["AlwaysOn"]
        (tmp_path / "bad.yml").write_text(GOOD.replace("good", "fixed"))
        assert mon.reload_rules() == 2
        assert mon.store.value("monitor_rule_last_reload_successful") == 1.0
    finally:
        mon.close()


def test_a_broken_rule_file_of_one_model_leaves_the_sidecar_ready(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(BROKEN)
    raw = {"features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
           "models": [{"model": "m1", "rules": {"files": ["bad.yml"], "log": False}}, {"model": "m2"}]}
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        assert http("GET", s.url + "/readyz").status == 200
        for model in ("m1", "m2"):
            body = json.dumps({"model": model, "inputs": [[1.0, 2.0]], "outputs": [[0.3, 0.7]]})
            answer = http("POST", s.url + "/v1/events", body, {"Content-Type": "application/json"})
            assert answer.status in (200, 202), (model, answer)
        m1 = s.sidecar.monitors["m1"]
        assert m1.store.value("monitor_rule_last_reload_successful") == 0.0
    finally:
        s.close()
