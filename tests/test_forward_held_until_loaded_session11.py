"""Datagrams that arrive while the sidecar is still loading its models wait in the socket.

Found by the session-11 ML-engineer walkthrough: the forwarding sockets are bound before the
models load (so that a path or port in use stops the start), and every datagram read in between
was refused as ``not_ready``, 185 to 300 events per restart, with the advice "retry shortly" that
no forwarding worker can follow (it gets no answer). They are now held, in the sidecar's memory
since the forwarding review (a Unix socket queues only a handful), and processed once the
models are there.
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

        def flaky(pieces, **kwargs):
            calls.append(len(pieces))
            if len(calls) == 2:
                raise RuntimeError("a bug in the sender")
            return real_send(pieces, **kwargs)

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


_WORKER = """
import json, sys
from monitor.forwarding import ForwardingMonitor

fm = ForwardingMonitor("iris", sys.argv[1], batch_max=200, start=False)
for i in range(3000):
    fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]], request_id=f"{sys.argv[2]}-{i}")
fm.close()  # not started: sends everything now, each datagram waiting send_timeout_s at most
c = fm.counters()
print(json.dumps({"sent": c.events_sent, "dropped": c.dropped}))
"""


def test_worker_processes_sending_over_unix_while_the_models_load_drop_nothing(tmp_path):
    """The forwarding review: the datagrams were left in the Unix socket while the models loaded,
    but a Unix datagram socket queues ``net.unix.max_dgram_qlen`` datagrams (10 by default, and in
    every pod's network namespace) whatever ``receive_buffer_bytes`` says, and each sender's send
    buffer holds some 200 KB of unread ones: three workers sending 15 datagrams of 20 KB each
    dropped most of them as ``socket_full`` (3 s of loading under traffic at 100 calls/s per
    worker: 745 of 800 events). They are now read into memory and processed once loaded."""
    import json
    import subprocess
    import sys

    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor
    from tests.conftest import REPO_ROOT

    release = threading.Event()

    def slow_factory(cfg):
        release.wait(120)
        return Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False))

    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path, factory=slow_factory, wait_ready=False)
    try:
        assert wait_until(lambda: os.path.exists(sock), 10)
        procs = [subprocess.Popen([sys.executable, "-c", _WORKER, f"unix://{sock}", str(w)], cwd=REPO_ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(3)]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        assert not s.sidecar.ready  # every datagram was sent while the models loaded
        assert [r["dropped"] for r in results] == [{}, {}, {}] and [r["sent"] for r in results] == [3000] * 3
        release.set()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 9000, 30)
        text = s.metrics()
        assert total(text, "monitor_forward_datagrams_lost_total") == 0
        assert total(text, "monitor_intake_events_refused_total", endpoint="forward") == 0
    finally:
        release.set()
        s.close()


def test_datagrams_beyond_the_hold_while_loading_are_counted_lost(tmp_path):
    """What the models' loading holds is bounded by ``server.forward.receive_buffer_bytes``; the
    datagrams beyond it are not processed, and counted lost by their sender's sequence number."""
    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor
    from monitor.server.forward import REORDER_S

    release = threading.Event()

    def slow_factory(cfg):
        release.wait(120)
        return Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False))

    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock, "receive_buffer_bytes": 65536}}}, tmp_path,
                      factory=slow_factory, wait_ready=False)
    fm = ForwardingMonitor("iris", f"unix://{sock}", batch_max=200, start=False)
    try:
        assert wait_until(lambda: os.path.exists(sock), 10)
        for i in range(4000):  # 20 datagrams of some 20 KB: three fit in 64 KiB
            fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]], request_id=f"r{i}")
        fm.flush()
        assert fm.counters().dropped == {} and fm.counters().datagrams_sent == 20
        assert not s.sidecar.ready
        release.set()
        assert wait_until(lambda: s.sidecar.ready, 20)
        fm.observe([[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]])
        fm.flush()  # the 21st: the numbers not held are a gap in its sender's sequence
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_datagrams_lost_total") == 17, REORDER_S + 20)
        assert total(s.metrics(), "monitor_forward_events_received_total") == 3 * 200 + 1
    finally:
        release.set()
        fm.close()
        s.close()
