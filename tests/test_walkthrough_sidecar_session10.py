"""Session 10 walkthrough of the sidecar (issue 7) by an on-call platform engineer: what the README
says, done with real processes and real HTTP/datagrams, and each defect found pinned here.

Each test names what was wrong before its fix."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.forwarding import WIRE_VERSION
from tests.sidecar_support import quiet_factory, start_sidecar, total, wait_until
from tests.test_cloudevents import kserve_headers

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
REFUSED = "monitor_intake_events_refused_total"


@contextlib.contextmanager
def _proxying(tmp_path: Path, engine: str) -> Iterator[Any]:
    """A sidecar serving iris in proxy mode on ``engine`` in front of the proxy tests' real
    upstream (OIP v2, scores in the ``probs`` tensor); both stopped at the end."""
    from tests.sidecar_support import AppServer
    from tests.test_proxy import start_proxying, upstream_app

    up = AppServer(upstream_app())
    try:
        s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, engine, proxy_upstream=up.url)
        try:
            yield s
        finally:
            s.close()
    finally:
        up.close()


def _said(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


def test_forwarded_datagrams_refused_whole_are_logged_once_with_the_fix(tmp_path: Path, caplog) -> None:
    """A worker whose monitor package speaks another wire version (a rollout that updated the
    model image but not the sidecar's), or anything else that is not a forwarding datagram, gets
    every datagram refused: the README says the first refusal of each reason is logged, but only
    the per-event reasons were (unknown_model, a bad field); ``bad_json`` and ``bad_datagram``
    were counted with no log line, so nothing said why the model's traffic was not monitored."""
    sock = str(tmp_path / "fwd.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        caplog.set_level(logging.WARNING, logger="monitor.server")
        event = {"inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1]}
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for seq in (1, 2):
                c.sendto(json.dumps({"v": WIRE_VERSION + 1, "sender": "w", "seq": seq, "model": "iris",
                                     "events": [event]}).encode(), sock)
                c.sendto(b"\xff\xfe not a datagram of ForwardingMonitor", sock)
            c.sendto(b'{"v": %d, "sender": "w", "seq": 3, "model": "iris", "events": [{"inputs": [1e400, 2, 3, 4], '
                     b'"outputs": [0.8, 0.1, 0.1], "client": "\\ud800"}]}' % WIRE_VERSION, sock)
        finally:
            c.close()
        assert wait_until(lambda: total(s.metrics(), REFUSED, endpoint="forward") == 5)
        text = s.metrics()
        assert total(text, REFUSED, endpoint="forward", reason="bad_datagram") == 2
        assert total(text, REFUSED, endpoint="forward", reason="bad_json") == 2
        version = _said(caplog, "forwarded events refused (bad_datagram)")
        assert len(version) == 1, version
        assert f"v={WIRE_VERSION + 1}" in version[0] and f"reads {WIRE_VERSION}" in version[0], version[0]
        assert "model-monitor" in version[0], version[0]  # the fix: the same package version on both sides
        not_json = _said(caplog, "forwarded events refused (bad_json)")
        assert len(not_json) == 1 and "ForwardingMonitor" in not_json[0], not_json
        unsafe = [m for m in caplog.records if 'endpoint="forward"' in m.getMessage()
                  and "bad_unicode" in m.getMessage()]
        assert len(unsafe) == 1 and "UTF-8" in unsafe[0].getMessage(), [m.getMessage() for m in unsafe]
    finally:
        s.close()


def _scraped_counters(text: str, *names: str) -> dict[str, float]:
    """``{series: value}`` of the named counters in an exposition text, as promtool input series."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(names):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def test_a_trickle_of_bad_requests_on_v1_events_does_not_page_as_all_traffic_refused(tmp_path: Path) -> None:
    """MonitorIntakeRefused promises "more than 1% of a model's traffic by one endpoint": a
    refusal whose model the sidecar does not know yet (a body that is not JSON, an event for an
    unknown model) is counted under ``model="_sidecar"``, where nothing is ever accepted, so its
    share was 100% whatever the traffic: one malformed request in 200 paged that everything
    sent to /v1/events was refused. The counters come from a real sidecar fed that mix; the
    rule runs on them in promtool and in the agent's engine (the same per-minute increments)."""
    from tests.sidecar_support import http

    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        event = {"inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1]}
        assert http("POST", s.url + "/v1/events", [event] * 199).status == 202
        assert http("POST", s.url + "/v1/events", b'{"inputs": [1, 2').status == 400
        counters = _scraped_counters(s.metrics(), "monitor_intake_events_accepted_total",
                                     "monitor_intake_events_refused_total")
    finally:
        s.close()
    assert counters == {'monitor_intake_events_accepted_total{endpoint="events",model="iris"}': 199.0,
                        'monitor_intake_events_refused_total{endpoint="events",model="_sidecar",reason="bad_json"}': 1.0}
    _assert_intake_refused_silent(tmp_path, counters)


def _assert_intake_refused_silent(tmp_path: Path, counters: dict[str, float]) -> None:
    """MonitorIntakeRefused stays silent (promtool and the agent's engine) when every counter
    grows by its scraped value each minute for half an hour."""
    _assert_intake_refused(tmp_path, counters, " []")


def _assert_intake_refused(tmp_path: Path, counters: dict[str, float], exp_alerts: str) -> None:
    """MonitorIntakeRefused at 25 minutes is ``exp_alerts`` (promtool's YAML, indented to follow
    ``exp_alerts:``) when every counter grows by its scraped value each minute."""
    from tests.test_oncall_session7 import _run_unit_test

    series = "".join(f"\n              - series: '{name}'\n                values: '0+{value:g}x30'"
                     for name, value in counters.items())
    _run_unit_test(tmp_path, "core.yml", f"""
        tests:
          - interval: 1m
            input_series:{series}
            alert_rule_test:
              - eval_time: 25m
                alertname: MonitorIntakeRefused
                exp_alerts:{exp_alerts}
    """)


def test_a_read_without_its_token_does_not_page_as_refused_intake(tmp_path: Path, monkeypatch) -> None:
    """A 401 on /metrics or /api/v1/* (someone curling the status without the metrics token, a
    scraper whose token was rotated) is counted in monitor_intake_events_refused_total with
    endpoint="metrics"/"status" under model="_sidecar": nothing is accepted there, so
    MonitorIntakeRefused paged at "100% of what status sends for _sidecar is refused
    (unauthorized)... that traffic is not monitored", which is not so: no event was refused
    (a scrape that fails shows as Prometheus's own up == 0)."""
    from tests.sidecar_support import http

    monkeypatch.setenv("TEST_WALKTHROUGH_METRICS_TOKEN", "m" * 24)
    s = start_sidecar({**IRIS, "server": {"metrics_token_env": "TEST_WALKTHROUGH_METRICS_TOKEN"}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    try:
        event = {"inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1]}
        assert http("POST", s.url + "/v1/events", [event] * 50).status == 202
        assert http("GET", s.url + "/api/v1/status").status == 401
        assert http("GET", s.url + "/metrics").status == 401
        text = http("GET", s.url + "/metrics", headers={"Authorization": "Bearer " + "m" * 24}).body.decode()
        counters = _scraped_counters(text, "monitor_intake_events_accepted_total", "monitor_intake_events_refused_total")
    finally:
        s.close()
    assert counters == {'monitor_intake_events_accepted_total{endpoint="events",model="iris"}': 50.0,
                        'monitor_intake_events_refused_total{endpoint="status",model="_sidecar",reason="unauthorized"}': 1.0,
                        'monitor_intake_events_refused_total{endpoint="metrics",model="_sidecar",reason="unauthorized"}': 1.0}
    _assert_intake_refused_silent(tmp_path, counters)


def test_an_empty_body_is_counted_as_a_refused_payload(tmp_path: Path) -> None:
    """README: every refusal is "counted in monitor_intake_events_refused_total" (the metric's
    help: "Events or payloads the sidecar refused"). An empty body on /v1/events or /v1/feedback
    (a client that lost its body on the way, a logger posting empty batches) was answered 400
    ``empty_body`` and counted nowhere: it carries no event, so it counted zero events."""
    from tests.sidecar_support import http

    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        for path, ctype in (("/v1/events", "application/json"), ("/v1/events", "application/x-ndjson"),
                            ("/v1/feedback", "application/json")):
            r = http("POST", s.url + path, b" \n", {"Content-Type": ctype})
            assert r.status == 400 and r.json()["reason"] == "empty_body" and r.json()["field"] == "body", r.body
        text = s.metrics()
        assert total(text, REFUSED, endpoint="events", reason="empty_body") == 2
        assert total(text, REFUSED, endpoint="feedback", reason="empty_body") == 1
    finally:
        s.close()


def test_a_model_name_nobody_serves_is_logged_with_where_the_name_comes_from(tmp_path: Path, caplog) -> None:
    """The model server names its model in the URL (``/v2/models/iris-sklearn/infer``) and
    KServe in ``ce-inferenceservicename``; when the config's ``model:`` differs, every exchange
    is refused ``unknown_model`` and the one log line said only "no model named 'iris-sklearn'
    here; served: iris", with no fix, where the README promises the field and the fix. It now
    says where the name came from and what to change (the forwarding path had its own fix)."""
    from tests.sidecar_support import http
    from tests.test_proxy import oip

    caplog.set_level(logging.WARNING, logger="monitor.server")
    with _proxying(tmp_path, "aiohttp") as s:
        for _ in range(2):
            assert http("POST", s.url + "/v2/models/iris-sklearn/infer", oip(1)).status == 200
        r = http("POST", s.url + "/v1/cloudevents", {"instances": [[1, 2, 3, 4]]}, kserve_headers("c1", "request", "iris-sklearn"))
        assert r.status == 404 and r.json()["field"] == "ce-inferenceservicename", r.body
        assert wait_until(lambda: total(s.metrics(), REFUSED, endpoint="proxy", reason="unknown_model") == 2)
    proxy = _said(caplog, "proxy: exchange not monitored (unknown_model)")
    assert len(proxy) == 1, proxy
    assert "'iris-sklearn'" in proxy[0] and "/v2/models/" in proxy[0] and "model:" in proxy[0], proxy[0]
    ce = _said(caplog, "CloudEvent refused (unknown_model)")
    assert len(ce) == 1, ce
    assert "InferenceService" in ce[0] and "model:" in ce[0], ce[0]
    assert "InferenceService" in r.json()["error"], r.body  # the answer says it too


def test_taps_dropped_for_the_backlog_are_logged_once_with_the_cause(tmp_path: Path, monkeypatch, caplog) -> None:
    """README: tapped exchanges waiting beyond 64 MB while the sidecar cannot read are dropped and
    counted ``reason="tap_backlog"``; the runbook of MonitorIntakeRefused says the first proxy
    refusal of each reason is logged. That one was counted only: the exchanges were answered, so
    nothing but a counter said that the sidecar was too slow to monitor them, nor what to do."""
    from monitor.server import dataplane
    from tests.test_dataplane import _big_requests, _plane, _proxy_tally, _sidecar_blocked

    if not dataplane.process_available():
        pytest.skip("this platform cannot pass sockets between processes")
    monkeypatch.setattr(dataplane, "MAX_PENDING_BYTES", 20_000)
    caplog.set_level(logging.WARNING, logger="monitor.server")
    with _proxying(tmp_path, "process") as s:
        _plane(s)
        with _sidecar_blocked(s, 2.0):
            _big_requests(s, 20)
        _, _, dropped, _ = _proxy_tally(s, "tap_backlog")
    assert dropped > 0
    said = _said(caplog, "proxy: exchange not monitored (tap_backlog)")
    assert len(said) == 1, said
    assert "CPU" in said[0] and "sample_rate" in said[0], said[0]


def test_a_tensor_whose_data_does_not_fill_its_shape_says_how_many_values_it_needs(tmp_path: Path, caplog) -> None:
    """An OIP v2 tensor whose ``data`` does not hold shape's product of values (a client that
    flattened one row too few, a logger that cut the body) was refused with "cannot be read as
    FP64 of shape [2, 4]": the field, but neither what was wrong nor the fix, in the CloudEvent's
    400 and in the only log line the proxy's refusal leaves."""
    from tests.sidecar_support import http

    caplog.set_level(logging.WARNING, logger="monitor.server")
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        headers = kserve_headers("short", "request", "iris")
        short = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3]}]}
        r = http("POST", s.url + "/v1/cloudevents", short, headers)
        assert r.status == 400 and r.json()["field"] == "inputs[0].data" and r.json()["reason"] == "bad_data", r.body
        assert "3 values" in r.json()["error"] and "2 x 4 = 8" in r.json()["error"], r.body
        # eight values that are no numbers: that is what is said, not a count
        r = http("POST", s.url + "/v1/cloudevents",
                 {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": ["x"] * 8}]}, {**headers, "Ce-Id": "w"})
        assert r.status == 400 and r.json()["reason"] == "bad_data" and "numbers" in r.json()["error"], r.body
    finally:
        s.close()
    said = _said(caplog, "CloudEvent refused (bad_data)")
    assert len(said) == 1 and "2 x 4 = 8" in said[0], said


def test_a_cloudevent_told_429_joins_its_other_half_when_it_is_retried(tmp_path: Path) -> None:
    """The half that completes a CloudEvents pair while the model's queue is full is answered 429
    with Retry-After ("retry after a short delay"), but its other half, accepted earlier with a
    202, was thrown away with the refusal (counted unmatched part="pair", a label the metric's help
    does not list): the retry the 429 asks for could never join and waited to be counted unmatched
    a second time. The waiting half is now kept, so the retry joins; without a retry it times out
    and is counted as any half whose other half never came."""
    from tests.sidecar_support import http

    s = start_sidecar({**IRIS, "queue": {"capacity": 5}}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        event = {"inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1]}
        assert http("POST", s.url + "/v1/events", [event] * 5).status == 202  # the queue is full

        def kserve(part: str) -> dict[str, str]:
            return kserve_headers("pair-1", part, "iris")

        response = {"predictions": [[0.7, 0.2, 0.1]]}
        r = http("POST", s.url + "/v1/cloudevents", {"instances": [[5.1, 3.5, 1.4, 0.2]]}, kserve("request"))
        assert r.status == 202 and r.json()["status"] == "pending", r.body
        from monitor.server import keys as K

        joiner = s.server.app[K.CLOUDEVENTS].joiner
        first = joiner._pending[("iris", "pair-1")].received
        r = http("POST", s.url + "/v1/cloudevents", response, kserve("response"))
        assert r.status == 429 and r.headers.get("retry-after") == "1" and r.json()["reason"] == "queue_full", r.body
        # kept with its time reset (final review): at its first arrival it would sit behind younger
        # halves in the joiner's age order and could time out before the retry came
        assert joiner._pending[("iris", "pair-1")].received > first
        s.flush()  # the queue drains
        r = http("POST", s.url + "/v1/cloudevents", response, kserve("response"))  # the retry
        assert r.status == 202 and r.json()["status"] == "accepted", r.body
        text = s.metrics()
        assert total(text, "monitor_cloudevents_unmatched_total") == 0
        assert total(text, "monitor_intake_events_accepted_total", endpoint="cloudevents") == 1
        assert total(text, REFUSED, endpoint="cloudevents", reason="queue_full") == 1
    finally:
        s.close()


@pytest.mark.parametrize("engine", ["aiohttp", "lean", "process"])
def test_a_model_server_the_proxy_cannot_reach_is_logged(tmp_path: Path, caplog, engine: str) -> None:
    """``--proxy`` pointing at the wrong port (or a model server that is down): every client got
    the proxy's own 502 ``upstream_connect`` and the sidecar's log said nothing at all, on every
    engine; only monitor_proxy_upstream_errors_total counted them (and no shipped rule reads it,
    nor are such requests tapped as the model's errors). The first of each reason is logged, with
    the upstream's URL and the fix; the rest are counted, with a reminder at most once a minute."""
    from monitor.server import dataplane, leanproxy
    from tests.conftest import free_port
    from tests.sidecar_support import http
    from tests.test_proxy import oip, start_proxying

    if engine != "aiohttp" and not leanproxy.lean_available():
        pytest.skip("the lean proxy engine needs httptools (a dependency of model-monitor)")
    if engine == "process" and not dataplane.process_available():
        pytest.skip("this platform cannot pass sockets between processes")
    caplog.set_level(logging.WARNING, logger="monitor.server")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=dead)
    try:
        for _ in range(3):
            r = http("POST", s.url + "/v2/models/iris/infer", oip(1))
            assert r.status == 502 and r.json()["reason"] == "upstream_connect", r.body
        s.flush()
        assert total(s.metrics(), "monitor_proxy_upstream_errors_total", reason="connect") == 3
    finally:
        s.close()
    said = _said(caplog, "cannot connect to the model server")
    # the first, then (session 11) the two held back within the minute, said as the proxy closes
    assert len(said) == 2 and "2 more request(s) since the last line" in said[1], said
    assert dead in said[0] and "server.proxy.upstream" in said[0] and "502" in said[0], said[0]


def test_a_model_server_behind_the_proxy_that_fails_pages(tmp_path: Path) -> None:
    """Nothing paged when the proxy answered its clients 502 because the model server was down or
    on another port: its own answers are not tapped as the model's errors (ModelErrorRateHigh
    never sees them) and no shipped rule read monitor_proxy_upstream_errors_total. The counters of
    a real sidecar whose upstream fails one request in five fire MonitorProxyUpstreamFailing
    (promtool and the agent's engine); one failure in a hundred does not."""
    from monitor.server import keys as K
    from tests.conftest import free_port
    from tests.sidecar_support import AppServer, http
    from tests.test_oncall_session7 import _run_unit_test
    from tests.test_proxy import oip, start_proxying, upstream_app

    up = AppServer(upstream_app())
    try:
        s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "aiohttp",
                           proxy_upstream=up.url)
        try:
            for _ in range(4):
                assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 200
            s.server.app[K.PROXY].upstream = f"http://127.0.0.1:{free_port()}"  # the model server goes away
            assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 502
            counters = _scraped_counters(s.metrics(), "monitor_proxy_upstream_errors_total", "monitor_proxy_requests_total")
        finally:
            s.close()
    finally:
        up.close()
    assert counters == {'monitor_proxy_requests_total{code="2xx",model="_sidecar",route="oip_v2"}': 4.0,
                        'monitor_proxy_requests_total{code="5xx",model="_sidecar",route="error"}': 1.0,
                        'monitor_proxy_upstream_errors_total{model="_sidecar",reason="connect"}': 1.0}, counters
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorproxyupstreamfailing"
    description = ("The sidecar's reverse proxy answered more than 5% of requests itself over 5 minutes with 502/504 (the "
                   "model server could not be reached, did not answer within server.proxy.timeout, or broke off): those "
                   "clients got no prediction. monitor_proxy_upstream_errors_total by reason says which; "
                   "monitor_proxy_upstream_info names each sidecar's model server (server.proxy.upstream) and the models it serves.")

    def series(scale: dict[str, float]) -> str:
        return "".join(f"\n              - series: '{name}'\n                values: '0+{value * scale.get(name, 1):g}x30'"
                       for name, value in counters.items())

    ok = 'monitor_proxy_requests_total{code="2xx",model="_sidecar",route="oip_v2"}'
    _run_unit_test(tmp_path, "core.yml", f"""
        tests:
          - interval: 1m
            input_series:{series({})}
            alert_rule_test:
              - eval_time: 3m
                alertname: MonitorProxyUpstreamFailing
                exp_alerts: []
              - eval_time: 15m
                alertname: MonitorProxyUpstreamFailing
                exp_alerts:
                  - exp_labels: {{severity: critical, model: _sidecar}}
                    exp_annotations:
                      summary: "20% of the requests proxied to the model server fail before it answers."
                      description: "{description}"
                      runbook_url: "{url}"
          - interval: 1m
            input_series:{series({ok: 24.75})}
            alert_rule_test:
              - eval_time: 15m
                alertname: MonitorProxyUpstreamFailing
                exp_alerts: []
    """)


def test_events_refused_for_a_named_model_count_against_that_model(tmp_path: Path) -> None:
    """A sidecar serving two models, one busy and one whose sender stamps every event with a
    timestamp nobody can read: the refusals were counted under model="_sidecar" although each
    event named its model, so MonitorIntakeRefused weighed them against all of /v1/events'
    traffic (20 refused next to 2,000 accepted for the other model: 1%, silent) while all of
    iris-v2's traffic was refused. Events whose model is known are counted under it (and the
    valid events of a refused batch under theirs); only refusals whose model cannot be told
    stay under "_sidecar"."""
    from tests.sidecar_support import http

    models = {"models": [IRIS, {**IRIS, "model": "iris-v2"}], "queue": {"capacity": 5000}}
    s = start_sidecar(models, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        event = {"inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1]}
        assert http("POST", s.url + "/v1/events", [{**event, "model": "iris"}] * 2000).status == 202
        stale = {**event, "model": "iris-v2", "timestamp": "yesterday"}
        assert http("POST", s.url + "/v1/events", [stale] * 19 + [{**event, "model": "iris"}]).status == 400
        assert http("POST", s.url + "/v1/events?model=iris-v2", [{**event, "timestamp": "yesterday"}]).status == 400
        counters = _scraped_counters(s.metrics(), "monitor_intake_events_accepted_total", "monitor_intake_events_refused_total")
    finally:
        s.close()
    assert counters == {
        'monitor_intake_events_accepted_total{endpoint="events",model="iris"}': 2000.0,
        'monitor_intake_events_refused_total{endpoint="events",model="iris-v2",reason="bad_timestamp"}': 20.0,
        'monitor_intake_events_refused_total{endpoint="events",model="iris",reason="batch_refused"}': 1.0}, counters
    _assert_intake_refused(tmp_path, counters, """
                  - exp_labels: {severity: warning, model: iris-v2, endpoint: events, reason: bad_timestamp}
                    exp_annotations:
                      summary: "100% of what events sends for iris-v2 is refused (bad_timestamp)."
                      description: "More than 1% of the events (or proxied exchanges) of iris-v2 arriving by events were refused by the sidecar over 10 minutes with reason bad_timestamp: that traffic is not monitored. Back-pressure (queue_full, overloaded) is left to MonitorIntakeOverloaded, a restart's refusals (shutting_down, not_ready) page nobody, the model server's 4xx answers to bad requests (client_error) to the model server's own metrics, request bodies that stopped arriving (client_timeout: the clients' broken uploads, answered 408, no prediction) to the clients, and the models listed in server.unmonitored_models (unmonitored) are not monitored on purpose."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorintakerefused"
    """)


def test_cloudevents_and_forwarded_events_refused_for_a_served_model_count_against_it(tmp_path: Path) -> None:
    """As for /v1/events: a CloudEvent whose ce-inferenceservicename names a served model but whose
    body cannot be read, and a forwarded event of a served model with a bad field, were counted
    under model="_sidecar" and weighed against the whole endpoint's traffic."""
    from tests.sidecar_support import http

    sock = str(tmp_path / "fwd.sock")
    models = {"models": [IRIS, {**IRIS, "model": "iris-v2"}], "server": {"forward": {"unix": sock}}}
    s = start_sidecar(models, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        headers = kserve_headers("x", "request", "iris-v2")
        bad = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3]}]}
        assert http("POST", s.url + "/v1/cloudevents", bad, headers).status == 400
        assert http("POST", s.url + "/v1/cloudevents", bad, {**headers, "Ce-Inferenceservicename": "nope"}).status == 404
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            c.sendto(json.dumps({"v": WIRE_VERSION, "sender": "w", "seq": 1, "model": "iris-v2", "events": [
                {"inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1], "timestamp": "yesterday"},
                {"model": "iris", "inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1], "seed": 3}]}).encode(), sock)
        finally:
            c.close()
        assert wait_until(lambda: total(s.metrics(), REFUSED, endpoint="forward") == 2)
        counters = _scraped_counters(s.metrics(), "monitor_intake_events_refused_total")
    finally:
        s.close()
    assert counters == {
        'monitor_intake_events_refused_total{endpoint="cloudevents",model="iris-v2",reason="bad_data"}': 1.0,
        'monitor_intake_events_refused_total{endpoint="cloudevents",model="_sidecar",reason="unknown_model"}': 1.0,
        'monitor_intake_events_refused_total{endpoint="forward",model="iris-v2",reason="bad_timestamp"}': 1.0,
        'monitor_intake_events_refused_total{endpoint="forward",model="iris",reason="unknown_key"}': 1.0}, counters


def test_a_sidecar_that_cannot_start_says_why_without_an_asyncio_error(tmp_path: Path) -> None:
    """``monitor serve --proxy`` whose forwarding socket is bound by another process (a second
    sidecar of the same config) stops with "cannot listen: ... server.forward.unix ...", as it
    should, but first logged ``ERROR asyncio: Unclosed client session``: the proxy's client
    session, opened before the receiver failed, was never closed, and on-call reads an ERROR
    that looks like a bug of its own."""
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO_ROOT, free_port

    sock_path = tmp_path / "fwd.sock"
    taken = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    taken.bind(str(sock_path))  # "another sidecar" bound to it
    try:
        config = tmp_path / "monitor.yaml"
        config.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "forward": {"unix": str(sock_path)}}}))
        done = subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config",
                               str(config), "--proxy", f"http://127.0.0.1:{free_port()}"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    finally:
        taken.close()
    assert done.returncode != 0
    assert "cannot listen" in done.stderr and "server.forward.unix" in done.stderr, done.stderr
    assert "Unclosed client session" not in done.stderr, done.stderr


def test_checkpoints_that_keep_failing_page(tmp_path: Path) -> None:
    """checkpoint.path on a volume the sidecar cannot write (read-only, missing, another user's)
    passes ``monitor config check``; every save fails, each an ERROR line and a count in
    monitor_checkpoint_failures_total{operation="save"}, and no shipped rule read that counter:
    nobody learnt that the state would not survive the next restart (windows lost, alerts re-sent
    as new) until it happened. MonitorCheckpointFailing fires when saves keep failing (more than
    two in an hour), not for one failure that the next save repairs. The labels come from a real
    sidecar whose checkpoint folder cannot be created."""
    from tests.test_oncall_session7 import _run_unit_test

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoint's folder should be")
    s = start_sidecar({**IRIS, "checkpoint": {"path": str(blocker / "iris.ckpt"), "interval": "200ms"}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    try:
        assert wait_until(lambda: total(s.metrics(), "monitor_checkpoint_failures_total") >= 1)
        # the save reasons known in advance are exported at 0 from the start: only the failing one grew
        failures = [name for name, v in _scraped_counters(s.metrics(), "monitor_checkpoint_failures_total").items() if v]
    finally:
        s.close()
    assert len(failures) == 1 and 'operation="save"' in failures[0] and 'model="iris"' in failures[0], failures
    (series,) = failures
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorcheckpointfailing"
    _run_unit_test(tmp_path, "core.yml", f"""
        tests:
          - interval: 1m
            input_series:
              - series: '{series}'
                values: '0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20'
            alert_rule_test:
              - eval_time: 20m
                alertname: MonitorCheckpointFailing
                exp_alerts:
                  - exp_labels: {{severity: warning, model: iris}}
                    exp_annotations:
                      summary: "Checkpoints of iris keep failing: its state will not survive a restart."
                      description: "Saving the checkpoint of iris failed more than twice in the last hour (monitor_checkpoint_failures_total{{operation=\\"save\\"}}): a restart now loses its detector windows and re-sends its firing alerts as new."
                      runbook_url: "{url}"
          - interval: 1m
            input_series:
              - series: '{series}'
                values: '0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'
            alert_rule_test:
              - eval_time: 20m
                alertname: MonitorCheckpointFailing
                exp_alerts: []
    """)


def test_config_check_of_raw_reference_data_with_the_default_detectors_says_what_it_did_not_check(tmp_path: Path) -> None:
    """README: "raw reference data is not profiled by the check, which then says which detectors it
    did not build". With the default detectors (no ``detectors:`` key, as in examples/monitor.yaml)
    it said nothing: "SUCCESS" for raw arrays that ``monitor serve`` then refused at start (5 rows,
    less than pca_drift needs; scores of 2 classes for 3), the sidecar never ready. It now says
    that the defaults needing the reference were not built, and the fix."""
    import numpy as np
    import yaml
    from click.testing import CliRunner

    from monitor.cli import main

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "raw.npz", X=rng.normal(size=(5, 4)), scores=rng.dirichlet([1, 1, 1], size=5)[:, :2],
             feature_names=np.array(["a", "b", "c", "d"]))
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump({**IRIS, "reference": {"path": "raw.npz"}}))
    result = CliRunner().invoke(main, ["config", "check", str(config)])
    assert "NOTE: model 'iris': " in result.output and "raw data" in result.output, result.output
    assert "monitor reference build" in result.output, result.output


@pytest.mark.parametrize("engine", ["aiohttp", "lean"])
def test_a_model_server_that_breaks_off_mid_answer_is_logged_on_every_engine(tmp_path: Path, caplog, engine: str) -> None:
    """Found by the final review: the aiohttp engine counted a model server that broke off after
    its answer head (reason="disconnect") without a log line, the lean engine logged it; both do
    now, and the line says the client got a cut answer (not a 502)."""
    from aiohttp import web

    from monitor.server import leanproxy
    from tests.sidecar_support import AppServer, http
    from tests.test_proxy import oip, start_proxying

    if engine == "lean" and not leanproxy.lean_available():
        pytest.skip("the lean proxy engine needs httptools (a dependency of model-monitor)")

    async def infer(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'{"outputs": [')
        assert request.transport is not None
        request.transport.close()  # the model server dies mid-answer
        return resp

    app = web.Application()
    app.router.add_post("/v2/models/iris/infer", infer)
    caplog.set_level(logging.WARNING, logger="monitor.server")
    up = AppServer(app)
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=up.url)
    try:
        for _ in range(3):
            try:
                http("POST", s.url + "/v2/models/iris/infer", oip(1))
            except Exception:  # the cut answer: the client sees its connection end early
                pass
        s.flush()
        assert total(s.metrics(), "monitor_proxy_upstream_errors_total", reason="disconnect") == 3
    finally:
        s.close()
        up.close()
    said = _said(caplog, "closed the connection before its answer was complete")
    assert len(said) == 2 and "2 more request(s) since the last line" in said[1], said  # the second: at close
    assert up.url in said[0] and "cut short" in said[0], said[0]
