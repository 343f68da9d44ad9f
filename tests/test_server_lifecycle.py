"""``monitor serve`` as a real process: graceful SIGTERM (drain, final rule evaluation, final
checkpoint) and kill -9 followed by a restart that restores the state without re-paging."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from tests.conftest import REPO_ROOT
from tests.sidecar_support import AppServer, http, sample, wait_until


class Webhook:
    """A real HTTP receiver of Alertmanager-format webhook notifications."""

    def __init__(self) -> None:
        self.received: list[dict] = []

        async def hook(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.server = AppServer(app)
        self.url = self.server.url + "/hook"

    def alerts(self, name: str) -> list[dict]:
        return [a for body in self.received for a in body.get("alerts", []) if a["labels"].get("alertname") == name]

    def close(self) -> None:
        self.server.close()


class ServeProcess:
    def __init__(self, config: Path) -> None:
        self.ready_file = config.parent / f"ready-{time.monotonic_ns()}"
        self.log = open(config.parent / "serve.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config", str(config),
                                      "--ready-file", str(self.ready_file)], cwd=REPO_ROOT, stdout=self.log, stderr=self.log)
        assert wait_until(lambda: self.ready_file.exists() and self.ready_file.read_text().strip() != "" or self.proc.poll() is not None, 30)
        assert self.proc.poll() is None, (config.parent / "serve.log").read_text()
        host, port = self.ready_file.read_text().split()[0].rsplit(":", 1)
        self.url = f"http://{host}:{port}"
        assert wait_until(lambda: http("GET", self.url + "/readyz").status == 200, 30)

    def metrics(self) -> str:
        return http("GET", self.url + "/metrics").body.decode()

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self.log.close()
        return code


def write_config(tmp_path: Path, webhook: str, rule_interval: str = "1s") -> Path:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "sidecar-test", "rules": [
        {"alert": "AlwaysOn", "expr": "vector(1)", "for": "0s", "labels": {"severity": "info"}},
    ]}]}))
    cfg = {"model": "iris", "features": ["a", "b", "c", "d"],
           "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
           "rules": {"files": ["rules.yml"], "interval": rule_interval, "webhook": [webhook], "log": False},
           "checkpoint": {"path": "state/iris.ckpt", "interval": "300ms"},
           "server": {"port": 0}}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def events(start: int, n: int) -> list[dict]:
    return [{"inputs": [i % 5, 1.0, 2.0, 3.0], "outputs": [0.2, 0.5, 0.3], "request_id": f"r{i}"} for i in range(start, start + n)]


@pytest.fixture
def webhook():
    w = Webhook()
    yield w
    w.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_drains_evaluates_rules_once_more_and_checkpoints(tmp_path, webhook):
    config = write_config(tmp_path, webhook.url, rule_interval="1h")  # no scheduled evaluation during the test
    serve = ServeProcess(config)
    assert http("POST", serve.url + "/v1/events", events(0, 50)).status == 202
    assert webhook.alerts("AlwaysOn") == []
    assert serve.stop(signal.SIGTERM) == 0
    # the final rule evaluation ran and its notification was delivered before the process exited
    (alert,) = webhook.alerts("AlwaysOn")
    assert alert["status"] == "firing"
    # the queue was drained into the state before the final checkpoint: every request id is there
    from monitor import checkpoint

    state, _ = checkpoint.load(tmp_path / "state" / "iris.ckpt", model="iris")
    assert sorted(state["joiner"]["ids"]) == sorted(f"r{i}" for i in range(50))
    log = (tmp_path / "serve.log").read_text()
    assert "stopping intake" in log and "Traceback" not in log


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_then_restart_restores_state_and_does_not_page_again(tmp_path, webhook):
    config = write_config(tmp_path, webhook.url)
    first = ServeProcess(config)
    assert wait_until(lambda: len(webhook.alerts("AlwaysOn")) == 1, 20)
    before = http("GET", first.url + "/api/v1/alerts").json()["data"]["alerts"]
    active_at = {a["labels"]["alertname"]: a["activeAt"] for a in before}
    assert http("POST", first.url + "/v1/events", events(0, 200)).status == 202
    posted = time.time()
    # wait for a checkpoint written after the events went in, then kill without any shutdown
    assert wait_until(lambda: (sample(first.metrics(), "monitor_checkpoint_last_success_timestamp_seconds", model="iris") or 0) > posted + 0.1, 20)
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(30)
    first.log.close()

    second = ServeProcess(config)
    try:
        assert sample(second.metrics(), "monitor_checkpoint_restored", model="iris") == 1
        # a crash: the periodic checkpoint's counters are not restored (they would be behind the
        # last scrape, a reset to a non-zero value that increase() counts twice); they start at zero
        assert (sample(second.metrics(), "monitor_intake_events_accepted_total", model="iris", endpoint="events") or 0) == 0
        assert "counters start at zero" in (tmp_path / "serve.log").read_text()
        after = http("GET", second.url + "/api/v1/alerts").json()["data"]["alerts"]
        restored = {a["labels"]["alertname"]: a for a in after}
        assert restored["AlwaysOn"]["state"] == "firing"
        assert restored["AlwaysOn"]["activeAt"] == active_at["AlwaysOn"]  # the same alert, not a new one
        # several evaluations later, still one notification: nothing was re-sent as new
        evals = lambda: sample(second.metrics(), "monitor_rule_evaluations_total", model="iris") or 0  # noqa: E731
        start = evals()
        wait_until(lambda: evals() >= start + 3, 20)
        firing = [a for a in webhook.alerts("AlwaysOn") if a["status"] == "firing"]
        assert len({a["startsAt"] for a in firing}) == 1 and len(firing) == 1
        # the label joiner's state survived: predictions made before the kill still get their labels
        r = http("POST", second.url + "/v1/feedback", {"request_ids": [f"r{i}" for i in range(200)], "labels": ["setosa"] * 200})
        assert r.status == 202
        assert wait_until(lambda: (sample(second.metrics(), "monitor_feedback_labels_total", model="iris", outcome="joined") or 0) == 200, 20)
    finally:
        assert second.stop(signal.SIGTERM) == 0
