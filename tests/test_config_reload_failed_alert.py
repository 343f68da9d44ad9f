"""MonitorConfigReloadFailed (core pack): ``monitor_config_last_reload_successful`` at 0 pages.

A reload that found ``monitor.yaml`` invalid was counted (``monitor_config_reloads_total``,
``monitor_config_last_reload_successful`` 0) but no alert read it: nobody heard of the broken file
until a restart (a rollout, an eviction) read it and left the sidecar not ready, taking no events.
Checked with the real ``promtool test rules``, the agent's engine, and end to end in a sidecar
whose own rule evaluation reads its ``_sidecar`` series.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.sidecar_support import http, quiet_factory, start_sidecar
from tests.test_oncall_session7 import _run_unit_test

IRIS = {"model": "iris", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]}}
T0 = 1_800_000_000.0


def test_a_config_that_no_longer_loads_pages_after_ten_minutes_and_resolves_when_fixed(tmp_path: Path) -> None:
    _run_unit_test(tmp_path, "core.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_config_last_reload_successful{model="_sidecar"}'
                values: '1 1 0x12 1x5'
            alert_rule_test:
              - eval_time: 9m
                alertname: MonitorConfigReloadFailed
                exp_alerts: []
              - eval_time: 12m
                alertname: MonitorConfigReloadFailed
                exp_alerts:
                  - exp_labels: {severity: warning, model: _sidecar}
                    exp_annotations:
                      summary: "The sidecar's monitor.yaml no longer loads: its next restart will fail."
                      description: "The last reload (SIGHUP or POST /-/reload) found monitor.yaml invalid, and no reload has succeeded since. The config in force stays (its rule files are read again at each reload), but the file on disk would not start the sidecar: after its next restart it stays not ready (/readyz 503) and takes no events. The reload's answer and the agent's log name the key and the fix."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorconfigreloadfailed"
              - eval_time: 16m
                alertname: MonitorConfigReloadFailed
                exp_alerts: []
    """)


def test_the_sidecars_own_rules_fire_it_after_a_reload_of_a_broken_file(tmp_path: Path) -> None:
    raw = {**IRIS, "rules": {"packs": ["core"], "log": False}}
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(start_worker=False))
    s.sidecar.config_path = config  # as `monitor serve --config` sets it
    try:
        mon = s.monitor()
        config.write_text(yaml.safe_dump({**raw, "window": "5 minutes"}), encoding="utf-8")
        assert http("POST", s.url + "/-/reload").status == 200
        for k in range(12):
            mon.evaluate_rules(T0 + 60 * k)

        def firing() -> list[dict]:
            return [a for a in http("GET", s.url + "/api/v1/alerts").json()["data"]["alerts"]
                    if a["labels"]["alertname"] == "MonitorConfigReloadFailed" and a["state"] == "firing"]

        [alert] = firing()
        assert alert["labels"]["model"] == "_sidecar"
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")  # fixed and reloaded: it resolves
        assert http("POST", s.url + "/-/reload").status == 200
        mon.evaluate_rules(T0 + 720)
        assert firing() == []
    finally:
        s.close()
