"""Detector exports are throttled by wall time while events flow; flush, close and rule ticks
always bring the figures up to date."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
import pytest
import yaml

from monitor.config import ConfigError, MonitorConfig, QueueConfig, parse_config
from monitor.detectors.confidence import ConfidenceDetector
from monitor.detectors.context import DetectorContext
from monitor.ingest import BatchBuilder
from monitor.pipeline import Pipeline
from monitor.schema import OutputSpec, Schema
from monitor.store import MetricStore

ROWS = "monitor_confidence_rows_in_window"


def load_config_text(text: str) -> MonitorConfig:
    return parse_config(yaml.safe_load(text)).model()


class FakeWall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _events(n: int, t0: float) -> list[tuple]:
    p = np.array([0.7, 0.2, 0.1])
    return [(0, t0 + i, np.ones(2), p, None, None, None, None, None) for i in range(n)]


def _pipeline(interval: float, wall: FakeWall) -> tuple[Pipeline, MetricStore]:
    schema = Schema.numeric(["a", "b"])
    output = OutputSpec("probabilities", ("x", "y", "z"))
    store = MetricStore("m")
    det = ConfidenceDetector.from_config(reference=None, context=DetectorContext(schema, output))
    return Pipeline(store, BatchBuilder(schema, output), [det], export_interval_s=interval, wall=wall), store


def test_exports_at_most_once_per_interval_then_catches_up():
    wall = FakeWall()
    pipe, store = _pipeline(0.25, wall)
    pipe.process(_events(10, 0.0))
    assert store.value(ROWS) == 10  # the first chunk exports at once
    wall.now += 0.1
    pipe.process(_events(5, 10.0))
    assert store.value(ROWS) == 10  # held back: 0.1 s since the last export
    assert store.value("monitor_predictions") == 15  # the pipeline's own counters are never held back
    assert not pipe.export_if_due()
    wall.now += 0.2
    assert pipe.export_if_due()
    assert store.value(ROWS) == 15
    assert not pipe.export_if_due()  # nothing new since


def test_interval_zero_exports_after_every_chunk():
    wall = FakeWall()
    pipe, store = _pipeline(0.0, wall)
    for k in range(3):
        pipe.process(_events(4, 10.0 * k))
        assert store.value(ROWS) == 4 * (k + 1)


def test_ticks_export_regardless_of_the_interval():
    wall = FakeWall()
    pipe, store = _pipeline(3600.0, wall)
    seen: list[float | None] = []
    pipe.tick_s = 5.0
    pipe.on_tick = lambda t: seen.append(store.value(ROWS))
    pipe.process(_events(12, 0.0))  # ticks at 5 and 10 see the 5 and 10 rows before them
    assert seen == [5, 10]


def test_flush_brings_figures_up_to_date():
    cfg = load_config_text("""
model: m
output: {kind: probabilities, classes: [x, y, z]}
queue: {export_interval: 1h}
detectors: [{kind: confidence}]
""")
    m = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False)
    try:
        assert m.pipeline.export_interval_s == 3600.0
        for n in (3, 4):
            for _ in range(n):
                m.observe([1.0, 2.0], [0.7, 0.2, 0.1])
            m.flush()
        assert m.store.value(ROWS) == 7
    finally:
        m.close()


def test_config_default_and_validation():
    # never exported more often than drained; a scrape exports first, so the timer serves other readers
    q = QueueConfig()
    assert q.poll_s <= q.export_interval_s <= 60.0
    assert load_config_text("model: m\n").queue.export_interval_s == q.export_interval_s
    assert isinstance(MonitorConfig().queue.export_interval_s, float)
    with pytest.raises(ConfigError, match="queue.export_interval"):
        load_config_text("model: m\nqueue: {export_interval: -1s}\n")


def _scrape(registry: CollectorRegistry) -> dict[str, float]:
    return {s.name: s.value for fam in registry.collect() for s in fam.samples if s.name == ROWS}


def test_a_scrape_sees_every_processed_event_without_waiting_for_the_timer():
    cfg = load_config_text("""
model: m
output: {kind: probabilities, classes: [x, y, z]}
queue: {export_interval: 1h, batch_min: 1}
detectors: [{kind: confidence}]
""")
    registry = CollectorRegistry()
    m = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        for n in (3, 4):
            for _ in range(n):
                m.observe([1.0, 2.0], [0.7, 0.2, 0.1])
            m.worker.step()  # processed, the export held back by the 1 h timer
        assert m.store.value(ROWS) == 3
        assert _scrape(registry) == {ROWS: 7.0}
        assert m.store.value(ROWS) == 7
    finally:
        m.close()


def test_a_failing_export_does_not_fail_the_scrape():
    class Broken(ConfidenceDetector):
        def export(self, out):  # noqa: ANN001
            raise RuntimeError("bug")

    schema, output = Schema.numeric(["a", "b"]), OutputSpec("probabilities", ("x", "y", "z"))
    cfg = MonitorConfig(model="m", schema=schema, output=output, queue=QueueConfig(batch_min=1))
    registry = CollectorRegistry()
    m = Monitor(config=cfg, registry=registry, detectors=[Broken()], start_worker=False)
    try:
        m.observe([1.0, 2.0], [0.7, 0.2, 0.1])
        m.worker.step()
        names = {s.name for fam in registry.collect() for s in fam.samples}
        assert "monitor_predictions_total" in names
        assert m.store.value("monitor_detector_errors", ("confidence",)) >= 1
    finally:
        m.close()


def test_a_scrape_is_not_held_up_by_a_drain_in_progress():
    """A scrape exports first, but must not wait for the worker's lock without bound: the worker
    holds it for a whole drain (under sustained traffic, until the queue is empty, which may be
    never), and a scrape that hangs then is one that Prometheus marks down exactly when the
    queue and drop counters matter. Here the drain is blocked on purpose until the scrape ends."""
    import threading

    entered, release = threading.Event(), threading.Event()

    class Slow(ConfidenceDetector):
        def update(self, batch):  # noqa: ANN001
            entered.set()
            release.wait(60)
            super().update(batch)

    schema, output = Schema.numeric(["a", "b"]), OutputSpec("probabilities", ("x", "y", "z"))
    cfg = MonitorConfig(model="m", schema=schema, output=output, queue=QueueConfig(batch_min=1))
    registry = CollectorRegistry()
    m = Monitor(config=cfg, registry=registry, detectors=[Slow()], start_worker=False)
    drain = threading.Thread(target=m.flush)
    scraped: list[set[str]] = []
    scrape = threading.Thread(target=lambda: scraped.append({s.name for fam in registry.collect() for s in fam.samples}))
    try:
        m.observe([1.0, 2.0], [0.7, 0.2, 0.1])
        drain.start()
        assert entered.wait(60)
        scrape.start()
        scrape.join(30)  # a liveness bound, not a speed figure: a blocked scrape would wait for `release`
        assert scraped and "monitor_queue_depth" in scraped[0]
    finally:
        release.set()
        drain.join(60)
        scrape.join(60)
        m.close()


def test_a_scrape_sees_shed_events_without_waiting_for_a_worker_cycle():
    cfg = MonitorConfig(model="m", queue=QueueConfig(capacity=2))
    registry = CollectorRegistry()
    m = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        for _ in range(5):
            m.observe([1.0, 2.0], [0.7, 0.3])
        shed = {s.labels["reason"]: s.value for fam in registry.collect() for s in fam.samples
                if s.name == "monitor_events_dropped_total" and s.value}  # every reason is exported, at 0 until it sheds
        assert shed == {"queue_full": 3.0}
    finally:
        m.close()
