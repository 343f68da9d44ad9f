"""The background thread that drains the queue and runs the pipeline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from monitor.pipeline import Pipeline
from monitor.queue import EventQueue

__all__ = ["Worker", "FORK_PAUSE_MAX_S"]

log = logging.getLogger("monitor")

#: Seconds the worker stays paused for an ``os.fork`` at most (:meth:`Worker.pause_for_fork`),
#: should the parent's after-fork hook never run.
FORK_PAUSE_MAX_S = 2.0


class Worker:
    """Drains ``queue`` into ``pipeline``, waking every ``poll_s`` seconds (or at once when woken).

    Every drain costs the detectors a few dozen array operations whatever its size, so at low
    traffic the worker lets events gather, as a batching exporter does (OpenTelemetry's batch
    processor, Kafka's ``linger.ms``): it drains when ``batch_min`` events wait, when events have
    waited ``linger_s`` (checked at each wake-up, so at most ``linger_s + poll_s``), when the
    queue is half full (its ``capacity`` or the ``max_bytes`` of large inputs may hold fewer than
    ``batch_min`` events: waiting longer would shed them), when woken (flush, close), or when
    the queue is empty (to move the clock and export). Above
    ``batch_min / poll_s`` events per second every wake-up drains; below, each drain holds at
    least ``linger_s`` of traffic. Nothing waits on this but the freshness of the figures.

    In live mode the worker also advances event time with the wall clock while idle, so that
    windows expire and rules (e.g. "no traffic") are evaluated without new events. ``lock``
    serialises the pipeline between this thread and synchronous callers (``flush``, replay).
    """

    def __init__(
        self,
        queue: EventQueue,
        pipeline: Pipeline,
        *,
        lock: threading.RLock,
        poll_s: float = 0.05,
        batch_max: int = 8192,
        batch_min: int = 1,
        linger_s: float = 0.0,
        live: bool = True,
        clock: Callable[[], float] = time.time,
        wall: Callable[[], float] = time.monotonic,
        on_cycle: Callable[[], None] | None = None,
        name: str = "monitor-worker",
    ) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.lock = lock
        self.poll_s = poll_s
        self.batch_max = batch_max
        self.batch_min = int(batch_min)
        self.linger_s = float(linger_s)
        self.wall = wall
        self._waiting_since: float | None = None  # wall time a wake-up first left events waiting
        self.live = live
        self.clock = clock
        self.on_cycle = on_cycle
        self._stop = threading.Event()
        #: cleared while an ``os.fork`` waits for :attr:`lock` (see :meth:`pause_for_fork`)
        self._fork_gate = threading.Event()
        self._fork_gate.set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def _model(self) -> str | None:
        return getattr(self.pipeline.store, "model", None)

    def start(self) -> None:
        self._thread.start()

    def after_fork(self, lock: threading.RLock, *, start: bool = True) -> bool:
        """In a forked child (gunicorn ``--preload``), whose only thread is the one that forked: a
        new thread under the child's ``lock``, started now (``start``) or by :meth:`start` if the
        parent's ran; returns whether it did. Without it the child's events were queued and never
        processed, and then shed as ``queue_full``."""
        running = self._thread.ident is not None and not self._stop.is_set()
        self.lock = lock
        self._stop = threading.Event()
        self._fork_gate = threading.Event()  # the parent's was closed at the fork, and its lock may be held
        self._fork_gate.set()
        self._waiting_since = None
        self._thread = threading.Thread(target=self._run, name=self._thread.name, daemon=True)
        if running and start:
            self._thread.start()
        return running

    def pause_for_fork(self) -> None:
        """An ``os.fork`` is about to wait for :attr:`lock` (:func:`monitor.core._hold_for_fork`):
        the drain in progress stops after its current batch, leaving the rest queued for the next
        one, and the worker takes the lock again only after :meth:`resume_after_fork`.

        Without it the fork waited for the whole drain (everything queued when it started, up to
        ``queue.capacity`` events, then the rules' evaluation), and under load for the drains
        after it too: the worker takes the lock again at once, before the forking thread, which
        waited out its 2 s bound (measured: median 0.6 s, worst 2.0 s per running monitor with
        the queue kept full; one batch of 8,192 events takes some 25 ms)."""
        self._fork_gate.clear()

    def resume_after_fork(self) -> None:
        """In the parent, once the fork is done: drain as before."""
        self._fork_gate.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def due(self) -> bool:
        """Whether this wake-up should drain (see the class notes)."""
        q = self.queue
        waiting = len(q)
        if waiting == 0 or waiting >= self.batch_min or self.linger_s <= 0:
            return True
        if 2 * waiting >= q.capacity or 2 * q.reserved >= q.max_bytes:
            return True  # half full (in events or in bytes of large inputs): gathering more would shed them
        now = self.wall()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since >= self.linger_s

    def step(self, woken: bool = False) -> int:
        """One wake-up: drain when :meth:`due` (or ``woken``), else only run the cycle hook (queue
        metrics); returns the number of events handled."""
        if woken or self.due():
            return self.drain_once(yield_to_fork=True)
        with self.lock:
            self._cycle_hook()
        return 0

    def _cycle_hook(self) -> None:
        if self.on_cycle is not None:
            try:
                self.on_cycle()
            except Exception:  # noqa: BLE001
                log.exception("model %r: worker cycle hook failed", self._model)
                self.pipeline.store.inc("monitor_internal_errors", labels=("cycle",))

    def drain_once(self, *, yield_to_fork: bool = False) -> int:
        """Process the events queued when it is called (those arriving meanwhile wait for the
        next step: under sustained overload the lock is still released between drains, so
        ``flush``, checkpoints and scrapes get their turn); returns the number handled.

        ``yield_to_fork`` (the worker's own steps): stop after the current batch when an
        ``os.fork`` waits for the lock (:meth:`pause_for_fork`); the rest stays queued, and the
        export and the clock's advance wait for the next drain. ``flush``, ``close`` and the
        final checkpoint drain everything whatever happens.

        The clock is read first: an event stamped while the drain runs is newer than the
        ``advance`` at its end, so no rule tick passes it by."""
        handled = 0
        self._waiting_since = None
        now = self.clock() if self.live else 0.0
        gate = self._fork_gate
        with self.lock:
            budget = len(self.queue)
            while handled < budget:
                if yield_to_fork and not gate.is_set():
                    self._cycle_hook()
                    return handled
                events = self.queue.drain(min(self.batch_max, budget - handled))
                if not events:
                    break
                handled += len(events)
                try:
                    self.pipeline.process(events)
                except Exception:  # noqa: BLE001 - the worker must survive anything
                    log.exception("model %r: pipeline failed on %d events", self._model, len(events))
                    self.pipeline.store.inc("monitor_internal_errors", labels=("pipeline",))
                    self.pipeline.store.inc("monitor_events_dropped", len(events), labels=("internal_error",))
            try:
                self.pipeline.export_if_due()  # what an earlier drain held back, once due
            except Exception:  # noqa: BLE001
                log.exception("model %r: exporting failed", self._model)
                self.pipeline.store.inc("monitor_internal_errors", labels=("pipeline",))
            if self.live:
                try:
                    self.pipeline.advance(now)
                except Exception:  # noqa: BLE001
                    log.exception("model %r: advancing the clock failed", self._model)
                    self.pipeline.store.inc("monitor_internal_errors", labels=("clock",))
            self._cycle_hook()
        return handled

    def _run(self) -> None:
        handled = 0
        while not self._stop.is_set():
            if not self._fork_gate.is_set():  # a fork waits for the lock: not taken again before it is done
                self._fork_gate.wait(FORK_PAUSE_MAX_S)
            # overloaded (the last drain took at least a full batch and more came meanwhile): no pause
            woken = False if handled >= self.batch_max and len(self.queue) else self.queue.wait(self.poll_s)
            handled = self.step(woken)
        self.drain_once()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.queue.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
