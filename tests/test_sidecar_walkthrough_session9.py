"""Walkthrough (session 9) of the sidecar as a platform engineer deploys it from the README: each
test is a defect found by doing what the README says against real processes and pinned here over
real HTTP on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar, total, wait_until

IRIS = {"model": "iris", "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _kserve(ce_id: str, part: str) -> dict[str, str]:
    """Binary-mode headers as KServe's logger sends them (pkg/logger/worker.go)."""
    return {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": ce_id,
            "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Source": "http://localhost:9081/",
            "Ce-Inferenceservicename": "iris", "Ce-Namespace": "default", "Ce-Component": "predictor",
            "Ce-Endpoint": "", "Ce-Metadata": "{}"}


def test_cloudevents_read_the_scores_tensor_that_server_proxy_oip_output_names(tmp_path) -> None:
    """An MLServer answer logged by KServe holds ``predict`` (labels) before ``predict_proba``
    when the client asks for both. The proxy read ``predict_proba`` (``server.proxy.oip_output``)
    but the CloudEvents intake read the first tensor, so every logged exchange was refused as
    ``output_shape`` by a probabilities model, with a fix pointing at ``output.kind``."""
    sc = start_sidecar({**IRIS, "server": {"proxy": {"oip_output": "predict_proba"}}}, tmp_path, factory=quiet_factory())
    try:
        ce_id = str(uuid.uuid4())
        request = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}],
                   "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
        response = {"model_name": "iris", "id": ce_id, "outputs": [
            {"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]},
            {"name": "predict_proba", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.8, 0.1]}]}
        assert http("POST", sc.url + "/v1/cloudevents", json.dumps(request), _kserve(ce_id, "request")).status == 202
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps(response), _kserve(ce_id, "response"))
        assert r.status == 202 and r.json()["status"] == "accepted", r.body
        sc.flush()
        text = sc.metrics()
        assert sample(text, "monitor_predictions_total", model="iris") == 1
        assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "versicolor"}) == 1
        assert sample(text, "monitor_rows_rejected_total", model="iris", reason="output_shape") is None

        # an answer without that tensor is refused naming the key to set
        ce_id = str(uuid.uuid4())
        assert http("POST", sc.url + "/v1/cloudevents", json.dumps(request), _kserve(ce_id, "request")).status == 202
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"outputs": response["outputs"][:1]}), _kserve(ce_id, "response"))
        assert r.status == 400
        body = r.json()
        assert (body["field"], body["reason"]) == ("outputs", "missing_outputs")
        assert "server.proxy.oip_output" in body["error"]
        assert sample(sc.metrics(), "monitor_intake_events_refused_total", endpoint="cloudevents",
                      reason="missing_outputs") == 1
    finally:
        sc.close()


def test_a_401_says_which_tokens_open_the_endpoint(tmp_path) -> None:
    """With write and metrics tokens set, a client sending the write token to ``/metrics`` (or the
    metrics token to ``/v1/events``) was told only "a valid bearer token is required": the answer
    now names the scope and the keys its tokens come from."""
    (tmp_path / "write.token").write_text("w" * 32 + "\n")
    (tmp_path / "metrics.token").write_text("m" * 32 + "\n")
    server = {"write_token_file": str(tmp_path / "write.token"), "metrics_token_file": str(tmp_path / "metrics.token")}
    sc = start_sidecar({**IRIS, "server": server}, tmp_path, factory=quiet_factory())
    try:
        r = http("GET", sc.url + "/metrics", headers={"Authorization": "Bearer " + "w" * 32})
        assert r.status == 401 and r.json()["field"] == "Authorization"
        assert "metrics tokens (server.metrics_token_file / metrics_token_env" in r.json()["error"]
        event = {"inputs": [1, 2, 3, 4], "outputs": [1, 0, 0]}
        r = http("POST", sc.url + "/v1/events", event, {"Authorization": "Bearer " + "m" * 32})
        assert r.status == 401 and "write tokens (server.write_token_file / write_token_env)" in r.json()["error"]
        assert http("POST", sc.url + "/v1/events", event, {"Authorization": "Bearer " + "w" * 32}).status == 202
        assert http("GET", sc.url + "/metrics", headers={"Authorization": "Bearer " + "m" * 32}).status == 200
    finally:
        sc.close()


@pytest.mark.parametrize("server, key", [
    ({"client_header": 5, "proxy": {"upstream": "http://127.0.0.1:9"}}, "server.client_header"),
    ({"client_header": "X Api"}, "server.client_header"),
    ({"client_header": ["X-Api-Key"]}, "server.client_header"),
    ({"write_token_env": 5}, "server.write_token_env"),
    ({"metrics_token_file": True}, "server.metrics_token_file"),
])
def test_server_keys_of_the_wrong_type_are_config_errors_not_tracebacks(tmp_path, server, key) -> None:
    """``client_header: 5`` passed ``monitor config check`` and crashed the proxy's data path
    process at start (``'int' object has no attribute 'lower'``), leaving the proxy on the
    sidecar's loop; a token key that is not a string crashed ``config check`` and ``serve`` with a
    TypeError traceback; ``client_header: "X Api"`` (no header can be named so) was silently
    never matched. Each is now the config error naming the key and the fix, in both commands."""
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, **server}}))
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1 and f"FAILED: {path}: {key}: " in res.output and ". Fix: " in res.output, res.output
    proc = subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert f"{key}: " in proc.stderr and "Fix: " in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("path", ["/models/{model/predict", "/{model:[}/predict", "/m/{model}/{model}"])
def test_a_proxy_route_aiohttp_cannot_compile_is_a_config_error(tmp_path, path) -> None:
    """These route paths passed ``monitor config check``; ``monitor serve`` then bound its port
    and stopped with aiohttp's ``ValueError: Invalid path`` / ``Bad pattern`` traceback."""
    server = {"port": 0, "proxy": {"upstream": "http://127.0.0.1:9", "routes": [{"path": path, "model": "iris"}]}}
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "server": server}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1 and f"FAILED: {cfg}: server.proxy.routes[0].path: " in res.output, res.output
    assert "Fix: write a path such as /predict or /models/{model}/predict" in res.output
    proc = subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "server.proxy.routes[0].path: " in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def _serve(cfg, *args: str) -> subprocess.CompletedProcess:
    """``monitor serve`` as a real process (it is expected to stop by itself)."""
    return subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=60)


def test_a_second_sidecar_leaves_the_running_ones_forwarding_socket_alone(tmp_path) -> None:
    """A second ``monitor serve`` of the same config (run by mistake, or a restart racing the old
    process) unlinked the running sidecar's forwarding socket as if it were stale, bound its own,
    and on failing to bind the port unlinked that too: every worker's datagrams were dropped from
    then on, with nothing in the running sidecar's log. It now refuses to start, naming the key."""
    from monitor.forwarding import ForwardingMonitor

    sock = tmp_path / "forward.sock"
    raw = {**IRIS, "server": {"forward": {"unix": str(sock)}}}
    sc = start_sidecar(raw, tmp_path)
    try:
        cfg = tmp_path / "second.yaml"
        cfg.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "forward": {"unix": str(sock)}}}))
        proc = _serve(cfg)
        assert proc.returncode != 0
        assert f"{sock} (server.forward.unix) is bound by another running process" in proc.stderr, proc.stderr
        assert sock.is_socket()
        fm = ForwardingMonitor("iris", f"unix://{sock}", flush_interval_s=0.01)
        try:
            fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]])
            fm.flush()
            assert wait_until(lambda: total(sc.metrics(), "monitor_forward_events_received_total") == 1)
            assert fm.counters().dropped == {}
        finally:
            fm.close()
    finally:
        sc.close()


def test_a_stale_forwarding_socket_left_by_a_killed_sidecar_is_replaced(tmp_path) -> None:
    """The other side of the check above: a socket file nobody is bound to (the sidecar was killed
    with -9 and never unlinked it) is still replaced at start."""
    import socket as socket_module

    sock = tmp_path / "forward.sock"
    stale = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_DGRAM)
    stale.bind(str(sock))
    stale.close()  # the file stays, nobody is bound to it
    sc = start_sidecar({**IRIS, "server": {"forward": {"unix": str(sock)}}}, tmp_path)
    try:
        from monitor.forwarding import ForwardingMonitor

        fm = ForwardingMonitor("iris", f"unix://{sock}", flush_interval_s=0.01)
        try:
            fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]])
            fm.flush()
            assert wait_until(lambda: total(sc.metrics(), "monitor_forward_events_received_total") == 1)
        finally:
            fm.close()
    finally:
        sc.close()


def test_a_sidecar_that_cannot_bind_its_port_writes_no_checkpoint_over_the_running_ones(tmp_path) -> None:
    """A second ``monitor serve`` of the same config failed to bind the port, yet restored the
    running sidecar's checkpoint and wrote it back as its "final checkpoint" (a stale state over
    the live one's file: after a kill -9 of the live one, its state rolled back that far)."""
    from monitor.server import keys as K

    raw = {**IRIS, "checkpoint": {"path": str(tmp_path / "state" / "{model}.ckpt"), "interval": "1h"}}
    sc = start_sidecar(raw, tmp_path, factory=quiet_factory())
    try:
        assert http("POST", sc.url + "/v1/events", {"inputs": [1, 2, 3, 4], "outputs": [1, 0, 0]}).status == 202
        sc.flush()
        assert sc.server.app[K.CHECKPOINTER].save("iris")
        ckpt = tmp_path / "state" / "iris.ckpt"
        before = ckpt.read_bytes()
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(yaml.safe_dump(raw))
        proc = _serve(cfg, "--port", str(sc.server.port))
        assert proc.returncode != 0 and "cannot listen" in proc.stderr and "server.port" in proc.stderr, proc.stderr
        assert "no final checkpoint: the sidecar's port could not be bound" in proc.stderr, proc.stderr
        assert ckpt.read_bytes() == before
    finally:
        sc.close()


def test_a_checkpoint_path_ending_with_a_slash_is_a_folder_before_it_exists(tmp_path) -> None:
    """README: "with several models put {model} in it or name a folder"; ``checkpoint.path:
    state/`` was refused by ``config check`` and ``serve`` ("models 'iris' and 'iris-v2' would
    share the checkpoint state. Fix: ... point it at a folder") because resolving it against the
    config's folder dropped the slash; with one model the checkpoint became a file named state."""
    models = [{**IRIS, "model": "iris"}, {**IRIS, "model": "iris-v2"}]
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({"models": models, "checkpoint": {"path": "state/", "interval": "1h"}}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 0 and "SUCCESS" in res.output, res.output
    sc = start_sidecar({"models": models, "checkpoint": {"path": "state/", "interval": "1h"}}, tmp_path, factory=quiet_factory())
    try:
        for model in ("iris", "iris-v2"):
            r = http("POST", sc.url + f"/v1/events?model={model}", {"inputs": [1, 2, 3, 4], "outputs": [1, 0, 0]})
            assert r.status == 202
        sc.flush()
    finally:
        sc.close()  # the final checkpoints
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["iris-v2.ckpt", "iris.ckpt"]


def test_sigterm_answers_an_upload_in_flight_and_a_keep_alive_request_instead_of_hanging_them(tmp_path) -> None:
    """README: on SIGTERM "requests on open keep-alive connections are answered 503" and
    "requests in flight ... are waited for". ``pre_shutdown()`` of aiohttp's server, called at the
    signal, marked every connection closing, and a closing connection drops what it receives: a
    request whose body was still arriving never finished (waited for until the deadline, then cut
    without an answer), and a request on an idle keep-alive connection met a closed connection.
    Both are now answered (503 ``shutting_down`` with Retry-After, ``Connection: close``)."""
    import http.client as httplib
    import os
    import signal
    import socket

    from tests.test_server_lifecycle import ServeProcess

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "checkpoint": {"path": "state/iris.ckpt"},
                                   "server": {"port": 0, "shutdown_timeout": "4s"}}))
    serve = ServeProcess(cfg)
    host, port = serve.url[len("http://"):].rsplit(":", 1)
    event = json.dumps({"inputs": [1, 2, 3, 4], "outputs": [1, 0, 0]}).encode()
    keep_alive = httplib.HTTPConnection(host, int(port), timeout=30)
    keep_alive.request("POST", "/v1/events", event, {"Content-Type": "application/json"})
    first = keep_alive.getresponse()
    assert first.status == 202 and first.read()
    upload = socket.create_connection((host, int(port)), timeout=30)
    upload.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                   b"Content-Length: " + str(len(event)).encode() + b"\r\n\r\n")
    interim = b""
    while b"\r\n\r\n" not in interim:  # "100 Continue": its handler has started, so it is in flight
        interim += upload.recv(1)
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    upload.sendall(event[:5])
    os.kill(serve.proc.pid, signal.SIGTERM)
    assert wait_until(lambda: "stopping intake" in (tmp_path / "serve.log").read_text(), 30)
    keep_alive.request("POST", "/v1/events", event, {"Content-Type": "application/json"})
    second = keep_alive.getresponse()
    assert (second.status, second.getheader("Retry-After")) == (503, "1")
    assert json.loads(second.read())["reason"] == "shutting_down"
    upload.sendall(event[5:])
    answer = b""
    while chunk := upload.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 503 ") and b"shutting_down" in answer, answer
    assert serve.proc.wait(60) == 0
    serve.log.close()
    log = (tmp_path / "serve.log").read_text()
    assert "cutting" not in log and "final checkpoint: iris written" in log, log


def test_structured_cloudevents_name_the_data_attribute_and_read_data_base64(tmp_path) -> None:
    """Structured mode (``application/cloudevents+json``): a payload under ``data_base64`` (the
    spec's form for data that is not JSON text) was refused as "body: must be a JSON object, got
    NoneType", a payload sent as a JSON string as "body: ... got str" (the body was an object),
    and a batch (``application/cloudevents-batch+json``) as "ce-specversion is required: this is
    not a CloudEvent". Each now names the attribute and the fix; data_base64 is read."""
    import base64

    sc = start_sidecar(IRIS, tmp_path, factory=quiet_factory())
    try:
        def post(envelope: object, ctype: str = "application/cloudevents+json"):
            return http("POST", sc.url + "/v1/cloudevents", json.dumps(envelope), {"Content-Type": ctype})

        head = {"specversion": "1.0", "source": "test", "id": "s1"}
        r = post({**head, "type": "org.kubeflow.serving.inference.request", "data": {"instances": [[1, 2, 3, 4]]}})
        assert r.status == 202 and r.json()["status"] == "pending"
        encoded = base64.b64encode(json.dumps({"predictions": [[0.9, 0.05, 0.05]]}).encode()).decode()
        r = post({**head, "type": "org.kubeflow.serving.inference.response", "data_base64": encoded})
        assert r.status == 202 and r.json()["status"] == "accepted", r.body
        sc.flush()
        assert sample(sc.metrics(), "monitor_predictions_total", model="iris") == 1

        response = {**head, "id": "s2", "type": "org.kubeflow.serving.inference.response"}
        for envelope, field in (({**response, "data": json.dumps({"predictions": [[1, 0, 0]]})}, "data"),
                                (response, "data"), ({**response, "data_base64": "not base64!"}, "data_base64")):
            r = post(envelope)
            assert r.status == 400 and r.json()["field"] == field, r.body
        r = post([response], "application/cloudevents-batch+json")
        assert r.status == 400 and (r.json()["field"], r.json()["reason"]) == ("Content-Type", "unsupported_payload")
        assert "send each event on its own" in r.json()["error"]
    finally:
        sc.close()


def test_an_event_without_its_model_on_a_multi_model_sidecar_is_told_how_to_name_it(tmp_path) -> None:
    """"model: is required: this sidecar serves 2 models (iris, iris-v2)" named the field but not
    how to give it (the ``?model=`` query is documented only in the code); a CloudEvent without
    ``ce-inferenceservicename`` got the same words."""
    sc = start_sidecar({"models": [{**IRIS, "model": "iris"}, {**IRIS, "model": "iris-v2"}]}, tmp_path,
                       factory=quiet_factory())
    try:
        r = http("POST", sc.url + "/v1/events", {"inputs": [1, 2, 3, 4], "outputs": [1, 0, 0]})
        assert r.status == 400 and (r.json()["field"], r.json()["reason"]) == ("model", "missing_model")
        assert '("model": NAME) or in the query (?model=NAME)' in r.json()["error"]
        assert http("POST", sc.url + "/v1/events?model=iris-v2", {"inputs": [1, 2, 3, 4], "outputs": [1, 0, 0]}).status == 202
        headers = {**_kserve("c1", "request")}
        del headers["Ce-Inferenceservicename"]
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"instances": [[1, 2, 3, 4]]}), headers)
        assert r.status == 400 and r.json()["field"] == "ce-inferenceservicename"
        assert "send the InferenceService's name in ce-inferenceservicename" in r.json()["error"]
    finally:
        sc.close()


def test_a_checkpoint_of_other_features_or_outputs_restores_without_its_detector_states(tmp_path) -> None:
    """A model's features or classes changed in the config (a new version under the same name,
    no reference): the checkpoint was restored "reference same" with every detector state of the
    old layout, so a removed feature kept exporting its data-quality gauges for ever and the
    windows mixed rows of both layouts. The detector states are now set aside (counted
    ``config_changed``, as for a changed reference) while alerts, clock and counters carry on;
    the same config restores everything as before."""
    ckpt = {"path": "state/{model}.ckpt", "interval": "1h"}
    old = {"model": "iris", "features": ["a", "b", "c", "d"], "output": {"kind": "probabilities", "classes": ["x", "y", "z"]},
           "checkpoint": ckpt}
    new = {**old, "features": ["a", "b", "c"], "output": {"kind": "probabilities", "classes": ["x", "y"]}}
    event = {"inputs": [[1, 2, 3, 4], [1, 2, 3, 4]], "outputs": [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]}

    def run(raw: dict, body: dict | None) -> str:
        sc = start_sidecar(raw, tmp_path, factory=quiet_factory())
        try:
            if body is not None:
                assert http("POST", sc.url + "/v1/events", body).status == 202
            sc.flush()
            return sc.metrics()
        finally:
            sc.close()

    text = run(old, event)
    assert sample(text, "monitor_data_stuck_run_rows", model="iris", feature="d") == 2
    text = run(old, None)  # same config: everything restored
    assert sample(text, "monitor_data_stuck_run_rows", model="iris", feature="d") == 2
    assert sample(text, "monitor_checkpoint_failures_total", model="iris", operation="restore", reason="config_changed") is None
    text = run(new, {"inputs": [[1, 2, 3]], "outputs": [[0.7, 0.3]]})
    assert sample(text, "monitor_checkpoint_failures_total", model="iris", operation="restore", reason="config_changed") == 1
    assert sample(text, "monitor_data_stuck_run_rows", model="iris", feature="d") is None
    assert sample(text, "monitor_data_stuck_run_rows", model="iris", feature="c") == 1
    assert sample(text, "monitor_predictions_total", model="iris") == 3  # counters carried on: 2 before, 1 now


def test_a_forwarding_udp_port_in_use_is_named_at_start(tmp_path) -> None:
    """``Error: cannot listen: Address already in use`` did not say which of the sidecar's
    listeners (its port, the proxy's, the forwarding socket) was taken."""
    import socket as socket_module

    taken = socket_module.socket(socket_module.AF_INET, socket_module.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        udp = f"127.0.0.1:{taken.getsockname()[1]}"
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "forward": {"udp": udp}}}))
        proc = _serve(cfg)
        assert proc.returncode != 0
        assert f"{udp} (server.forward.udp): " in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    finally:
        taken.close()


def test_a_refused_proxy_tap_is_logged_once_per_reason_with_what_was_wrong(tmp_path, caplog) -> None:
    """The proxy's client gets the model server's answer, so a refused tap's field and fix went
    nowhere: a body the tap could not read was forwarded fine and only counted
    ``reason="bad_json"``, with no line in the log saying why nothing was monitored. The first of
    each reason is now logged. (Triton's binary tensors, this test's first example, are read
    since session 29; a body that is not JSON, without their header, still is refused.)"""
    import logging
    import struct

    from aiohttp import web

    from tests.sidecar_support import AppServer

    async def infer(request: web.Request) -> web.Response:
        raw = await request.read()
        length = request.headers.get("Inference-Header-Content-Length", request.headers.get("X-Head-Length"))
        n = json.loads(raw[:int(length)])["inputs"][0]["shape"][0]
        data = struct.pack(f"<{3 * n}f", *([0.8, 0.1, 0.1] * n))
        head = json.dumps({"outputs": [{"name": "probs", "shape": [n, 3], "datatype": "FP32",
                                        "parameters": {"binary_data_size": len(data)}}]}).encode()
        return web.Response(body=head + data, headers={"Inference-Header-Content-Length": str(len(head))})

    app = web.Application()
    app.router.add_post("/v2/models/{name}/infer", infer)
    upstream = AppServer(app)
    sc = start_sidecar({**IRIS, "server": {"proxy": {"upstream": upstream.url}}}, tmp_path, factory=quiet_factory())
    try:
        caplog.set_level(logging.WARNING, logger="monitor.server")
        head = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                       "parameters": {"binary_data_size": 16}}]}).encode()
        body = head + struct.pack("<4f", 5.1, 3.5, 1.4, 0.2)
        r = http("POST", sc.url + "/v2/models/iris/infer", body, {"Inference-Header-Content-Length": str(len(head))})
        assert r.status == 200
        # binary tensors are read: the exchange is monitored, not refused
        assert wait_until(lambda: (sc.flush(), sample(sc.metrics(), "monitor_predictions_total", model="iris"))[1] == 1, 20)
        assert (sample(sc.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", reason="bad_json") or 0) == 0
        for _ in range(3):  # the same body without the header that locates its JSON head: no JSON
            r = http("POST", sc.url + "/v2/models/iris/infer", body, {"X-Head-Length": str(len(head))})
            assert r.status == 200
        sc.flush()
        assert sample(sc.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", reason="bad_json") == 3
        said = [rec.getMessage() for rec in caplog.records if "not monitored (bad_json)" in rec.getMessage()]
        assert len(said) == 1 and "not JSON" in said[0] and "Inference-Header-Content-Length" in said[0]
        r = http("POST", sc.url + "/v2/models/other/infer", body, {"Inference-Header-Content-Length": str(len(head))})
        sc.flush()
        assert sample(sc.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", reason="unknown_model") == 1
        said = [rec.getMessage() for rec in caplog.records if "not monitored (unknown_model)" in rec.getMessage()]
        assert len(said) == 1 and "model: no model named 'other' here; served: iris" in said[0]
    finally:
        sc.close()
        upstream.close()


def test_a_refused_cloudevent_is_logged_once_per_reason(tmp_path, caplog) -> None:
    """The 400 of a CloudEvent goes back to KServe's or Seldon's logger, which logs only its status
    in the model's pod; the sidecar said nothing, so "no output tensor named predict_proba" or a
    body that is not JSON was a bare counter. The first of each reason is now logged."""
    import logging

    sc = start_sidecar({**IRIS, "server": {"proxy": {"oip_output": "predict_proba"}}}, tmp_path, factory=quiet_factory())
    try:
        caplog.set_level(logging.WARNING, logger="monitor.server")
        for i in range(2):
            r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"outputs": [
                {"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}]}), _kserve(f"c{i}", "response"))
            assert r.status == 400
        r = http("POST", sc.url + "/v1/cloudevents", "not json", _kserve("c3", "request"))
        assert r.status == 400
        said = [rec.getMessage() for rec in caplog.records if rec.getMessage().startswith("CloudEvent refused")]
        assert len(said) == 2, said
        # the model is named when the event names a served one (counted under it since session 10)
        assert "(missing_outputs) for model 'iris': outputs: no output tensor named 'predict_proba'" in said[0]
        assert "(bad_json): body: " in said[1]
    finally:
        sc.close()


def test_a_failing_periodic_checkpoint_is_retried_once_an_interval(tmp_path) -> None:
    """A checkpoint that cannot be written (a full or read-only volume) was retried, logged as an
    ERROR and counted at every wake-up of the checkpoint task, four times per ``checkpoint.interval``
    (every 7.5 s with the examples' 30 s). No timing is asserted: a save cannot come before one
    interval has passed since the last attempt, so within less than an interval after the first
    failure the count stays at one (a slow machine only makes the old behaviour pass, never this)."""
    import time

    (tmp_path / "not-a-folder").write_text("")
    raw = {**IRIS, "checkpoint": {"path": str(tmp_path / "not-a-folder" / "iris.ckpt"), "interval": "5s"}}
    sc = start_sidecar(raw, tmp_path, factory=quiet_factory())
    try:
        def failures() -> float:
            return total(sc.metrics(), "monitor_checkpoint_failures_total", operation="save")

        assert wait_until(lambda: failures() >= 1, 30)
        # more than two wake-ups of the task (every interval / 4), and half an interval left for
        # noticing the first failure on a slow machine before a legitimate retry could come
        time.sleep(2.6)
        assert failures() == 1
    finally:
        sc.close()


def test_config_check_loads_a_reference_profile_as_serve_does(tmp_path) -> None:
    """``monitor config check`` said SUCCESS for a ``reference.path`` that exists but is not a
    readable profile; ``monitor serve`` then never became ready (503 ``load_failed``)."""
    import numpy as np

    from monitor.profile import Profile

    (tmp_path / "broken.npz").write_text("not a profile")
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "reference": {"path": "broken.npz"}}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1 and "reference.path: " in res.output and "monitor reference build" in res.output, res.output
    rng = np.random.default_rng(0)
    scores = rng.dirichlet([1, 1, 1], 150)
    Profile.from_arrays(numeric=rng.normal(size=(150, 4)), numeric_names=IRIS["features"], scores=scores,
                        classes=IRIS["output"]["classes"]).save(tmp_path / "good.npz")
    cfg.write_text(yaml.safe_dump({**IRIS, "reference": {"path": "good.npz"}}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 0 and "SUCCESS" in res.output, res.output


def test_a_server_section_inside_a_model_entry_says_where_it_goes(tmp_path) -> None:
    """``models: [{model: iris, server: {...}}]`` was refused with "unknown key. Fix: did you mean
    'seed'?"; the sidecar's settings are shared and belong at the top level."""
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{**IRIS, "server": {"port": 9999}}]}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1 and f"FAILED: {cfg}: models[0].server: " in res.output, res.output
    assert "move server: to the top level of the file" in res.output and "seed" not in res.output


def test_an_ipv6_listener_is_logged_as_a_url_that_works(tmp_path) -> None:
    """``--host ::1`` was logged as "listening on http://::1:PORT", which no client can open."""
    import signal
    import socket as socket_module

    probe = socket_module.socket(socket_module.AF_INET6, socket_module.SOCK_STREAM)
    try:
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    finally:
        probe.close()
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "addr": "::1"}}))
    ready, log = tmp_path / "ready", tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config", str(cfg),
                                 "--ready-file", str(ready)], stdout=out, stderr=out)
        try:
            assert wait_until(lambda: ready.exists() and ready.read_text().strip() != "" or proc.poll() is not None, 30)
            port = ready.read_text().split()[0].rsplit(":", 1)[1]
            assert wait_until(lambda: f"listening on http://[::1]:{port}" in log.read_text(), 30), log.read_text()
            assert http("GET", f"http://[::1]:{port}/healthz").status == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def test_a_proxy_port_without_an_upstream_names_the_key_the_file_set(tmp_path) -> None:
    """``server.proxy.port`` in the file without an upstream stopped ``monitor serve`` with
    "--proxy-port needs --proxy URL", an option the command line did not use."""
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "proxy": {"port": 0}}}))
    proc = _serve(cfg)
    assert proc.returncode != 0
    assert f"{cfg}: server.proxy.port needs a model server to forward to. Fix: start with --proxy URL" in proc.stderr, proc.stderr
    assert "--proxy-port" not in proc.stderr


def test_an_exchange_the_proxy_answers_after_sigterm_is_monitored_and_checkpointed(tmp_path) -> None:
    """README: on SIGTERM the proxy's data path "answers what is in flight ... and its last batch"
    reaches the sidecar before the drain and the checkpoint. The taps of those answers were
    refused ``shutting_down`` (the sidecar's intake had closed), so every rollout dropped the
    exchanges in flight from the monitor; taps are no client intake and are now enqueued."""
    import asyncio
    import os
    import signal
    import threading

    from aiohttp import web

    from tests.sidecar_support import AppServer
    from tests.test_server_lifecycle import ServeProcess

    arrived = threading.Event()

    async def infer(request: web.Request) -> web.Response:
        body = await request.json()
        arrived.set()
        await asyncio.sleep(0.5)  # in flight when the test sends SIGTERM
        n = body["inputs"][0]["shape"][0]
        return web.json_response({"outputs": [{"name": "probs", "shape": [n, 3], "datatype": "FP64", "data": [0.8, 0.1, 0.1] * n}]})

    app = web.Application()
    app.router.add_post("/v2/models/{name}/infer", infer)
    upstream = AppServer(app)
    try:
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(yaml.safe_dump({**IRIS, "checkpoint": {"path": "state/iris.ckpt", "interval": "1h"},
                                       "server": {"port": 0, "proxy": {"upstream": upstream.url}}}))
        serve = ServeProcess(cfg)
        request = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
        answer: list[int] = []
        client = threading.Thread(target=lambda: answer.append(http("POST", serve.url + "/v2/models/iris/infer", request).status))
        client.start()
        assert arrived.wait(30)
        os.kill(serve.proc.pid, signal.SIGTERM)
        client.join(30)
        assert answer == [200]
        assert serve.proc.wait(60) == 0
        serve.log.close()
        log = (tmp_path / "serve.log").read_text()
        assert "final checkpoint: iris written" in log, log
        again = ServeProcess(cfg)  # the final checkpoint holds the exchange
        try:
            text = again.metrics()
            assert sample(text, "monitor_predictions_total", model="iris") == 1
            assert total(text, "monitor_intake_events_refused_total", endpoint="proxy") == 0
        finally:
            again.stop(signal.SIGTERM)
    finally:
        upstream.close()
