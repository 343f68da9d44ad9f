"""The sidecar's HTTP intake over real HTTP on 127.0.0.1: formats, routing, validation errors,
limits and backpressure, feedback, /metrics, health, status, alerts and auth."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.sidecar_support import http, quiet_factory, sample, start_sidecar, total, wait_until

IRIS = {
    "model": "iris",
    "features": ["a", "b", "c", "d"],
    "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
}


def pred(i: int, **extra: object) -> dict:
    return {"inputs": [i % 7, 1.0, 2.0, 3.0], "outputs": [0.2, 0.5, 0.3], "request_id": f"r{i}", **extra}


@pytest.fixture
def sc(tmp_path):
    s = start_sidecar(IRIS, tmp_path)
    yield s
    s.close()


def test_single_array_and_ndjson_bodies_are_accepted_and_processed(sc):
    r1 = http("POST", sc.url + "/v1/events", pred(0))
    r2 = http("POST", sc.url + "/v1/events", [pred(1), pred(2), {"type": "error", "exception": "ValueError"}])
    nd = "\n".join(json.dumps(pred(i)) for i in range(3, 13)) + "\n"
    r3 = http("POST", sc.url + "/v1/events", nd, {"Content-Type": "application/x-ndjson"})
    r4 = http("POST", sc.url + "/v1/events", nd, {"Content-Type": "application/json"})  # detected as NDJSON
    assert [r.status for r in (r1, r2, r3, r4)] == [202, 202, 202, 202]
    assert [r.json()["accepted"] for r in (r1, r2, r3, r4)] == [1, 3, 10, 10]
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_calls_total", model="iris") == 24.0
    assert sample(text, "monitor_errors_total", model="iris", exception="ValueError") == 1.0
    assert sample(text, "monitor_intake_events_accepted_total", model="iris", endpoint="events") == 24.0


def test_malformed_batches_are_refused_whole_with_the_field_named_and_counted(sc):
    bad = [pred(0), {"inputs": [1, 2, 3, 4], "outputz": [1]}, pred(2, latency_s=-1)]
    r = http("POST", sc.url + "/v1/events", bad)
    assert r.status == 400
    body = r.json()
    assert body["field"] == "outputz" and body["reason"] == "unknown_key"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "outputz"), (2, "latency_s")]
    r = http("POST", sc.url + "/v1/events", b'{"inputs": [1,2', {"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["field"] == "body" and r.json()["reason"] == "bad_json"
    r = http("POST", sc.url + "/v1/events", '{"inputs":[1,2,3,4],"outputs":[1,0,0]}\n{oops\n',
             {"Content-Type": "application/x-ndjson"})
    assert r.status == 400 and r.json()["field"] == "line 2"
    r = http("POST", sc.url + "/v1/events", b"", {"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["reason"] == "empty_body"
    r = http("POST", sc.url + "/v1/events", {"inputs": [1], "outputs": [1], "timestamp": "yesterday"})
    assert r.status == 400 and r.json()["field"] == "timestamp"
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_calls_total", model="iris") is None  # nothing of a refused batch got in
    refused = lambda reason: total(text, "monitor_intake_events_refused_total", endpoint="events", reason=reason)  # noqa: E731
    assert refused("unknown_key") == 1 and refused("bad_latency") == 1 and refused("batch_refused") == 1
    # bad JSON: one body, plus the two lines of the NDJSON body
    assert refused("bad_json") == 3 and refused("bad_timestamp") == 1


def test_body_and_batch_limits_answer_413(tmp_path):
    s = start_sidecar({**IRIS, "server": {"max_body_bytes": 2000, "max_batch_events": 5}}, tmp_path)
    try:
        r = http("POST", s.url + "/v1/events", [pred(i) for i in range(40)])
        assert r.status == 413 and r.json()["reason"] == "too_large" and "max_body_bytes" in r.json()["error"]
        r = http("POST", s.url + "/v1/events", [pred(i) for i in range(6)])
        assert r.status == 413 and r.json()["reason"] == "too_many_events"
        assert http("POST", s.url + "/v1/events", [pred(i) for i in range(5)]).status == 202
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", reason="too_many_events") == 6
        assert total(text, "monitor_intake_events_refused_total", reason="too_large") == 1
    finally:
        s.close()


def test_full_queue_answers_429_then_global_limit_503_and_nothing_accepted_is_lost(tmp_path):
    raw = {**IRIS, "queue": {"capacity": 5}}
    s = start_sidecar({"models": [raw, {**raw, "model": "other"}], "server": {"max_queued_events": 7}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    try:
        assert http("POST", s.url + "/v1/events?model=iris", [pred(i) for i in range(4)]).status == 202
        r = http("POST", s.url + "/v1/events?model=iris", [pred(i) for i in range(2)])
        assert r.status == 429 and r.headers["retry-after"] == "1" and r.json()["reason"] == "queue_full"
        assert http("POST", s.url + "/v1/events?model=other", [pred(i) for i in range(3)]).status == 202
        r = http("POST", s.url + "/v1/events?model=other", [pred(9)])
        assert r.status == 503 and r.json()["reason"] == "overloaded"
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_calls_total", model="iris") == 4
        assert sample(text, "monitor_calls_total", model="other") == 3
        assert total(text, "monitor_intake_events_refused_total", reason="queue_full") == 2
        assert total(text, "monitor_intake_events_refused_total", reason="overloaded") == 1
        # after draining there is room again
        assert http("POST", s.url + "/v1/events?model=iris", [pred(i) for i in range(5)]).status == 202
    finally:
        s.close()


def test_models_are_routed_by_event_field_or_query(tmp_path):
    s = start_sidecar({"models": [IRIS, {**IRIS, "model": "fraud"}]}, tmp_path)
    try:
        assert http("POST", s.url + "/v1/events", [pred(0, model="iris"), pred(1, model="fraud")]).status == 202
        assert http("POST", s.url + "/v1/events?model=fraud", [pred(2)]).status == 202
        r = http("POST", s.url + "/v1/events", [pred(3)])
        assert r.status == 400 and r.json()["field"] == "model" and "fraud" in r.json()["error"]
        r = http("POST", s.url + "/v1/events", [pred(4, model="nope")])
        assert r.status == 404 and r.json()["reason"] == "unknown_model"
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_calls_total", model="iris") == 1
        assert sample(text, "monitor_calls_total", model="fraud") == 2
        # one exposition for both models: every family declared once
        assert text.count("# TYPE monitor_calls_total counter") == 1
    finally:
        s.close()


def test_feedback_joins_labels_to_earlier_predictions(sc):
    http("POST", sc.url + "/v1/events", [pred(i) for i in range(4)])
    sc.flush()
    r = http("POST", sc.url + "/v1/feedback", {"request_ids": ["r0", "r1", "zz"], "labels": ["setosa", "virginica", "setosa"]})
    assert r.status == 202
    r = http("POST", sc.url + "/v1/feedback", {"request_id": "r2", "label": "versicolor"})
    assert r.status == 202
    r = http("POST", sc.url + "/v1/feedback", pred(9))
    assert r.status == 400 and r.json()["field"] in ("type", "inputs")
    r = http("POST", sc.url + "/v1/feedback", {"type": "prediction", "inputs": [1], "outputs": [1]})
    assert r.status == 400 and r.json()["reason"] == "wrong_endpoint"
    sc.flush()
    text = sc.metrics()
    assert sample(text, "monitor_feedback_labels_total", model="iris", outcome="joined") == 3
    assert sample(text, "monitor_labels_early", model="iris") == 1  # zz's prediction may come yet (labels.early)


def test_metrics_text_and_openmetrics_by_accept(sc):
    http("POST", sc.url + "/v1/events", [pred(i) for i in range(3)])
    sc.flush()
    text = http("GET", sc.url + "/metrics")
    assert text.status == 200 and text.headers["content-type"].startswith("text/plain; version=0.0.4")
    om = http("GET", sc.url + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.body.rstrip().endswith(b"# EOF")
    assert b'monitor_intake_events_accepted_total{endpoint="events",model="iris"} 3.0' in text.body
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(om.body.decode())}
    assert "monitor_intake_events_accepted" in names


def test_metrics_pass_promtool_check(sc):
    from tests.conftest import require_binary

    promtool = require_binary("promtool")
    http("POST", sc.url + "/v1/events", [pred(i) for i in range(3)])
    http("POST", sc.url + "/v1/events", {"bad": 1})
    sc.flush()
    body = http("GET", sc.url + "/metrics").body
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode() + proc.stdout.decode()


def test_health_ready_and_status(tmp_path):
    import threading

    gate = threading.Event()
    make = quiet_factory()

    def slow(cfg):
        gate.wait(30)
        return make(cfg)

    s = start_sidecar(IRIS, tmp_path, factory=slow, wait_ready=False)
    try:
        assert http("GET", s.url + "/healthz").status == 200
        r = http("GET", s.url + "/readyz")
        assert r.status == 503 and r.json()["status"] == "loading"
        r = http("POST", s.url + "/v1/events", pred(0))
        assert r.status == 503 and r.json()["reason"] == "not_ready"
        gate.set()
        assert wait_until(lambda: http("GET", s.url + "/readyz").status == 200)
        st = http("GET", s.url + "/api/v1/status").json()["data"]
        assert st["ready"] is True and st["models"]["iris"]["queue_capacity"] == 100_000
    finally:
        gate.set()
        s.close()


def test_alerts_endpoint_has_prometheus_shape(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: AlwaysOn\n    expr: vector(1)\n    labels: {severity: info}\n"
        "    annotations: {summary: 'on {{ $value }}'}\n"
    )
    s = start_sidecar({**IRIS, "rules": {"files": ["rules.yml"], "interval": "1s", "log": False}}, tmp_path)
    try:
        assert http("GET", s.url + "/api/v1/alerts").json() == {"status": "success", "data": {"alerts": []}}
        mon = s.monitor("iris")
        mon.evaluate_rules(1_800_000_000.0)
        body = http("GET", s.url + "/api/v1/alerts").json()
        assert body["status"] == "success"
        (alert,) = body["data"]["alerts"]
        assert alert["labels"]["alertname"] == "AlwaysOn" and alert["state"] == "firing"
        assert alert["annotations"]["summary"] == "on 1" and alert["activeAt"].startswith("2027-01-15T08:00:00")
        assert alert["value"] == "1e+00"
    finally:
        s.close()


def test_clients_endpoint_lists_suspicious_clients(sc):
    r = http("GET", sc.url + "/api/v1/clients")
    assert r.status == 200 and isinstance(r.json()["data"]["clients"], list)
    assert http("GET", sc.url + "/api/v1/clients?limit=x").status == 400


def test_bearer_tokens_protect_write_and_read_separately(tmp_path, monkeypatch):
    write = "w" * 24
    read = "r" * 24
    (tmp_path / "read.token").write_text(f"# rotated tokens, one per line\n{read}\n{'o' * 20}\n")
    monkeypatch.setenv("TEST_MONITOR_WRITE_TOKEN", write)
    s = start_sidecar({**IRIS, "server": {"write_token_env": "TEST_MONITOR_WRITE_TOKEN", "metrics_token_file": "read.token"}}, tmp_path)
    try:
        r = http("POST", s.url + "/v1/events", pred(0))
        assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert http("POST", s.url + "/v1/events", pred(0), {"Authorization": "Bearer " + read}).status == 401
        assert http("POST", s.url + "/v1/events", pred(0), {"Authorization": "Basic " + write}).status == 401
        assert http("POST", s.url + "/v1/events", pred(0), {"Authorization": "Bearer " + write}).status == 202
        assert http("GET", s.url + "/metrics").status == 401
        assert http("GET", s.url + "/metrics", headers={"Authorization": "Bearer " + write}).status == 401
        assert http("GET", s.url + "/metrics", headers={"Authorization": "Bearer " + "o" * 20}).status == 200
        assert http("GET", s.url + "/api/v1/alerts").status == 401
        assert http("GET", s.url + "/healthz").status == 200 and http("GET", s.url + "/readyz").status == 200
        text = http("GET", s.url + "/metrics", headers={"Authorization": "Bearer " + read}).body.decode()
        assert total(text, "monitor_intake_events_refused_total", endpoint="events", reason="unauthorized") == 3
    finally:
        s.close()


def test_token_misconfiguration_is_a_config_error(tmp_path, monkeypatch):
    from monitor.config import ConfigError, parse_config
    from monitor.server.settings import settings_from

    monkeypatch.delenv("TEST_MONITOR_NO_SUCH_TOKEN", raising=False)
    agent = parse_config({**IRIS, "server": {"write_token_env": "TEST_MONITOR_NO_SUCH_TOKEN"}}, str(tmp_path / "m.yaml"), tmp_path)
    with pytest.raises(ConfigError, match="server.write_token_env.*TEST_MONITOR_NO_SUCH_TOKEN"):
        settings_from(agent)
    (tmp_path / "short").write_text("abc\n")
    agent = parse_config({**IRIS, "server": {"metrics_token_file": "short"}}, str(tmp_path / "m.yaml"), tmp_path)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        settings_from(agent)
    agent = parse_config({**IRIS, "server": {"proxy": {"routes": [{"path": "predict"}]}}}, str(tmp_path / "m.yaml"), tmp_path)
    with pytest.raises(ConfigError, match=r"server.proxy.routes\[0\].path"):
        settings_from(agent)


def test_a_short_token_is_blamed_on_where_it_is_and_the_readme_states_the_minimum(tmp_path, monkeypatch):
    """With a token file and a variable both set, a short token of the variable was reported at
    ``server.write_token_file`` (whose tokens were fine), and the README gave no minimum length
    where it lists the token settings: operators met it only as a failed start."""
    import re

    from monitor.config import ConfigError, parse_config
    from monitor.server.settings import MIN_TOKEN_CHARS, settings_from
    from tests.conftest import REPO_ROOT

    (tmp_path / "write.token").write_text("# current and next\n" + "a" * 32 + "\n" + "b" * 32 + "\n")
    monkeypatch.setenv("TEST_MONITOR_WRITE_TOKEN", "c" * 32 + ",x9q7z")
    agent = parse_config({**IRIS, "server": {"write_token_file": "write.token", "write_token_env": "TEST_MONITOR_WRITE_TOKEN"}},
                         str(tmp_path / "m.yaml"), tmp_path)
    with pytest.raises(ConfigError) as err:
        settings_from(agent)
    assert err.value.key == "server.write_token_env" and "token 2 of TEST_MONITOR_WRITE_TOKEN has 5" in str(err.value)
    assert "x9q7z" not in str(err.value)  # the token itself is never printed
    (tmp_path / "write.token").write_text("a" * 32 + "\n\n" + "b" * 15 + "\n")
    monkeypatch.setenv("TEST_MONITOR_WRITE_TOKEN", "c" * 32)
    with pytest.raises(ConfigError) as err:
        settings_from(agent)
    assert err.value.key == "server.write_token_file" and "line 3 of" in str(err.value) and "has 15" in str(err.value)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("server.write_token_file"):][:600]
    assert re.search(rf"at least {MIN_TOKEN_CHARS} characters", section), section


def test_binds_loopback_by_default():
    from monitor.config import parse_config
    from monitor.server.settings import settings_from

    assert settings_from(parse_config(IRIS)).addr == "127.0.0.1"
    assert settings_from(parse_config(IRIS), addr="0.0.0.0").addr == "0.0.0.0"


def test_intake_closes_when_shutdown_begins(sc):
    sc.sidecar.accepting = False  # what SIGTERM does first
    r = http("POST", sc.url + "/v1/events", pred(0))
    assert r.status == 503 and r.json()["reason"] == "shutting_down" and r.headers["retry-after"] == "1"
    assert http("GET", sc.url + "/readyz").json()["status"] == "shutting_down"
    assert http("GET", sc.url + "/healthz").status == 200
    assert total(sc.metrics(), "monitor_intake_events_refused_total", reason="shutting_down") == 1


def test_an_empty_model_parameter_is_as_if_not_given(sc):
    """``?model=`` left empty (a template whose variable was blank) was "no model named ''": for
    a sidecar serving one model it is now as if not given, as the README documents for events
    that do not name their model."""
    r = http("POST", sc.url + "/v1/events?model=", [pred(i) for i in range(3)])
    assert r.status == 202 and r.json()["accepted"] == 3, r.json()
    sc.flush()
    assert sample(sc.metrics(), "monitor_calls_total", model="iris") == 3


def test_long_header_fields_are_read_not_refused_unseen(sc):
    """A bearer token or cookie over 8 KiB was refused by aiohttp's parser with a plain-text 400
    that no counter or log line of the sidecar saw; header fields up to 64 KiB are read."""
    r = http("POST", sc.url + "/v1/events", pred(0), {"X-Forwarded-Token": "x" * 30_000})
    assert r.status == 202 and r.json()["accepted"] == 1
    assert http("GET", sc.url + "/healthz", None, {"Cookie": "s=" + "y" * 20_000}).status == 200
