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
