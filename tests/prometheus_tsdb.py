"""A real Prometheus v2.42 answering queries over data backfilled into its TSDB, for tests that
hold the in-agent engine to it (``promtool tsdb create-blocks-from openmetrics``, then
``prometheus`` on a free loopback port)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import free_port, require_binary


@contextlib.contextmanager
def prometheus_over(openmetrics: str, tmp: Path) -> Iterator[int]:
    """Backfill ``openmetrics`` (text ending in ``# EOF``) and serve it; yields the port."""
    prometheus = require_binary("prometheus")
    promtool = require_binary("promtool")
    (tmp / "data.om").write_text(openmetrics)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(tmp / "data.om"),
                    str(tmp / "tsdb")], check=True, capture_output=True, timeout=120)
    (tmp / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    proc = subprocess.Popen(
        [prometheus, f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=10y", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"prometheus did not become ready on port {port}: {err[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def query(port: int, expr: str, t: float) -> dict[str, Any]:
    """``/api/v1/query`` at ``t``: the JSON answer, an error's too (400/422 carry it as JSON)."""
    url = (f"http://127.0.0.1:{port}/api/v1/query?" +
           urllib.parse.urlencode({"query": expr, "time": f"{t:.3f}"}))
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        return json.load(exc)
