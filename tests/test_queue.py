"""Shedding under a full queue (counted, caller never blocked), sampling, and thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import MonitorConfig, QueueConfig
from monitor.queue import EventQueue
from monitor.schema import OutputSpec


def test_full_queue_sheds_and_counts_without_blocking(registry):
    cfg = MonitorConfig(model="shed", queue=QueueConfig(capacity=10))
    mon = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        @mon.watch
        def predict(x):
            return [0.5, 0.5]

        for _ in range(25):  # no worker: nothing drains, the caller must still return at once
            assert predict([1.0]) == [0.5, 0.5]
        assert len(mon.queue) == 10
        mon.flush()
        assert mon.store.value("monitor_predictions") == 10.0
        assert mon.store.value("monitor_events_dropped", ("queue_full",)) == 15.0
        assert mon.store.value("monitor_queue_depth") == 0.0
        text = mon.metrics_text()
        assert 'monitor_events_dropped_total{model="shed",reason="queue_full"} 15.0' in text
    finally:
        mon.close()


def test_observe_after_close_is_counted_as_closed(registry):
    mon = Monitor(model="closed", registry=registry, start_worker=False)
    mon.close()
    assert mon.observe([1.0], [0.5, 0.5]) is False
    dropped, _ = mon.queue.counters()
    assert dropped == {"closed": 1}


def test_sampling_rate_counts_what_it_skips(registry):
    cfg = MonitorConfig(model="sampled", queue=QueueConfig(sample_rate=0.25), seed=3)
    mon = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        kept = sum(mon.observe([1.0], [0.5, 0.5]) for _ in range(4000))
        mon.flush()
        skipped = mon.store.value("monitor_events_sampled_out")
        assert kept + skipped == 4000
        assert 800 < kept < 1200  # binomial(4000, 0.25): mean 1000, sd 27
        assert mon.store.value("monitor_predictions") == float(kept)
    finally:
        mon.close()


def test_calls_that_raise_are_sampled_as_the_others(registry):
    """A call that raised is a call: kept whole while the others were sampled, errors over calls
    read ten times the model's error rate at sample_rate 0.1 (ModelErrorRateHigh fired on 1%)."""
    cfg = MonitorConfig(model="sampled-errors", queue=QueueConfig(sample_rate=0.1), seed=3)
    mon = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        @mon.watch
        def predict(x, fail=False):
            if fail:
                raise ValueError("the model failed")
            return np.array([0.2, 0.8])

        for i in range(4000):
            try:
                predict(np.ones(2), fail=i % 2 == 0)
            except ValueError:
                pass
        kept_by_observe = sum(mon.observe_error("ValueError") for _ in range(2000))
        mon.flush()
        errors = mon.store.value("monitor_errors", ("ValueError",))
        calls = mon.store.value("monitor_calls")
        assert calls + mon.store.value("monitor_events_sampled_out") == 6000  # every call accounted
        assert 80 < kept_by_observe < 320  # binomial(2000, 0.1): mean 200, sd 13
        assert 0.3 < (errors - kept_by_observe) / (calls - kept_by_observe) < 0.7  # half the decorated calls raised
        assert calls < 1000  # binomial(6000, 0.1): mean 600, sd 23
    finally:
        mon.close()


def test_concurrent_callers_lose_nothing(registry):
    """8 threads x 5,000 calls with the worker draining concurrently: every call is accounted."""
    mon = Monitor(model="threads", registry=registry)
    try:
        @mon.watch
        def predict(x):
            return np.array([0.2, 0.8])

        row = np.ones(4)

        def caller():
            for _ in range(5000):
                predict(row)

        threads = [threading.Thread(target=caller) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        mon.flush()
        processed = mon.store.value("monitor_predictions") or 0.0
        dropped = mon.store.value("monitor_events_dropped", ("queue_full",)) or 0.0
        assert processed + dropped == 40_000
        assert mon.store.value("monitor_calls") == processed
        assert mon.store.value("monitor_predicted_class", ("1",)) == processed
    finally:
        mon.close()


def test_worker_processes_in_background(registry):
    mon = Monitor(model="bg", registry=registry)
    try:
        for _ in range(100):
            mon.observe(np.ones(2), np.array([0.5, 0.5]))
        for _ in range(200):  # the worker polls every 50 ms; wait up to 10 s
            if mon.store.value("monitor_predictions") == 100.0:
                break
            threading.Event().wait(0.05)
        assert mon.store.value("monitor_predictions") == 100.0
    finally:
        mon.close()


def test_large_inputs_are_bounded_in_bytes_on_every_path(registry):
    """The count alone does not bound memory for image-sized inputs: arrays of 16 KiB or more
    reserve their bytes, are shed as queue_bytes_full beyond queue.max_bytes, and give them back
    when drained; small inputs never touch the budget."""
    image = np.zeros((64, 64), dtype=np.float64)  # 32 KiB
    per = image.nbytes + 16  # with its two float64 outputs
    cfg = MonitorConfig(model="img", queue=QueueConfig(capacity=1000, max_bytes=100_000))
    mon = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        @mon.watch
        def predict(x):
            return np.array([0.5, 0.5])

        @mon.watch(client="user")
        def predict_for(x, user):
            return np.array([0.5, 0.5])

        for _ in range(4):
            predict(image)  # the inlined fast path
        assert mon.queue.reserved == 3 * per and len(mon.queue) == 3
        predict_for(image, user="u")  # the general path
        mon.observe(image, np.array([0.5, 0.5]))  # Monitor.observe
        for _ in range(20):
            predict(np.zeros(4))  # small: not in the budget
        assert mon.queue.reserved == 3 * per
        dropped, _ = mon.queue.counters()
        assert dropped == {"queue_bytes_full": 3}
        mon.queue.drain(1000)
        assert mon.queue.reserved == 0
        predict(image)
        assert mon.queue.reserved == per
    finally:
        mon.close()
    assert mon.queue.reserved == 0


def test_a_large_event_refused_by_a_full_queue_gives_its_bytes_back(registry):
    from monitor.queue import EventQueue

    q = EventQueue(capacity=1, max_bytes=10**6)
    event = (0, 0.0, np.zeros(4096), np.zeros(2), None, None, None, None, None)
    assert q.put(event) and q.reserved == 32768 + 16  # inputs and outputs
    assert not q.put(event)
    assert q.reserved == 32768 + 16 and q.counters()[0] == {"queue_full": 1}


def test_dataframes_and_lists_of_arrays_are_bounded_in_bytes_too(registry):
    """Inputs without ``nbytes`` (a DataFrame, a list of images, a list of rows) reserved nothing:
    the worker reads a DataFrame of 1,000 rows in some 10 ms, and ``queue.capacity`` of them were
    held while it was behind. They reserve about their bytes, and give back what they reserved
    when drained even if the caller changed them meanwhile (a column added to the DataFrame)."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.zeros((512, 8)))  # 32 KiB of cells
    images = [np.zeros((32, 32))] * 4  # 32 KiB
    rows = [[0.0] * 8] * 512  # 32 KiB as float64
    cfg = MonitorConfig(model="frames", queue=QueueConfig(capacity=1000, max_bytes=150_000))
    mon = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        for inputs in (frame, images, rows, frame):
            mon.observe(inputs, np.full((len(inputs), 2), 0.5))
        held = 3 * 32 * 1024 + 16 * (512 + 4 + 512)  # the inputs, and the outputs' float64 pairs
        assert len(mon.queue) == 3 and mon.queue.reserved == held
        assert mon.queue.counters()[0] == {"queue_bytes_full": 1}
        mon.observe(pd.DataFrame(np.zeros((2, 2))), np.full((2, 2), 0.5))  # small: not in the budget
        assert len(mon.queue) == 4 and mon.queue.reserved == held
        frame["score"] = 0.5  # the caller's DataFrame grows after the call
        mon.queue.drain(1000)
        assert mon.queue.reserved == 0
    finally:
        mon.close()


def test_large_outputs_count_against_the_byte_budget(registry):
    """An ensemble's outputs (rows x members x classes) can outweigh its inputs many times; only
    the inputs were counted, so ``queue.capacity`` such events were held while the worker was
    behind (100,000 x 800 KB)."""
    cfg = MonitorConfig(model="ensemble", output=OutputSpec("probabilities", samples_axis=True),
                        queue=QueueConfig(capacity=1000, max_bytes=2_000_000))
    mon = Monitor(config=cfg, registry=registry, start_worker=False)
    try:
        members = np.full((100, 100, 10), 0.1)  # 800 KB of outputs for 100 rows of 2 features
        for _ in range(3):
            mon.observe(np.zeros((100, 2)), members)
        assert len(mon.queue) == 2 and mon.queue.reserved == 2 * (members.nbytes + 1600)
        assert mon.queue.counters()[0] == {"queue_bytes_full": 1}
    finally:
        mon.close()


def test_every_way_in_draws_from_the_queue_s_one_sampler(registry):
    """The decorator, ``observe`` and ``observe_error`` ask the queue (one stream of draws for the
    monitor): the same seed keeps the same calls whichever way each call came in."""
    def kept_pattern(mixed: bool) -> list[bool]:
        cfg = MonitorConfig(model="one-sampler", queue=QueueConfig(sample_rate=0.5), seed=11)
        mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False)
        try:
            predict = mon.watch(lambda x: np.array([0.4, 0.6]))
            pattern = []
            for i in range(300):
                before = mon.queue.counters()[1]
                if not mixed or i % 3 == 0:
                    mon.observe([1.0], [0.4, 0.6])
                elif i % 3 == 1:
                    predict(np.ones(1))
                else:
                    mon.observe_error("ValueError")
                pattern.append(mon.queue.counters()[1] == before)
            return pattern
        finally:
            mon.close()

    plain, mixed = kept_pattern(False), kept_pattern(True)
    assert plain == mixed
    assert 100 < sum(plain) < 200  # binomial(300, 0.5): mean 150, sd 8.7


def test_sampled_batches_keep_every_label():
    q = EventQueue(100, sample_rate=0.2, seed=5)
    events = [(0, float(i), [1.0], [0.5, 0.5], None, None, None, None, None) for i in range(500)]
    events += [(2, 0.0, ["r1"], [1])] * 50  # FEEDBACK
    kept = q.sample_events(events)
    assert sum(1 for e in kept if e[0] == 2) == 50
    predictions = sum(1 for e in kept if e[0] == 0)
    assert 60 < predictions < 140  # binomial(500, 0.2): mean 100, sd 9
    assert q.counters()[1] == 500 - predictions


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, float("nan")])
def test_queue_refuses_a_sampling_rate_outside_0_1(rate):
    with pytest.raises(ValueError, match="sample_rate"):
        EventQueue(10, sample_rate=rate)
