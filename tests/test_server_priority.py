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


def test_with_the_data_path_in_its_own_process_the_whole_sidecar_is_niced_but_not_the_data_path(tmp_path):
    """``monitor serve --proxy``: every thread of the sidecar at ``worker_nice`` (but the one that
    starts the data path processes), the data path process at the priority the sidecar began with."""
    import signal

    import yaml

    from tests.sidecar_support import AppServer, child_pids, wait_until
    from tests.test_proxy import oip, upstream_app
    from tests.test_server_lifecycle import ServeProcess

    upstream = AppServer(upstream_app())
    try:
        path = tmp_path / "monitor.yaml"
        path.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "worker_nice": 7,
                                                            "proxy": {"oip_output": "probs", "upstream": upstream.url}}}))
        base = os.getpriority(os.PRIO_PROCESS, 0)
        if base >= 7:
            pytest.skip("the test process already runs at nice 7 or more")
        serve = ServeProcess(path)
        pid = serve.proc.pid

        def nices(p: int) -> dict[int, int]:
            out = {}
            for tid in os.listdir(f"/proc/{p}/task"):
                try:
                    with open(f"/proc/{p}/task/{tid}/stat") as f:
                        out[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[16])
                except OSError:
                    continue
            return out

        assert wait_until(lambda: bool(child_pids(pid)), 20)
        assert http("POST", serve.url + "/v2/models/iris/infer", oip(1)).status == 200
        (child,) = child_pids(pid)
        assert set(nices(child).values()) == {base}
        sidecar = nices(pid)
        assert sidecar[pid] == max(7, base)  # the event loop
        assert sorted(sidecar.values()).count(base) <= 1 < len(sidecar)  # the spawner thread only
        assert serve.stop(signal.SIGTERM) == 0
    finally:
        upstream.close()
