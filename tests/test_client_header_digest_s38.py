"""The proxy and the CloudEvents intake track a long client header (a bearer token, a JWT) as its
digest, as POST /v1/events and an in-process Monitor do (beec0a7): they cut it to 200 characters,
so two tokens of one issuer sharing their first 200 characters were one client for the probing
detector, and the full token found nothing in POST /api/v1/clients/lookup."""

from __future__ import annotations

import json
from types import SimpleNamespace

from monitor.events import id_key
from monitor.server.cloudevents import _client
from monitor.server.proxy import Proxy

PREFIX = "Bearer eyJ" + "a" * 250


def test_the_proxy_tracks_a_long_client_header_by_its_digest() -> None:
    one, two = Proxy.client_identity(PREFIX + "one", "10.0.0.1"), Proxy.client_identity(PREFIX + "two", "10.0.0.1")
    assert one != two and one == id_key(PREFIX + "one")
    assert Proxy.client_identity("short-key", "10.0.0.1") == "short-key"
    assert Proxy.client_identity(None, "10.0.0.1") == "10.0.0.1"


def test_cloudevents_track_a_long_client_header_by_its_digest() -> None:
    def event(value: str) -> SimpleNamespace:  # KServe's ce-metadata: the request headers the logger copies
        return SimpleNamespace(attributes={"metadata": json.dumps({"X-Api-Key": [value]})}, data=None)

    one, two = _client(event(PREFIX + "one"), "X-Api-Key"), _client(event(PREFIX + "two"), "X-Api-Key")
    assert one != two and one == id_key(PREFIX + "one")


def test_an_integer_client_too_long_for_str_is_one_client_not_an_internal_error() -> None:
    """An integer client of more than 4,300 digits made str() raise in the row builder: the call
    was lost as an internal error (s38h's note). It is one client (its hex), in process and in
    what a forwarding worker sends."""
    import numpy as np
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.events import client_text
    from monitor.forwarding import _sendable_client

    huge = 10**5000
    assert client_text(huge) == hex(huge) and _sendable_client(huge) == id_key(hex(huge))
    mon = Monitor(model="m", config={"features": ["a"], "output": {"kind": "regression"}},
                  registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(np.zeros((2, 1)), [0.5, 0.7], client=huge)
        mon.flush()
        assert mon.store.value("monitor_internal_errors", {"stage": "ingest"}) in (None, 0)
        assert mon.store.value("monitor_predictions") == 2
    finally:
        mon.close()


def test_a_worker_writes_numpy_latencies_without_importing_the_pipeline() -> None:
    """A numpy float32 or integer latency took the forwarding worker's rare path, which imports
    monitor.pipeline (about 27 modules) into the worker (s38j's note); numpy's numbers are their
    values. Checked in a fresh interpreter: nothing else imports the pipeline there."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from monitor.forwarding import encode_event\n"
            "from monitor.events import PREDICTION\n"
            "for v in (np.float32(0.5), np.int64(2), np.uint16(3), np.float64(0.25)):\n"
            "    encode_event((PREDICTION, 1.0, [[1.0]], [0.5], v, None, None, None, None))\n"
            "print('monitor.pipeline' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", (done.stdout, done.stderr)
