"""The worker lets events gather at low traffic (``queue.batch_min``, ``queue.linger``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from monitor import Monitor
from monitor.config import ConfigError, MonitorConfig, QueueConfig, parse_config
from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder
from monitor.pipeline import Pipeline
from monitor.queue import EventQueue
from monitor.schema import OutputSpec, Schema
from monitor.store import MetricStore
from monitor.worker import Worker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _worker(batch_min: int, linger_s: float) -> tuple[Worker, EventQueue, MetricStore, Clock]:
    store = MetricStore("m")
    pipeline = Pipeline(store, BatchBuilder(Schema.numeric(["a", "b"]), OutputSpec("probabilities")))
    queue = EventQueue()
    wall = Clock()
    worker = Worker(queue, pipeline, lock=threading.RLock(), batch_min=batch_min, linger_s=linger_s, live=False, wall=wall)
    return worker, queue, store, wall


def _put(queue: EventQueue, n: int) -> None:
    for i in range(n):
        assert queue.put((PREDICTION, 1_700_000_000.0 + i, np.ones(2), np.array([0.7, 0.3]), None, "anonymous", None, None, None))


def test_few_events_wait_for_the_linger_time_then_drain_together() -> None:
    worker, queue, store, wall = _worker(batch_min=100, linger_s=1.0)
    _put(queue, 10)
    assert worker.step() == 0  # first wake-up that sees them: the linger clock starts
    wall.now = 0.75
    _put(queue, 10)
    assert worker.step() == 0 and len(queue) == 20
    assert store.value("monitor_predictions") is None
    wall.now = 1.0
    assert worker.step() == 20  # waited linger_s: one drain of everything
    assert store.value("monitor_predictions") == 20.0
    # the linger clock starts again with the next events, not at the last drain
    wall.now = 5.0
    _put(queue, 1)
    assert worker.step() == 0
    wall.now = 5.9
    assert worker.step() == 0
    wall.now = 6.0
    assert worker.step() == 1


def test_batch_min_waiting_events_drain_at_once() -> None:
    worker, queue, store, _ = _worker(batch_min=100, linger_s=60.0)
    _put(queue, 99)
    assert worker.step() == 0
    _put(queue, 1)
    assert worker.step() == 100
    assert store.value("monitor_predictions") == 100.0


def test_a_wake_up_or_a_flush_drains_whatever_waits() -> None:
    worker, queue, store, _ = _worker(batch_min=100, linger_s=60.0)
    _put(queue, 3)
    assert worker.step(woken=True) == 3
    _put(queue, 2)
    assert worker.step() == 0
    assert worker.drain_once() == 2
    assert store.value("monitor_predictions") == 5.0


def test_batch_min_1_drains_at_every_wake_up() -> None:
    worker, queue, _, _ = _worker(batch_min=1, linger_s=60.0)
    _put(queue, 1)
    assert worker.step() == 1


def _monitor(registry, *, start_worker: bool = True, **queue: float) -> Monitor:
    return Monitor(config=MonitorConfig(model="linger", queue=QueueConfig(batch_min=1000, **queue)), registry=registry,
                   start_worker=start_worker)


def _observe(mon: Monitor, n: int) -> None:
    for _ in range(n):
        mon.observe(np.ones(2), np.array([0.5, 0.5]))


def test_the_cycle_hook_runs_while_events_wait(registry) -> None:
    """The queue-depth gauge stays current while the worker lets events gather."""
    mon = _monitor(registry, linger_s=3600.0, start_worker=False)
    try:
        _observe(mon, 5)
        assert mon.worker.step() == 0
        assert mon.store.value("monitor_queue_depth") == 5.0
        assert mon.store.value("monitor_predictions") is None
        mon.flush()
        assert mon.store.value("monitor_predictions") == 5.0
    finally:
        mon.close()


def test_the_live_worker_drains_lingering_events_without_a_flush(registry) -> None:
    mon = _monitor(registry, linger_s=0.2, poll_s=0.05)
    try:
        _observe(mon, 7)
        for _ in range(200):  # processed after ~0.25 s; wait up to 10 s
            if mon.store.value("monitor_predictions") == 7.0:
                break
            threading.Event().wait(0.05)
        assert mon.store.value("monitor_predictions") == 7.0
    finally:
        mon.close()


def test_close_processes_lingering_events(registry) -> None:
    mon = _monitor(registry, linger_s=3600.0, poll_s=0.05)
    _observe(mon, 4)
    mon.close()
    assert mon.store.value("monitor_predictions") == 4.0


def test_config_keys_and_their_errors() -> None:
    cfg = parse_config({"model": "m", "queue": {"batch_min": 64, "linger": "500ms"}}).model()
    assert (cfg.queue.batch_min, cfg.queue.linger_s) == (64, 0.5)
    assert (QueueConfig().batch_min, QueueConfig().linger_s) == (1024, 1.0)
    with pytest.raises(ConfigError, match=r"queue\.batch_min.*integer >= 1"):
        parse_config({"model": "m", "queue": {"batch_min": 0}})
    with pytest.raises(ConfigError, match=r"queue\.linger"):
        parse_config({"model": "m", "queue": {"linger": "soon"}})


def test_a_queue_half_full_drains_without_waiting_for_the_linger_time(registry) -> None:
    """A queue smaller than ``batch_min`` (or a byte budget that holds fewer large events) must
    not shed events while the worker lets them gather: half full is due."""
    mon = Monitor(config=MonitorConfig(model="small", queue=QueueConfig(capacity=10, batch_min=1024, linger_s=3600.0)),
                  registry=registry, start_worker=False)
    try:
        _observe(mon, 5)
        assert mon.worker.step() == 5
        _observe(mon, 4)
        assert mon.worker.step() == 0  # below half: still gathering
    finally:
        mon.close()


def test_large_events_drain_before_the_byte_budget_sheds_them(registry) -> None:
    image = np.zeros((64, 64), dtype=np.float64)  # 32 KiB: counted against max_bytes
    cfg = MonitorConfig(model="img", queue=QueueConfig(capacity=100_000, max_bytes=100_000, batch_min=1024, linger_s=3600.0))
    mon = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        for _ in range(2):
            assert mon.observe(image, np.array([0.5, 0.5]))
        assert mon.worker.step() == 2  # 64 KiB of 100 KB reserved: more would be shed
        assert mon.queue.reserved == 0
        assert mon.observe(image, np.array([0.5, 0.5]))
        assert mon.worker.step() == 0
        assert mon.queue.counters()[0] == {}
    finally:
        mon.close()


class _Arrivals:
    """A detector that, on its first batch, queues more events as callers would during a drain."""

    kind = "arrivals"
    name = None

    def __init__(self, queue: EventQueue, clock: Clock, n: int) -> None:
        self.queue, self.clock, self.n, self.done = queue, clock, n, False

    def update(self, batch) -> None:  # noqa: ANN001
        if not self.done:
            self.done = True
            self.clock.now = 2_000_000_000.0  # the wall clock moved on while the drain ran
            for i in range(self.n):
                assert self.queue.put((PREDICTION, 1_900_000_000.0 + i, np.ones(2), np.array([0.7, 0.3]), None, "anonymous", None, None, None))

    def update_labels(self, labeled) -> None:  # noqa: ANN001
        return None

    def advance(self, now: float) -> None:
        return None

    def on_tick(self, now: float) -> None:
        return None

    def export(self, out) -> None:  # noqa: ANN001
        return None


def test_a_drain_takes_the_events_queued_when_it_starts_and_advances_to_that_time() -> None:
    """Under sustained arrivals the lock is released between drains (flush, checkpoints and
    scrapes get their turn), and the clock read before the drain is older than any event that
    arrived during it, so no rule tick passes such an event by."""
    store = MetricStore("m")
    clock = Clock()
    clock.now = 1_800_000_000.0
    queue = EventQueue()
    pipeline = Pipeline(store, BatchBuilder(Schema.numeric(["a", "b"]), OutputSpec("probabilities")), [_Arrivals(queue, clock, 7)])
    worker = Worker(queue, pipeline, lock=threading.RLock(), batch_min=1, live=True, clock=clock)
    _put(queue, 5)
    assert worker.drain_once() == 5
    assert len(queue) == 7
    assert pipeline.clock < 1_900_000_000.0  # advanced to the entry time, not past the newcomers
    assert worker.drain_once() == 7


def test_windows_slide_for_scrapes_while_idle_without_rules(registry) -> None:
    from monitor.detectors.confidence import ConfidenceDetector

    cfg = MonitorConfig(model="idle", queue=QueueConfig(batch_min=1))
    mon = Monitor(config=cfg, registry=registry, detectors=[ConfidenceDetector(window_s=3600.0, min_rows=1)], start_worker=False,
                  live=False)
    try:
        for i in range(5):
            mon.observe(np.ones(2), np.array([0.5, 0.5]), timestamp=1_700_000_000.0 + i)
        mon.flush()
        assert mon.store.value("monitor_confidence_rows_in_window") == 5
        mon.advance(1_700_000_000.0 + 3 * 3600)  # an idle live worker moves the clock like this
        mon.export_for_scrape()
        assert mon.store.value("monitor_confidence_rows_in_window") == 0
    finally:
        mon.close()


def test_events_still_queued_at_interpreter_exit_are_processed(tmp_path) -> None:
    import subprocess
    import sys

    out = tmp_path / "seen.txt"
    script = f"""
import numpy as np
from monitor import Monitor
from monitor.config import MonitorConfig, QueueConfig
from monitor.detectors.confidence import ConfidenceDetector

class Recording(ConfidenceDetector):
    def update(self, batch):
        with open({str(out)!r}, "a") as f:
            f.write(f"{{len(batch)}}\\n")

mon = Monitor(config=MonitorConfig(model="exit", queue=QueueConfig(batch_min=1000, linger_s=3600.0)), detectors=[Recording()])
for _ in range(6):
    mon.observe(np.ones(2), np.array([0.5, 0.5]))
# no close(), no flush(): the interpreter exits with the events queued
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sum(int(line) for line in out.read_text().split()) == 6
