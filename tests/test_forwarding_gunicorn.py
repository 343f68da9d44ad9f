"""The gunicorn forwarding example, run for real: several gunicorn worker processes, each with a
decorator in forwarding mode, feed one sidecar (examples/gunicorn_app)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO_ROOT, free_port
from tests.sidecar_support import http, sample, start_sidecar, total, wait_until

EXAMPLE = REPO_ROOT / "examples" / "gunicorn_app"


def _gunicorn() -> str:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        pytest.skip("gunicorn is not installed (pip install gunicorn; it belongs in the dev extra)")
    return sys.executable


def test_gunicorn_workers_feed_one_sidecar(tmp_path):
    python = _gunicorn()
    raw = yaml.safe_load((EXAMPLE / "sidecar.yaml").read_text())
    sock = str(tmp_path / "forward.sock")
    raw["server"] = {"forward": {"unix": sock}}
    raw["checkpoint"]["path"] = str(tmp_path / "state" / "{model}.ckpt")
    s = start_sidecar(raw, tmp_path)
    port = free_port()
    env = {**os.environ, "MONITOR_FORWARD": f"unix://{sock}", "BIND": f"127.0.0.1:{port}", "WORKERS": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen([python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:application"], cwd=EXAMPLE,
                            env=env, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return http("GET", url + "/healthz", timeout=2).status == 200
            except OSError:
                return False

        assert wait_until(up, 60), (tmp_path / "gunicorn.log").read_text()
        for i in range(90):
            r = http("POST", url + "/predict", {"instances": [[5.1 + i % 3, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
                     {"X-Client-Id": f"client-{i % 4}"})
            assert r.status == 200
            assert len(r.json()["predictions"]) == 2
        assert wait_until(lambda: (sample(s.metrics(), "monitor_forward_events_received_total", model="iris", transport="unix") or 0) == 90, 30)
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_calls_total", model="iris") == 90
        assert sample(text, "monitor_predictions_total", model="iris") == 180
        assert total(text, "monitor_forward_events_dropped_total") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
        s.close()
