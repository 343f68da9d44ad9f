"""examples/prometheus/README.md's "Running it on one machine" commands, run as written with the
real binaries (on free loopback ports and temporary storage instead of 9090/9093 and /tmp): the
exported rules load, Prometheus finds the Alertmanager and both scrape targets, the sidecar
command serves the example config on the port Prometheus scrapes, and alertmanager.yml routes a
critical alert to ``page`` and a warning to ``ticket``."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT, free_port, require_binary

EXAMPLE = REPO_ROOT / "examples" / "prometheus"
SECTION = "## Running it on one machine"


def _commands() -> list[str]:
    """The shell lines of the section's sh block."""
    text = (EXAMPLE / "README.md").read_text()
    section = text[text.index(SECTION):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, f"no sh block under {SECTION!r}"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def _one(commands: list[str], program: str) -> list[str]:
    found = [shlex.split(c.rstrip("&").strip()) for c in commands if c.split()[0] == program]
    assert len(found) == 1, f"expected one {program} command in {SECTION!r}, got {found}"
    return found[0]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout:g}s:\n{log.read_text()[-3000:]}")


def _until(check, timeout: float = 30.0):  # noqa: ANN001, ANN202 - a polling helper
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_the_one_machine_commands_run_as_written(tmp_path: Path) -> None:
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    commands = _commands()
    assert commands[0] == "sudo apt-get install -y prometheus prometheus-alertmanager"

    # A copy of the checkout's rules/ and examples/, so the export writes into the copy.
    shutil.copytree(REPO_ROOT / "rules", tmp_path / "rules")
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    ports = {"9090": str(free_port()), "9093": str(free_port()), "9108": str(free_port()),
             "9109": str(free_port())}

    def local(args: list[str]) -> list[str]:
        out = []
        for arg in args:
            for default, port in ports.items():
                arg = arg.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
            out.append(arg.replace("/tmp/", f"{tmp_path}/"))
        return out

    # prometheus.yml names the ports of this README: point the copy at the free ones.
    config = tmp_path / "examples" / "prometheus" / "prometheus.yml"
    text = config.read_text()
    for default, port in ports.items():
        assert f"127.0.0.1:{default}" in text or default == "9090", f"prometheus.yml has no 127.0.0.1:{default}"
        text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{ports[default]}")
    config.write_text(text)

    export = _one(commands, "monitor")
    monitor_bin = str(Path(sys.executable).parent / "monitor")
    rules_glob = [str(p.relative_to(tmp_path)) for p in sorted((tmp_path / "rules").glob("*.yml"))]
    argv = [monitor_bin, *[a for a in export[1:] if a != "rules/*.yml"]]
    argv[argv.index("export") + 1:argv.index("export") + 1] = rules_glob  # the shell's glob
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    exported = yaml.safe_load((tmp_path / "examples" / "prometheus" / "model-monitor.rules.yml").read_text())
    groups = {g["name"] for g in exported["groups"]}
    assert groups, "the export wrote no rule group"

    am_args = local(_one(commands, "prometheus-alertmanager"))
    prom_args = local(_one(commands, "prometheus"))
    check = subprocess.run([shutil.which("amtool") or "/usr/bin/amtool", "check-config",
                            str(tmp_path / "examples" / "prometheus" / "alertmanager.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    processes: list[subprocess.Popen[bytes]] = []
    try:
        logs = {name: tmp_path / f"{name}.log" for name in ("alertmanager", "prometheus", "sidecar")}
        with open(logs["alertmanager"], "wb") as log:
            processes.append(subprocess.Popen([alertmanager_bin, *am_args[1:]], cwd=tmp_path, stdout=log,
                                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        am_url = f"http://127.0.0.1:{ports['9093']}"
        _wait(f"{am_url}/-/ready", processes[-1], logs["alertmanager"])
        with open(logs["prometheus"], "wb") as log:
            processes.append(subprocess.Popen([prometheus_bin, *prom_args[1:]], cwd=tmp_path, stdout=log,
                                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        prom_url = f"http://127.0.0.1:{ports['9090']}"
        _wait(f"{prom_url}/-/ready", processes[-1], logs["prometheus"])

        # The sidecar as the README starts it, on the port Prometheus scrapes.
        sidecar = re.search(r"`(monitor serve --config examples/monitor\.yaml --port 9109)`",
                            (EXAMPLE / "README.md").read_text())
        assert sidecar, "the README no longer says how to start the sidecar on 9109"
        serve = [monitor_bin, *local(shlex.split(sidecar.group(1)))[1:]]
        serve[serve.index("--port") + 1] = ports["9109"]
        with open(logs["sidecar"], "wb") as log:
            processes.append(subprocess.Popen(serve, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL))
        _wait(f"http://127.0.0.1:{ports['9109']}/readyz", processes[-1], logs["sidecar"])

        loaded = {g["name"] for g in _get(f"{prom_url}/api/v1/rules")["data"]["groups"]}
        assert loaded == groups
        found = _until(lambda: _get(f"{prom_url}/api/v1/alertmanagers")["data"]["activeAlertmanagers"])
        assert [a["url"] for a in found] == [f"{am_url}/api/v2/alerts"]
        def targets() -> dict[str, str]:
            return {t["labels"]["job"]: t["health"] for t in _get(f"{prom_url}/api/v1/targets")["data"]["activeTargets"]}

        health = _until(lambda: (t := targets()).get("model-monitor-sidecar") == "up" and t.get("model-app") == "down" and t)
        health = health or targets()
        # Nothing listens where the decorated app would be: its target is down, the sidecar's up.
        assert health == {"model-app": "down", "model-monitor-sidecar": "up"}, health

        alerts = [{"labels": {"alertname": name, "model": "iris", "severity": severity}}
                  for name, severity in (("MonitorInternalErrors", "critical"), ("ModelInputDrift", "warning"))]
        request = urllib.request.Request(f"{am_url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        def receivers() -> dict[str, list[str]]:
            return {a["labels"]["alertname"]: [r["name"] for r in a["receivers"]] for a in _get(f"{am_url}/api/v2/alerts")}

        routed = _until(lambda: len(r := receivers()) == 2 and r) or receivers()
        assert routed == {"MonitorInternalErrors": ["page"], "ModelInputDrift": ["ticket"]}
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

