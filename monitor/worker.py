"""The background thread that drains the queue and runs the pipeline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from monitor.pipeline import Pipeline
from monitor.queue import EventQueue

__all__ = ["Worker"]

log = logging.getLogger("monitor")


class Worker:
    """Drains ``queue`` into ``pipeline`` every ``poll_s`` seconds (or at once when woken).

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
        live: bool = True,
        clock: Callable[[], float] = time.time,
        on_cycle: Callable[[], None] | None = None,
        name: str = "monitor-worker",
    ) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.lock = lock
        self.poll_s = poll_s
        self.batch_max = batch_max
        self.live = live
        self.clock = clock
        self.on_cycle = on_cycle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def drain_once(self) -> int:
        """Process everything queued now; returns the number of events handled."""
        handled = 0
        with self.lock:
            while True:
                events = self.queue.drain(self.batch_max)
                if not events:
                    break
                handled += len(events)
                try:
                    self.pipeline.process(events)
                except Exception:  # noqa: BLE001 - the worker must survive anything
                    log.exception("pipeline failed on %d events", len(events))
                    self.pipeline.store.inc("monitor_internal_errors", labels=("pipeline",))
                    self.pipeline.store.inc("monitor_events_dropped", len(events), labels=("internal_error",))
            try:
                self.pipeline.export_if_due()  # what an earlier drain held back, once due
            except Exception:  # noqa: BLE001
                log.exception("exporting failed")
                self.pipeline.store.inc("monitor_internal_errors", labels=("pipeline",))
            if self.live:
                try:
                    self.pipeline.advance(self.clock())
                except Exception:  # noqa: BLE001
                    log.exception("advancing the clock failed")
                    self.pipeline.store.inc("monitor_internal_errors", labels=("clock",))
            if self.on_cycle is not None:
                try:
                    self.on_cycle()
                except Exception:  # noqa: BLE001
                    log.exception("worker cycle hook failed")
                    self.pipeline.store.inc("monitor_internal_errors", labels=("cycle",))
        return handled

    def _run(self) -> None:
        while not self._stop.is_set():
            self.queue.wait(self.poll_s)
            self.drain_once()
        self.drain_once()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.queue.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
