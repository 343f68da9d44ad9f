"""Batches held for the deferrable detectors: what the rules see at every tick, what a scrape
sees and what a checkpoint saves are those of detectors fed every drain at once."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch, LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors.base import Detector
from monitor.detectors.context import DetectorContext
from monitor.detectors.registry import create
from monitor.events import FEEDBACK, PREDICTION
from monitor.holding import HeldBatches, concat_batches, stackable
from monitor.ingest import BatchBuilder
from monitor.pipeline import HOLD_ROWS, Pipeline
from monitor.reference import Reference
from monitor.schema import OutputSpec, Schema
from monitor.store import MetricStore

KINDS = ("confidence", "confidence_drift", "prediction_drift", "accuracy_estimation", "calibration", "segments", "output_repeats")
CLASSES = ("a", "b", "c")
T0 = 1_700_000_000.0
# figures that count the work (batches, drains) rather than describe the traffic
BATCHING = ("processing", "rows_per_batch", "batch_size")


class Wall:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _setup(seed: int = 0) -> tuple[Schema, OutputSpec, Reference]:
    rng = np.random.default_rng(seed)
    schema = Schema.numeric(["x0", "x1", "x2"])
    output = OutputSpec("probabilities", CLASSES)
    p = rng.dirichlet([0.5, 0.5, 0.5], size=1500)
    ref = Reference.from_arrays(rng.normal(size=(1500, 3)), numeric_names=schema.numeric_names, scores=p,
                                labels=p.argmax(1), classes=CLASSES)
    return schema, output, ref


def _stream(seed: int, n: int = 6000, rate: float = 2.0) -> list[tuple]:
    """Predictions at ``rate``/s over ``n / rate`` s (longer than the 10-minute windows below, so
    they slide), seven segment values for a cap of four (overflow to ``other``), repeated answers
    (canned outputs to different inputs), and labels for 60% of the rows arriving out of order,
    from a few seconds to several minutes later, some of them for rows already out of the window."""
    rng = np.random.default_rng(seed)
    canned = rng.dirichlet([1, 1, 1], size=5)
    events: list[tuple] = []
    pending: list[tuple[float, str, str]] = []
    for i in range(n):
        t = T0 + i / rate
        x = rng.normal(size=3) * (1.0 if i < n // 2 else 1.7)
        p = canned[rng.integers(5)] if rng.random() < 0.1 else rng.dirichlet([0.6, 0.6, 0.6])
        events.append((PREDICTION, t, x, p, 0.001, "anonymous", f"r{i}", f"s{rng.integers(7)}", None))
        if rng.random() < 0.6:
            label = CLASSES[int(min(np.searchsorted(np.cumsum(p), rng.random()), 2))]
            pending.append((t + rng.exponential(120.0), f"r{i}", label))
        due = [q for q in pending if q[0] <= t]
        if due and rng.random() < 0.3:
            pending = [q for q in pending if q[0] > t]
            rng.shuffle(due)
            events.append((FEEDBACK, t, [q[1] for q in due], [q[2] for q in due]))
    return events


def _run(events: list[tuple], chunk: int, defer: bool, export_interval_s: float, monkeypatch: pytest.MonkeyPatch,
         scrape_every: int = 0) -> tuple[list, list, list]:
    """Feed ``events`` in drains of ``chunk``; return what the store holds at every tick, at every
    simulated scrape, and the detectors' saved states at the end."""
    schema, output, ref = _setup()
    ctx = DetectorContext(schema, output)
    dets = [create(k, reference=ref, context=ctx, params={"window_s": 600.0, **({"segment_cap": 4} if k == "segments" else {})})
            for k in KINDS]
    with monkeypatch.context() as m:
        if not defer:
            for d in dets:
                m.setattr(type(d), "deferrable", False)
        store, wall = MetricStore("m"), Wall()
        ticks: list = []

        def seen() -> dict:
            return {(n, tuple(sorted(lab.items()))): v for n, lab, v in store.samples() if not any(w in n for w in BATCHING)}

        pipe = Pipeline(store, BatchBuilder(schema, output), dets, tick_s=15.0, on_tick=lambda t: ticks.append((t, seen())),
                        export_interval_s=export_interval_s, wall=wall)
        scrapes: list = []
        for k, start in enumerate(range(0, len(events), chunk)):
            wall.now += 1.0
            pipe.process(events[start:start + chunk])
            if scrape_every and k % scrape_every == scrape_every - 1:
                pipe.export_pending()  # what Monitor.export_for_scrape does
                scrapes.append(seen())
        pipe.settle()
        states = [d.state_dict() for d in dets]
    return ticks, scrapes, states


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys(), set(a) ^ set(b)
    assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True)


def _same_state(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)) and not (a and isinstance(a[0], (int, float))):
        assert len(a) == len(b)  # type: ignore[arg-type]
        for x, y in zip(a, b):  # type: ignore[call-overload]
            _same_state(x, y)
    else:
        np.testing.assert_allclose(np.asarray(a, dtype=float) if np.asarray(a).dtype.kind not in "OUS" else 0.0,
                                   np.asarray(b, dtype=float) if np.asarray(b).dtype.kind not in "OUS" else 0.0, rtol=1e-9, atol=1e-12)
        if np.asarray(a).dtype.kind in "OUS":
            assert list(np.asarray(a).ravel()) == list(np.asarray(b).ravel())


@pytest.mark.parametrize("seed", [0, 1])
def test_every_tick_sees_the_figures_of_detectors_fed_at_once(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small drains with the detectors' rows held until the ticks (the export timer never fires)
    give the figures of the same drains handed over at once, and of one replayed drain."""
    events = _stream(seed)
    held, _, held_states = _run(events, chunk=23, defer=True, export_interval_s=1e9, monkeypatch=monkeypatch)
    # the same export cadence (ticks only): the temperature is refitted at exports, when the rows
    # changed by 20% since the last fit, so its value depends on when exports come, not on holding
    direct, _, direct_states = _run(events, chunk=23, defer=False, export_interval_s=1e9, monkeypatch=monkeypatch)
    replay, _, replay_states = _run(events, chunk=len(events), defer=True, export_interval_s=1e9, monkeypatch=monkeypatch)
    assert len(held) == len(direct) == len(replay) > 150
    for (t1, a), (t2, b), (t3, c) in zip(held, direct, replay):
        assert t1 == t2 == t3
        _same(a, b)
        _same(a, c)
    # the figures under test are there and move: per-segment ones with "other", repeats, calibration
    last = held[-1][1]
    assert {names.SEGMENT_ACCURACY, names.SEGMENT_CALIBRATION_ERROR, names.OUTPUT_REPEAT, names.CALIBRATION_ERROR,
            names.TEMPERATURE, names.GAP_PVALUE} <= {n for n, _ in last}
    assert any(dict(lab).get("segment") == "other" for _, lab in last)
    assert len({round(fig[(names.OUTPUT_REPEAT, (("model", "m"),))], 6) for _, fig in held[-60:]}) > 1
    for s1, s2 in zip(held_states, direct_states):
        _same_state(s1, s2)


def test_scrapes_between_ticks_see_what_they_saw_without_holding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports asked for by scrapes (and by the export timer) hand the held rows over first."""
    events = _stream(3, n=3000)
    _, held, _ = _run(events, chunk=17, defer=True, export_interval_s=5.0, monkeypatch=monkeypatch, scrape_every=9)
    _, direct, _ = _run(events, chunk=17, defer=False, export_interval_s=5.0, monkeypatch=monkeypatch, scrape_every=9)
    assert len(held) == len(direct) > 15
    for a, b in zip(held, direct):
        _same(a, b)


class Counting(Detector):
    """A deferrable detector that records the batches it is handed."""

    kind = "counting"
    deferrable = True

    def _reset(self) -> None:
        self.sizes: list[int] = []
        self.labels: list[int] = []

    def __init__(self) -> None:
        self._reset()

    def update(self, batch: Batch) -> None:
        self.sizes.append(len(batch))

    def update_labels(self, labeled: LabeledBatch) -> None:
        self.labels.append(len(labeled))

    def export(self, out: object) -> None:
        return None


def test_held_rows_are_handed_over_when_the_hold_is_full_and_at_exports() -> None:
    schema = Schema.numeric(["x"])
    output = OutputSpec("probabilities", ("a", "b"))
    det, wall = Counting(), Wall()
    pipe = Pipeline(MetricStore("m"), BatchBuilder(schema, output), [det], export_interval_s=1e9, wall=wall)
    ev = lambda i: (PREDICTION, T0 + i, np.ones(1), np.array([0.3, 0.7]), None, None, f"r{i}", None, None)  # noqa: E731
    pipe.process([ev(i) for i in range(10)])  # the first drain exports (the timer starts there)
    assert det.sizes == [10]
    for k in range(1, HOLD_ROWS // 1000 + 1):
        pipe.process([ev(i) for i in range(1000 * k, 1000 * k + 1000)])
    assert det.sizes == [10]  # held: fewer than HOLD_ROWS rows wait
    pipe.process([ev(i) for i in range(10**6, 10**6 + 1000)])
    assert sum(det.sizes) == 10 + 1000 * (HOLD_ROWS // 1000 + 1) and len(det.sizes) == 2  # full: handed over as one batch
    pipe.process([ev(i) for i in range(2 * 10**6, 2 * 10**6 + 5)] + [(FEEDBACK, T0 + 2e6 + 9, ["r2000001", "r2000002"], ["a", "b"])])
    assert det.labels == []
    pipe.export_pending()
    assert det.sizes[-1] == 5 and det.labels == [2]


def test_batches_that_do_not_stack_are_handed_over_apart() -> None:
    x = np.zeros((2, 1))
    two = Batch.from_arrays(x, np.array([[0.9, 0.1], [0.4, 0.6]]), ts=1.0, classes=("a", "b"))
    three = Batch.from_arrays(x, np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]]), ts=2.0, classes=("a", "b", "c"))
    with_logits = Batch.from_arrays(x, np.array([[0.9, 0.1], [0.4, 0.6]]), ts=3.0, classes=("a", "b"), logits=np.zeros((2, 2)))
    assert stackable(two, two) and not stackable(two, three) and not stackable(two, with_logits)
    held = HeldBatches(capacity=100)
    assert held.hold(two) and held.hold(two) and not held.hold(three) and len(held) == 4
    batch, labeled = held.take()
    assert labeled is None and batch is not None and batch.scores.shape == (4, 2) and len(held) == 0
    lab = LabeledBatch(ts=np.array([1.0]), label_ts=np.array([2.0]), label=np.array([1]), segment=np.array([None], dtype=object),
                       scores=np.array([[0.4, 0.6]]), predicted=np.array([1]), classes=("a", "b"))
    both = concat_batches([lab, lab])
    assert isinstance(both, LabeledBatch) and both.label.tolist() == [1, 1] and both.classes == ("a", "b")


def test_a_pipeline_with_mixed_detectors_feeds_the_others_at_once() -> None:
    schema = Schema.numeric(["x"])
    output = OutputSpec("probabilities", ("a", "b"))
    held_det = Counting()
    now_det = Counting()
    now_det.deferrable = False  # type: ignore[misc]
    wall = Wall()
    pipe = Pipeline(MetricStore("m"), BatchBuilder(schema, output), [held_det, now_det], export_interval_s=1e9, wall=wall)
    ev = lambda i: (PREDICTION, T0 + i, np.ones(1), np.array([0.3, 0.7]), None, None, f"r{i}", None, None)  # noqa: E731
    pipe.process([ev(0)])
    for i in range(1, 4):
        pipe.process([ev(i)])
    assert now_det.sizes == [1, 1, 1, 1] and held_det.sizes == [1]
    pipe.settle()
    assert held_det.sizes == [1, 3]


def test_a_checkpoint_of_a_live_monitor_holds_the_rows_not_yet_handed_over() -> None:
    """A live monitor exports on a timer: rows drained since the last export wait for the
    deferrable detectors, and a checkpoint taken then must still contain them."""
    import time

    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.detectors.confidence import ConfidenceDetector

    det = ConfidenceDetector(window_s=3600.0)
    mon = Monitor(model="held", detectors=[det], registry=CollectorRegistry(), start_worker=False, live=True)
    try:
        now = time.time()
        for i in range(5):
            mon.observe([1.0], [0.8, 0.2], timestamp=now - 10 + i)
        mon.worker.drain_once()  # the first drain exports: the export timer starts
        for i in range(7):
            mon.observe([1.0], [0.3, 0.7], timestamp=now - 5 + i * 0.1)
        mon.worker.drain_once()
        assert len(mon.pipeline._held) == 7  # within the export interval: held
        state = mon.state_dict()
        rows = np.asarray(state["detectors"]["ConfidenceDetector#0"]["windows"]["main"]["data"])[:, 0].sum()
        assert rows == 12 and len(mon.pipeline._held) == 0
    finally:
        mon.close()


@pytest.mark.parametrize("defer", [True, False])
def test_an_idle_clock_expires_the_held_rows_as_it_expires_the_others(defer: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live agent without traffic moves event time with the wall clock: rows still held when
    their window has passed must leave the figures, exactly as rows handed over at once do."""
    schema, output, ref = _setup()
    ctx = DetectorContext(schema, output)
    dets = [create(k, reference=ref, context=ctx, params={"window_s": 600.0}) for k in ("confidence", "calibration")]
    with monkeypatch.context() as m:
        if not defer:
            for d in dets:
                m.setattr(type(d), "deferrable", False)
        store, wall = MetricStore("m"), Wall()
        pipe = Pipeline(store, BatchBuilder(schema, output), dets, export_interval_s=1e9, wall=wall)
        events = _stream(5, n=800)
        pipe.process(events[:10])  # exports: the timer starts
        pipe.process(events[10:])
        assert (len(pipe._held) > 0) == defer
        pipe.advance(T0 + 400.0)  # still inside the window
        pipe.export_pending()
        assert store.value(names.CONFIDENCE_ROWS) == 800
        pipe.process(events[:1])  # a late event, then the window passes without traffic
        pipe.advance(T0 + 400.0 + 2 * 600.0)
        pipe.export_pending()
        assert store.value(names.CONFIDENCE_ROWS) == 0 and store.value(names.LABELS_IN_WINDOW) == 0
