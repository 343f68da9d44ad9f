"""Real Prometheus and Alertmanager processes for tests, on 127.0.0.1 free ports with temporary
directories, and a webhook receiver that records what Alertmanager delivers.

Each server is started with :meth:`start` (which waits for ``/-/ready``) and stopped with
:meth:`stop` (SIGTERM, then SIGKILL after a grace period); both are context managers. Their logs
are kept in the temporary directory and included in errors, so a failed start says why.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port

__all__ = ["Process", "Prometheus", "Alertmanager", "Sidecar", "WebhookReceiver", "http_json"]


def http_json(url: str, data: Any = None, timeout: float = 10.0) -> Any:
    """GET (or POST ``data`` as JSON) and decode the JSON answer."""
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode() or "null")


class Process:
    """A server binary run in ``workdir`` with its output in ``workdir/<name>.log``."""

    name = "process"
    ready_path = "/-/ready"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    def args(self) -> list[str]:
        raise NotImplementedError

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def start(self, timeout: float = 30.0) -> "Process":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.binary, *self.args()], stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:g}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> "Process":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Prometheus(Process):
    """A Prometheus server scraping ``targets`` (``job -> [host:port]``) every ``scrape_interval``,
    evaluating ``rule_files`` and sending alerts to ``alertmanager`` (host:port) when given."""

    name = "prometheus"

    def __init__(self, binary: str, workdir: Path, targets: dict[str, list[str]], *, rule_files: list[Path] = (),
                 alertmanager: str | None = None, scrape_interval: str = "1s", evaluation_interval: str = "1s",
                 base_config: dict[str, Any] | None = None) -> None:
        super().__init__(binary, workdir)
        config = dict(base_config or {})
        config["global"] = {**config.get("global", {}), "scrape_interval": scrape_interval,
                            "scrape_timeout": scrape_interval, "evaluation_interval": evaluation_interval}
        config["scrape_configs"] = [
            {"job_name": job, "static_configs": [{"targets": list(hosts)}]} for job, hosts in targets.items()
        ]
        config["rule_files"] = [str(p) for p in rule_files]
        if alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        else:
            config.pop("alerting", None)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def args(self) -> list[str]:
        return [
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    def api(self, path: str, **params: Any) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        reply = http_json(url)
        if reply.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} failed: {reply}")
        return reply["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query: the result vector (empty if no data)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        """Range query: one entry per series with its ``values`` [[t, "v"], ...]."""
        return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")["result"]

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        """What Grafana's ``label_values(match, label)`` lists over the time range."""
        return self.api(f"label/{label}/values", **{"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}"})

    def targets_up(self) -> dict[str, str]:
        """scrapeUrl -> health of each active target."""
        return {t["scrapeUrl"]: t["health"] for t in self.api("targets")["activeTargets"]}


class Alertmanager(Process):
    """An Alertmanager (clustering off) routing every alert to ``webhook_url`` with short group timers."""

    name = "alertmanager"

    def __init__(self, binary: str, workdir: Path, webhook_url: str) -> None:
        super().__init__(binary, workdir)
        config = {
            "route": {"receiver": "webhook", "group_by": ["alertname", "model"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
        }
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        return [
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        return http_json(f"{self.url}/api/v2/alerts")


class Sidecar(Process):
    """``monitor serve --config <config>`` in a subprocess of this interpreter, ready on ``/readyz``."""

    name = "sidecar"
    ready_path = "/readyz"

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        import sys

        super().__init__(sys.executable, workdir)
        config = {**config, "server": {**config.get("server", {}), "addr": "127.0.0.1", "port": self.port}}
        self.config_path = workdir / "monitor.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def args(self) -> list[str]:
        return ["-c", "from monitor.cli import main; main()", "serve", "--config", str(self.config_path),
                "--log-level", "warning"]


class WebhookReceiver:
    """Records every notification POSTed to it (Alertmanager's webhook format), with arrival time."""

    def __init__(self) -> None:
        self.notifications: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with received._lock:
                    received.notifications.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="webhook")
        self.thread.start()

    def alerts(self) -> list[tuple[float, dict[str, Any]]]:
        """(arrival time, alert) for every alert of every notification so far."""
        with self._lock:
            return [(t, a) for t, n in self.notifications for a in n.get("alerts", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
