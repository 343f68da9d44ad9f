"""The agent: one :class:`Monitor` per monitored model.

Data flows one way: caller (``observe`` / the ``watch`` decorator) -> bounded queue -> worker
thread -> pipeline (batches, detectors) -> metric store -> exporter and the rule engine's
time-series store -> rule evaluator -> notifier.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from monitor.config import AgentConfig, MonitorConfig, RulesConfig, load_config, parse_config
from monitor.events import FEEDBACK, PREDICTION, error_event, event_time, feedback_lists, say_unreadable_timestamp
from monitor.once import Once
from monitor.queue import SHED_REASONS, EventQueue
from monitor.reference_view import input_schema, read_feature_names

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from monitor.detectors.base import Detector
    from monitor.reference import Reference
    from monitor.store import MetricStore

__all__ = ["Monitor", "RestoreReport", "existing_monitor", "get_monitor"]

log = logging.getLogger("monitor")

#: Monitors whose worker runs: closed at interpreter exit (see :func:`_close_at_exit`).
_RUNNING: "weakref.WeakSet[Monitor]" = weakref.WeakSet()
#: Seconds each still-running monitor gets at interpreter exit to process what is queued.
EXIT_TIMEOUT_S = 2.0
#: Closed monitors whose worker was still draining when ``close`` returned (see :func:`_count_left_at_exit`).
_DRAINING: "weakref.WeakSet[Monitor]" = weakref.WeakSet()


def _close_at_exit() -> None:
    """Process what is still queued when the interpreter exits without ``close()``: the worker is
    a daemon thread, and events waiting for it (up to ``queue.linger`` of traffic at low rates)
    would otherwise be lost without a count."""
    for mon in list(_RUNNING):
        try:
            mon._closed_at_exit = True  # calls after it are not said as calls after close()
            mon.close(EXIT_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - exiting anyway
            log.exception("closing monitor %s at exit failed", getattr(mon, "model", "?"))
    for mon in list(_DRAINING):
        try:
            _count_left_at_exit(mon)
        except Exception:  # noqa: BLE001
            log.exception("counting the events monitor %s left at exit failed", getattr(mon, "model", "?"))


def _count_left_at_exit(mon: "Monitor") -> None:
    """What the worker did not reach within :data:`EXIT_TIMEOUT_S` (or the timeout of an earlier
    ``close``) dies with the interpreter (the worker is a daemon thread): taken out of the queue, counted as dropped (``closed``) and said,
    instead of lost without a word (11,808 events of 50 rows, measured, for a batch job that ended
    right after its last call)."""
    if not mon.worker.alive:
        return
    left = len(mon.queue.drain(len(mon.queue)))  # the worker's drain then stops at the empty queue
    if not left:
        return
    mon.queue.drop("closed", left)
    log.warning("model %r: %d event(s) still queued at interpreter exit were not processed within %g s (the worker "
                "was still draining) and are lost: the figures, a final checkpoint and the alerts lack them; counted in "
                "monitor_events_dropped_total{reason=\"closed\"}. Fix: call mon.flush() before the program ends, which "
                "processes every queued event however long it takes", mon.model, left, EXIT_TIMEOUT_S)


atexit.register(_close_at_exit)

#: Seconds ``os.fork`` waits at most for a running monitor's lock (see :func:`_hold_for_fork`).
FORK_LOCK_WAIT_S = 2.0
_HELD_FOR_FORK: "list[Monitor]" = []
_PAUSED_FOR_FORK: "list[Monitor]" = []


def _hold_for_fork() -> None:
    """Before ``os.fork`` (gunicorn ``--preload`` forks its workers after importing the app, whose
    decorators built the monitors): take each running monitor's lock, so that the child gets its
    detectors and store between two batches, not half way through one.

    Every worker is asked first to stop its drain after the batch in progress and not to take
    the lock again until the fork is done (:meth:`monitor.worker.Worker.pause_for_fork`): the
    fork waits for one batch (some 25 ms for 8,192 events), and for all monitors at once, rather
    than for each one's whole drain in turn. :data:`FORK_LOCK_WAIT_S` still bounds the wait (a
    checkpoint or a caller's ``flush`` may hold a lock)."""
    running = list(_RUNNING)
    for mon in running:
        mon.worker.pause_for_fork()
        _PAUSED_FOR_FORK.append(mon)
    for mon in running:
        if mon._lock.acquire(timeout=FORK_LOCK_WAIT_S):
            _HELD_FOR_FORK.append(mon)


def _release_after_fork() -> None:
    """In the parent, after ``os.fork``: give back what :func:`_hold_for_fork` took."""
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop()._lock.release()
    while _PAUSED_FOR_FORK:
        _PAUSED_FOR_FORK.pop().worker.resume_after_fork()


def _restart_in_child() -> None:
    """In a forked child, only the forking thread runs: every running monitor gets fresh locks and
    its own worker (see :meth:`Monitor._after_fork`)."""
    _HELD_FOR_FORK.clear()
    _PAUSED_FOR_FORK.clear()
    for mon in list(_RUNNING):
        try:
            mon._after_fork()
        except Exception:  # noqa: BLE001 - a fork must go on whatever a monitor does
            log.exception("restarting monitor %s in the forked process failed", getattr(mon, "model", "?"))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_hold_for_fork, after_in_parent=_release_after_fork, after_in_child=_restart_in_child)

_MONITORS: dict[str, "Monitor"] = {}
_MONITORS_LOCK = threading.Lock()

#: 2: the reference (fingerprint and arrays) and the store's counters joined the state.
STATE_VERSION = 2
#: State versions :meth:`Monitor.load_state_dict` reads (1: without reference and counters).
READABLE_STATE_VERSIONS = (1, 2)
#: Counter families not carried across restarts: ``monitor_notifications`` mirrors the
#: notifier's in-process totals (synchronised by value, see ``Monitor._evaluate``), which restart
#: at zero with the process; restoring the old value would hold the series still until the new
#: totals caught up. It resets instead, which Prometheus' ``increase()`` handles.
NOT_CHECKPOINTED_COUNTERS = frozenset({"monitor_notifications"})
#: Series x timestamps of the rules' series history a checkpoint holds at most (9 bytes a cell,
#: some 36 MB before compression): an hour at 15 s of 16,000 series. A larger store keeps the
#: newest history that fits (see :meth:`monitor.promql.storage.SeriesStore.state_dict`).
MAX_CHECKPOINT_SERIES_CELLS = 4_000_000
#: Seconds a scrape waits for a drain in progress before reading the figures of the last export
#: (see :meth:`Monitor.export_for_scrape`).
SCRAPE_EXPORT_WAIT_S = 0.5


def _state_shape(cfg: MonitorConfig) -> list[Any]:
    """The configured features and outputs a monitor's detector states are laid out by (JSON-plain:
    saved with every checkpoint, compared on restore)."""
    out = cfg.output
    return [[[f.name, f.kind] for f in cfg.schema.features],
            [out.kind, list(out.classes), bool(out.samples_axis), [float(q) for q in out.quantiles]]]


def _label_window(model_window_s: float, detectors: list[Any]) -> float:
    """How late a label may come and still count: the longest window among the detectors that
    read labels (a calibration window of 24 h takes labels a 1-hour model window would call
    late), the model's window when none reads them."""
    from monitor.detectors.base import Detector

    windows = [float(getattr(d, "window_s", 0.0) or 0.0) for d in detectors
               if getattr(type(d), "update_labels", Detector.update_labels) is not Detector.update_labels]
    return max(windows) if windows else float(model_window_s)


def _shape_text(shape: Any) -> str:
    """A :func:`_state_shape` for a log line: ``(a, b, c; probabilities [x, y])``."""
    try:
        features, (kind, classes, _, quantiles) = shape
        names = ", ".join(str(name) for name, _ in features)
        return f"({names}; {kind} {list(classes) or ''}{list(quantiles) or ''})".replace(" )", ")")
    except (TypeError, ValueError):
        return repr(shape)


@dataclass(frozen=True)
class RestoreReport:
    """What :meth:`Monitor.load_state_dict` restored.

    Attributes
    ----------
    reference
        ``same`` (the checkpoint's fingerprint matches the monitor's reference), ``adopted`` (the
        monitor had none: the checkpoint's was adopted and the detectors rebuilt on it),
        ``changed`` (another reference: detector states set aside), ``missing`` (no reference in
        the monitor and none stored in the checkpoint, e.g. one too large to store: detector
        states set aside), ``unverified`` (a format 1 checkpoint without fingerprint, or
        detectors passed in code: restored as before), ``config_changed`` (the configured
        features or outputs differ from the checkpoint's: detector states set aside).
    detectors_restored
        Whether the detectors' windows and calibration state were loaded.
    set_aside_reason
        ``reference_changed`` / ``reference_missing`` / ``config_changed`` when they were not, else None.
    detail
        One sentence for the log (fingerprints, sizes).
    counters_restored
        Whether counters and histograms continue from the checkpoint: only from one written at
        shutdown (``final``). A periodic checkpoint's counters are older than what Prometheus
        has already scraped, so after a crash they would read as a reset and ``increase()``
        would count them again: they start at zero instead, which Prometheus handles.
    counter_families_skipped
        Families whose checkpointed values did not fit the current catalog.
    detectors_set_aside
        Detectors whose saved state did not fit their configuration (a window length, bin count
        or ring size changed), each with why: they start empty, the others are restored.
    state_version
        The version of the state that was read.
    labels_dropped
        Predictions waiting for their label that were dropped because the outputs' layout changed
        (counted in ``monitor_labels_evicted_total``; the log must not call the joins restored).
    """

    reference: str
    detectors_restored: bool
    set_aside_reason: str | None = None
    detail: str = ""
    counters_restored: bool = False
    counter_families_skipped: tuple[str, ...] = ()
    state_version: int = STATE_VERSION
    detectors_set_aside: tuple[str, ...] = ()
    labels_dropped: int = 0
    #: parts of restored detector states set aside (per-segment figures saved under another
    #: ``segments.cap``): they refill over one window, the rest of each detector is restored
    partly_refilled: tuple[str, ...] = ()


def existing_monitor(model: str) -> "Monitor | None":
    """The process-wide monitor of ``model`` if one is open (none is created)."""
    with _MONITORS_LOCK:
        mon = _MONITORS.get(model)
        return None if mon is None or mon.closed else mon


def get_monitor(model: str = "default", **kwargs: Any) -> "Monitor":
    """The process-wide monitor of ``model``, created on first use (used by ``monitor.watch``).

    ``kwargs`` (``reference=``, ``config=``...) build it, so they must come with the first call,
    before ``@monitor.watch(model=...)`` creates it with the defaults: once it exists they would
    be ignored (a reference silently missing, every reference-based detector off), so they are
    refused with the fix."""
    if kwargs:
        import inspect

        from monitor.decorator import check_keywords

        allowed = [n for n in inspect.signature(Monitor.__init__).parameters if n not in ("self", "model")]
        check_keywords(kwargs, allowed, "get_monitor()")
    with _MONITORS_LOCK:
        mon = _MONITORS.get(model)
        if mon is None or mon.closed:
            mon = _MONITORS[model] = Monitor(model=model, **kwargs)
        elif kwargs:
            raise ValueError(
                f"get_monitor({model!r}, {', '.join(f'{k}=...' for k in kwargs)}): the monitor of {model!r} already exists "
                "(created by @monitor.watch or an earlier get_monitor call), and these arguments only build a new one. "
                f"Fix: call monitor.get_monitor({model!r}, ...) with them before the decorator runs, or build "
                "mon = Monitor(...) yourself and decorate with @mon.watch(...)")
        return mon


class Monitor:
    """Watches one model.

    Parameters
    ----------
    model
        Name of the model; the ``model`` label of every exported series.
    config
        A :class:`~monitor.config.MonitorConfig`, a mapping in the ``monitor.yaml`` layout, or None
        for the defaults. Keyword arguments below override it.
    reference
        Held-out, in-distribution reference data the detectors calibrate against (a
        :class:`~monitor.reference.Reference`), or None to use ``config.reference.path``.
    registry
        The prometheus-client registry to export into (default: the package's shared one, served
        by :meth:`start_http_server`). Tests pass a fresh ``CollectorRegistry()``.
    live
        Live agents advance event time with the wall clock while idle; ``live=False`` (replay,
        batch jobs) moves time only with the events' timestamps.
    start_worker
        Start the background worker thread (``False``: everything happens in :meth:`flush`).
    detectors
        Detector instances to use instead of those built from the config.
    notifiers
        Alert sinks to use instead of those the config names (Alertmanager, webhook, log).
    clock
        Source of event time for calls without an explicit timestamp (default ``time.time``);
        simulations and tests pass their own.
    """

    def __init__(
        self,
        model: str | None = None,
        config: MonitorConfig | dict[str, Any] | None = None,
        *,
        reference: "Reference | None" = None,
        registry: "CollectorRegistry | None" = None,
        live: bool = True,
        start_worker: bool = True,
        detectors: list[Any] | None = None,
        notifiers: list[Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config is None:
            cfg = MonitorConfig(model=model or "default")
        elif isinstance(config, MonitorConfig):
            cfg = config
        else:
            cfg = parse_config({**config, **({"model": model} if model else {})}).model()
        if model is not None and cfg.model != model:
            import dataclasses

            cfg = dataclasses.replace(cfg, model=model)
        self.config = cfg
        self.model = cfg.model
        #: :func:`_state_shape` of the config, which is frozen: computed once, not at every checkpoint
        #: (shared by the state dicts, which are written out, never changed)
        self._shape = _state_shape(cfg)
        #: False for ``output.kind: none``: a call's outputs are then not queued (see :meth:`observe`;
        #: the decorator reads it too, as it does a :class:`~monitor.forwarding.ForwardingMonitor`'s)
        self.reads_outputs = cfg.output.reads_outputs
        #: ``output.kind``, as a ForwardingMonitor may be told it (the decorator reads either)
        self.output_kind = cfg.output.kind
        self.live = live
        self.clock = clock
        self.closed = False
        self._closed_at_exit = False
        #: (module, name) and a weak reference to the object of the functions watch() fed this monitor
        #: with without model= (named after them), to say when two models share it (see watch())
        self._default_feeders: list[tuple[tuple[Any, str], Any]] = []
        self._said_shared_default = False
        self.queue = EventQueue(cfg.queue.capacity, cfg.queue.max_bytes, sample_rate=cfg.queue.sample_rate,
                                seed=cfg.seed)
        self._lock = threading.RLock()

        from monitor.exporter import DEFAULT_REGISTRY, StoreCollector, attach
        from monitor.ingest import BatchBuilder
        from monitor.labels import LabelJoiner
        from monitor.pipeline import Pipeline
        from monitor.store import MetricStore

        self.store: MetricStore = MetricStore(self.model)
        self.store.set("monitor_queue_capacity", cfg.queue.capacity)
        self.store.set("monitor_queue_depth", 0)
        # every shed reason at 0 from the start: the first shed event is then an increase that
        # MonitorShedsEvents sees, not the birth of a series at its first value
        self.store.zero("monitor_events_dropped", [(reason,) for reason in SHED_REASONS])
        self.reference = reference if reference is not None else self._load_reference()
        #: The input features: the config's, else the reference's named ones (see
        #: :func:`monitor.reference_view.input_schema`).
        self.input_schema = input_schema(cfg.schema, self.reference, cfg.output)
        if detectors is not None:
            _check_detectors(detectors)
        self.detectors = detectors if detectors is not None else self._build_detectors()
        self._detectors_given = detectors is not None  # a restore may rebuild only those the config built
        #: What the last :meth:`load_state_dict` restored (None before any).
        self.restore_report: RestoreReport | None = None
        self.rules = None
        self.notifier = None
        self._series_store = None
        #: other metric stores this monitor's rule scrapes also read, each with the catalog names of
        #: the families read (None: all), see :meth:`rules_also_read`
        self._rule_sources: list[tuple[MetricStore, frozenset[str] | None]] = []
        self._template_errors: dict[str, int] = {}  # totals already counted, by rule group
        self._failures_counted: dict[str, int] = {}  # failed rule evaluations already counted, by group
        self._rule_errors_said: dict[tuple[str, str, str], str] = {}  # (file, group, rule) -> the error logged
        #: Called with every alert transition the in-agent rule evaluation produces (replay, tests).
        self.transition_listeners: list[Callable[[Any], None]] = []
        self._bad_timestamp_logged = Once(max_keys=2)
        #: the pid of the process this monitor was forked from (see :meth:`_after_fork`), else None:
        #: its checkpoints are then this process's own files (:func:`monitor.checkpoint.process_path`)
        self._forked_from: int | None = None
        #: who writes this monitor's checkpoints (:attr:`checkpoint_writer`), the writers whose file
        #: it last read or wrote, since when it runs and whether it has touched its file yet: a save
        #: finding another writer's file says that two processes share the path (see save_checkpoint)
        self._writer_token = os.urandom(6).hex()
        self._writers_known: set[str] = set()
        self._checkpoint_since = time.time()
        self._checkpoint_touched = False
        #: a forked copy still holding the state its parent restored from a checkpoint (as every
        #: sibling does), told at its first event unless it restored its own since
        self._inherited_restore = False
        self._said_per_process = False
        self._notifiers = notifiers
        tick_s = 0.0
        if cfg.rules.files:
            self._setup_rules(cfg)
            tick_s = self._rule_tick_s()
        self.pipeline: Pipeline = Pipeline(
            self.store,
            BatchBuilder(self.input_schema, cfg.output, classes=self._class_index(),
                         reference_names=() if self.reference is None else read_feature_names(self.reference, self.input_schema),
                         reference_categorical=() if self.reference is None else tuple(self.reference.categorical_names),
                         reference_text=() if self.reference is None else self.reference.text_names,
                         vocabularies=None if self.reference is None else self.reference.vocabularies,
                         reference_tensors=() if self.reference is None else self.reference.tensor_names,
                         tensor_channels=None if self.reference is None else self.reference.tensor_channels),
            self.detectors,
            tick_s=tick_s,
            on_tick=self._on_tick if tick_s else None,
            export_interval_s=cfg.queue.export_interval_s if live else 0.0,
            # later than the window: counted as late; a live agent measures held labels' wait on its clock
            joiner=LabelJoiner(cfg.labels_pending, window_s=_label_window(cfg.window_s, self.detectors),
                               early=cfg.labels_early, early_wait_s=cfg.labels_early_wait_s,
                               clock=clock if live else None),
            now=clock,
            live_ticks=live,
            window_s=cfg.window_s,
        )
        self.registry = registry if registry is not None else DEFAULT_REGISTRY
        #: this monitor's own collector (:meth:`metrics_text`); the registry gets the store through
        #: the collector its monitors share, which writes each family once for every model
        self._collector = StoreCollector([self.store], refresh=self.export_for_scrape)
        attach(self.registry, self.store, self.export_for_scrape)
        self._synced_dropped: dict[str, int] = {}
        self._synced_sampled = 0
        from monitor.worker import Worker

        self.worker = Worker(self.queue, self.pipeline, lock=self._lock, poll_s=cfg.queue.poll_s,
                             batch_max=cfg.queue.batch_max, batch_min=cfg.queue.batch_min,
                             linger_s=cfg.queue.linger_s, live=live, clock=clock, on_cycle=self._sync_queue_metrics,
                             name=f"monitor-worker-{self.model}")
        if start_worker:
            self.worker.start()
            _RUNNING.add(self)

    # -- construction helpers --------------------------------------------------------------------
    @classmethod
    def from_config(cls, path: str | Path, model: str | None = None, **kwargs: Any) -> "Monitor":
        """Build from ``monitor.yaml`` (the one model it defines, or ``model`` among several)."""
        agent: AgentConfig = load_config(path)
        mon = cls(config=agent.model(model), **kwargs)
        if mon.config.checkpoint.path is not None:
            log.warning("model %r: checkpoint.path in %s is written and restored by `monitor serve`; a Monitor built in "
                        "code does neither by itself. Fix: call mon.restore_checkpoint() after building it and "
                        "mon.save_checkpoint() (e.g. at shutdown, or on a timer), or remove checkpoint: from the file",
                        mon.model, path)
        return mon

    # -- checkpoints -----------------------------------------------------------------------------
    def _checkpoint_base(self, path: str | Path | None) -> Path:
        """The checkpoint file named by ``path`` or the config."""
        if path is not None:
            return Path(path)
        raw = self.config.checkpoint.path
        if raw is None:
            raise ValueError(f"model {self.model!r}: no checkpoint path. Fix: pass one (mon.save_checkpoint('state/"
                             f"{self.model}.ckpt')) or set checkpoint.path in the config")
        from monitor.checkpoint import model_path

        return model_path(raw, self.model)

    def _checkpoint_file(self, path: str | Path | None) -> Path:
        """:meth:`_checkpoint_base`; in a process forked from the one that built this monitor,
        that process's own file beside it (see :meth:`_after_fork`)."""
        from monitor.checkpoint import process_path

        file = self._checkpoint_base(path)
        if self._forked_from is None:
            return file
        own = process_path(file)
        if not self._said_per_process:
            self._said_per_process = True
            log.warning("model %r: this process (%d) was forked from %d with its monitor built (gunicorn --preload), and "
                        "each forked process runs one: its checkpoint is %s, not %s, which all of them would overwrite; "
                        "after a restart each process takes one saved state (see Monitor.restore_checkpoint). To keep "
                        "one state for all processes, forward their events to one sidecar (ForwardingMonitor)",
                        self.model, os.getpid(), self._forked_from, own, file)
        return own

    def save_checkpoint(self, path: str | Path | None = None, *, final: bool = False) -> Any:
        """Write :meth:`state_dict` atomically to ``path`` (default: the config's
        ``checkpoint.path``, as ``monitor serve`` names it) in the sidecar's checkpoint format
        (plain arrays and JSON, no pickle). Returns a :class:`monitor.checkpoint.CheckpointInfo`;
        raises :class:`monitor.checkpoint.CheckpointError` when the file cannot be written.

        ``final``: this is the last save before the process stops (no event is counted after
        it), so the restart continues the counters; see :meth:`state_dict`. The queue is drained
        into it first: events still queued then would be lost with the process, uncounted.

        In a process forked after this monitor was built (gunicorn ``--preload`` workers), the
        file is that process's own, ``<path>.process-<pid>``: several processes writing one file
        kept only the last one's state (a warning says so once per process)."""
        from monitor import checkpoint

        if final:
            self.worker.drain_once()
        file = self._checkpoint_file(path)
        foreign = checkpoint.foreign_writer(file, self._writers_known | {self.checkpoint_writer},
                                            self._checkpoint_since, self._checkpoint_touched)
        if foreign is not None:
            # two replicas on one volume: each overwrites the other's state and a restart restores
            # the other's windows, label joins and alert states; written over all the same (one of
            # them stopping would leave the other's state to the next restart), said and counted
            log.error("%s: the checkpoint %s was written by another process (%s, at %s) since this one (%s) last read or "
                      "wrote it: two monitors share this path, each overwriting the other's state, and a restart "
                      "restores whichever wrote last. Fix: give each replica its own checkpoint.path on its own volume "
                      "(a StatefulSet's volumeClaimTemplates; never one volume shared by a Deployment's replicas)",
                      self.model, file, foreign.get("writer"),
                      time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(foreign.get("created") or 0))),
                      self.checkpoint_writer)
            self.store.inc("monitor_checkpoint_failures", labels=("save", "shared"))
        info = checkpoint.save(file, self.state_dict(final=final), model=self.model, state_version=STATE_VERSION,
                               writer=self.checkpoint_writer)
        self.checkpoint_written(None)
        return info

    @property
    def checkpoint_writer(self) -> str:
        """This process in the checkpoints it writes: host, pid (a forked worker is another
        writer) and a random token (pids repeat across containers)."""
        import socket

        return f"{socket.gethostname()} pid {os.getpid()} #{self._writer_token}"

    def checkpoint_written(self, restored_from: str | None) -> None:
        """This monitor read (``restored_from``: the file's writer) or wrote its checkpoint: from
        now on a writer other than itself (or the one it restored) is another process."""
        self._writers_known = {restored_from} if restored_from is not None else set()
        self._checkpoint_touched = True

    def restore_checkpoint(self, path: str | Path | None = None) -> bool:
        """Load a checkpoint written by :meth:`save_checkpoint` or by ``monitor serve`` (default
        path: the config's ``checkpoint.path``). False when there is none yet, or when it could
        not be read (then it is moved aside with the reason logged, as the sidecar does);
        :attr:`restore_report` says what was restored.

        In a forked process (see :meth:`save_checkpoint`) call it after the fork, in each process
        (gunicorn's ``post_fork`` hook): it restores that process's own file, else takes over one
        that a process no longer running wrote (pids change with a restart), else the file of
        ``path`` itself, so that each saved state is restored by one process. A state restored
        before the fork is a copy in every process: counted at each one's first event in
        ``monitor_checkpoint_failures_total{operation="restore",reason="forked_copy"}``."""
        from monitor import checkpoint

        file = self._checkpoint_file(path)
        if self._forked_from is not None:
            # another process's state (a worker that exited, the previous run's), each taken by one
            file = checkpoint.claim(self._checkpoint_base(path)) or file
        restored, _failure = checkpoint.restore(self, file)
        return restored

    def _load_reference(self) -> "Reference | None":
        path = self.config.reference.path
        if path is None:
            return None
        from monitor.profile import load_reference  # built by the drift/profile module

        ref = self.config.reference
        schema = self.config.schema
        # an array file's columns have no names: read as the config's features, in order, as
        # array inputs are (else the detectors that read features by name meet none of them)
        unnamed_as = schema.numeric_names if schema.features and not schema.categorical_names else ()
        return load_reference(path, pca_fit=ref.pca_fit, output_columns=ref.output_columns, label_column=ref.label_column,
                              exclude=ref.exclude, categorical=ref.categorical, classes=self.config.output.classes,
                              unnamed_as=unnamed_as, text=ref.text, channel_axis=schema.tensor_channel_axis)

    def _class_index(self) -> Any:
        """The model's class names: the config's ``output.classes``, else the reference's (a
        reference built with names and labels under them: feedback then joins by those names, and
        every metric by class names a column alike), else learned as column indices."""
        from monitor.outputs import ClassIndex

        cfg = self.config
        ref_classes = self._reference_classes()
        if cfg.output.classes or not ref_classes or cfg.output.kind == "regression":
            return ClassIndex(cfg.output.classes)
        return ClassIndex(ref_classes)

    def _reference_classes(self) -> tuple[str, ...]:
        """The class names the reference was built with (none when it has none, or no reference)."""
        return tuple(str(c) for c in (getattr(self.reference, "classes", ()) or ()))

    def _build_detectors(self) -> list[Any]:
        """The configured detectors, built as ``monitor config check`` builds them: a value one
        refuses raises a :class:`ConfigError` naming its key and the fix
        (:func:`monitor.detector_build.build_detectors`)."""
        from monitor.detector_build import build_detectors
        from monitor.log_model import model_named_in_log

        cfg = self.config
        ref_classes = self._reference_classes()  # a reference without names takes the config's
        if ref_classes and cfg.output.classes and ref_classes[:len(cfg.output.classes)] != tuple(cfg.output.classes):
            # the class label of monitor_predicted_class_total comes from the config, that of the
            # detectors' per-class figures from the reference: two names for one column
            log.warning("model %r: the reference names its classes %s, the config's output.classes %s: metrics by class "
                        "would name the same column differently. Fix: make them the same, in score-column order "
                        "(monitor reference build --classes ...)", self.model, ", ".join(ref_classes),
                        ", ".join(cfg.output.classes))
        with model_named_in_log(self.model):
            return build_detectors(cfg, self.reference, self.input_schema)

    def _setup_rules(self, cfg: MonitorConfig) -> None:
        from monitor.promql.engine import Engine

        engine = Engine()
        self._start_rules(cfg.rules, _linked(self._loadable_rule_groups(cfg.rules.files, engine), cfg.rules), engine)
        self._size_series_store()

    def _start_rules(self, rules: RulesConfig, groups: list[Any], engine: Any) -> None:
        """An evaluator of ``groups`` (compiled by ``engine``), delivering to ``rules``'s receivers."""
        from monitor.promql.storage import SeriesStore
        from monitor.rules.evaluator import RuleEvaluator

        series = SeriesStore(retention_s=3600.0)
        evaluator = RuleEvaluator(
            groups, engine=engine, storage=series,
            external_labels=dict(rules.external_labels), external_url=rules.external_url,
            default_interval_s=rules.interval_s,
            for_outage_tolerance_s=rules.for_outage_tolerance_s, for_grace_period_s=rules.for_grace_period_s,
            wall_clock=self.clock if self.live else None,
        )
        self._series_store, self.rules = series, evaluator
        self._use_receivers(self._receivers(rules))  # last: what raises above leaves no notifier running

    def _receivers(self, rules: RulesConfig) -> list[Any]:
        """The alert sinks ``rules`` names (those given in code, when some were)."""
        from monitor.rules.notifier import AlertmanagerSink, LogSink, WebhookSink

        if self._notifiers is not None:
            return list(self._notifiers)
        sinks: list[Any] = [AlertmanagerSink(u) for u in rules.alertmanager_urls]
        sinks += [WebhookSink(u, external_url=rules.external_url) for u in rules.webhook_urls]
        if rules.log_alerts:
            sinks.append(LogSink())
        return sinks

    def _use_receivers(self, sinks: list[Any]) -> None:
        """Deliver alerts to ``sinks`` from now on: a notifier made for them, or the one there
        reconfigured (see :meth:`~monitor.rules.notifier.Notifier.reconfigure`)."""
        from monitor.rules.notifier import Notifier

        if self.notifier is None:
            self.notifier = Notifier(sinks) if sinks else None
        elif self._notifiers is None:  # sinks given in code are the caller's, never replaced
            self.notifier.reconfigure(sinks)
        if self.rules is not None:
            self.rules.notifier = self.notifier
        if self.notifier is not None:
            # born at 0: a "failed" series born at 1 at the first delivery that failed read as no increase,
            # in a Prometheus and in the agent, and MonitorAlertDeliveryFailing did not fire for it
            self.store.zero("monitor_notifications", [(kind, outcome) for kind, _ in self.notifier.stats_by_sink()
                                                      for outcome in ("sent", "failed", "dropped")])

    def _loadable_rule_groups(self, files: tuple[str, ...], engine: Any) -> list[Any]:
        """The groups of every rule file that loads; a file that does not is left out, its errors
        logged, and ``monitor_rule_last_reload_successful`` set to 0 (MonitorRuleReloadFailed).
        A typo in one file raised here, so that the monitor was never built: in a sidecar the whole
        load failed, every model's intake refused events and ``/readyz`` answered 503, which takes
        the pod out of its Service and stops the predictions the monitor only watches. A reload
        (SIGHUP, ``POST /-/reload``) loads the fixed file; ``monitor config check`` fails on it."""
        from monitor.rules.loader import loadable_rule_files

        groups, errors = loadable_rule_files(files, engine=engine)
        problems = [str(e) for e in errors]
        self.store.set("monitor_rule_last_reload_successful", 0.0 if problems else 1.0)
        self._count_rule_file_errors(errors)
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            log.error("model %r: rule files not loaded, their rules are not evaluated until they load: %s. Fix: correct "
                      "them (`monitor rules check FILE` lists every error), then reload (SIGHUP or POST /-/reload)",
                      self.model, shown)
        return groups

    def _count_rule_file_errors(self, errors: Iterable[Any]) -> None:
        """``monitor_rule_file_errors`` from the errors of the last load (none: every file loaded).
        Per file because one broken file shared by the models of a sidecar paged once per model."""
        per_file = Counter(e.file for e in errors)
        # one swap under the store's lock: a scrape between a clear and the sets saw no errors
        self.store.replace("monitor_rule_file_errors", [((file,), float(n)) for file, n in per_file.items()])

    def _size_series_store(self) -> None:
        """Keep the history the longest rule reads (plus two intervals), an hour at least."""
        assert self.rules is not None and self._series_store is not None
        self._series_store.retention_s = max(3600.0, self.rules.max_range_s + 2 * self.config.rules.interval_s)

    def _rule_tick_s(self) -> float:
        """How often rules are evaluated: the configured interval, or a group's shorter one."""
        assert self.rules is not None
        return min(self.config.rules.interval_s, self.rules.min_interval_s)

    # -- the caller's side -----------------------------------------------------------------------
    def observe(
        self,
        inputs: Any,
        outputs: Any,
        *,
        client: Any = None,
        request_id: Any = None,
        latency_s: float | None = None,
        segment: Any = None,
        timestamp: float | None = None,
        embedding: Any = None,
    ) -> bool:
        """Record one call (a row or a batch of rows) and its outputs (any, or None, for a model of
        ``output.kind: none``, whose inputs alone are monitored). Never blocks, never raises
        for bad data (bad rows are counted when the worker reads them). Returns False when the
        event was shed (queue full, closed) or sampled out.

        ``client``, ``request_id`` and ``segment`` are one value for the call's rows or a list with
        one value per row (a single request id on a batch becomes ``<id>/0``, ``<id>/1``, ...; a
        batching server scoring several callers' requests in one call gives one client per row)."""
        try:
            queue = self.queue
            if queue.sample_rate < 1.0 and queue.skip_by_sampling():
                return False
            try:
                ts = self.clock() if timestamp is None else event_time(timestamp)
            except ValueError:
                queue.drop("invalid_timestamp")
                say_unreadable_timestamp(self._bad_timestamp_logged, self.model, "observe", timestamp)
                return False
            if not self.reads_outputs:  # output.kind: none: anything, or None, never held nor read
                outputs = None
            return queue.put((PREDICTION, ts, inputs, outputs, latency_s, client, request_id, segment, embedding))
        except Exception:  # noqa: BLE001 - monitoring must never break the caller
            self.queue.drop("internal_error")
            return False

    def observe_error(self, exception: BaseException | str, *, latency_s: float | None = None,
                      client: str | None = None, timestamp: float | None = None) -> bool:
        """Record a call where the model raised (the decorator does this for you); sampled as
        :meth:`observe` is, so that errors over calls stays the model's error rate."""
        if self.queue.skip_by_sampling():
            return False
        event = error_event(exception, latency_s, client, self.clock if timestamp is None else timestamp)
        if event is None:
            self.queue.drop("invalid_timestamp")
            say_unreadable_timestamp(self._bad_timestamp_logged, self.model, "observe_error", timestamp)
            return False
        return self.queue.put(event)

    def feedback(self, request_ids: Any, labels: Any, *, timestamp: float | None = None) -> bool:
        """Delayed ground truth for earlier predictions, joined by request id (late and missing
        labels are normal; unknown ids are counted, never an error). A ValueError says what is
        wrong with the call itself (ids and labels of different lengths, a timestamp that is not a
        time): a mistake in the calling code, not a late or missing label."""
        ids, labs = feedback_lists(request_ids, labels)
        try:
            ts = self.clock() if timestamp is None else event_time(timestamp)
        except ValueError as err:
            raise ValueError(f"feedback: {err}") from None
        return self.queue.put((FEEDBACK, ts, ids, labs))

    def watch(self, fn: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """Decorate a predict function (see :func:`monitor.decorator.watch`)."""
        import inspect

        from monitor.decorator import check_keywords, watch

        if kwargs:
            allowed = [n for n, p in inspect.signature(watch).parameters.items() if p.kind is p.KEYWORD_ONLY and n != "monitor"]
            check_keywords(kwargs, allowed, "Monitor.watch()", taken={
                "monitor": "mon.watch(...) feeds mon; leave monitor= out, or call monitor.watch(..., monitor=other)"})
        return watch(fn, monitor=self, **kwargs)

    # -- the worker's side -----------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Process everything queued so far, synchronously (tests, batch jobs, before exit), and
        bring every exported figure up to date: as of exactly the events processed, as a rule
        tick sees them (queries the probing detector holds to batch its similarity step are
        analysed, throttled figures recomputed)."""
        self.worker.drain_once()
        with self._lock:
            self.pipeline.export_exact()

    def export_for_scrape(self) -> None:
        """Bring the exported figures up to the last processed event, without draining the queue
        (what a scrape of ``/metrics`` calls before reading the store).

        Between scrapes the worker exports only every ``queue.export_interval`` and at rule
        ticks: an export costs a few hundred microseconds whatever the traffic, and at low
        traffic paying it every second would cost more than the events themselves. Waits for a
        drain in progress (the detectors are not thread-safe), but at most
        :data:`SCRAPE_EXPORT_WAIT_S`: a drain holds the lock while it processes what was queued
        when it started (up to ``queue.capacity`` events: seconds when the worker is behind),
        and a scrape must still answer then (with the figures of the last export, at most
        ``queue.export_interval`` old, and current counters).
        Failures are logged and counted, never raised into the scrape.
        """
        if not self._lock.acquire(timeout=SCRAPE_EXPORT_WAIT_S):
            return
        try:
            self._sync_queue_metrics()  # shed and sampled-out counts as of now, not of the last worker cycle
            self.pipeline.export_pending()
        except Exception:  # noqa: BLE001 - a scrape must not fail because of a detector
            log.exception("model %r: exporting for a scrape failed", self.model)
            self.store.inc("monitor_internal_errors", labels=("export",))
        finally:
            self._lock.release()

    def _sync_queue_metrics(self) -> None:
        dropped, sampled = self.queue.counters()
        for reason, total in dropped.items():
            delta = total - self._synced_dropped.get(reason, 0)
            if delta:
                self.store.inc("monitor_events_dropped", delta, labels=(reason,))
                self._synced_dropped[reason] = total
        if sampled > self._synced_sampled:
            self.store.inc("monitor_events_sampled_out", sampled - self._synced_sampled)
            self._synced_sampled = sampled
        self.store.set("monitor_queue_depth", len(self.queue))

    def _on_tick(self, t: float) -> None:
        if self.rules is None or self._series_store is None:
            return
        self._scrape(t)
        self._publish(self._evaluate(t))

    def _evaluate(self, t: float) -> list[Any]:
        """One rule evaluation, with the evaluation's own metrics."""
        assert self.rules is not None
        store = self.store
        t0 = time.perf_counter()
        transitions = self.rules.evaluate(t)
        store.observe("monitor_rule_evaluation_seconds", time.perf_counter() - t0)
        store.inc("monitor_rule_evaluations")
        # every failed evaluation, by group: also those of a group evaluated off the tick (a 20 s
        # group under 15 s ticks) and each of a catch-up, which the rules' last health missed
        failing = False
        for group, total in tuple(self.rules.failed_by_group.items()):
            new = total - self._failures_counted.get(group, 0)
            if new > 0:
                store.inc("monitor_rule_evaluation_failures", new, labels=(group,))
                self._failures_counted[group] = total
                failing = True
        if failing or self._rule_errors_said:
            self._say_rule_errors()
        for group, total in self.rules.template_errors().items():
            new = total - self._template_errors.get(group, 0)
            if new > 0:
                store.inc("monitor_rule_template_errors", new, labels=(group,))
                self._template_errors[group] = total
        counts: dict[tuple[str, str, str], int] = {}
        for alert in self.rules.alerts():
            state = str(getattr(alert.state, "value", alert.state)).lower()
            key = (alert.name, state, alert.labels.get("severity", ""))
            counts[key] = counts.get(key, 0) + 1
        # one swap under the store's lock: a scrape between a clear and the sets saw no alert at all
        store.replace("monitor_alerts", [(key, float(n)) for key, n in counts.items()])
        if self.notifier is not None:
            # by receiver kind: with one series for all sinks ("alertmanager+log"), the log's
            # deliveries counted as sent while the Alertmanager failed, and no series said which failed
            by_kind: dict[str, dict[str, int]] = {}
            for kind, s in self.notifier.stats_by_sink():
                totals = by_kind.setdefault(kind, dict.fromkeys(("sent", "failed", "dropped"), 0))
                for outcome in totals:
                    totals[outcome] += getattr(s, outcome)
            for kind, totals in by_kind.items():
                for outcome, total in totals.items():
                    current = store.value("monitor_notifications", (kind, outcome)) or 0.0
                    if total > current:
                        store.inc("monitor_notifications", total - current, labels=(kind, outcome))
            store.set("monitor_notification_queue_length", self.notifier.stats.queued)
        return transitions

    def _say_rule_errors(self) -> None:
        """Log each rule that fails to evaluate, once per error (and when it evaluates again):
        the rules' health is shown nowhere else (the sidecar serves no ``/api/v1/rules``), and
        ``monitor_rule_evaluation_failures_total`` names only the group."""
        assert self.rules is not None
        said = self._rule_errors_said
        for h in self.rules.rule_health():
            key = (h.file, h.group, h.name)
            if h.health == "err" and said.get(key) != h.last_error:
                said[key] = h.last_error
                log.warning("model %r: %s: group \"%s\", rule \"%s\": evaluation failed: %s. Its alerts cannot fire (or "
                            "its series are not written) until it evaluates again. Fix the expression or the rule's "
                            "labels (try it with `monitor rules test`); counted in monitor_rule_evaluation_failures_total",
                            self.model, h.file, h.group, h.name, h.last_error)
            elif h.health == "ok" and key in said:
                del said[key]
                log.info("model %r: %s: group \"%s\", rule \"%s\" evaluates again", self.model, h.file, h.group, h.name)

    def _publish(self, transitions: list[Any]) -> list[Any]:
        for listener in self.transition_listeners:
            for tr in transitions:
                listener(tr)
        return transitions

    def _scrape(self, t: float) -> None:
        """What a Prometheus scrape at ``t`` would store: every sample, with ``__name__``,
        this model's and those of the stores given to :meth:`rules_also_read`."""
        assert self._series_store is not None
        self._sync_queue_metrics()
        samples = [({**labels, "__name__": name}, value) for name, labels, value in self.store.samples()]
        for other, families in self._rule_sources:
            # only the other store's own lock is taken (never its monitor's): no lock-order cycle
            samples += [({**labels, "__name__": name}, value) for name, labels, value in other.samples(families=families)]
        self._series_store.append_scrape(t, samples)

    def rules_also_read(self, store: "MetricStore", families: Iterable[str] | None = None) -> None:
        """Let this monitor's rule evaluation read ``store``'s series too, as a Prometheus scraping
        the process would see them next to the model's.

        The sidecar gives its own store (``model="_sidecar"``: the proxy's requests and upstream
        errors, its HTTP durations, refusals it cannot attribute to a model) to one of its monitors;
        without it the shipped rules on those series (MonitorProxyUpstreamFailing) fired only in a
        Prometheus, never in the agent. The store must carry its own ``model`` label, so that its
        series never collide with this model's.

        ``families`` (catalog names) restricts what is read to those families: the sidecar gives
        that same monitor the other models' ``monitor_intake_events_accepted``, the denominator
        of the ``_sidecar`` row of MonitorIntakeRefused and MonitorIntakeOverloaded (events
        accepted for every model), and nothing else of theirs, since each model's own evaluator
        raises that model's alerts and a second evaluator reading all of its series would list
        and send each of them twice. No shipped rule yields a row of another model from that
        family alone (it is only ever a denominator joined ``on (model, endpoint)`` to refusals);
        a user rule on it that keeps another model's ``model`` label does, and its alert is then
        listed by both evaluators: ``and on (model) monitor_rule_last_reload_successful`` keeps
        each evaluator to its own model (the README says so where it describes the sidecar's
        series in agent rules). Giving a store again widens what is read from it. Reading
        another store takes that store's lock only, never its monitor's.

        Raises
        ------
        monitor.catalog.SpecError
            A name in ``families`` that is not in the catalog (with close matches).
        """
        from monitor import catalog

        if store is self.store:
            return
        if isinstance(families, str):  # one name, not its letters
            families = (families,)
        wanted = None if families is None else frozenset(catalog.get(name).name for name in families)
        for i, (known, read) in enumerate(self._rule_sources):
            if known is store:
                self._rule_sources[i] = (store, None if read is None or wanted is None else read | wanted)
                return
        self._rule_sources.append((store, wanted))

    def advance(self, now: float) -> None:
        """Move event time forward without events (replay ends, tests)."""
        with self._lock:
            self.pipeline.advance(now)

    def evaluate_rules(self, now: float) -> list[Any]:
        """Snapshot the metrics and run one rule evaluation at event time ``now`` (seconds);
        returns the alert transitions."""
        if self.rules is None or self._series_store is None:
            return []
        with self._lock:
            self.pipeline.export(now)
            self._scrape(now)
            return self._publish(self._evaluate(now))

    def reload_rules(self, rules: RulesConfig | None = None) -> int:
        """Read the rule files again and evaluate them from the next tick on; returns the number
        of rules. ``rules`` (a reload of ``monitor.yaml``) replaces the config's ``rules:`` section
        with it: which files and packs, the interval, the receivers, the external labels and URL,
        as Prometheus's reload applies a changed list of rule files and its ``alerting:`` section.
        Without it, the files named at start are read again.

        Alerts of the rules that are still there carry over (a firing alert is not sent again as
        new, a pending one keeps its ``for:`` timer), as when Prometheus reloads; a receiver kept
        keeps what it was sent. Files that do not load raise
        :class:`~monitor.rules.model.RuleLoadError` naming each problem, and nothing changes: the
        rules evaluated before, with the receivers, labels and interval of before, stay in place;
        ``monitor_rule_last_reload_successful`` says which happened.
        """
        new = self.config.rules if rules is None else rules
        if self.rules is None and not new.files:
            self.config = replace(self.config, rules=new)  # nothing to evaluate, before or now
            return 0
        from monitor.promql.engine import Engine
        from monitor.rules.loader import load_rule_files
        from monitor.rules.model import RuleError, RuleLoadError

        try:
            engine = Engine() if self.rules is None else self.rules.engine
            groups = _linked(load_rule_files(list(new.files), engine=engine), new)
            with self._lock:
                if self.rules is None:  # rules: named for the first time
                    self._start_rules(new, groups, engine)
                    n = sum(len(g.rules) for g in groups)
                else:
                    n = self.rules.replace_groups(groups, external_labels=new.external_labels,
                                                  external_url=new.external_url, default_interval_s=new.interval_s)
                    self.rules.for_outage_tolerance_s = new.for_outage_tolerance_s
                    self.rules.for_grace_period_s = new.for_grace_period_s
                    self._use_receivers(self._receivers(new))
                self.config = replace(self.config, rules=new)
                self._size_series_store()
                self._template_errors.clear()  # the new rules count their template errors from zero
                self._retick(self._rule_tick_s())
        except Exception as err:
            self.store.inc("monitor_rule_reloads", labels=("failure",))
            self.store.set("monitor_rule_last_reload_successful", 0.0)
            # what failed past the files' own errors (none expected) is put on each file reloaded:
            # the page names the files, the log the error
            self._count_rule_file_errors(err.errors if isinstance(err, RuleLoadError) else
                                         [RuleError(file=f, message=str(err)) for f in new.files])
            raise
        self.store.inc("monitor_rule_reloads", labels=("success",))
        self.store.set("monitor_rule_last_reload_successful", 1.0)
        self._count_rule_file_errors(())
        log.info("model %r: rules reloaded: %d rule(s) in %d group(s)", self.model, n, len(groups))
        return n

    def _retick(self, tick_s: float) -> None:
        """Rule ticks every ``tick_s`` from now on (a reloaded group with a shorter interval), the
        next one the first multiple of it after the last tick fired."""
        pipe = self.pipeline
        if not pipe.tick_s:  # the first rules: ticks from the next multiple of tick_s on
            pipe.tick_s, pipe.on_tick, pipe.next_tick = tick_s, self._on_tick, None
            return
        if tick_s == pipe.tick_s:
            return
        if pipe.next_tick is not None:
            last = pipe.next_tick - pipe.tick_s
            pipe.next_tick = float((math.floor(last / tick_s) + 1) * tick_s)
        pipe.tick_s = tick_s

    def alerts(self) -> list[Any]:
        """Active (pending and firing) alerts as typed objects."""
        return [] if self.rules is None else self.rules.alerts()

    def suspicious_clients(self, limit: int = 100) -> list[Any]:
        """Clients the probing detectors consider suspicious, with their evidence."""
        out: list[Any] = []
        for det in self.detectors:
            fn = getattr(det, "suspicious_clients", None)
            if fn is not None:
                out.extend(fn(limit))
        return out[:limit]

    def client_lookup(self, client: Any) -> list[dict[str, Any]]:
        """What each probing detector shows for one raw client id: the id it exports (salted hash
        unless raw ids are allowed), whether it is tracked, and its verdict. Why: alerts name
        clients by hash, the access logs by raw id, and with the default random salt nothing
        outside the process could map one to the other."""
        out: list[dict[str, Any]] = []
        for det in self.detectors:
            key, verdict = getattr(det, "client_key", None), getattr(det, "verdict", None)
            if key is None or verdict is None or getattr(det, "suspicious_clients", None) is None:
                continue
            v = verdict(client)
            out.append({"client": key(client), "tracked": v is not None, "verdict": None if v is None else v.to_dict()})
        return out

    @property
    def one_feature(self) -> bool:
        """Whether this model reads one feature: a flat tensor the sidecar taps is then a column
        of rows (:attr:`monitor.ingest.BatchBuilder.one_feature`)."""
        return self.pipeline.builder.one_feature

    def watches_clients(self) -> bool:
        """Whether a detector of this monitor judges clients (probing): without one,
        :meth:`suspicious_clients` is empty whatever the traffic."""
        return any(getattr(det, "suspicious_clients", None) is not None for det in self.detectors)

    def why_no_probing(self) -> str:
        """Why this monitor runs no probing detector, and the fix (what ``GET /api/v1/clients``
        says of a model it lists no client for because nothing watches them)."""
        from monitor.detectors.defaults import why_not_run

        cfg = self.config
        listed = None if cfg.detectors is None else tuple(d.kind for d in cfg.detectors)
        return why_not_run("probing", cfg.output, self.reference, listed)

    # -- export ----------------------------------------------------------------------------------
    def metrics_text(self, openmetrics: bool = False) -> str:
        """The Prometheus exposition of this monitor's metrics, as a scrape sees them (see
        :meth:`export_for_scrape`; queued events are not drained: ``flush()`` does that)."""
        from prometheus_client import CollectorRegistry

        from monitor.exporter import exposition

        reg = CollectorRegistry(auto_describe=False)
        reg.register(self._collector)
        return exposition(reg, openmetrics=openmetrics).decode("utf-8")

    def start_http_server(self, port: int = 9108, addr: str = "127.0.0.1") -> tuple[Any, Any]:
        """Serve ``/metrics`` of this monitor's registry on ``addr:port`` (loopback by default);
        called again for a registry already served there, it returns the running server and its
        thread instead of failing to bind (see :func:`monitor.exporter.serve`)."""
        from monitor.exporter import serve

        return serve(self.registry, port, addr)

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self, *, final: bool = False) -> dict[str, Any]:
        """Everything needed to resume after a restart: detector windows, label joins, alerts, the
        reference the detectors were calibrated on (with its fingerprint; see
        :func:`monitor.reference.reference_state`) and the counters (the store's counters and
        histograms, but :data:`NOT_CHECKPOINTED_COUNTERS`).

        The counters are restored only from a ``final`` state (written when nothing more will be
        counted): a periodic state is behind what was scraped by the time a crash comes, and a
        counter that goes down reads as a reset to Prometheus, whose ``increase()`` would then
        count the restored total again."""
        with self._lock:
            self.pipeline.settle()  # rows held for the deferrable detectors belong in their state
            series = None
            if self._series_store is not None:
                from monitor.promql.storage import SCRAPE_SOURCE

                # the scrape's last snapshot marks what vanished across a restart stale; the rules'
                # own outputs restart unmarked, as in a restarted Prometheus (their sources are
                # named by position, which a reload moves)
                series = self._series_store.state_dict(MAX_CHECKPOINT_SERIES_CELLS, sources=(SCRAPE_SOURCE,))
            return {
                "version": STATE_VERSION,
                "model": self.model,
                "clock": self.pipeline.clock,
                "last_event": self.pipeline.last_event,
                "next_tick": self.pipeline.next_tick,
                "classes": list(self.pipeline.builder.classes.names),
                "classes_from_labels": self.pipeline.builder.classes.learned_from_labels,
                "score_widths": self.pipeline.builder.score_widths,
                "detectors": self._detector_states(),
                "joiner": self.pipeline.joiner.state_dict(),
                "rules": None if self.rules is None else self.rules.state_dict(),
                # what the webhook and the alert log were sent: a restart posts no firing alert again
                "notified": None if self.notifier is None else self.notifier.state_dict(),
                # what the rules read back over (ranges, offset): Prometheus keeps its TSDB across
                # restarts, and a rule reading an hour back would otherwise be blind for an hour
                "series": series,
                "reference": self._reference_state(),
                "counters": self.store.counter_state(exclude=NOT_CHECKPOINTED_COUNTERS),
                "final": bool(final),
                "shape": self._shape,
            }

    def _reference_state(self) -> dict[str, Any] | None:
        """The reference's checkpoint tree, computed once per reference (it is read-only once the
        detectors are built; hashing it at every checkpoint would be wasted work)."""
        ref = self.reference
        if ref is None:
            return None
        cached = getattr(self, "_reference_state_cache", None)
        if cached is not None and cached[0] is ref and cached[1] is ref.profile:
            return cached[2]
        from monitor.reference import reference_state

        state = reference_state(ref)
        self._reference_state_cache = (ref, ref.profile, state)
        return state

    def _reference_fingerprint(self) -> str | None:
        state = self._reference_state()
        return None if state is None else str(state["fingerprint"])

    def load_state_dict(self, state: dict[str, Any]) -> RestoreReport:
        """Resume from :meth:`state_dict` (this or an older readable version).

        The detectors' windows and calibration state only make sense against the reference they
        were calibrated on, so the reference decides: if this monitor's reference has the
        checkpoint's fingerprint, everything is restored; if this monitor has no reference (its
        ``reference.path`` is gone or unset), the checkpoint's is adopted, the detectors are
        rebuilt on it and then restored (the monitor keeps running on the reference it was
        calibrated on); if the reference differs (a new one was shipped), the new one is kept and
        the old detector states are set aside. Alert states, the event clock and label joins are
        restored in every case, the counters when the state is ``final`` (see :meth:`state_dict`).
        Raises ``ValueError`` for a state of another model
        or an unreadable version.
        """
        version = state.get("version")
        if version not in READABLE_STATE_VERSIONS:
            raise ValueError(f"state version {version!r} is not one of {READABLE_STATE_VERSIONS}; refusing to load it")
        if state.get("model") != self.model:
            raise ValueError(f"state is for model {state.get('model')!r}, not {self.model!r}")
        with self._lock:
            self.pipeline.settle()  # rows processed before the restore go where they went before it
            shape = state.get("shape")
            if shape is not None and shape != self._shape:
                # features or outputs changed in the config: windows, bins and per-feature state of
                # the old layout were restored as they were (a removed feature kept its series)
                outcome, reason = "config_changed", "config_changed"
                detail = f"the checkpoint's (features, outputs) {_shape_text(shape)} are now {_shape_text(self._shape)}"
            else:
                outcome, reason, detail = self._adopt_reference(state)
            outputs_kept = shape is None or shape[1:] == self._shape[1:]
            if outputs_kept:  # the classes learned (a labels-only model's answers) keep their columns
                renamed = self.pipeline.builder.classes.restore(state.get("classes", []))
                if renamed:
                    log.warning("%s: %d class name(s) of the checkpoint were learned from bytes read as their repr by an "
                                "earlier release (%s): restored as the text they stand for, in their columns, so that the "
                                "model's answers and labels, read as text now, join them again",
                                self.model, len(renamed), ", ".join(f"{old!r} as {new!r}" for old, new in renamed[:5]))
                self.pipeline.builder.classes.learned_from_labels = int(state.get("classes_from_labels", 0))
                self.pipeline.builder.restore_score_widths(state.get("score_widths"))
            self.pipeline.clock = float(state["clock"])
            newest = state.get("last_event")
            if newest is not None:
                # the newest event before the restart (the clock above may have moved on with the wall
                # clock while idle): without it the gauge was absent until the next event, so "time
                # since the last event" had no value right when a restarted model stayed quiet
                self.pipeline.last_event = float(newest)
                self.store.set("monitor_last_event_timestamp_seconds", float(newest))
            # a replay goes on in the event time it stopped at; a live agent was down meanwhile, and
            # evaluating the outage's ticks at restart (up to 1,000) wrote the metrics of now into the
            # past and ran alerts' `for:` through time nothing was watched: its next tick is the
            # next one after now, and pending alerts resume with the outage left out (rules below)
            self.pipeline.next_tick = None if self.live else state.get("next_tick")
            set_aside: list[str] = []
            self._restore_notes: list[str] = []
            if reason is None:
                set_aside = self._load_detector_states(state.get("detectors", {}))
            joiner_state = state.get("joiner", {})
            dropped = 0
            if not outputs_kept:
                # outputs changed (kind, classes, their order, quantile levels): a waiting prediction's
                # class indices and columns are of the old layout, and joined to a label they scored a
                # model whose classes were reordered as wrong on every row
                forgotten = dropped = len(joiner_state.get("ids", [])) if joiner_state else 0
                unheld = len(joiner_state.get("early", ())) if joiner_state else 0  # labels held for them: dropped alike
                # the ids of refused rows kept: their labels are for predictions refused, whatever the layout now
                self.pipeline.joiner.load_state_dict({"refused": joiner_state.get("refused", ())} if joiner_state else {})
            else:
                forgotten = self.pipeline.joiner.load_state_dict(joiner_state)
                unheld = self.pipeline.joiner.unheld_at_restore  # labels.early lowered (or 0) across the restart
            if forgotten:  # labels.pending lowered across the restart, or the outputs' layout changed
                self.store.inc("monitor_labels_evicted", forgotten)
            if unheld:  # shown in monitor_labels_early before the restart: counted where every label ends
                self.store.inc("monitor_feedback_labels", unheld, labels=("unknown_id",))
            self.store.set("monitor_labels_pending", len(self.pipeline.joiner))
            if self.pipeline.joiner.early_held:  # else absent, as gauges start after a restart
                self.store.set("monitor_labels_early", self.pipeline.joiner.early_held)
            if self.rules is not None and state.get("rules") is not None:
                self.rules.load_state_dict(state["rules"], restarted=self.live)
            if self.notifier is not None and state.get("notified") is not None:
                try:
                    self.notifier.load_state_dict(state["notified"])
                except Exception as err:  # noqa: BLE001 - only what the sinks were sent: the rest is restored all the same
                    log.warning("%s: what the alert webhook and log were sent is not in the checkpoint in a form this "
                                "agent reads (%s); still-firing alerts are delivered to them once more", self.model, err)
            if self._series_store is not None and state.get("series") is not None:
                try:
                    self._series_store.load_state_dict(state["series"])
                except Exception as err:  # noqa: BLE001 - the history only: alerts and detectors are restored all the same
                    log.warning("%s: the rules' series history in the checkpoint was not restored (%s); rules reading "
                                "back over time see only what comes from now on", self.model, err)
            skipped: list[str] = []
            counters = state.get("counters") if state.get("final") is True else None
            if counters is not None:
                skipped = self.store.load_counter_state(counters)
            self.pipeline.mark_changed()  # a scrape right after the restore shows the restored figures
        report = RestoreReport(outcome, reason is None, reason, detail, counters is not None, tuple(skipped), int(version),
                               tuple(set_aside), dropped, tuple(self._restore_notes))
        self.restore_report = report
        self._inherited_restore = False
        return report

    def _keyed_detectors(self) -> list[tuple[str, str, "Detector"]]:
        """``(key, positional key, detector)``: states are keyed by kind (``CalibrationDetector#0``;
        the number tells repeats of one kind apart), and were keyed by position before."""
        seen: dict[str, int] = {}
        out = []
        for i, d in enumerate(self.detectors):
            kind = type(d).__name__
            n = seen[kind] = seen.get(kind, -1) + 1
            out.append((f"{kind}#{n}", f"{i}:{kind}", d))
        return out

    def _detector_states(self) -> dict[str, Any]:
        return {key: d.state_dict() for key, _, d in self._keyed_detectors()}

    def _load_detector_states(self, states: dict[str, Any]) -> list[str]:
        """Load each detector's saved state; returns the detectors whose state did not fit (they
        start empty and refill over one window, the others keep theirs).

        Keyed by position, as before, a detector added at the front or removed from ``detectors:``
        made every later one find no state, or another's (older checkpoints are still read by
        position). A state that does not fit (a window length, bin count or ring size changed)
        used to refuse the whole checkpoint, or leave the monitor half loaded."""
        set_aside: list[str] = []
        for key, positional, d in self._keyed_detectors():
            saved = states.get(key, states.get(positional))
            if saved is None:
                continue  # a detector added since: it starts empty, as at a first start
            with contextlib.suppress(AttributeError):  # a detector of the caller's own, with __slots__
                d.restore_notes = []
            try:
                d.load_state_dict(saved)
            except Exception as err:  # noqa: BLE001 - any misfit: that detector starts empty, the rest is restored
                d._reset()
                set_aside.append(f"{getattr(d, 'name', None) or d.kind} ({err})")
                continue
            self._restore_notes.extend(f"{getattr(d, 'name', None) or d.kind}: {note}"
                                       for note in getattr(d, "restore_notes", ()))
        return set_aside

    def _adopt_reference(self, state: dict[str, Any]) -> tuple[str, str | None, str]:
        """Compare the checkpoint's reference with this monitor's; adopt it when this monitor
        has none. Returns ``(outcome, set_aside_reason, detail)`` (see :class:`RestoreReport`)."""
        if "reference" not in state:
            return "unverified", None, "the checkpoint predates reference fingerprints"
        from monitor.reference import legacy_reference_fingerprint, reference_fingerprint, reference_from_state

        stored = state["reference"]
        stored_fp = None if stored is None else stored.get("fingerprint")
        current_fp = self._reference_fingerprint()
        # an older agent's fingerprint (it hashed the profile's meta) is computed only on a mismatch
        if stored_fp == current_fp or (stored_fp is not None and self.reference is not None
                                       and stored_fp == legacy_reference_fingerprint(self.reference)):
            return "same", None, f"reference {current_fp}"
        if current_fp is not None:
            return ("changed", "reference_changed",
                    f"the detectors were calibrated on {stored_fp}, the monitor now has {current_fp}")
        if self._detectors_given:
            return "unverified", None, "detectors passed in code: their states are restored as they are"
        ref = reference_from_state(stored)
        if ref is None:
            return ("missing", "reference_missing",
                    f"no reference configured and the checkpoint holds only the fingerprint of {stored_fp} ({stored.get('omitted')})")
        if stored_fp != reference_fingerprint(ref) and stored_fp != legacy_reference_fingerprint(ref):
            raise ValueError(f"the checkpointed reference does not match its fingerprint {stored_fp}")
        recategorised = False
        if ref.profile is not None:
            from monitor.profile import canonical_profile

            # a profile saved before categories were canonical ("7.0"), as Profile.load reads it:
            # its detectors' states counted the old categories, so they start afresh
            prof = canonical_profile(ref.profile)
            if prof is not ref.profile:
                embedding, ref = ref.embedding, prof.to_reference()
                ref.embedding = embedding
                recategorised = True
        elif ref.categorical.size:
            from monitor.cell_values import categorical_text

            # rows (Reference.from_arrays) checkpointed with an older text ("7.0", "1.100000023841858", "")
            cat = categorical_text(ref.categorical)
            if cat.tolist() != ref.categorical.tolist():
                ref = replace(ref, categorical=cat)
                recategorised = True
        self.reference = ref
        self.input_schema = input_schema(self.config.schema, ref, self.config.output)
        self.pipeline.builder.adopt_reference(ref, self.input_schema)
        self.detectors = self._build_detectors()
        self.pipeline.detectors = list(self.detectors)
        log.warning("%s: no reference configured (or its file is gone); running on the one from the checkpoint (%s, %d rows)",
                    self.model, stored_fp, len(ref))
        if recategorised:
            return ("adopted", "reference_changed", f"reference {stored_fp} adopted from the checkpoint, its categories "
                    "read as this version compares them (7.0 as 7, a float32's 1.100000023841858 as 1.1, empty text "
                    "missing): the detectors' states are set aside")
        return "adopted", None, f"reference {stored_fp} adopted from the checkpoint"

    # -- lifecycle -------------------------------------------------------------------------------
    def _after_fork(self) -> None:
        """In a forked child: the parent's threads (worker, alert delivery) do not run here and the
        locks they or the callers held at the fork would stay held, so this process gets its own.
        Without it a decorated model in a gunicorn ``--preload`` worker queued its events until
        the queue was full and then shed them all, its figures frozen at the fork."""
        self._forked_from = os.getppid()
        # a writer of its own file (<path>.process-<pid>): what the parent read or wrote is not it
        self._writers_known, self._checkpoint_touched, self._checkpoint_since = set(), False, time.time()
        self._said_per_process = False
        self._inherited_restore = self.restore_report is not None
        self._lock = threading.RLock()
        self.store._lock = threading.Lock()
        self.queue.after_fork()
        if self.notifier is not None:
            self.notifier.after_fork(start=False)
        if self.worker.after_fork(self._lock, start=False):
            # started when this process first uses the monitor: a child that never does (a
            # multiprocessing pool's worker, a DataLoader's) runs no thread, evaluates no rule and
            # sends no alert (its windows, empty, would resolve the parent's firing ones)
            self.queue.on_first_event = self._start_after_fork

    def _start_after_fork(self) -> None:
        if self.closed:
            return
        if self._inherited_restore:
            self._inherited_restore = False
            # counted, not undone: the copy is what this process has, and its figures start there
            self.store.inc("monitor_checkpoint_failures", labels=("restore", "forked_copy"))
            log.warning("model %r: this process (%d) runs on the state its parent (%d) restored from a checkpoint before "
                        "forking it, as every process forked from it does: their windows hold the same events and, from "
                        "a final checkpoint, their counters the same totals (summed over the processes, counted once "
                        "per process). Fix: call mon.restore_checkpoint() in each process after the fork (gunicorn's "
                        "post_fork hook), not before it; counted in monitor_checkpoint_failures_total{operation=\"restore\","
                        "reason=\"forked_copy\"}", self.model, os.getpid(), self._forked_from)
        from monitor.exporter import served_before_fork

        served = served_before_fork(self.registry)
        if served:
            # gunicorn --preload with the Quick start's start_http_server at import: the parent's
            # /metrics showed none of the workers' predictions, and nothing said why
            log.warning("model %r: this process (%d) was forked after /metrics was served on %s by its parent process (%d), "
                        "whose server thread runs there only: that /metrics answers with the parent's figures, and this "
                        "process's predictions are not exported. Fix: forward every worker's events to one sidecar "
                        "(ForwardingMonitor, see examples/gunicorn_app), or start the server in each worker after the "
                        "fork (gunicorn's post_fork hook), each on a port of its own", self.model, os.getpid(),
                        ", ".join(served), self._forked_from)
        if self.notifier is not None:
            self.notifier.start_after_fork()
        self.worker.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop intake, drain the queue, stop the worker, unregister the metrics."""
        if self.closed:
            return
        self.closed = True
        _RUNNING.discard(self)
        self.queue.on_closed = self._say_used_after_close
        self.queue.closed = True
        self.worker.stop(timeout)
        if self.worker.alive:
            _DRAINING.add(self)  # still draining: what it leaves at interpreter exit is counted there
        else:
            self.worker.drain_once()
            with self._lock:
                self.pipeline.export_pending()
        if self.notifier is not None:
            # delivery gets ``timeout`` in all: the notifier's own close default (5 s) came on top of
            # the flush, and close(2.0) took 7 s with an Alertmanager that never answers
            until = time.monotonic() + timeout
            self.notifier.flush(timeout)
            self.notifier.close(max(until - time.monotonic(), 0.0))
        from monitor.exporter import detach

        detach(self.registry, self.store)

    def _say_used_after_close(self) -> None:
        """The first event after :meth:`close` (a decorated function still called, ``observe``,
        ``feedback``): counted as dropped (``closed``) in a store close() took off /metrics, the
        model was no longer monitored without a word anyone could see."""
        if self.queue.on_closed is None:
            return
        self.queue.on_closed = None  # once: the later ones are counted only
        if self._closed_at_exit:
            return  # a call during interpreter exit, after the monitors were closed for it
        log.warning("model %r: called after its monitor was closed (close(), or the end of its with block): the call "
                    "was answered, its event not monitored (counted in monitor_events_dropped_total{reason=\"closed\"}, "
                    "no longer exported), and so are the later ones. Fix: close the monitor when the model stops "
                    "serving; monitor.get_monitor(%r) builds a new one, but functions decorated before keep the closed "
                    "one: decorate them again", self.model, self.model)

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Monitor(model={self.model!r}, detectors={[type(d).__name__ for d in self.detectors]})"


def _check_detectors(detectors: list[Any]) -> None:
    """``detectors=`` takes built detectors; a kind's name there would only fail later, in the
    worker, on every batch."""
    for i, det in enumerate(detectors):
        if not all(callable(getattr(det, m, None)) for m in ("update", "update_labels", "advance", "export")):
            hint = (f"name kinds in the config instead: Monitor(config={{'detectors': [{det!r}]}})" if isinstance(det, str)
                    else "build one with monitor.detectors.registry.create(kind, reference=..., context=...)")
            raise TypeError(f"detectors[{i}]: {type(det).__name__} is not a detector; {hint}")


def _linked(groups: list[Any], rules: RulesConfig) -> list[Any]:
    """``groups`` with the ``dashboard_url`` annotation of ``rules.dashboard_url`` on the shipped
    packs' alerts (:mod:`monitor.dashboards.links`)."""
    if not rules.dashboard_url:
        return groups
    from monitor.dashboards.links import with_dashboard_links

    return with_dashboard_links(groups, rules.dashboard_url)
