"""Forwarding across a sidecar's shutdown: what the workers send is processed or counted.

Found by the forwarding review (four workers forwarding ~40,000 events/s over a restart of
``monitor serve``: 440 to 1,380 events sent to the old sidecar were in neither sidecar's counters).
On SIGTERM the sidecar stopped accepting events at once but read its forwarding socket until its
HTTP requests in flight were done (up to 3/4 of ``server.shutdown_timeout``): every datagram read
meanwhile was refused as ``shutting_down``, in a counter that died with the process a moment
later, while its worker had counted the events sent. Forwarding now stops with the rest of the
intake: the socket goes, the workers' next sends find no sidecar and count their events
(``sidecar_unavailable``), which the next sidecar exports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import yaml

from monitor.forwarding import ForwardingMonitor
from tests.conftest import REPO_ROOT
from tests.sidecar_support import sample, start_sidecar, total, wait_until

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
ROW, PROBS = [[1.0, 2.0, 3.0, 4.0]], [[0.2, 0.5, 0.3]]


def test_events_forwarded_while_a_sidecar_stops_are_counted_by_the_workers(tmp_path):
    sock = str(tmp_path / "fw.sock")
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "forward": {"unix": sock}}}))
    ready, log_path = tmp_path / "ready", tmp_path / "serve.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--config", str(tmp_path / "monitor.yaml"),
                                 "--ready-file", str(ready)], cwd=REPO_ROOT, stdout=out, stderr=out)
    fm = ForwardingMonitor("iris", f"unix://{sock}", start=False)
    slow = None
    try:
        assert wait_until(lambda: (ready.exists() and ready.read_text().strip() != "") or proc.poll() is not None, 30)
        assert proc.poll() is None, log_path.read_text()
        host, port = ready.read_text().split()[0].rsplit(":", 1)
        # a request in flight (its body half sent) holds the shutdown's first step open
        slow = socket.create_connection((host, int(port)))
        slow.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                     b"Content-Length: 1000\r\n\r\n{")
        proc.send_signal(signal.SIGTERM)
        # the log line comes just before the forwarding socket's file goes: waiting for the line
        # alone sent some of the events below to the closing receiver (failed once under load)
        assert wait_until(lambda: "signal SIGTERM" in log_path.read_text() and not os.path.exists(sock), 20), \
            log_path.read_text()
        for _ in range(30):
            fm.observe(ROW, PROBS)
        fm.flush()
        c = fm.counters()
        assert (c.events_sent, c.dropped) == (0, {"sidecar_unavailable": 30}), log_path.read_text()
        slow.close()
        slow = None
        assert proc.wait(30) == 0, log_path.read_text()
        # the next sidecar hears of them from the worker
        s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path / "next")
        try:
            fm.observe(ROW, PROBS)
            fm.flush()
            assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 1)
            assert sample(s.metrics(), "monitor_forward_events_dropped_total", model="_sidecar",
                          reason="sidecar_unavailable") == 30
        finally:
            s.close()
    finally:
        if slow is not None:
            slow.close()
        fm.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_datagrams_queued_in_the_socket_when_forwarding_stops_are_processed(tmp_path):
    """What the kernel still queues when the receiver closes (the event loop was busy when the
    signal came) is read and processed, not closed away with the socket."""
    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("iris", f"unix://{sock}", batch_max=10, start=False)
    try:
        from monitor.server import keys as K

        receiver = s.server.app[K.FORWARD]

        async def busy_loop_then_stop() -> None:  # on the loop: nothing is read in between
            for _ in range(5):
                for _ in range(10):
                    fm.observe(ROW, PROBS)
                fm.flush()
            receiver.close()

        s.server.lt.call(busy_loop_then_stop())
        assert fm.counters().events_sent == 50
        assert total(s.metrics(), "monitor_forward_events_received_total") == 50
    finally:
        fm.close()
        s.close()
