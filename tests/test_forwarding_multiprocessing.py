"""Forwarding from ``multiprocessing`` children: their events reach the sidecar.

Found by the forwarding review: a child started by ``multiprocessing`` with the fork or
forkserver start method (fork is Linux's default before Python 3.14, forkserver after) ends with
``os._exit()`` once its target returns, so atexit, where a ForwardingMonitor sends what it still
holds, never ran: 3 children of 50 calls each delivered none of their 150 events, and nothing
counted them. Real processes, a real Unix datagram socket.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO_ROOT
from tests.sidecar_support import start_sidecar, total, wait_until

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}

#: The model server's module: its sink is made at import (inherited by a forked child, made again
#: by a forkserver child, which imports the module by name).
MODEL = textwrap.dedent("""
    import os
    from monitor.decorator import watch
    from monitor.forwarding import ForwardingMonitor

    sink = ForwardingMonitor("iris", os.environ["MONITOR_FORWARD"])

    @watch(monitor=sink)
    def predict(rows):
        return [[0.2, 0.5, 0.3] for _ in rows]

    def serve(n):
        for _ in range(n):
            predict([[1.0, 2.0, 3.0, 4.0]])
""")

PARENT = textwrap.dedent("""
    import multiprocessing, sys
    sys.path.insert(0, sys.argv[2])
    import model_server

    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        children = [ctx.Process(target=model_server.serve, args=(50,)) for _ in range(3)]
        for c in children:
            c.start()
        for c in children:
            c.join()
        print([c.exitcode for c in children])
""")


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_events_of_multiprocessing_children_reach_the_sidecar(tmp_path, method):
    import os

    (tmp_path / "model_server.py").write_text(MODEL)
    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    try:
        env = {**os.environ, "MONITOR_FORWARD": f"unix://{sock}",
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-c", PARENT, method, str(tmp_path)], cwd=REPO_ROOT, env=env,
                              capture_output=True, timeout=120)
        assert done.returncode == 0 and done.stdout.decode().strip() == "[0, 0, 0]", done.stderr.decode()
        # the children have exited: what they sent is in the socket or already read
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 150, 20), s.metrics()
        assert total(s.metrics(), "monitor_forward_events_dropped_total") == 0
    finally:
        s.close()
