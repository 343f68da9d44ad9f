"""The deployment examples: the FastAPI app runs for real under uvicorn; the Kubernetes and
KServe manifests' pods run here as written (each volume a temporary folder, the init containers'
commands run, the sidecar served on its config with the files those commands wrote), their names
and ports agree with each other, and every monitor config in examples/ passes ``monitor config
check``. The images themselves are not built or run here (tests/test_examples_image.py checks the
sidecar's Dockerfile without an engine)."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import IN_CI, REPO_ROOT, free_port
from tests.sidecar_support import http, sample, total, wait_until

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


def _docs(path: Path) -> dict[str, dict]:
    return {d["kind"] + "/" + d["metadata"]["name"]: d for d in yaml.safe_load_all(path.read_text()) if d}


class Pod:
    """A Deployment's pod on this machine: every volume is a folder under ``root`` (a ConfigMap
    that the manifests hold is written into its folder, key by key, as the kubelet would), and a
    path that a container sees is the file at the same place in the folder of the volume mounted
    there. A path on no volume of the container is an error: the container would not find it."""

    def __init__(self, deployment: dict, config_maps: dict[str, dict], root: Path) -> None:
        spec = deployment["spec"]["template"]["spec"]
        self.init_containers = [c["name"] for c in spec.get("initContainers", [])]
        self.containers = {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}
        self.volumes = {v["name"]: v for v in spec["volumes"]}
        self.root = root
        for name, vol in self.volumes.items():
            folder = root / name
            folder.mkdir(parents=True)
            ref = vol.get("configMap")
            if ref and ref["name"] in config_maps:
                data = config_maps[ref["name"]].get("data", {})
                for item in ref.get("items") or [{"key": k, "path": k} for k in data]:
                    (folder / item["path"]).write_text(data[item["key"]])

    def mount(self, container: str, path: str) -> dict:
        for m in sorted(self.containers[container].get("volumeMounts", []), key=lambda m: -len(m["mountPath"])):
            at = m["mountPath"].rstrip("/")
            if path == at or path.startswith(at + "/"):
                return m
        raise AssertionError(f"container {container}: {path} is on none of its volumes")

    def local(self, container: str, path: str) -> Path:
        m = self.mount(container, path)
        return self.root / m["name"] / path[len(m["mountPath"].rstrip("/")):].lstrip("/")

    def local_args(self, container: str, args: list[str]) -> list[str]:
        return [str(self.local(container, a)) if a.startswith("/") else a for a in args]

    def ports(self, container: str) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in self.containers[container].get("ports", [])}


def _localise(raw: dict, pod: Pod, container: str) -> dict:
    """The config as the container reads it, its file paths made this machine's."""
    raw = copy.deepcopy(raw)
    for m in [raw, *raw.get("models", [])]:
        if (m.get("reference") or {}).get("path"):
            m["reference"]["path"] = str(pod.local(container, m["reference"]["path"]))
        if (m.get("checkpoint") or {}).get("path"):
            m["checkpoint"]["path"] = str(pod.local(container, m["checkpoint"]["path"]))
    return raw


def _monitor_config(pod: Pod, container: str = "monitor") -> tuple[dict, Path]:
    """The monitor config the container's ``serve --config`` reads (from its ConfigMap volume),
    localised and written to a file of its own; ``(raw, path)``."""
    from tests.test_examples_image import check_cli_args

    args = pod.containers[container]["args"]
    assert check_cli_args(args).name == "serve"
    path = pod.local(container, args[args.index("--config") + 1])
    assert path.is_file(), f"{container}: the config {path} is not in the volume mounted there"
    raw = _localise(yaml.safe_load(path.read_text()), pod, container)
    raw.setdefault("rules", {})["alertmanager"] = []  # no cluster DNS here
    out = path.parent.parent / "monitor-local.yaml"
    out.write_text(yaml.safe_dump(raw))
    return raw, out


def _config_check(path: Path) -> None:
    from click.testing import CliRunner

    from monitor.cli import main

    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 0 and "SUCCESS" in res.output, res.output


def _local(raw: dict, tmp_path: Path, **server: Any) -> dict:
    """The example's monitor.yaml made runnable here: loopback, free ports, temporary state."""
    raw = yaml.safe_load(yaml.safe_dump(raw))
    raw.setdefault("server", {}).update({"addr": "127.0.0.1", "port": 0, **server})
    if "checkpoint" in raw:
        raw["checkpoint"]["path"] = str(tmp_path / "state" / "{model}.ckpt")
    return raw


def _status(url: str, token: str | None = None) -> dict:
    headers = {"Authorization": "Bearer " + token} if token else None
    return http("GET", url + "/api/v1/status", headers=headers).json()["data"]


# -- Kubernetes: MLServer + the sidecar in proxy mode ----------------------------------------------
K8S = EXAMPLES / "k8s" / "monitor-sidecar.yaml"


def sklearn_runtime_app(folder: Path) -> Any:
    """The OIP v2 answers of MLServer's scikit-learn runtime (mlserver_sklearn.SKLearnModel, 1.6)
    for the model in ``folder`` (its model-settings.json and the joblib file it names): the outputs
    the request names, else ``parameters.extra.predict_fn``, else ``predict``; each tensor named
    after the model's method, 2-D, FP64 or INT64. Checked by hand against MLServer 1.6.1 serving
    this example's model; the real server (MLServer 1.7.1 in CI, `.ci/run`) runs instead with
    MONITOR_TEST_MLSERVER set."""
    import joblib
    import numpy as np
    from aiohttp import web

    settings = json.loads((folder / "model-settings.json").read_text())
    model = joblib.load(folder / settings["parameters"]["uri"])
    default = settings["parameters"].get("extra", {}).get("predict_fn", "predict")

    async def infer(request: web.Request) -> web.Response:
        body = await request.json()
        (tensor,) = body["inputs"]
        x = np.asarray(tensor["data"], dtype=float).reshape(tensor["shape"])
        outputs = []
        for name in [o["name"] for o in body.get("outputs") or [{"name": default}]]:
            y = np.asarray(getattr(model, name)(x))
            y = y.reshape(len(x), -1)
            outputs.append({"name": name, "shape": list(y.shape), "datatype": "FP64" if y.dtype.kind == "f" else "INT64",
                            "parameters": {"content_type": "np"}, "data": y.ravel().tolist()})
        return web.json_response({"model_name": settings["name"], "id": "x", "parameters": {}, "outputs": outputs})

    app = web.Application()
    app.router.add_post(f"/v2/models/{settings['name']}/infer", infer)
    return app


def _mlserver(models: Path, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Real MLServer on the model folder (MONITOR_TEST_MLSERVER: its ``mlserver`` executable),
    stopped when the test ends whatever its outcome; its URL."""
    exe = os.environ["MONITOR_TEST_MLSERVER"]
    port = free_port()
    env = {**os.environ, "MLSERVER_HOST": "127.0.0.1", "MLSERVER_HTTP_PORT": str(port), "MLSERVER_GRPC_PORT": str(free_port()),
           "MLSERVER_METRICS_PORT": str(free_port()), "MLSERVER_PARALLEL_WORKERS": "0"}
    log = open(tmp_path / "mlserver.log", "wb")
    proc = subprocess.Popen([exe, "start", str(models)], env=env, stdout=log, stderr=log, cwd=tmp_path)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()

    request.addfinalizer(stop)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return http("GET", url + "/v2/models/iris/ready", timeout=2).status == 200
        except OSError:
            return False

    assert wait_until(ready, 120), (tmp_path / "mlserver.log").read_text()[-3000:]
    return url


def _documented_request(path: Path) -> dict:
    """The request body a client sends, as the manifest's header shows it (curl -d '...')."""
    match = re.search(r"^#\s+-d '(\{.*\})'\s*$", path.read_text(), re.M)
    assert match, f"{path.name}: no documented request (curl ... -d '{{...}}')"
    return json.loads(match.group(1))


@pytest.mark.parametrize("server", ["sklearn-runtime", "mlserver"])
def test_kubernetes_pod_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
                                               server: str) -> None:
    from click.testing import CliRunner

    from monitor.cli import main
    from monitor.config import parse_config
    from monitor.server.settings import settings_from
    from tests.sidecar_support import AppServer, LoopThread, start_sidecar
    from tests.test_examples_image import build_command

    _need("sklearn")
    if server == "mlserver" and not os.environ.get("MONITOR_TEST_MLSERVER"):
        reason = ("real MLServer: set MONITOR_TEST_MLSERVER to its mlserver executable (pip install mlserver mlserver-sklearn "
                  "in a virtualenv of its own)")
        if IN_CI:  # as a missing binary (tests/conftest.py): CI must provide it, .ci/run does
            pytest.fail(reason + "; CI must provide it (.ci/run installs MLServer 1.7.1)")
        pytest.skip(reason)
    docs = _docs(K8S)
    maps = {n.split("/", 1)[1]: d for n, d in docs.items() if n.startswith("ConfigMap/")}
    deploy, service, smon = docs["Deployment/iris"], docs["Service/iris"], docs["ServiceMonitor/iris-monitor"]
    pod = Pod(deploy, maps, tmp_path / "volumes")

    # init container 1, in the model server's image: trains the model into MLServer's folder
    train = pod.containers["train-model"]
    assert train["image"] == pod.containers["model"]["image"] and train["command"][0] == "python"
    python = str(Path(os.environ["MONITOR_TEST_MLSERVER"]).with_name("python")) if server == "mlserver" else sys.executable
    ran = subprocess.run([python, *pod.local_args("train-model", train["command"][1:])], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    # init container 2, in the monitor's image: the reference profile from the held-out rows
    _, tag, _ = build_command()
    build = pod.containers["build-reference"]
    assert build["image"] == tag and pod.init_containers == ["train-model", "build-reference"]
    res = CliRunner().invoke(main, pod.local_args("build-reference", build["args"]))
    assert res.exit_code == 0, res.output

    # the model server: MLServer's image serves every model-settings.json under /mnt/models
    model = pod.containers["model"]
    assert "mlserver" in model["image"] and pod.mount("model", "/mnt/models")["mountPath"] == "/mnt/models"
    env = {e["name"]: e["value"] for e in model["env"]}
    model_port = int(env["MLSERVER_HTTP_PORT"])
    assert pod.ports("model")["model"] == model_port and env["MLSERVER_HOST"] == "127.0.0.1"
    (settings_file,) = pod.local("model", "/mnt/models").rglob("model-settings.json")
    ms = json.loads(settings_file.read_text())
    assert ms["implementation"] == "mlserver_sklearn.SKLearnModel"
    assert (settings_file.parent / ms["parameters"]["uri"]).is_file(), "parameters.uri (relative to model-settings.json) names no file"
    assert ms["parameters"]["extra"]["predict_fn"] in ("predict", "predict_proba")
    model_probe = model["readinessProbe"]["exec"]["command"]
    probe_url = re.search(r"http://127\.0\.0\.1:(\d+)/v2/models/([^/]+)/ready", model_probe[-1])
    assert model_probe[:2] == ["python", "-c"] and probe_url and int(probe_url.group(1)) == model_port and probe_url.group(2) == ms["name"]

    # the sidecar: its config, ports and names against the model server's, the Service's, the ServiceMonitor's
    monkeypatch.setenv("MONITOR_WRITE_TOKEN", "w" * 32)
    monkeypatch.setenv("MONITOR_METRICS_TOKEN", "m" * 32)
    monkeypatch.setenv("POD_NAME", "iris-0")  # rules.external_labels.replica, from the pod's name
    raw, config_path = _monitor_config(pod)
    _config_check(config_path)
    agent = parse_config(raw, str(config_path), config_path.parent)
    settings = settings_from(agent)
    sidecar_ports = pod.ports("monitor")
    assert agent.model().model == ms["name"], "the monitored model is the one MLServer serves (/v2/models/<name>/infer)"
    assert settings.proxy.upstream == f"http://127.0.0.1:{model_port}" and settings.proxy.port == sidecar_ports["http"]
    assert settings.proxy.oip_output == ms["parameters"]["extra"]["predict_fn"] == "predict_proba"
    assert agent.model().output.kind == "probabilities"
    assert settings.port == sidecar_ports["metrics"]
    token_envs = {raw["server"]["write_token_env"], raw["server"]["metrics_token_env"]}
    assert {e["name"] for e in pod.containers["monitor"]["env"]} == token_envs | {"POD_NAME"}
    assert agent.model().rules.external_labels == {"replica": "iris-0"}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(sidecar_ports)
    assert {p["port"] for p in service["spec"]["ports"]} == {sidecar_ports[p["targetPort"]] for p in service["spec"]["ports"]}
    assert smon["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    (endpoint,) = smon["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["credentials"]["key"] == next(
        e["valueFrom"]["secretKeyRef"]["key"] for e in pod.containers["monitor"]["env"] if e["name"] == raw["server"]["metrics_token_env"])
    for probe in ("readinessProbe", "livenessProbe"):
        get = pod.containers["monitor"][probe]["httpGet"]
        assert get["path"] in ("/readyz", "/healthz") and get["port"] == "metrics"
    assert {"core.yml", "confidence.yml"} <= {os.path.basename(f) for f in agent.model().rules.files}

    # served: the documented request through the sidecar's proxy to the model
    folder = settings_file.parent
    if server == "mlserver":
        upstream_url = _mlserver(pod.local("model", "/mnt/models"), tmp_path, request)
        # the model container's readiness probe, with its python, on this machine's port
        ran = subprocess.run([python, "-c", model_probe[-1].replace(f":{model_port}/", f":{upstream_url.rsplit(':', 1)[1]}/")],
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr[-2000:]
    else:
        lt = LoopThread()
        request.addfinalizer(lt.stop)
        up = AppServer(sklearn_runtime_app(folder), lt)
        request.addfinalizer(up.close)
        upstream_url = up.url
    raw = _local(raw, tmp_path)
    raw["server"]["proxy"] = {**raw["server"]["proxy"], "upstream": upstream_url, "port": None}
    s = start_sidecar(raw, tmp_path)
    metrics_auth = {"Authorization": "Bearer " + "m" * 32}
    try:
        body = _documented_request(K8S)
        for _ in range(20):
            r = http("POST", s.url + "/v2/models/iris/infer", body, {"X-Api-Key": "team-a"})
            assert r.status == 200, r.body
            (out,) = r.json()["outputs"]
            assert out["name"] == "predict_proba" and out["shape"] == [1, 3]
        # a client asking for labels only gets them, and the monitor counts what it cannot read
        r = http("POST", s.url + "/v2/models/iris/infer", {**body, "outputs": [{"name": "predict"}]})
        assert r.status == 200 and r.json()["outputs"][0]["name"] == "predict"
        s.flush()
        assert http("GET", s.url + "/metrics").status == 401
        text = http("GET", s.url + "/metrics", headers=metrics_auth).body.decode()
        assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "setosa"}) == 20
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="proxy", reason="missing_outputs") == 1
        status = _status(s.url, "m" * 32)["models"]["iris"]
        assert status["reference"] and status["rules"]
        assert {"FeatureDriftDetector", "PredictionDriftDetector", "ConfidenceDetector"} <= set(status["detectors"])
    finally:
        s.close()


# -- KServe: the InferenceService's logger posts to the monitor ------------------------------------
KSERVE = EXAMPLES / "kserve"


def test_kserve_example_runs_as_written(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from monitor.cli import main
    from monitor.config import parse_config
    from monitor.server.settings import settings_from
    from tests.sidecar_support import quiet_factory, start_sidecar
    from tests.test_cloudevents import kserve_headers

    _need("sklearn")
    isvc = _docs(KSERVE / "inferenceservice.yaml")["InferenceService/sklearn-iris"]
    docs = _docs(KSERVE / "monitor-service.yaml")
    maps = {n.split("/", 1)[1]: d for n, d in docs.items() if n.startswith("ConfigMap/")}
    deploy, service, smon = docs["Deployment/model-monitor"], docs["Service/model-monitor"], docs["ServiceMonitor/model-monitor"]
    pod = Pod(deploy, maps, tmp_path / "volumes")

    # step 2 of the header: the reference, built from held-out inputs, in the ConfigMap it names
    ref_path = next(m["reference"]["path"] for m in yaml.safe_load(maps["model-monitor"]["data"]["monitor.yaml"])["models"])
    vol = pod.volumes[pod.mount("monitor", ref_path)["name"]]
    header = (KSERVE / "monitor-service.yaml").read_text()
    assert f"kubectl create configmap {vol['configMap']['name']} --from-file={Path(ref_path).name}" in header
    assert f"monitor reference build heldout.csv -o {Path(ref_path).name}" in header
    from sklearn.datasets import load_iris

    x = load_iris().data[1::2]
    csv = tmp_path / "heldout.csv"
    csv.write_text("sepal_length,sepal_width,petal_length,petal_width\n" + "\n".join(",".join(map(str, r)) for r in x) + "\n")
    res = CliRunner().invoke(main, ["reference", "build", str(csv), "-o", str(pod.local("monitor", ref_path)), "--quiet"])
    assert res.exit_code == 0, res.output

    raw, config_path = _monitor_config(pod)
    _config_check(config_path)
    agent = parse_config(raw, str(config_path), config_path.parent)
    settings = settings_from(agent)
    assert {"core.yml", "confidence.yml"} <= {os.path.basename(f) for f in agent.model("sklearn-iris").rules.files}

    # the logger's URL: the Service's name, the port that leads to the sidecar's, its CloudEvents path
    logger = isvc["spec"]["predictor"]["logger"]
    assert logger["mode"] == "all"
    match = re.fullmatch(r"http://([^.:/]+)(?:\.([^.:/]+)\.svc\.cluster\.local)?:(\d+)(/\S+)", logger["url"])
    assert match, logger["url"]
    host, namespace, port, path = match.group(1), match.group(2), int(match.group(3)), match.group(4)
    assert host == service["metadata"]["name"] and namespace in (None, service["metadata"].get("namespace", "default"))
    assert path == "/v1/cloudevents"
    (svc_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    assert pod.ports("monitor")[svc_port["targetPort"]] == settings.port
    assert smon["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert smon["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert isvc["metadata"]["name"] in [m.model for m in agent.models]

    s = start_sidecar(_local(raw, tmp_path), tmp_path, factory=quiet_factory(start_worker=False))
    try:
        status = _status(s.url)["models"]["sklearn-iris"]
        assert status["reference"] and status["rules"] and "FeatureDriftDetector" in status["detectors"]
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


KSERVE_V1 = KSERVE / "monitor-v1-proxy.yaml"


def kserve_v1_app(name: str, probabilities: bool) -> Any:
    """KServe's v1 protocol as its ModelServer answers it (``POST /v1/models/<name>:predict``,
    ``{"instances": rows}`` in, ``{"predictions": ...}`` out; ``GET /v1/models/<name>``), for an
    iris classifier: ``predict_proba`` rows with the scikit-learn runtime's ``PREDICT_PROBA=true``,
    else ``predict``'s class indices. Checked by hand against KServe 0.21.0's ``ModelServer``
    serving such a model behind ``monitor serve`` with this example's config."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from tests.e2e.upstream import kserve_v1_app as v1_app

    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    return v1_app(name, clf.predict_proba if probabilities else clf.predict)


@pytest.mark.parametrize("probabilities", [True, False], ids=["PREDICT_PROBA", "predict"])
def test_kserve_v1_proxy_example_runs_as_written(tmp_path: Path, request: pytest.FixtureRequest, probabilities: bool) -> None:
    """The KServe v1 protocol is tapped without a route of ``server.proxy.routes`` (it was tapped
    only through one, which the example listed); the example's config and documented request, over real HTTP
    through the sidecar on the engine ``monitor serve`` uses, to a v1 model server: answered
    unchanged, every row monitored under the model the path names; the metadata path forwarded
    and not monitored; without PREDICT_PROBA, the config the header gives for class indices."""
    from tests.sidecar_support import AppServer, LoopThread
    from tests.test_proxy import serve

    _need("sklearn")
    _config_check(KSERVE_V1)
    raw = yaml.safe_load(KSERVE_V1.read_text())
    assert "routes" not in raw["server"]["proxy"] and raw["server"]["proxy"]["upstream"] == "http://127.0.0.1:8080"
    if not probabilities:  # the header's config for the runtime without PREDICT_PROBA
        header = KSERVE_V1.read_text()
        assert 'output: {kind: labels, classes: ["0", "1", "2"]}' in header
        raw["output"] = {"kind": "labels", "classes": ["0", "1", "2"]}
    lt = LoopThread()
    request.addfinalizer(lt.stop)
    up = AppServer(kserve_v1_app(raw["model"], probabilities), lt)
    request.addfinalizer(up.close)
    raw = _local(raw, tmp_path)
    raw["server"]["proxy"]["upstream"] = up.url
    raw["rules"]["alertmanager"] = []

    from monitor.config import parse_config
    from monitor.server.app import build_sidecar, create_app
    from tests.sidecar_support import RunningSidecar

    sidecar = build_sidecar(parse_config(raw, str(tmp_path / "monitor.yaml"), tmp_path))
    server = serve(create_app(sidecar), "process")
    s = RunningSidecar(sidecar, server, server.url)
    try:
        assert wait_until(lambda: sidecar.ready), sidecar.load_error
        body = _documented_request(KSERVE_V1)
        path = f"/v1/models/{raw['model']}:predict"
        for _ in range(10):
            r = http("POST", s.url + path, body, {"X-Api-Key": "team-a"})
            assert r.status == 200, r.body
            assert r.json() == json.loads(http("POST", up.url + path, body).body)
        assert http("GET", s.url + f"/v1/models/{raw['model']}").json() == {"name": raw["model"], "ready": True}
        s.flush()
        text = s.metrics()
        classes = ("versicolor", "setosa") if probabilities else ("1", "0")
        for c in classes:  # the documented request's two rows, ten times
            assert sample(text, "monitor_predicted_class_total", model=raw["model"], **{"class": c}) == 10, c
        assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="v1", code="2xx") == 10
        assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="other", code="2xx") == 1
        assert total(text, "monitor_intake_events_refused_total") == 0
    finally:
        s.close()
        for mon in sidecar.all_monitors():
            mon.close()


# -- every example ----------------------------------------------------------------------------------
def _yaml_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_every_yaml_file_in_examples_parses() -> None:
    files = _yaml_files()
    assert len(files) >= 8
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path


def _monitor_config_files() -> list[Path]:
    out = []
    for path in _yaml_files():
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if len(docs) == 1 and ("model" in docs[0] or "models" in docs[0]) and "kind" not in docs[0]:
            out.append(path)
    return out


@pytest.mark.parametrize("path", _monitor_config_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_monitor_config_file_in_examples_passes_the_check(path: Path) -> None:
    _config_check(path)


def test_the_configs_in_manifests_are_the_ones_run_above() -> None:
    """A monitor config inside a manifest (a ConfigMap's monitor.yaml) is checked by running its
    pod above; a new one needs a test of its own."""
    assert {p.relative_to(EXAMPLES).as_posix() for p in _monitor_config_files()} >= {
        "monitor.yaml", "image/monitor.yaml", "gunicorn_app/sidecar.yaml", "replay/monitor.yaml"}
    embedded = {(path.relative_to(EXAMPLES).as_posix(), d["metadata"]["name"])
                for path in _yaml_files() for d in yaml.safe_load_all(path.read_text())
                if d and d.get("kind") == "ConfigMap" and "monitor.yaml" in d.get("data", {})}
    assert embedded == {("k8s/monitor-sidecar.yaml", "iris-monitor"), ("kserve/monitor-service.yaml", "model-monitor")}
