"""Prometheus exposition of the metric stores, through prometheus-client.

Each :class:`~monitor.core.Monitor` exports its store into a ``CollectorRegistry`` (the package's
shared one by default, injectable so that tests get a fresh one) through :func:`attach`: the
monitors of one registry share one :class:`StoreCollector`, so that one ``/metrics`` serves
several models with each family written once (a collector per monitor wrote every family once per
model, which the text format and OpenMetrics forbid: promtool and OpenMetrics parsers refuse the
whole exposition). prometheus-client does the text and OpenMetrics formatting; the values come
from a snapshot of the store copied under its lock.

A store may come with a *refresh* callable that the collector calls before reading it: the
monitor's detectors then write their figures when a scrape asks for them (as a prometheus-client
custom collector computes on collect), so a scrape sees every event processed so far and the
worker does not pay for exports nobody reads.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.catalog import COUNTER, GAUGE

if TYPE_CHECKING:
    from monitor.store import MetricStore

__all__ = ["StoreCollector", "DEFAULT_REGISTRY", "attach", "detach", "exposition", "serve"]

log = logging.getLogger("monitor")

#: The registry monitors register in unless given another; ``Monitor.start_http_server`` serves it.
DEFAULT_REGISTRY = CollectorRegistry(auto_describe=False)


class StoreCollector(Collector):
    """Yields prometheus-client metric families from one or more metric stores.

    ``refresh`` (given with the stores or with :meth:`add`) is called before each collection that
    reads the stores; it must not raise (the monitor's own catches and counts its failures).
    """

    def __init__(self, stores: Iterable["MetricStore"], refresh: Callable[[], None] | None = None) -> None:
        #: each store with the refresh that came with it (the constructor's goes with its first)
        self._entries: list[tuple["MetricStore", Callable[[], None] | None]] = [
            (store, refresh if i == 0 else None) for i, store in enumerate(stores)]
        self._lock = threading.Lock()

    def add(self, store: "MetricStore", refresh: Callable[[], None] | None = None) -> "MetricStore | None":
        """Export ``store`` too. A store of the same model already here (a monitor built again
        without closing the first, as a notebook cell run twice does) stops being exported and is
        returned: both wrote the same series, which the text format forbids."""
        with self._lock:
            replaced = next((s for s, _ in self._entries if s.model == store.model), None)
            if replaced is not None:
                self._entries = [e for e in self._entries if e[0] is not replaced]
            self._entries.append((store, refresh))
            return replaced

    def remove(self, store: "MetricStore") -> bool:
        """Stop exporting ``store`` (and calling its refresh); returns whether stores remain."""
        with self._lock:
            self._entries = [e for e in self._entries if e[0] is not store]
            return bool(self._entries)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            entries = list(self._entries)
        for _, fn in entries:
            if fn is not None:
                fn()
        stores = [store for store, _ in entries]
        families: dict[str, Metric] = {}
        for store in stores:
            for fam in store.snapshot():
                spec = fam.spec
                labels = ["model", *spec.labels]
                metric = families.get(spec.name)
                if metric is None:
                    if spec.type == COUNTER:
                        metric = CounterMetricFamily(spec.name, spec.help, labels=labels)
                    elif spec.type == GAUGE:
                        metric = GaugeMetricFamily(spec.name, spec.help, labels=labels)
                    else:
                        metric = HistogramMetricFamily(spec.name, spec.help, labels=labels)
                    families[spec.name] = metric
                for key, value in fam.series.items():
                    label_values = [store.model, *key] if "".join(key).isascii() else [store.model, *map(_utf8, key)]
                    if spec.type == COUNTER or spec.type == GAUGE:
                        metric.add_metric(label_values, float(value))
                    else:
                        cum, buckets = 0.0, []
                        for bound, c in zip(spec.buckets + (float("inf"),), value.counts):
                            cum += c
                            buckets.append((_le(bound), cum))
                        metric.add_metric(label_values, buckets, value.sum)
        yield from families.values()


#: The collector each registry's monitors share (see :func:`attach`).
_SHARED: "weakref.WeakKeyDictionary[CollectorRegistry, StoreCollector]" = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def attach(registry: CollectorRegistry, store: "MetricStore", refresh: Callable[[], None] | None = None) -> None:
    """Export ``store`` in ``registry`` through the one collector its monitors share (registered
    with the first): every family is then written once, with the series of every model in it."""
    with _SHARED_LOCK:
        collector = _SHARED.get(registry)
        if collector is None:
            collector = _SHARED[registry] = StoreCollector([])
            registry.register(collector)
        replaced = collector.add(store, refresh)
    if replaced is not None:
        log.warning("model %r: another monitor of this model, never closed, was exporting in this registry; its metrics "
                    "are no longer exported, this one's are. Fix: close() the first (or build it in a with block), or "
                    "give each a model name of its own", store.model)


def detach(registry: CollectorRegistry, store: "MetricStore") -> None:
    """Undo :func:`attach` (a monitor closing); the shared collector leaves the registry with the
    last store."""
    with _SHARED_LOCK:
        collector = _SHARED.get(registry)
        if collector is None or collector.remove(store):
            return
        del _SHARED[registry]
        try:
            registry.unregister(collector)
        except KeyError:  # unregistered by its owner meanwhile
            pass


def _utf8(value: str) -> str:
    """A label value as UTF-8 can write it: a lone UTF-16 surrogate (which JSON escapes can carry
    into a Python string) becomes U+FFFD instead of failing every later scrape."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


def exposition(registry: CollectorRegistry, openmetrics: bool = False) -> bytes:
    """The registry's exposition in the text format (or OpenMetrics)."""
    if openmetrics:
        from prometheus_client.openmetrics.exposition import generate_latest as generate_om

        return generate_om(registry)
    from prometheus_client import generate_latest

    return generate_latest(registry)


#: The servers :func:`serve` started in this process: (registry, addr, port asked, port bound,
#: server, thread), so that a second call for the same registry returns the running one
_SERVED: list[tuple[CollectorRegistry, str, int, int, object, threading.Thread]] = []
_SERVED_LOCK = threading.Lock()


def served_before_fork(registry: CollectorRegistry) -> list[str]:
    """``addr:port`` where this process started serving ``registry`` and whose thread no longer
    runs: in a forked child, the servers its parent started (only the forking thread survives a
    fork), which answer with the parent's figures, not this process's."""
    with _SERVED_LOCK:
        return [f"{at}:{bound}" for reg, at, _asked, bound, _server, thread in _SERVED
                if reg is registry and not thread.is_alive()]


def serve(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> tuple[object, threading.Thread]:
    """Serve ``/metrics`` of ``registry`` from a daemon thread (prometheus-client's WSGI server).
    Binds to loopback unless told otherwise. Returns the server and its thread.

    Called again for a registry this process already serves at ``addr`` (on ``port``, or any port
    when ``port`` is 0), it returns that server: an app that starts its monitor's server where it
    builds the monitor (a module imported twice, a FastAPI startup hook run per app, two models on
    the shared default registry) failed with "Address already in use", or with port 0 started a
    second server. A port this process serves for another registry is a ValueError saying so."""
    from prometheus_client import start_http_server

    with _SERVED_LOCK:
        _SERVED[:] = [entry for entry in _SERVED if entry[5].is_alive()]
        for reg, at, asked, bound, server, thread in _SERVED:
            if at != addr or (port and port not in (asked, bound)):
                continue
            if reg is registry:
                return server, thread
            if port:
                raise ValueError(f"port {port} on {addr} already serves another registry's /metrics in this process; "
                                 "give this monitor another port, or build both monitors on one registry (the default) "
                                 "so that one /metrics serves both")
        server, thread = start_http_server(port, addr=addr, registry=registry)
        bound = int(getattr(server, "server_port", port))
        _SERVED.append((registry, addr, port, bound, server, thread))
        return server, thread
