"""``server.worker_nice``: the threads that load the models and run their workers get a lower
priority than the sidecar's event loop (and the proxy's data path), on Linux where nice is per thread."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from monitor.config import ConfigError
from tests.sidecar_support import http, quiet_factory, start_sidecar
from tests.test_proxy import IRIS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def nice_of(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_the_workers_run_niced_and_the_event_loop_does_not(tmp_path):
    s = start_sidecar({**IRIS, "server": {"worker_nice": 7}}, tmp_path, factory=quiet_factory())
    try:
        worker = s.monitor().worker._thread
        assert worker.is_alive() and nice_of(worker.native_id) == max(7, os.getpriority(os.PRIO_PROCESS, 0))
        loop_tid = s.server.lt.thread.native_id
        assert nice_of(loop_tid) == nice_of(threading.main_thread().native_id)
        assert nice_of(loop_tid) < 7
        assert http("POST", s.url + "/v1/events", [{"inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3]}]).status == 202
    finally:
        s.close()


def test_worker_nice_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="server.worker_nice"):
        start_sidecar({**IRIS, "server": {"worker_nice": 40}}, tmp_path, factory=quiet_factory())
