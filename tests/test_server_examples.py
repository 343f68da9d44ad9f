"""The deployment examples: the FastAPI app runs for real under uvicorn; the Kubernetes and
KServe manifests parse, wire the sidecar the way the docs say, and carry configs that validate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO_ROOT, free_port
from tests.sidecar_support import http, sample, wait_until

EXAMPLES = REPO_ROOT / "examples"


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        pytest.skip(f"{module} is not installed (pip install {module}; it belongs in the dev extra)")


def test_fastapi_example_serves_predictions_and_metrics(tmp_path):
    _need("fastapi")
    _need("uvicorn")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("MONITOR_FORWARD", None)
    log = open(tmp_path / "uvicorn.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return http("GET", url + "/metrics", timeout=2).status == 200
            except OSError:
                return False

        assert wait_until(up, 60), (tmp_path / "uvicorn.log").read_text()
        for i in range(20):
            r = http("POST", url + "/predict", {"instances": [[5.1, 3.5, 1.4, 0.2 + i / 10]]}, {"X-Client-Id": "c1"})
            assert r.status == 200 and abs(sum(r.json()["predictions"][0]) - 1) < 1e-9
        assert http("POST", url + "/predict", {"instances": "nope"}).status == 422
        assert wait_until(lambda: sample(http("GET", url + "/metrics").body.decode(), "monitor_calls_total", model="iris") == 20, 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


def _docs(path) -> dict[str, dict]:
    return {d["kind"] + "/" + d["metadata"]["name"]: d for d in yaml.safe_load_all(path.read_text()) if d}


def _local(raw: dict, tmp_path, **server) -> dict:
    """The example's monitor.yaml made runnable here: loopback, free ports, temporary state."""
    raw = yaml.safe_load(yaml.safe_dump(raw))
    raw.setdefault("server", {}).update({"addr": "127.0.0.1", "port": 0, **server})
    if "checkpoint" in raw:
        raw["checkpoint"]["path"] = str(tmp_path / "state" / "{model}.ckpt")
    return raw


def test_kubernetes_sidecar_example_is_wired_and_runs(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from monitor.cli.serve import serve
    from monitor.config import parse_config
    from monitor.server.settings import settings_from
    from tests.sidecar_support import AppServer, LoopThread, start_sidecar
    from tests.test_proxy import oip, upstream_app

    docs = _docs(EXAMPLES / "k8s" / "monitor-sidecar.yaml")
    deploy, service, smon = docs["Deployment/iris"], docs["Service/iris"], docs["ServiceMonitor/iris-monitor"]
    containers = {c["name"]: c for c in deploy["spec"]["template"]["spec"]["containers"]}
    sidecar_ports = {p["name"]: p["containerPort"] for p in containers["monitor"]["ports"]}
    model_port = containers["model"]["ports"][0]["containerPort"]
    raw = yaml.safe_load(docs["ConfigMap/iris-monitor"]["data"]["monitor.yaml"])
    monkeypatch.setenv("MONITOR_WRITE_TOKEN", "w" * 32)
    monkeypatch.setenv("MONITOR_METRICS_TOKEN", "m" * 32)
    settings = settings_from(parse_config(raw, "monitor.yaml", tmp_path))
    # the proxy fronts the model container, on the port the Service sends traffic to
    assert settings.proxy.upstream == f"http://127.0.0.1:{model_port}" and settings.proxy.port == sidecar_ports["http"]
    assert settings.port == sidecar_ports["metrics"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(sidecar_ports)
    assert smon["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert smon["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert containers["monitor"][probe]["httpGet"]["path"] in ("/readyz", "/healthz")
    args = containers["monitor"]["args"]
    assert args[0] == "serve" and CliRunner().invoke(serve, args[1:] + ["--help"]).exit_code == 0
    # the packs it names ship with the package
    rule_files = parse_config(raw, "monitor.yaml", tmp_path).model().rules.files
    assert [os.path.basename(f) for f in rule_files] == ["core.yml", "confidence.yml"]

    lt = LoopThread()
    up = AppServer(upstream_app(), lt)
    raw = _local(raw, tmp_path)
    raw["rules"] = {"files": [str(REPO_ROOT / "rules" / "core.yml")], "log": False}
    raw["server"]["proxy"] = {**raw["server"]["proxy"], "upstream": up.url, "port": None, "oip_output": "probs"}
    s = start_sidecar(raw, tmp_path)
    try:
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1), {"X-Api-Key": "k1"}).status == 200
        assert http("GET", s.url + "/metrics").status == 401
        text = http("GET", s.url + "/metrics", headers={"Authorization": "Bearer " + "m" * 32}).body.decode()
        assert "monitor_proxy_requests_total" in text
    finally:
        s.close()
        up.close()
        lt.stop()


def test_kserve_example_logger_reaches_the_monitor(tmp_path):
    from tests.sidecar_support import quiet_factory, start_sidecar
    from tests.test_cloudevents import kserve_headers

    isvc = _docs(EXAMPLES / "kserve" / "inferenceservice.yaml")["InferenceService/sklearn-iris"]
    docs = _docs(EXAMPLES / "kserve" / "monitor-service.yaml")
    raw = yaml.safe_load(docs["ConfigMap/model-monitor"]["data"]["monitor.yaml"])
    logger = isvc["spec"]["predictor"]["logger"]
    assert logger["mode"] == "all" and logger["url"].endswith(":9108/v1/cloudevents")
    assert logger["url"].startswith(f"http://{docs['Service/model-monitor']['metadata']['name']}.")
    assert raw["server"]["port"] == 9108
    assert isvc["metadata"]["name"] in [m["model"] for m in raw["models"]]
    s = start_sidecar(_local(raw, tmp_path), tmp_path, factory=quiet_factory(start_worker=False))
    try:
        meta = '{"X-Api-Key": ["tenant-a"]}'
        h = kserve_headers("id-1", "request", isvc="sklearn-iris", **{"Ce-Metadata": meta})
        assert http("POST", s.url + "/v1/cloudevents", {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                                                    "data": [6.8, 2.8, 4.8, 1.4]}]}, h).status == 202
        h = kserve_headers("id-1", "response", isvc="sklearn-iris")
        assert http("POST", s.url + "/v1/cloudevents", {"outputs": [{"name": "predict", "shape": [1], "datatype": "INT64",
                                                                     "data": [1]}]}, h).status == 202
        (event,) = list(s.monitor("sklearn-iris").queue.items)
        assert event[5] == "tenant-a" and event[6] == "id-1"
        s.flush()
        assert sample(s.metrics(), "monitor_predicted_class_total", model="sklearn-iris", **{"class": "1"}) == 1
    finally:
        s.close()
