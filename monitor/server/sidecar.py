"""The sidecar's state: its monitors (one per model), its own metrics, admission and accounting.

Everything the HTTP handlers, the CloudEvents joiner, the proxy tap and the forwarding receiver
share lives here, so that each of them enqueues events the same way and every event is counted
exactly once: accepted (then processed or shed with a counter inside the monitor) or refused
with a reason.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.catalog.sidecar import SIDECAR_MODEL
from monitor.config import AgentConfig, ConfigError, MonitorConfig, RulesConfig
from monitor.events import PREDICTION
from monitor.once import Once
from monitor.queue import event_bytes
from monitor.rules.notifier import without_credentials
from monitor.server.errors import IntakeError
from monitor.server.limits import Admission
from monitor.server.settings import SidecarSettings

if TYPE_CHECKING:
    from monitor.core import Monitor
    from monitor.store import MetricStore

__all__ = ["RulesReloadError", "Sidecar", "checkpoint_paths", "columnar"]

log = logging.getLogger("monitor.server")

#: how the log line of a refusal starts, by endpoint (:meth:`Sidecar.count_refused`)
_REFUSED_SUBJECT = {"proxy": "proxy: exchange not monitored", "cloudevents": "CloudEvent refused",
                    "forward": "forwarded events refused", "http": "malformed HTTP request refused"}

MonitorFactory = Callable[[MonitorConfig], "Monitor"]

#: The families of every model that the evaluator reading the ``_sidecar`` series reads too (see
#: :meth:`Sidecar._give_rules_the_sidecar_series`): the shipped rules' ``_sidecar`` row sums them
#: over every model, and no shipped rule yields a row of another model from them alone.
SIDECAR_ROW_FAMILIES = ("monitor_intake_events_accepted",)


def _rules_read_sidecar_families(mon: "Monitor") -> bool:
    """Whether ``mon``'s rules select a series of the sidecar's catalog (``monitor_proxy_*``,
    ``monitor_intake_*``, ``monitor_http_*``...), or one by a ``__name__`` matcher alone."""
    from monitor.catalog.sidecar import METRICS

    assert mon.rules is not None
    names = mon.rules.selected_names()
    return "" in names or any(n in names for spec in METRICS for n in spec.series_names())


def columnar(events: list[tuple[Any, ...]], *, inputs: bool = True, outputs: bool = True) -> list[tuple[Any, ...]]:
    """Predictions of one request whose inputs (and outputs) are flat numeric rows of one width
    get row views of one 2-D array instead of Python lists: one numpy conversion per request
    instead of one per event in the worker, which then takes its stacked fast path. Anything
    else (row objects, batches, strings, None) is left exactly as it came. ``inputs=False`` when
    the schema has categorical features (an integer code must stay an integer) or text ones (the
    prompt "7" must not be described as "7.0"), ``outputs=False``
    for class labels (the label 2 must not become "2.0") and generated text (the answer "5").
    Empty lists are not stacked: ``[]`` is a call of no rows (or outputs for none), while a row
    view of zero columns is one row of no features, counted ``wrong_shape``."""
    import numpy as np

    preds = [i for i, e in enumerate(events) if e[0] == PREDICTION and isinstance(e[2], list)]
    if len(preds) < 2 or not (inputs or outputs):
        return events
    x = None
    if inputs:
        try:
            x = np.array([events[i][2] for i in preds], dtype=np.float64)
        except (ValueError, TypeError):
            x = None
        if x is not None and (x.ndim != 2 or not x.shape[1]):
            x = None
    outs = [events[i][3] for i in preds]
    y = None
    if outputs and all(isinstance(o, list) for o in outs):
        try:
            y = np.array(outs, dtype=np.float64)
        except (ValueError, TypeError):
            y = None
        if y is not None and (y.ndim != 2 or not y.shape[1]):
            y = None
    if x is None and y is None:
        return events
    if len(preds) == len(events) and x is not None and y is not None:  # the common case, in one pass
        return [(e[0], e[1], xr, yr, e[4], e[5], e[6], e[7], e[8]) for e, xr, yr in zip(events, x, y)]
    out = list(events)
    for k, i in enumerate(preds):
        e = out[i]
        out[i] = (e[0], e[1], e[2] if x is None else x[k], e[3] if y is None else y[k]) + e[4:]
    return out


def checkpoint_paths(agent: AgentConfig) -> dict[str, Path]:
    """Checkpoint file of each model that has one. ``{model}`` in the path is replaced by the
    model name; a path that is a folder (or ends with ``/``) gets ``<model>.ckpt`` inside it.
    Two models may not share a file."""
    from monitor import checkpoint

    out: dict[str, Path] = {}
    for cfg in agent.models:
        raw = cfg.checkpoint.path
        if raw is None:
            continue
        path = checkpoint.model_path(raw, cfg.model)
        for other, p in out.items():
            if p == path:
                raise ConfigError("checkpoint.path", f"models {other!r} and {cfg.model!r} would share the checkpoint {path}",
                                  "put {model} in the path, or point it at a folder", agent.source)
        out[cfg.model] = path
    return out


def _told(err: BaseException) -> bool:
    """Whether ``err``'s message says what is wrong with the config or a file it names, and the
    fix: a load failure of one of these is one line (it was a traceback of the monitor's internals)."""
    from monitor.profile import ProfileError
    from monitor.rules.model import RuleLoadError

    return isinstance(err, (ConfigError, ProfileError, RuleLoadError, OSError))


def _reference_files_readable(agent: AgentConfig) -> None:
    """Raise :class:`ConfigError` for the first reference file (``reference.path``,
    ``reference.pca_fit``) the agent's start would refuse, as ``monitor config check`` finds it
    (:func:`monitor.config_files.reference_problems`). Why at a reload: the file is read only at
    start, and a reload that said success for a config whose reference was gone, or replaced by
    one that no longer loads, left a restart to come up not ready."""
    from monitor.config_files import reference_problems

    for m in agent.models:
        problems = reference_problems(m)
        if problems:
            problem, _, fix = problems[0].partition(". Fix: ")
            raise ConfigError("", f"{problem} (a restart would not load the model)",
                              fix or "restore the file, or point reference.path at one (monitor reference build)",
                              agent.source)


def _load_failure(source: str, model: str | None, err: BaseException) -> str:
    """One line for a model that could not be loaded at start: the config, the model, what the
    error says (its fix with it), and what the sidecar does meanwhile and how to fix it."""
    said = str(err).removeprefix(f"{source}: ") if _told(err) else \
        f"{type(err).__name__}: {err} (--log-level debug shows the traceback)"
    who = f"model {model!r}" if model is not None else "the models"
    return (f"{source}: {who} could not be loaded: {said}. The sidecar stays up, not ready (/readyz 503), and takes "
            f"no events: fix it (`monitor config check {source}` says whether it loads), then restart")


class BufferedHistogram:
    """Observations of one histogram buffered per label set and folded into the store in
    batches (once a second and before every scrape), so that a request pays one list append
    instead of a histogram update on its response path."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self._pending: dict[tuple[str, ...], list[float]] = {}
        self._lock = threading.Lock()

    def record(self, labels: tuple[str, ...], seconds: float) -> None:
        bucket = self._pending.get(labels)
        if bucket is None:
            with self._lock:
                bucket = self._pending.setdefault(labels, [])
        bucket.append(seconds)

    def fold(self, store: "MetricStore") -> None:
        with self._lock:
            items = list(self._pending.items())
        for key, values in items:
            n = len(values)
            if n:
                chunk = values[:n]
                del values[:n]
                store.observe(self.metric, chunk, labels=key)


class RulesReloadError(Exception):
    """Some models' rule files did not load on reload: ``failed`` maps each to its errors
    (``loaded``: the rules of the models that did reload; ``warnings``: what the reload of
    ``monitor.yaml`` warned of, see :meth:`Sidecar.reload`)."""

    def __init__(self, loaded: dict[str, int], failed: dict[str, str]) -> None:
        super().__init__("; ".join(f"model {m!r}: {e}" for m, e in failed.items()))
        self.loaded = loaded
        self.failed = failed
        self.warnings: list[str] = []


class Sidecar:
    """One process serving one or more models.

    Parameters
    ----------
    agent
        The validated ``monitor.yaml``.
    settings
        The sidecar's settings (see :func:`monitor.server.settings.settings_from`).
    monitor_factory
        Builds a :class:`~monitor.core.Monitor` from a model config (tests inject smaller ones);
        default: a live monitor exporting into a private registry (the sidecar serves one
        combined ``/metrics`` itself, so that families are never duplicated across models).
    """

    def __init__(self, agent: AgentConfig, settings: SidecarSettings, *, monitor_factory: MonitorFactory | None = None) -> None:
        from prometheus_client import CollectorRegistry

        from monitor.exporter import StoreCollector
        from monitor.store import MetricStore

        self.agent = agent
        self.settings = settings
        self.registry = CollectorRegistry(auto_describe=False)
        self.store: MetricStore = MetricStore(SIDECAR_MODEL)
        self.collector = StoreCollector([self.store])
        self.registry.register(self.collector)
        self.monitors: dict[str, Monitor] = {}
        self.admission = Admission(settings.max_queued_events)
        #: the proxy's data path processes (:mod:`monitor.server.dataplane`), synced before a scrape
        self.data_planes: set[Any] = set()
        self.http = BufferedHistogram("monitor_http_request_duration_seconds")
        self.upstream = BufferedHistogram("monitor_proxy_upstream_seconds")
        self.ready = False
        self.accepting = True
        self.shut_down = False
        #: requests inside an aiohttp handler (both applications), which shutdown waits for
        self.in_flight = 0
        #: ``time.monotonic()`` by which shutdown should be over (set on SIGTERM by ``monitor serve``)
        self.shutdown_deadline: float | None = None
        #: the sidecar's own port could not be bound (``monitor serve``): nothing was served, so
        #: shutdown writes no checkpoint over the files of whatever holds that port (a second
        #: instance of the same config would overwrite the running one's with its stale restore)
        self.bind_failed = False
        self.load_error: str | None = None
        #: the monitor.yaml ``agent`` was read from, read again at a reload (:meth:`reload_config`);
        #: None for a config built in code
        self.config_path: Path | None = None
        #: whether a model's rules read the sidecar's own series (:meth:`_give_rules_the_sidecar_series`)
        self._sidecar_series_read = False
        if settings.proxy.upstream:
            self.store.set("monitor_proxy_upstream_info", 1.0, (without_credentials(settings.proxy.upstream),
                                                                 ",".join(m.model for m in agent.models)))
        self.store.zero("monitor_config_reloads", [("success",), ("failure",)])
        self.store.set("monitor_config_last_reload_successful", 1.0)
        self.started = time.time()
        self.checkpoint_paths = checkpoint_paths(agent)
        self.restored: dict[str, bool] = {}
        self._factory = monitor_factory or self._default_factory
        self._lock = threading.Lock()
        self._reload_lock = threading.RLock()  # reload() holds it around reload_rules()
        #: (endpoint, reason) pairs whose first refusal was logged (:meth:`count_refused`)
        self._said_refused = Once(256)

    # -- monitors --------------------------------------------------------------------------------
    @staticmethod
    def _default_factory(cfg: MonitorConfig) -> "Monitor":
        from prometheus_client import CollectorRegistry

        from monitor.core import Monitor

        return Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False), live=True)

    def load(self) -> None:
        """Build every monitor (loading references) and restore checkpoints; then ready.
        Runs in a thread at start-up so that ``/healthz`` answers while references load."""
        from monitor import checkpoint
        from monitor.server.lifecycle import build_monitor

        if self.settings.worker_nice and threading.current_thread() is not threading.main_thread():
            from monitor.server.priority import lower_priority

            lower_priority(self.settings.worker_nice)  # the workers started here inherit it
        cfg: MonitorConfig | None = None
        try:
            for cfg in self.agent.models:
                path = self.checkpoint_paths.get(cfg.model)
                mon = build_monitor(self._factory, cfg, path)  # a gone reference file: the checkpoint's
                restored = False
                if path is not None:
                    restored, failure = checkpoint.restore(mon, path)
                    if failure is not None:
                        mon.close()
                        mon = self._factory(cfg)  # a half-loaded state is worse than none
                        self.count_checkpoint_failure(mon, "restore", failure)
                self.restored[cfg.model] = restored
                mon.store.set("monitor_checkpoint_restored", 1.0 if restored else 0.0)
                if path is not None:  # the first failed save is then an increase the rule sees
                    mon.store.zero("monitor_checkpoint_failures", [("save", r) for r in checkpoint.SAVE_FAILURE_REASONS])
                with self._lock:
                    self.monitors[cfg.model] = mon
                self.collector.add(mon.store, refresh=mon.export_for_scrape)
            self._give_rules_the_sidecar_series()
            self.ready = True
        except Exception as err:  # noqa: BLE001 - reported by /readyz and the log, never a crash loop
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("%s", _load_failure(self.agent.source, None if cfg is None else cfg.model, err))
            if not _told(err):  # a fault of the agent's own: its traceback is for a bug report
                log.debug("the traceback of the failed load", exc_info=err)

    def _give_rules_the_sidecar_series(self) -> None:
        """The sidecar's own series (``model="_sidecar"``: proxy requests and upstream errors, HTTP
        durations, refusals of no known model) into the rule scrapes of the first model, in config
        order, that evaluates rules. One model only: the same alert from every model's evaluator
        would be listed and sent once per model. Without this, MonitorProxyUpstreamFailing and the
        other rules on those series fired only in a Prometheus scraping the sidecar.

        That model's scrapes also read the other models' :data:`SIDECAR_ROW_FAMILIES`: the
        ``_sidecar`` row of MonitorIntakeOverloaded and MonitorIntakeRefused divides by the events
        accepted for every model, and with only its own model's the agent's ratio was that of the
        first model's traffic alone (50% where Prometheus computes 3.0% with a second model taking
        62 of every 63 events accepted: a page Prometheus would not send). Nothing else of theirs
        is read: see :meth:`~monitor.core.Monitor.rules_also_read` for user rules on that family.

        The model chosen is the first whose rules read a family of the sidecar's catalog (else the
        first that evaluates rules at all), as loaded at start: a reload that adds such rules to
        another model does not move the series. A reload that gives the sidecar its first rules
        chooses then."""
        evaluating = [mon for cfg in self.agent.models
                      if (mon := self.monitors.get(cfg.model)) is not None and mon.rules is not None]
        # the first whose rules read a sidecar family: with rules per model (models: merges them), the
        # first model's could be another pack's (rules: {packs: [confidence]}) while the next one has
        # core; the series went to the first, and MonitorProxyUpstreamFailing was evaluated by nobody
        readers = [mon for mon in evaluating if _rules_read_sidecar_families(mon)]
        for mon in readers[:1] or evaluating[:1]:
            self._sidecar_series_read = True
            mon.rules_also_read(self.store)
            for other in self.monitors.values():
                mon.rules_also_read(other.store, SIDECAR_ROW_FAMILIES)  # its own store is skipped

    def all_monitors(self) -> list["Monitor"]:
        with self._lock:
            return list(self.monitors.values())

    def reload(self) -> tuple[dict[str, int], list[str]]:
        """A reload (SIGHUP, ``POST /-/reload``): ``monitor.yaml`` read again (:meth:`reload_config`)
        and each model's ``rules:`` section applied with its rule files read again
        (:meth:`reload_rules`). Returns the number of rules per model and what to warn of: that
        the file no longer loads (the rule files named before are then read again), or the keys it
        changes that a reload does not apply (features, detectors, reference, server...).

        Raises :class:`RulesReloadError` (with the warnings) when some model's rules did not load."""
        with self._reload_lock:  # a signal and a request at once: one reload after the other
            agent, warnings = self.reload_config()
            sections = {} if agent is None else {m.model: m.rules for m in agent.models}
            try:
                loaded = self.reload_rules(sections)
            except RulesReloadError as err:
                err.warnings = warnings
                raise
            finally:
                if agent is not None:
                    warnings += self._say_restart_changes(agent)
            return loaded, warnings

    def reload_rules(self, sections: dict[str, RulesConfig] | None = None) -> dict[str, int]:
        """Read every model's rule files again; ``sections`` (by model) replaces a model's
        ``rules:`` section (files, packs, interval, receivers, external labels and URL) with its
        own. Returns the number of rules per model. A model whose rules do not load keeps all it
        had (rules, receivers, labels, interval: see :meth:`monitor.core.Monitor.reload_rules`),
        the others take their new ones, and :class:`RulesReloadError` names each failure (also
        logged)."""
        import dataclasses

        loaded: dict[str, int] = {}
        failed: dict[str, str] = {}
        sections = sections or {}
        with self._reload_lock:
            for mon in self.all_monitors():
                try:
                    loaded[mon.model] = mon.reload_rules(sections.get(mon.model))
                except Exception as err:  # noqa: BLE001 - a broken file is reported, never a crash
                    failed[mon.model] = str(err)
                    log.error("model %r: the rule files were not reloaded; the rules, receivers and settings loaded before "
                              "stay in place (monitor_rule_last_reload_successful 0). Fix the files (`monitor rules "
                              "check`) and reload again:\n%s", mon.model, err)
            # what is in force now, which the next reload's warnings are said against
            in_force = {mon.model: mon.config.rules for mon in self.all_monitors()}
            self.agent = dataclasses.replace(self.agent, models=tuple(
                dataclasses.replace(m, rules=in_force.get(m.model, m.rules)) for m in self.agent.models))
            if any(mon.rules is not None for mon in self.all_monitors()) and not self._sidecar_series_read:
                self._give_rules_the_sidecar_series()  # the first rules of this sidecar, added by this reload
        if failed:
            raise RulesReloadError(loaded, failed)
        return loaded

    def reload_config(self) -> tuple[AgentConfig | None, list[str]]:
        """Read ``monitor.yaml`` again at a reload: the config read (None without a file, or when
        it no longer loads), and the warning, if any, that it no longer loads (counted in
        ``monitor_config_reloads_total{outcome="failure"}``; the config in force stays).
        Before, a reload said nothing of the file: an edit to it (a new pack, an Alertmanager URL)
        looked applied, and a broken one surfaced only at the next restart, which then failed."""
        if self.config_path is None:
            return None, []
        from monitor.config import load_config
        from monitor.server.settings import settings_from

        source = str(self.config_path)
        try:
            agent = load_config(self.config_path)
            settings_from(agent)  # the server section, as `monitor serve` reads it
            checkpoint_paths(agent)
            _reference_files_readable(agent)
        except ConfigError as err:
            self.store.inc("monitor_config_reloads", labels=("failure",))
            self.store.set("monitor_config_last_reload_successful", 0.0)
            warning = (f"{err}; the config in force stays in force (the rule files it names were read again), and "
                       f"a restart would fail: fix the file (`monitor config check {source}`) and reload again")
            log.error("reload: %s", warning)
            return None, [warning]
        except Exception as err:  # noqa: BLE001 - it must not keep the rule files from reloading
            self.store.inc("monitor_config_reloads", labels=("failure",))
            self.store.set("monitor_config_last_reload_successful", 0.0)
            warning = (f"{source} could not be read ({type(err).__name__}: {str(err)[:200]}); the config in force "
                       f"stays in force (the rule files it names were read again): check the file "
                       f"(`monitor config check {source}`) and reload again")
            log.error("reload: %s", warning)
            log.debug("reload: reading %s", source, exc_info=True)
            return None, [warning]
        self.store.inc("monitor_config_reloads", labels=("success",))
        self.store.set("monitor_config_last_reload_successful", 1.0)
        return agent, []

    def _say_restart_changes(self, agent: AgentConfig) -> list[str]:
        """The keys ``agent`` changes that a reload does not apply (all but each model's ``rules:``,
        applied or refused on their own), as one warning, also logged."""
        import dataclasses

        from monitor.config_diff import config_changes

        new_rules = {m.model: m.rules for m in agent.models}
        in_force = dataclasses.replace(self.agent, models=tuple(
            dataclasses.replace(m, rules=new_rules.get(m.model, m.rules)) for m in self.agent.models))
        changes = config_changes(in_force, agent)
        if not changes:
            return []
        warning = (f"{agent.source} changed since start ({'; '.join(changes)}): a reload applies the rules: section "
                   "only (rule files and packs, interval, receivers, external labels and URL); these changes take "
                   "effect at the next restart")
        log.warning("reload: %s", warning)
        return [warning]

    def resolve(self, name: str | None, field: str = "model") -> "Monitor":
        """The monitor of ``name``; the only one when ``name`` is None and one model is served."""
        if not self.ready:
            if self.load_error is not None:
                # loading failed for good (it is not retried): "still loading; retry shortly" had
                # clients retry against a sidecar that would never take an event
                raise IntakeError(503, "model", f"the sidecar could not load its models ({self.load_error[:300]}); it "
                                                "takes no events until the config is fixed and it is restarted (see "
                                                "/readyz and its log)", "load_failed")
            raise IntakeError(503, "model", "the sidecar is still loading its models; retry shortly", "not_ready",
                              headers={"Retry-After": "1"})
        if name is None:
            if len(self.monitors) == 1:
                return next(iter(self.monitors.values()))
            fix = ("send the InferenceService's name in ce-inferenceservicename" if field.startswith("ce-") else
                   'name it in each event ("model": NAME) or in the query (?model=NAME)')
            raise IntakeError(400, field, f"is required: this sidecar serves {len(self.monitors)} models "
                                          f"({', '.join(sorted(self.monitors))}); {fix}", "missing_model")
        mon = self.monitors.get(name)
        if mon is None and name in self.settings.unmonitored_models:
            raise IntakeError(404, field, f"model {name[:100]!r} is not monitored here (server.unmonitored_models)",
                              "unmonitored")
        if mon is None:
            fix = ("; the InferenceService (Seldon: the SeldonDeployment) must be named as a model: of this sidecar's "
                   "config, or add a model of that name" if field.startswith("ce-") else "")
            # the way out for a model the model server hosts on purpose unmonitored is a setting
            # that only the README named: its traffic, refused this way, pages MonitorIntakeRefused
            raise IntakeError(404, field, f"no model named {name[:100]!r} here; served: {', '.join(sorted(self.monitors))}"
                                          f"{fix}. A model this sidecar is not meant to monitor goes in "
                                          "server.unmonitored_models: its traffic is then counted as unmonitored "
                                          "and pages nobody", "unknown_model")
        return mon

    def store_for(self, mon: "Monitor | None") -> "MetricStore":
        return self.store if mon is None else mon.store

    # -- accounting ------------------------------------------------------------------------------
    def count_refused(self, endpoint: str, reason: str, n: int = 1, mon: "Monitor | None" = None, *,
                      detail: str | None = None) -> None:
        """Count ``n`` refused events in ``monitor_intake_events_refused_total{endpoint, reason}``.

        ``detail`` (what was wrong, naming the field and the fix) is for refusals whose answer
        reaches no one who reads it: a proxied exchange (its client gets the model server's
        answer), a forwarded datagram (no answer at all), a CloudEvent (its 4xx goes to an
        inference logger that logs only the status, in another pod). The first refusal of each
        (endpoint, reason) with a detail is logged, before it is counted so that whoever sees the
        count finds the line; the rest are only counted (one line per event would flood the log).
        """
        reason = reason[:40]
        if detail is not None and self._said_refused.first((endpoint, reason)):
            # a model left unmonitored on purpose is said once, not warned about
            log.log(logging.INFO if reason == "unmonitored" else logging.WARNING,
                    "%s (%s)%s: %s; counted in monitor_intake_events_refused_total{endpoint=\"%s\",reason=\"%s\"}, "
                    "further ones without a log line", _REFUSED_SUBJECT.get(endpoint, f"{endpoint} events refused"),
                    reason, "" if mon is None else f" for model {mon.model!r}", detail, endpoint, reason)
        self.store_for(mon).inc("monitor_intake_events_refused", max(1, n), labels=(endpoint, reason))

    def count_checkpoint_failure(self, mon: "Monitor | None", operation: str, reason: str) -> None:
        self.store_for(mon).inc("monitor_checkpoint_failures", labels=(operation, reason))

    def enqueue(self, items: Iterable[tuple["Monitor", tuple[Any, ...]]], endpoint: str, *, admit: bool = True) -> int:
        """Put parsed events into their monitors' queues, all or nothing when ``admit`` (the
        queues are checked first; a batch that does not fit raises 429/503). Sampling applies to
        predictions as in the decorator. Returns the number of events accepted (shed events
        included: those are counted inside the queue)."""
        groups: dict[Monitor, list[tuple[Any, ...]]] = {}
        for mon, event in items:
            groups.setdefault(mon, []).append(event)
        n_all = sum(len(g) for g in groups.values())
        if not self.accepting:
            raise self._shutting_down(n_all)
        if admit:
            self.admission.check({m: len(g) for m, g in groups.items()}, self.all_monitors())
        for mon, events in groups.items():
            self._put(mon, events, endpoint, True)
        return n_all

    def enqueue_to(self, mon: "Monitor", events: list[tuple[Any, ...]], endpoint: str, *, stack: bool = True) -> int:
        """:meth:`enqueue` of events of one monitor, without admission (``admit=False``): the
        proxy's taps of one batch, without the grouping by monitor. ``stack=False`` leaves the
        events exactly as they came (no :func:`columnar`): the taps of several exchanges
        enqueued together are then the very events each would have been alone.

        Not refused when intake closes on SIGTERM (no client can retry a tap elsewhere): the
        exchanges the proxy still answers then, the requests in flight at the signal, are
        monitored and in the final checkpoint like the others; once a queue is closed, taps are
        dropped and counted there (``reason="closed"``)."""
        self._put(mon, events, endpoint, stack)
        return len(events)

    @staticmethod
    def _shutting_down(n: int) -> IntakeError:
        return IntakeError(503, "events", "the sidecar is shutting down; retry against another instance",
                           "shutting_down", events=n, headers={"Retry-After": "1"})

    @staticmethod
    def _put(mon: "Monitor", events: list[tuple[Any, ...]], endpoint: str, stack: bool) -> None:
        """One monitor's events into its queue: sampled, stacked (see :func:`columnar`), shed
        with a counter when the queue has no room; all counted as accepted."""
        accepted = len(events)
        events = mon.queue.sample_events(events)
        cfg = mon.config
        unread = not cfg.output.reads_outputs
        if unread:  # output.kind: none: the outputs sent are not read, so not held in the queue either
            events = [e if e[0] != PREDICTION or e[3] is None else (*e[:3], None, *e[4:]) for e in events]
        if stack and len(events) > 1:
            schema = mon.input_schema
            events = columnar(events, inputs=not (schema.categorical_names or schema.text_names), outputs=cfg.output.numeric)
        q = mon.queue
        room = max(0, q.capacity - len(q))
        size = sum(map(event_bytes, events))
        if q.closed:
            q.drop("closed", len(events))
        elif size and not q.reserve(size, len(events)):
            pass  # counted queue_bytes_full
        elif room >= len(events):
            q.items.extend(events)  # one C call; the worker pops from the other end
        else:
            q.items.extend(events[:room])
            if size:
                q.release(sum(map(event_bytes, events[room:])))
            q.drop("queue_full", len(events) - room)
        mon.store.inc("monitor_intake_events_accepted", accepted, labels=(endpoint,))

    # -- export ----------------------------------------------------------------------------------
    async def sync_proxies(self) -> None:
        """Wait until the proxy's data path processes have reported every request they answered
        so far (their taps and metrics), so that a scrape right after a request counts it."""
        if self.data_planes:
            await asyncio.gather(*(plane.sync() for plane in list(self.data_planes)))

    def fold(self) -> None:
        """Move buffered request and upstream durations into their histograms."""
        self.http.fold(self.store)
        self.upstream.fold(self.store)

    def metrics_text(self, openmetrics: bool = False) -> bytes:
        """One exposition for the whole process (every model and the sidecar's own series)."""
        from monitor.exporter import exposition

        self.fold()
        return exposition(self.registry, openmetrics=openmetrics)

    def status(self) -> dict[str, Any]:
        models = {}
        for name, mon in sorted(self.monitors.items()):
            dropped, sampled = mon.queue.counters()
            models[name] = {
                "queue_depth": len(mon.queue),
                "queue_capacity": mon.queue.capacity,
                "dropped": dropped,
                "sampled_out": sampled,
                "detectors": [type(d).__name__ for d in mon.detectors],
                "rules": mon.rules is not None,
                "reference": mon.reference is not None,
                "checkpoint": str(self.checkpoint_paths[name]) if name in self.checkpoint_paths else None,
                "restored_from_checkpoint": self.restored.get(name, False),
                # same / adopted / changed / missing / unverified (see monitor.core.RestoreReport)
                "reference_restore": None if mon.restore_report is None else mon.restore_report.reference,
                "detector_state_set_aside": (None if mon.restore_report is None
                                             else mon.restore_report.set_aside_reason),
                "event_time": mon.pipeline.clock if mon.pipeline.clock != float("-inf") else None,
            }
        return {
            "ready": self.ready,
            "accepting": self.accepting,
            "load_error": self.load_error,
            "uptime_seconds": time.time() - self.started,
            "proxy_upstream": self.settings.proxy.upstream,
            # the proxy's data path processes (server.proxy.process): pid (None while restarting), restarts
            "proxy_processes": [plane.status() for plane in list(self.data_planes)],
            "auth": {"write": bool(self.settings.write_tokens), "read": bool(self.settings.metrics_tokens)},
            "models": models,
        }
