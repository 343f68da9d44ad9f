"""Refusals whose answer nobody reads (CloudEvents from an inference logger, forwarded datagrams,
proxied exchanges) are logged by one method, :meth:`Sidecar.count_refused`: the first of each
(endpoint, reason) with the field and the fix, every one counted. Before, each path had a copy of
its own "log the first refusal" logic (three sets of remembered reasons, three log formats)."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from tests.sidecar_support import http, quiet_factory, start_sidecar, total, wait_until

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
REFUSED = "monitor_intake_events_refused_total"


def _kserve(ce_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": ce_id,
            "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Source": "http://localhost:9081/",
            "Ce-Inferenceservicename": "iris"}


def _said(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


def test_first_refusal_logged_once_per_endpoint_and_reason_every_one_counted(tmp_path: Path, caplog) -> None:
    """Three CloudEvents that are not JSON and three forwarded events for a model that is not
    served: one log line per endpoint naming the reason, the field or the fix and the counter;
    three refusals counted on each endpoint."""
    sock = str(tmp_path / "fwd.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        caplog.set_level(logging.WARNING, logger="monitor.server")
        for i in range(3):
            assert http("POST", s.url + "/v1/cloudevents", "not json", _kserve(f"c{i}")).status == 400
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for seq in (1, 2, 3):
                c.sendto(json.dumps({"v": 1, "sender": "w", "seq": seq, "model": "irsi",
                                     "events": [{"inputs": [1, 2, 3, 4], "outputs": [0.8, 0.1, 0.1]}]}).encode(), sock)
        finally:
            c.close()
        assert wait_until(lambda: total(s.metrics(), REFUSED, endpoint="forward", reason="unknown_model") == 3)
        assert total(s.metrics(), REFUSED, endpoint="cloudevents", reason="bad_json") == 3

        ce = _said(caplog, "CloudEvent refused (bad_json)")
        assert len(ce) == 1, ce
        assert "body: " in ce[0] and 'endpoint="cloudevents",reason="bad_json"' in ce[0], ce[0]
        fwd = _said(caplog, "forwarded events refused (unknown_model)")
        assert len(fwd) == 1, fwd
        assert "'irsi'" in fwd[0] and "ForwardingMonitor(model=" in fwd[0], fwd[0]
        assert 'endpoint="forward",reason="unknown_model"' in fwd[0], fwd[0]
    finally:
        s.close()


def test_the_same_reason_is_logged_once_on_each_endpoint_and_only_with_a_detail(tmp_path: Path, caplog) -> None:
    """The remembered pairs are (endpoint, reason): a reason said for one endpoint is said again,
    once, for another. A refusal without a detail (its client reads the answer) is counted, never
    logged. The model is named when the refusal is counted in its store."""
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        caplog.set_level(logging.WARNING, logger="monitor.server")
        sidecar, mon = s.sidecar, s.monitor("iris")
        for _ in range(4):
            sidecar.count_refused("proxy", "too_large", mon=mon, detail="the body is over server.max_body_bytes")
            sidecar.count_refused("forward", "too_large", 2, detail="the datagram is too large")
            sidecar.count_refused("events", "too_large")
        proxy = _said(caplog, "proxy: exchange not monitored (too_large)")
        assert proxy == ["proxy: exchange not monitored (too_large) for model 'iris': the body is over "
                         "server.max_body_bytes; counted in monitor_intake_events_refused_total"
                         '{endpoint="proxy",reason="too_large"}, further ones without a log line'], proxy
        assert len(_said(caplog, "forwarded events refused (too_large): the datagram is too large")) == 1
        assert _said(caplog, 'endpoint="events"') == []
        text = s.metrics()
        assert total(text, REFUSED, endpoint="proxy", reason="too_large") == 4
        assert total(text, REFUSED, endpoint="forward", reason="too_large") == 8
        assert total(text, REFUSED, endpoint="events", reason="too_large") == 4
    finally:
        s.close()
