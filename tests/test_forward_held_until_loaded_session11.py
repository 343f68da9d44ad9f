"""Datagrams that arrive while the sidecar is still loading its models wait in the socket.

Found by the session-11 ML-engineer walkthrough: the forwarding sockets are bound before the
models load (so that a path or port in use stops the start), and every datagram read in between
was refused as ``not_ready``, 185 to 300 events per restart, with the advice "retry shortly" that
no forwarding worker can follow (it gets no answer). They are now left in the receive buffer
and processed once the models are there.
"""

from __future__ import annotations

import os
import threading

import pytest

from monitor.forwarding import ForwardingMonitor
from tests.sidecar_support import sample, start_sidecar, total, wait_until

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def test_datagrams_sent_while_the_models_load_are_processed_not_refused(tmp_path):
    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor

    release = threading.Event()

    def slow_factory(cfg):  # a big reference, a slow volume: loading takes a while
        release.wait(30)
        return Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False))

    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path, factory=slow_factory, wait_ready=False)
    fm = ForwardingMonitor("iris", f"unix://{sock}", flush_interval_s=0.01)
    try:
        assert wait_until(lambda: os.path.exists(sock), 10)
        assert not s.sidecar.ready
        for i in range(40):
            fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]], request_id=f"r{i}")
        fm.flush()
        assert fm.counters().events_sent == 40 and not fm.counters().dropped
        release.set()
        assert wait_until(lambda: s.sidecar.ready, 20)
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 40, 20)
        text = s.metrics()
        assert sample(text, "monitor_intake_events_refused_total", model="_sidecar", endpoint="forward",
                      reason="not_ready") is None, text
    finally:
        release.set()
        fm.close()
        s.close()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("transport", ["unix", "udp"])
def test_monitor_serve_with_forwarding_starts_and_receives_on_every_event_loop(tmp_path, loop, transport):
    """The final review: holding the datagrams by pausing the transports crashed ``monitor serve``
    at start under uvloop (the default loop), whose datagram transports cannot pause reading.
    The real command, on both loops and both transports."""
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from tests.conftest import REPO_ROOT, free_port

    if loop == "uvloop":
        pytest.importorskip("uvloop")
    if transport == "unix":
        target, forward = f"unix://{tmp_path / 'fw.sock'}", {"unix": str(tmp_path / "fw.sock")}
    else:
        port = free_port()  # a TCP port number nobody holds; its UDP twin is free alike on loopback in practice
        target, forward = f"udp://127.0.0.1:{port}", {"udp": f"127.0.0.1:{port}"}
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "forward": forward}}))
    ready = tmp_path / "ready"
    with open(tmp_path / "serve.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config",
                                 str(tmp_path / "monitor.yaml"), "--ready-file", str(ready), "--loop", loop],
                                cwd=REPO_ROOT, stdout=out, stderr=out)
    fm = None
    try:
        assert wait_until(lambda: (ready.exists() and ready.read_text().strip() != "") or proc.poll() is not None, 30)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        host, http_port = ready.read_text().split()[0].rsplit(":", 1)
        url = f"http://{host}:{http_port}"
        fm = ForwardingMonitor("iris", target, flush_interval_s=0.01)
        for i in range(20):
            fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]], request_id=f"r{i}")
        fm.flush()
        from tests.sidecar_support import http

        def received() -> float:
            return total(http("GET", url + "/metrics").body.decode(), "monitor_forward_events_received_total") or 0

        assert wait_until(lambda: received() == 20, 20), (tmp_path / "serve.log").read_text()
        time.sleep(0.05)
    finally:
        if fm is not None:
            fm.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "serve.log").read_text()


def test_a_failure_while_forwarding_counts_the_events_it_held(tmp_path, monkeypatch):
    """The final review: an unexpected exception in the sender (not an OSError, which is counted
    by reason) was counted with n=0, a no-op: the events drained from the queue were lost unseen.
    Now what the failing drain still held is counted as internal_error, and what it had sent is
    not."""
    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("iris", f"unix://{sock}", start=False, max_datagram_bytes=2_000)
    try:
        real_send, calls = fm._send, []

        def flaky(pieces):
            calls.append(len(pieces))
            if len(calls) == 2:
                raise RuntimeError("a bug in the sender")
            return real_send(pieces)

        monkeypatch.setattr(fm, "_send", flaky)
        for i in range(60):
            fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]], request_id=f"r{i}")
        fm.send_pending()
        c = fm.counters()
        assert calls[0] < 60 and c.dropped.get("internal_error") == 60 - calls[0], (calls, c)
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == calls[0])
    finally:
        fm.close()
        s.close()
