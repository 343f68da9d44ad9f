"""Defects a platform team hit in session 7's walkthrough of the sidecar in production (README
"The sidecar", examples/monitor.yaml, ``monitor serve``): a multi-model config behind tokens, the
proxy on its own port, KServe's and Seldon's CloudEvents, forwarding workers, SIGTERM, kill -9,
corrupt checkpoints and a real Alertmanager.

Each test reproduces what the team did, on real sockets on 127.0.0.1, and fails on the code as it
was before the fix.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

from tests.sidecar_support import http, quiet_factory, sample, start_sidecar, total, wait_until

CLASSES = ["setosa", "versicolor", "virginica"]
IRIS = {"features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "output": {"kind": "probabilities", "classes": CLASSES}}
TWO_MODELS = {**IRIS, "models": [{"model": "iris"}, {"model": "iris2"}]}


def _seldon(ce_id: str, ce_type: str, model: str) -> dict[str, str]:
    """The headers Seldon Core's request logger sends (binary-mode CloudEvents)."""
    return {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": ce_id, "Ce-Type": ce_type,
            "Ce-Source": f"http://{model}-default.models:8000/", "Ce-Inferenceservicename": model}


# -- Seldon responses name their output columns ---------------------------------------------------
def test_a_seldon_response_with_names_is_monitored_and_its_feedback_joined(tmp_path: Path) -> None:
    """Seldon's responses carry ``data.names`` for their output columns (``t:0``, ``t:1``... or the
    class names). The sidecar read those rows as ``{name: score}`` dicts, as it reads named input
    rows, and the model refused every one (``monitor_rows_rejected_total{reason="non_numeric_output"}``):
    no Seldon prediction was ever monitored and every feedback counted ``unknown_id``."""
    s = start_sidecar(TWO_MODELS, tmp_path, factory=quiet_factory())
    try:
        for puid, names in (("p-1", CLASSES), ("p-2", ["t:0", "t:1", "t:2"])):
            r = http("POST", s.url + "/v1/cloudevents",
                     {"data": {"names": IRIS["features"], "ndarray": [[5.1, 3.5, 1.4, 0.2]]}},
                     _seldon(puid, "io.seldon.serving.inference.request", "iris2"))
            assert r.status == 202, r.body
            r = http("POST", s.url + "/v1/cloudevents",
                     {"data": {"names": names, "ndarray": [[0.9, 0.05, 0.05]]}, "meta": {"puid": puid}},
                     _seldon(puid, "io.seldon.serving.inference.response", "iris2"))
            assert r.status == 202 and r.json()["status"] == "accepted", r.body
        s.flush()
        for puid in ("p-1", "p-2"):
            r = http("POST", s.url + "/v1/cloudevents",
                     {"response": {"meta": {"puid": puid}}, "truth": {"data": {"ndarray": [[1, 0, 0]]}}},
                     _seldon(f"fb-{puid}", "io.seldon.serving.feedback", "iris2"))
            assert r.status == 202, r.body
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_rows_rejected_total", model="iris2") == 0
        assert sample(text, "monitor_predictions_total", model="iris2") == 2
        assert sample(text, "monitor_feedback_labels_total", model="iris2", outcome="joined") == 2
        assert total(text, "monitor_feedback_labels_total", model="iris2", outcome="unknown_id") == 0
    finally:
        s.close()


# -- forwarding workers that name no served model --------------------------------------------------
def test_forwarded_events_for_a_model_not_served_are_logged_once_with_the_fix(tmp_path: Path, caplog) -> None:
    """A worker's ``ForwardingMonitor("irsi")`` (a typo) sends datagrams nobody answers: every
    event was refused and counted in ``monitor_intake_events_refused_total{endpoint="forward",
    reason="unknown_model"}``, with nothing in the log; the worker's own counters said all sent."""
    from monitor.forwarding import ForwardingMonitor

    sock = str(tmp_path / "fwd.sock")
    s = start_sidecar({**TWO_MODELS, "server": {"forward": {"unix": sock}}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            fm = ForwardingMonitor("irsi", f"unix://{sock}", start=False)
            for _ in range(2):
                for _ in range(20):
                    fm.observe([[5.1, 3.5, 1.4, 0.2]], [[0.9, 0.05, 0.05]])
                fm.flush()
            assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="forward",
                                            reason="unknown_model") == 40)
            fm.close()
        said = [r.getMessage() for r in caplog.records if "forwarded events refused" in r.getMessage()]
        assert len(said) == 1, said  # once, not once per datagram or event
        assert "'irsi'" in said[0] and "iris, iris2" in said[0] and "ForwardingMonitor(model=" in said[0]
        assert 'reason="unknown_model"' in said[0]
    finally:
        s.close()


def test_malformed_forwarded_events_are_logged_once_per_reason(tmp_path: Path, caplog) -> None:
    """An event without outputs in a datagram is refused and counted; the first of each reason is
    now said in the log with the field, as the HTTP intake answers it in its 400."""
    sock = str(tmp_path / "m.sock")
    s = start_sidecar({**IRIS, "model": "iris", "server": {"forward": {"unix": sock}}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            for seq in (1, 2):
                c.sendto(json.dumps({"v": 1, "sender": "w", "seq": seq, "events": [{"inputs": [1, 2, 3, 4]}]}).encode(), sock)
            c.close()
            assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="forward",
                                            reason="missing_outputs") == 2)
        said = [r.getMessage() for r in caplog.records if "forwarded events refused (missing_outputs)" in r.getMessage()]
        assert len(said) == 1 and "outputs" in said[0], said
    finally:
        s.close()


# -- SIGTERM says what it wrote ---------------------------------------------------------------------
def test_sigterm_logs_the_final_checkpoints_and_that_it_stopped(tmp_path: Path) -> None:
    """After a rollout the platform team reads ``kubectl logs --previous`` to know whether the
    final checkpoint was written before the pod's SIGKILL: the log said "signal SIGTERM: stopping
    intake, draining, checkpointing" and nothing after it, whether the checkpoint was written,
    failed, or never came."""
    import signal

    from tests.test_server_lifecycle import ServeProcess, Webhook, events, write_config

    hook = Webhook()
    try:
        serve = ServeProcess(write_config(tmp_path, hook.url, rule_interval="1h"))
        assert http("POST", serve.url + "/v1/events", events(0, 20)).status == 202
        assert serve.stop(signal.SIGTERM) == 0
    finally:
        hook.close()
    log = (tmp_path / "serve.log").read_text()
    said = log[log.index("stopping intake"):]
    assert f"final checkpoint: iris written to {tmp_path / 'state' / 'iris.ckpt'}" in said, said
    assert said.rstrip().endswith("stopped"), said


# -- monitor config check reads the checkpoint files as monitor serve does ---------------------------
def test_config_check_refuses_two_models_sharing_one_checkpoint_file(tmp_path: Path) -> None:
    """A multi-model file with the single-model example's ``checkpoint: {path: state/iris.ckpt}``
    at the top level: ``monitor config check`` said SUCCESS, ``monitor serve`` then refused to
    start ("models 'iris' and 'iris2' would share the checkpoint")."""
    import yaml
    from click.testing import CliRunner

    from monitor.cli import main

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**TWO_MODELS, "checkpoint": {"path": "state/iris.ckpt"}}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1, res.output
    assert "checkpoint.path: models 'iris' and 'iris2' would share the checkpoint" in res.output
    assert "put {model} in the path" in res.output
    cfg.write_text(yaml.safe_dump({**TWO_MODELS, "checkpoint": {"path": "state/{model}.ckpt"}}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 0 and "2 model(s): iris, iris2" in res.output, res.output


# -- a batch that can never fit is 413, not "retry" ----------------------------------------------
def test_a_batch_larger_than_the_queue_is_413_not_a_retry_for_ever(tmp_path: Path) -> None:
    """``queue.capacity: 20`` (or ``server.max_queued_events: 30``) and a batch of 25 (35) events
    in one request: the answer was 429 "the queue of model 'iris' is full (0/20); retry after a
    short delay" (503 "holds 0 queued events") with Retry-After: 1, on an empty queue, so a client
    that honours it retried for ever. A batch that fits still gets 429 when the queue is full."""
    row = {"inputs": [5.1, 3.5, 1.4, 0.2], "outputs": [0.9, 0.05, 0.05]}
    s = start_sidecar({**IRIS, "model": "iris", "queue": {"capacity": 20}, "server": {"max_queued_events": 30}},
                      tmp_path, factory=quiet_factory(start_worker=False))
    try:
        for n, setting in ((25, "queue.capacity 20"), (35, "server.max_queued_events 30")):
            r = http("POST", s.url + "/v1/events", [row] * n)
            assert r.status == 413 and "retry-after" not in r.headers, (r.status, r.body)
            body = r.json()
            assert body["reason"] == "too_many_events" and setting in body["error"] and "split the batch" in body["error"]
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", endpoint="events", reason="too_many_events") == 60
        assert http("POST", s.url + "/v1/events", [row] * 15).status == 202
        r = http("POST", s.url + "/v1/events", [row] * 10)  # fits the queue, not what is left of it
        assert r.status == 429 and r.headers.get("retry-after") == "1" and r.json()["reason"] == "queue_full"
    finally:
        s.close()


# -- KServe's logger and write tokens -----------------------------------------------------------------
def test_cloudevents_without_a_token_name_require_token_in_the_answer_and_the_log(tmp_path: Path, caplog) -> None:
    """Write tokens set (as the k8s example does) and KServe's logger pointed at the sidecar:
    every CloudEvent was answered 401 "a valid bearer token is required (Authorization: Bearer
    <token>)", which the logger cannot send, and nothing was logged; the fix
    (``server.cloudevents.require_token: false``) was said nowhere."""
    (tmp_path / "write.token").write_text("w" * 32 + "\n")
    s = start_sidecar({**IRIS, "model": "iris", "server": {"write_token_file": "write.token"}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "kserve", "Ce-Id": "k1",
               "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Inferenceservicename": "iris"}
    body = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            for _ in range(2):
                r = http("POST", s.url + "/v1/cloudevents", body, headers)
                assert r.status == 401 and "server.cloudevents.require_token: false" in r.json()["error"], r.body
        said = [r.getMessage() for r in caplog.records if "CloudEvents without a token" in r.getMessage()]
        assert len(said) == 1 and "require_token: false" in said[0], said
        # a wrong token is still the plain 401, and the token still lets the event in
        r = http("POST", s.url + "/v1/cloudevents", body, {**headers, "Authorization": "Bearer nope"})
        assert r.status == 401 and "require_token" not in r.json()["error"]
        r = http("POST", s.url + "/v1/cloudevents", body, {**headers, "Authorization": "Bearer " + "w" * 32})
        assert r.status == 202
        assert total(s.metrics(), "monitor_intake_events_refused_total", endpoint="cloudevents", reason="unauthorized") == 3
    finally:
        s.close()


# -- a sidecar that could not load says so to its clients ---------------------------------------------
def test_events_sent_to_a_sidecar_that_failed_to_load_are_not_told_to_retry(tmp_path: Path) -> None:
    """A reference file that is not a profile: /readyz said the error, but every event was
    answered 503 "the sidecar is still loading its models; retry shortly" with Retry-After: 1,
    for ever (loading is not retried), so senders retried and queued behind a dead sidecar."""
    (tmp_path / "bad.npz").write_text("not a profile\n")
    s = start_sidecar({**IRIS, "model": "iris", "reference": {"path": "bad.npz"}}, tmp_path, wait_ready=False)
    try:
        assert wait_until(lambda: s.sidecar.load_error is not None)
        ready = http("GET", s.url + "/readyz")
        assert ready.status == 503 and "bad.npz" in ready.json()["error"]
        r = http("POST", s.url + "/v1/events", {"inputs": [5.1, 3.5, 1.4, 0.2], "outputs": [0.9, 0.05, 0.05]})
        assert r.status == 503 and "retry-after" not in r.headers, r.headers
        body = r.json()
        assert body["reason"] == "load_failed" and "bad.npz" in body["error"] and "retry" not in body["error"], body
        assert total(s.metrics(), "monitor_intake_events_refused_total", endpoint="events", reason="load_failed") == 1
    finally:
        s.close()


# -- the proxy's own port ------------------------------------------------------------------------------
def _serve(args: list[str], cwd: Path) -> "subprocess.CompletedProcess[str]":
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    return subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", "serve", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def test_a_proxy_route_naming_no_served_model_is_a_config_error(tmp_path: Path) -> None:
    """``server.proxy.routes: [{path: /predict, model: iris3}]`` with iris and iris2 served: the
    check said SUCCESS, and every request proxied on the route was answered by the model server
    while its tap was refused (unknown_model), counted only."""
    import yaml
    from click.testing import CliRunner

    from monitor.cli import main

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**TWO_MODELS, "server": {"proxy": {
        "upstream": "http://127.0.0.1:9", "routes": [{"path": "/predict", "model": "iris3"}]}}}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1, res.output
    assert "server.proxy.routes[0].model: names no served model: 'iris3' (served: iris, iris2)" in res.output, res.output


def test_a_proxy_port_equal_to_the_sidecar_port_is_refused_before_loading(tmp_path: Path) -> None:
    """``server.proxy.port`` equal to ``server.port`` (or ``--proxy-port`` equal to ``--port``):
    ``monitor serve`` bound the sidecar, loaded and restored the models, then failed on the second
    bind with "cannot listen on 127.0.0.1:PORT: Address already in use", as if another process held
    the sidecar's port; ``monitor config check`` said SUCCESS."""
    import yaml
    from click.testing import CliRunner

    from monitor.cli import main
    from tests.conftest import free_port

    port = free_port()
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "model": "iris", "server": {"port": port, "proxy": {
        "upstream": "http://127.0.0.1:9", "port": port}}}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1 and f"server.proxy.port: is the sidecar's own port ({port}" in res.output, res.output
    done = _serve(["--config", str(cfg)], tmp_path)
    assert done.returncode != 0 and "server.proxy.port: is the sidecar's own port" in done.stderr, done.stderr
    assert "listening on" not in done.stderr
    cfg.write_text(yaml.safe_dump({**IRIS, "model": "iris", "server": {"port": port}}))
    done = _serve(["--config", str(cfg), "--proxy", "http://127.0.0.1:9", "--proxy-port", str(port)], tmp_path)
    assert done.returncode != 0 and "is the sidecar's own port" in done.stderr, done.stderr


def test_a_proxy_port_held_by_another_process_is_named_as_the_proxy_port(tmp_path: Path) -> None:
    """The proxy's own port taken by another process: the error named the sidecar's port
    ("cannot listen on 127.0.0.1:<server.port>"), which was free and already bound by the sidecar."""
    import yaml

    from tests.conftest import free_port

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    port = free_port()
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "model": "iris", "server": {"port": port, "proxy": {
        "upstream": "http://127.0.0.1:9", "port": taken, "process": False}}}))
    try:
        done = _serve(["--config", str(cfg)], tmp_path)
    finally:
        holder.close()
    assert done.returncode != 0
    assert f"cannot listen: 127.0.0.1:{taken} (server.proxy.port, --proxy-port)" in done.stderr, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" not in done.stderr


# -- rules.log: "every alert transition" ---------------------------------------------------------------
def test_rules_log_writes_transitions_not_every_resend(tmp_path: Path, caplog) -> None:
    """``rules.log: true  # also log every alert transition``: the log got the same firing alert
    at every resend to Alertmanager (once a minute while it fires) and, after a restart, a burst
    of them as the rules caught up on event time (four identical lines in 0.2 s). Alertmanager
    still gets every resend; the log gets the firing, the resolution and a new episode."""
    import yaml
    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor
    from tests.test_rules_notifier import Receiver

    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": [
        {"alert": "Busy", "expr": "sum(monitor_calls_total) > 0", "for": "0s"}]}]}))
    am = Receiver()  # an Alertmanager (a webhook, like the log, is posted transitions only)
    cfg = {**IRIS, "model": "iris", "rules": {"files": [str(tmp_path / "rules.yml")], "interval": "10s",
                                              "alertmanager": [am.url], "log": True}}
    mon = Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False), start_worker=False, live=False)
    t0 = float(int(time.time()) - 3600)  # an hour ago: event time, never in the future
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.alerts"):
            mon.observe([[5.1, 3.5, 1.4, 0.2]], [[0.9, 0.05, 0.05]], timestamp=t0)
            mon.flush()
            mon.advance(t0 + 300)  # 5 minutes of event time at a 10 s interval: firing throughout
            assert mon.notifier.flush(10)
            firing_sends = sum(a["labels"]["alertname"] == "Busy" for _, _, body in am.requests for a in body)
            lines = [r.getMessage() for r in caplog.records if r.name == "monitor.alerts" and '"Busy"' in r.getMessage()]
    finally:
        mon.close(5)
        am.close()
    assert firing_sends >= 4  # Alertmanager got the resends
    assert len(lines) == 1 and '"status": "firing"' in lines[0], lines
