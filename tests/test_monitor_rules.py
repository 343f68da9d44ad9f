"""Rules evaluated inside the agent, in event time: the core pack fires on a recorded error burst,
`monitor replay` reports the same transitions, and the agent exports its alert states."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from monitor import Monitor
from monitor.cli import main
from monitor.config import MonitorConfig, RulesConfig
from tests.conftest import REPO_ROOT

CORE = str(REPO_ROOT / "rules" / "core.yml")
T0 = 1_700_000_000.0


def traffic(seconds: int, error_from: float, error_to: float) -> list[dict]:
    """2 calls/s; between error_from and error_to, 1 call in 4 raises."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(seconds * 2):
        ts = T0 + i / 2
        if error_from <= ts - T0 < error_to and i % 4 == 0:
            out.append({"type": "error", "timestamp": ts, "exception": "TimeoutError", "latency_s": 0.002})
        else:
            p = rng.dirichlet([2, 2])
            out.append({"timestamp": ts, "inputs": rng.normal(size=3).tolist(), "outputs": p.tolist(),
                        "latency_s": 0.002, "request_id": f"r{i}"})
    return out


def expected_error_transitions(transitions):
    return [(t["to"], t["time"]) for t in transitions if t["alertname"] == "ModelErrorRateHigh"]


def test_core_pack_fires_and_resolves_in_event_time(registry):
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(CORE,), interval_s=15.0, log_alerts=False))
    mon = Monitor(config=cfg, registry=registry, start_worker=False, live=False)
    seen = []
    mon.transition_listeners.append(lambda tr: seen.append(tr.to_dict()))
    try:
        from monitor.events import parse_event

        for e in traffic(1800, 300, 900):
            mon.queue.put(parse_event(e, 0.0).event)
            if len(mon.queue) > 500:
                mon.flush()
        mon.flush()
        mon.advance(T0 + 1800)
        got = expected_error_transitions(seen)
        # errors start at +300 s at 0.5/s among 600 calls per 5m window: the ratio passes 5% after
        # ~60 s (30 errors), so pending at the first 15 s tick past +360, firing 5m later
        assert [state for state, _ in got] == ["pending", "firing", "inactive"]
        pending, firing, resolved = (t - T0 for _, t in got)
        assert 355 < pending <= 390
        assert firing - pending == 300
        assert 900 < resolved <= 1200  # the 5m rate window must forget the burst first
        assert mon.store.value("monitor_rule_evaluations") == 120.0
    finally:
        mon.close()


def test_alert_state_is_exported_and_alerts_are_typed(registry):
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(CORE,), interval_s=15.0, log_alerts=False))
    mon = Monitor(config=cfg, registry=registry, start_worker=False, live=False)
    try:
        from monitor.events import parse_event

        for e in traffic(700, 60, 700):
            mon.queue.put(parse_event(e, 0.0).event)
            if len(mon.queue) > 500:
                mon.flush()
        mon.flush()
        alerts = [a for a in mon.alerts() if a.name == "ModelErrorRateHigh"]
        assert len(alerts) == 1 and alerts[0].labels["model"] == "m"
        state = str(getattr(alerts[0].state, "value", alerts[0].state)).lower()
        assert state == "firing"
        assert "fails 25%" in alerts[0].annotations["summary"]
        assert mon.store.value("monitor_alerts", ("ModelErrorRateHigh", "firing", "critical")) == 1.0
        assert 'monitor_alerts{alertname="ModelErrorRateHigh",alertstate="firing"' in mon.metrics_text()
    finally:
        mon.close()


def test_replay_cli_writes_the_same_transitions(tmp_path):
    log = tmp_path / "events.ndjson"
    log.write_text("\n".join(json.dumps(e) for e in traffic(1800, 300, 900)) + "\nnot json\n")
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"model: m\nrules:\n  files: [{CORE}]\n  interval: 15s\n")
    out = tmp_path / "transitions.jsonl"
    result = CliRunner().invoke(main, ["replay", str(log), "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    got = expected_error_transitions(lines)
    assert [s for s, _ in got] == ["pending", "firing", "inactive"]
    assert all({"time", "alertname", "from", "to", "labels", "annotations", "value"} <= set(line) for line in lines)
    assert "ModelErrorRateHigh: fired 1 time(s)" in result.output
    assert "invalid_json=1" in result.output


def test_example_replay_log_runs(tmp_path):
    example = REPO_ROOT / "examples" / "replay"
    result = CliRunner().invoke(main, ["replay", str(example / "events.ndjson"), "--config", str(example / "monitor.yaml"),
                                       "--out", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 0, result.output
    assert "ModelErrorRateHigh: fired 1 time(s)" in result.output
