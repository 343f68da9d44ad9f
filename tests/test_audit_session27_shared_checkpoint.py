"""Audit (session 27, s27f): two sidecars (or two processes) pointed at one checkpoint path.

A Deployment's replicas on one shared volume each wrote the same ``checkpoint.path``: the file held
whichever saved last, and a restarted replica restored the other replica's windows, label joins and
alert states without a word (found with two real ``monitor serve`` processes: replica A, killed and
restarted, exported replica B's 200 rows and B's segment instead of its own 1,000). Nothing can
stop two processes from naming one file, but each checkpoint now names its writer, and a save that
finds the file written by another process since this one last read or wrote it says so (an error
naming the fix) and counts ``monitor_checkpoint_failures_total{operation="save",reason="shared"}``,
so that MonitorCheckpointFailing pages.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

import pytest
import yaml

from monitor import checkpoint
from monitor.core import Monitor
from tests.sidecar_support import http, sample, wait_until


def _monitor(path) -> Monitor:
    from prometheus_client import CollectorRegistry

    return Monitor(registry=CollectorRegistry(auto_describe=False), config={"model": "m", "features": ["a", "b"],
                           "output": {"kind": "probabilities", "classes": ["x", "y"]},
                           "checkpoint": {"path": str(path)}}, live=False, start_worker=False)


def _shared(mon: Monitor) -> float:
    return mon.store.value("monitor_checkpoint_failures", ("save", "shared")) or 0.0


def test_a_save_over_another_processes_checkpoint_is_said_and_counted(tmp_path, caplog):
    path = tmp_path / "m.ckpt"
    a, b = _monitor(path), _monitor(path)
    try:
        a.save_checkpoint()
        b.save_checkpoint()  # written by a, in b's lifetime: another process writes this file
        assert _shared(b) == 1
        with caplog.at_level(logging.ERROR, logger="monitor"):
            a.save_checkpoint()  # and a now finds b's state where it wrote its own
        assert _shared(a) == 1
        assert "another process" in caplog.text and "its own checkpoint.path" in caplog.text
        a.save_checkpoint()  # its own file again: nothing to say
        assert _shared(a) == 1
    finally:
        a.close()
        b.close()


def test_one_process_restarting_on_its_own_file_is_not_shared(tmp_path):
    path = tmp_path / "m.ckpt"
    first = _monitor(path)
    first.save_checkpoint(final=True)
    first.close()
    second = _monitor(path)  # a restart: the previous process's file, restored, then written over
    try:
        assert second.restore_checkpoint()
        second.save_checkpoint()
        second.save_checkpoint()
        assert _shared(second) == 0
    finally:
        second.close()
    third = _monitor(path)  # a process that never restores (decorator code): an older file is no sharing
    try:
        third.save_checkpoint()
        assert _shared(third) == 0
    finally:
        third.close()


def test_the_reason_is_born_at_zero_with_the_other_save_failures():
    assert "shared" in checkpoint.SAVE_FAILURE_REASONS


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_two_serve_processes_on_one_path_each_count_it(tmp_path):
    from tests.test_server_lifecycle import ServeProcess

    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({
        "model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
        "checkpoint": {"path": "state/{model}.ckpt", "interval": "300ms"}, "server": {"port": 0}}))
    a = ServeProcess(tmp_path / "monitor.yaml")
    b = ServeProcess(tmp_path / "monitor.yaml")
    try:
        body = "\n".join(json.dumps({"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}) for _ in range(10))
        for p in (a, b):
            assert http("POST", p.url + "/v1/events", body, {"Content-Type": "application/x-ndjson"}).status == 202

        def shared(p: ServeProcess) -> float:
            return sample(p.metrics(), "monitor_checkpoint_failures_total", model="iris", operation="save", reason="shared") or 0

        assert wait_until(lambda: shared(a) >= 1 and shared(b) >= 1, 20)
    finally:
        a.stop(signal.SIGTERM)
        b.stop(signal.SIGTERM)
    assert "checkpoint.path" in (tmp_path / "serve.log").read_text()


def test_a_forked_worker_is_a_writer_of_its_own_file(tmp_path):
    """A worker forked after its parent restored (gunicorn --preload) writes ``<path>.process-<pid>``:
    a file there from the previous run (pids repeat across container restarts) is no other process
    writing in its lifetime, whatever the parent read."""
    path = tmp_path / "m.ckpt"
    first = _monitor(path)
    first.save_checkpoint()
    first.close()
    parent = _monitor(path)
    try:
        assert parent.restore_checkpoint()  # the parent has read its file
        earlier = _monitor(path)
        earlier.save_checkpoint(checkpoint.process_path(path))  # the previous run's worker of this pid
        earlier.close()
        time.sleep(0.01)
        parent._after_fork()  # as in the child (same pid here: the file above is "its own")
        parent.save_checkpoint()
        assert _shared(parent) == 0
    finally:
        parent.close()
