"""The agent's own rule evaluator sees the sidecar's series (``model="_sidecar"``).

Before, each model's rules read only that model's metric store: the proxy's counters
(``monitor_proxy_requests_total``, ``monitor_proxy_upstream_errors_total``), the sidecar's HTTP
histogram and the refusals it cannot attribute to a model live in the sidecar's own store, which
``/metrics`` exposes but no in-agent rule scrape read. MonitorProxyUpstreamFailing (core pack) then
fired in a Prometheus scraping the sidecar and never in the agent, so a sidecar alerting on its own
(``rules.alertmanager``, no Prometheus rules) paged nobody while every prediction failed.

Real HTTP: a sidecar proxying to a port where nothing listens (its clients get 502) on the aiohttp
engine and on the default one (the data path in its own process), and the same sidecar in front
of a model server that answers, where the alert must stay silent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.sidecar_support import AppServer, RunningSidecar, http, total, wait_until
from tests.test_proxy import IRIS, oip, start_proxying, upstream_app

T0 = 1_800_000_000.0
RULES = {"rules": {"packs": ["core"], "log": False, "interval": "15s"}}


def _rule_evaluations(s: RunningSidecar, minutes: int) -> list[Any]:
    """One proxied request before each rule evaluation, every 15 s of event time for ``minutes``:
    the sidecar's counters move between evaluations as they do under traffic. Returns every
    alert transition of the agent's own evaluator."""
    mon = s.monitor()
    transitions: list[Any] = []
    for k in range(minutes * 4 + 1):
        http("POST", s.url + "/v2/models/iris/infer", oip(1))
        if s.sidecar.data_planes:  # the data path process's counts, as a scrape syncs them
            asyncio.run_coroutine_threadsafe(s.sidecar.sync_proxies(), s.server.lt.loop).result(10)
        # the proxy counts a request once its answer is written: the client may read it first
        assert wait_until(lambda: total(s.metrics(), "monitor_proxy_requests_total", model="_sidecar") >= k + 1)
        transitions += mon.evaluate_rules(T0 + 15 * k)
    return transitions


def _firing(transitions: list[Any], name: str) -> list[Any]:
    return [tr for tr in transitions if tr.alertname == name and tr.to_state == "firing"]


@pytest.mark.parametrize("engine", ["aiohttp", "process"])
def test_a_failing_upstream_fires_monitor_proxy_upstream_failing_in_the_agent(tmp_path: Path, engine: str) -> None:
    if engine == "process":
        from monitor.server.dataplane import process_available

        if not process_available():
            pytest.skip("this platform cannot pass sockets between processes")
    s = start_proxying({**IRIS, **RULES}, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{free_port()}")
    try:
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 502
        transitions = _rule_evaluations(s, 12)
    finally:
        s.close()
    fired = _firing(transitions, "MonitorProxyUpstreamFailing")
    assert len(fired) == 1, [(tr.alertname, tr.to_state) for tr in transitions]
    assert fired[0].labels["model"] == "_sidecar" and fired[0].labels["severity"] == "critical"
    # for: 5m after the first evaluation whose 5-minute rate sees a failure (the second one)
    assert T0 + 300 <= fired[0].time <= T0 + 330, fired[0].time - T0


def test_a_model_server_that_answers_leaves_it_silent(tmp_path: Path) -> None:
    up = AppServer(upstream_app())
    try:
        s = start_proxying({**IRIS, **RULES, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "aiohttp",
                           proxy_upstream=up.url)
        try:
            transitions = _rule_evaluations(s, 12)
            mon = s.monitor()
            # the rule did read the sidecar's series: 49 requests answered 2xx by the model server
            vec = mon.rules.engine.compile('monitor_proxy_requests_total{model="_sidecar",code="2xx"}') \
                .instant_ms(mon._series_store, int((T0 + 12 * 60) * 1000))
        finally:
            s.close()
    finally:
        up.close()
    assert _firing(transitions, "MonitorProxyUpstreamFailing") == []
    assert [smp.value for smp in vec] == [49.0]
