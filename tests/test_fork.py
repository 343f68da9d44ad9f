"""A monitor built before ``os.fork`` (gunicorn ``--preload``: the app, and its decorators, are
imported once and the workers forked from it) works in the child: its own worker thread, its own
locks, and none of the parent's queued events."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from monitor import Monitor

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")


def _in_child(mon: Monitor, predict) -> dict:
    """What the child sees, as plain values for the pipe."""
    took_queue_lock = mon.queue._lock.acquire(blocking=False)  # held by a parent's thread at the fork
    if took_queue_lock:
        mon.queue._lock.release()
    seen = {"idle_before_use": not mon.worker.alive and threading.active_count() == 1, "queued": len(mon.queue),
            "queue_lock_free": took_queue_lock}
    if not took_queue_lock:
        return seen  # closing would wait for that lock for good
    predict(np.ones((1, 2)))
    seen["worker_alive"] = mon.worker.alive  # started by the child's first event
    predict(np.ones((1, 2)))
    mon.close()
    seen["predictions"] = mon.store.value("monitor_predictions")
    return seen


def test_a_forked_child_runs_its_own_worker_on_its_own_events(registry):
    # events linger in the parent's queue (no drain before close), so that the child inherits them
    mon = Monitor(model="forked", registry=registry, config={"queue": {"linger": 3600, "batch_min": 100_000}})

    @mon.watch
    def predict(x):
        return np.tile([0.3, 0.7], (len(x), 1))

    try:
        for _ in range(3):
            predict(np.ones((1, 2)))
        held, release = threading.Event(), threading.Event()

        def hold_queue_lock() -> None:  # a caller of a large input, inside the queue's lock at the fork
            with mon.queue._lock:
                held.set()
                release.wait()

        holder = threading.Thread(target=hold_queue_lock)
        holder.start()
        held.wait()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report and leave without running the parent's test machinery
            code = 0
            try:
                os.close(read)
                os.write(write, json.dumps(_in_child(mon, predict)).encode())
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        release.set()
        holder.join()
        with os.fdopen(read, "rb") as pipe:
            report = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0 and report
        seen = json.loads(report)
        assert seen["worker_alive"] is True  # the parent's thread does not exist in the child
        # until then the child ran no thread: a pool's worker that never uses the monitor evaluates
        # no rule and sends no alert (its empty windows would resolve the parent's firing ones)
        assert seen["idle_before_use"] is True
        assert seen["queue_lock_free"] is True
        assert seen["queued"] == 0  # the parent's three events are the parent's to process
        assert seen["predictions"] == 2.0
        assert mon.worker.alive and len(mon.queue) == 3
    finally:
        mon.close()
    assert mon.store.value("monitor_predictions") == 3.0


def test_a_forked_childs_alerts_are_delivered_by_its_own_threads():
    """The notifier's delivery threads (one per sink) do not exist in a forked child: its alerts
    waited for good. After the fork the child starts its own, without the parent's queued alerts."""
    from monitor.rules.notifier import Notifier, OutgoingAlert

    class Counting:
        name = "counting"

        def __init__(self) -> None:
            self.got: list[str] = []

        def deliver(self, alerts) -> None:
            self.got.extend(a.labels["alertname"] for a in alerts)

    sinks = [Counting(), Counting()]
    notifier = Notifier(sinks)
    alert = OutgoingAlert(labels={"alertname": "InChild"}, annotations={}, starts_at=1_700_000_000.0, ends_at=None)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read)
                notifier.after_fork()
                notifier.send([alert])
                delivered = notifier.flush(timeout_s=10)
                os.write(write, json.dumps({"flushed": delivered, "got": [s.got for s in sinks]}).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            report = json.loads(pipe.read())
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert report == {"flushed": True, "got": [["InChild"], ["InChild"]]}
        assert [s.got for s in sinks] == [[], []]  # the parent's sinks saw nothing of the child's
    finally:
        notifier.close()


def test_a_fork_waits_for_the_batch_in_progress_not_the_whole_drain(registry):
    """``os.fork`` takes each running monitor's lock (so the child gets its state between two
    batches). The worker held that lock for its whole drain (everything queued when it began,
    then the rules) and took it again at once under load, so a fork waited up to its 2 s bound
    per monitor. Now the drain stops after the batch in progress and the worker waits for the
    fork; the events it left are processed after it, none lost. Checked without timing: the
    before-fork hook gets the lock after exactly one batch of the four queued."""
    from monitor import core

    mon = Monitor(model="fork-wait", registry=registry, config={"queue": {"batch_max": 2}})
    in_batch, go_on = threading.Event(), threading.Event()
    batches: list[int] = []
    process = mon.pipeline.process

    def one_batch(events):
        batches.append(len(events))
        if len(batches) == 1:
            in_batch.set()
            go_on.wait(30)
        return process(events)

    mon.pipeline.process = one_batch
    waits = threading.Event()

    class Spied:  # the monitor's lock, telling when the forking thread starts waiting for it
        def __init__(self, lock) -> None:
            self.lock = lock

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            if threading.current_thread() is fork:
                waits.set()
            return self.lock.acquire(blocking, timeout)

        def release(self) -> None:
            self.lock.release()

        def __enter__(self) -> bool:
            return self.acquire()

        def __exit__(self, *exc: object) -> None:
            self.release()

    mon._lock = mon.worker.lock = Spied(mon._lock)
    seen: dict = {}
    forked = threading.Event()

    def forking_thread() -> None:  # what os.fork runs around the fork, in the thread that forks
        core._hold_for_fork()
        try:
            seen.update(held=mon in core._HELD_FOR_FORK, batches=list(batches), queued=len(mon.queue))
            forked.wait(30)
        finally:
            core._release_after_fork()

    fork = threading.Thread(target=forking_thread)
    try:
        with mon._lock:  # the four events are queued before the worker's next drain starts
            for _ in range(4):
                mon.observe(np.ones((1, 2)), np.array([[0.3, 0.7]]))
        assert in_batch.wait(30)  # the worker is inside its first batch of two
        fork.start()
        assert waits.wait(30)  # the before-fork hook waits for the lock
        go_on.set()
        while not seen and fork.is_alive():
            threading.Event().wait(0.001)
        assert seen == {"held": True, "batches": [2], "queued": 2}  # the lock came after one batch of two
    finally:
        go_on.set()
        forked.set()
        if fork.ident is not None:
            fork.join(30)
    mon.flush()
    mon.close()
    assert batches == [2, 2]  # the two left were processed after the fork
    assert mon.store.value("monitor_predictions") == 4.0


def _in_forks(*works) -> list[dict]:
    """Run each of ``works`` in a forked child, all of them alive together (as a server's
    workers are), and return what each returned (a JSON-plain dict); they exit once all have."""
    children = []
    hold_read, hold_write = os.pipe()
    for work in works:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read)
                os.close(hold_write)
                os.write(write, json.dumps(work()).encode())
                os.close(write)
                os.read(hold_read, 1)  # until the parent has every report
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        children.append((pid, read))
    os.close(hold_read)
    reports = []
    for _, read in children:
        with os.fdopen(read, "rb") as pipe:
            reports.append(pipe.read())
    os.close(hold_write)
    for (pid, _), report in zip(children, reports):
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0 and report
    return [json.loads(r) for r in reports]


def _in_fork(work) -> dict:
    return _in_forks(work)[0]


def _observe(mon: Monitor, n: int) -> None:
    for _ in range(n):
        mon.observe(np.ones((1, 2)), np.array([[0.3, 0.7]]))


def test_forked_processes_keep_one_checkpoint_each_and_a_restart_restores_each_once(registry, tmp_path):
    """Every process forked from a monitor (gunicorn --preload workers) saved to the one
    ``checkpoint.path``: the last writer's state was all that was kept, and after a restart every
    process restored that same state. Each saves its own ``<path>.process-<pid>`` now, and a
    process of the next run (other pids) takes one of those files whose process is gone, so each
    saved state is restored by exactly one process."""
    mon = Monitor(model="iris", registry=registry, config={"checkpoint": {"path": str(tmp_path / "iris.ckpt")}})
    try:
        def serve(n: int) -> dict:
            _observe(mon, n)
            mon.flush()
            info = mon.save_checkpoint(final=True)  # as a worker_exit hook would
            return {"pid": os.getpid(), "file": info.path.name}

        first, second = _in_fork(lambda: serve(2)), _in_fork(lambda: serve(3))
        assert sorted(os.listdir(tmp_path)) == sorted([f"iris.ckpt.process-{first['pid']}",
                                                       f"iris.ckpt.process-{second['pid']}"])
        assert first["file"] == f"iris.ckpt.process-{first['pid']}"

        def restart() -> dict:  # gunicorn's post_fork hook in the next run's workers
            restored = mon.restore_checkpoint()
            return {"pid": os.getpid(), "restored": restored, "predictions": mon.store.value("monitor_predictions")}

        again = _in_forks(restart, restart, restart)  # one more process than states saved
        assert sorted(r["restored"] for r in again) == [False, True, True]
        assert sorted(r["predictions"] or 0.0 for r in again) == [0.0, 2.0, 3.0]  # each state once, none twice
        assert sorted(os.listdir(tmp_path)) == sorted(f"iris.ckpt.process-{r['pid']}" for r in again if r["restored"])
    finally:
        mon.close()
    assert mon.store.value("monitor_predictions") is None  # the parent saw none of its children's events


def test_a_state_restored_before_the_fork_is_counted_as_a_copy_in_each_process(registry, tmp_path):
    """Restoring in the parent before forking (at import, under --preload) gives every process the
    same state: the same windows, and from a final checkpoint the same counters, counted again by
    each. Counted at each process's first event and said once; a process that restores after the
    fork takes a state of its own instead and counts nothing."""
    mon = Monitor(model="iris", registry=registry, config={"checkpoint": {"path": str(tmp_path / "iris.ckpt")}})
    try:
        _observe(mon, 1)
        mon.save_checkpoint(final=True)
        assert mon.restore_checkpoint()

        def copy() -> dict:
            _observe(mon, 1)
            _observe(mon, 1)
            mon.flush()
            return {"copies": mon.store.value("monitor_checkpoint_failures", ("restore", "forked_copy"))}

        def own() -> dict:
            restored = mon.restore_checkpoint()
            _observe(mon, 1)
            mon.flush()
            return {"restored": restored, "copies": mon.store.value("monitor_checkpoint_failures", ("restore", "forked_copy"))}

        assert _in_fork(copy) == {"copies": 1.0}
        assert _in_fork(own) == {"restored": True, "copies": None}
    finally:
        mon.close()
