"""The metric store: current values of every catalog metric of one monitored model.

Detectors write here through the :class:`MetricWriter` protocol; the exporter and the rule
engine's time-series store read consistent snapshots from it. Histograms are updated vectorised
(``searchsorted`` + ``bincount`` over a whole batch), because one prometheus-client
``Histogram.observe`` per value would cost more than all the detectors together.

Writers hold the lock only while they mutate; readers copy under the lock and format outside it.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Union

from monitor import catalog
from monitor.catalog import COUNTER, HISTOGRAM, MetricSpec

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LabelValues", "MetricWriter", "MetricStore", "FamilySnapshot", "HistogramValue"]

LabelValues = Union[Sequence[str], Mapping[str, str], None]


class MetricWriter(Protocol):
    """What a detector may do with metrics. Names must be in the catalog; labels in spec order
    (a tuple) or by name (a mapping); ``model`` is added by the store."""

    def set(self, name: str, value: float, labels: LabelValues = None) -> None: ...

    def inc(self, name: str, amount: float = 1.0, labels: LabelValues = None) -> None: ...

    def set_many(self, name: str, items: Iterable[tuple[LabelValues, float]]) -> None: ...

    def inc_many(self, name: str, items: Iterable[tuple[LabelValues, float]]) -> None: ...

    def observe(self, name: str, values: "np.ndarray | Sequence[float] | float", labels: LabelValues = None) -> None: ...

    def observe_buckets(self, name: str, counts: "np.ndarray", total: float, labels: LabelValues = None) -> None: ...

    def remove(self, name: str, labels: LabelValues = None) -> None: ...

    def remove_many(self, name: str, labels: Iterable[LabelValues]) -> None: ...

    def clear(self, name: str) -> None: ...

    def replace(self, name: str, items: Iterable[tuple[LabelValues, float]]) -> None: ...


@dataclass
class HistogramValue:
    """Non-cumulative bucket counts (last one is +Inf), the sum and the count."""

    counts: list[float]
    sum: float
    count: float


@dataclass(frozen=True)
class FamilySnapshot:
    """A copy of one metric family's series, taken under the lock."""

    spec: MetricSpec
    series: dict[tuple[str, ...], Any]  # float, or HistogramValue for histograms


class _Histogram:
    __slots__ = ("counts", "sum", "count")

    def __init__(self, n_buckets: int) -> None:
        self.counts = [0.0] * (n_buckets + 1)
        self.sum = 0.0
        self.count = 0.0


class MetricStore:
    """Values of every catalog metric for one model.

    Parameters
    ----------
    model
        Value of the ``model`` label on every series.
    specs
        The catalog to validate against (defaults to the full catalog); tests may pass a subset.
    """

    def __init__(self, model: str, specs: Mapping[str, MetricSpec] | None = None) -> None:
        self.model = model
        self._specs = dict(specs if specs is not None else catalog.CATALOG)
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[str, ...], Any]] = {name: {} for name in self._specs}
        self._bounds: dict[str, Any] = {}

    # -- writing ---------------------------------------------------------------------------------
    def _spec(self, name: str) -> MetricSpec:
        spec = self._specs.get(name)
        if spec is None:
            catalog.get(name)  # an unknown name raises with close matches
            raise catalog.SpecError(f"metric {name!r} is in the catalog but not enabled in this store")
        return spec

    @staticmethod
    def _key(spec: MetricSpec, labels: LabelValues) -> tuple[str, ...]:
        if labels is None:
            key: tuple[str, ...] = ()
        elif labels.__class__ is tuple:  # the common case, checked without building a new tuple
            key = labels
            for v in labels:
                if v.__class__ is not str:
                    key = tuple(str(v) for v in labels)
                    break
        elif isinstance(labels, Mapping):
            if set(labels) != spec._label_set:
                raise catalog.SpecError(
                    f"{spec.name}: labels {sorted(labels)} given, the catalog declares {list(spec.labels)}"
                )
            key = tuple(str(labels[n]) for n in spec.labels)
        else:
            key = tuple(str(v) for v in labels)
        if len(key) != len(spec.labels):
            raise catalog.SpecError(
                f"{spec.name}: {len(key)} label values given, the catalog declares {list(spec.labels)}"
            )
        return key

    def _pairs(self, spec: MetricSpec, items: Iterable[tuple[LabelValues, float]]) -> list[tuple[tuple[str, ...], float]]:
        """``(_key(spec, labels), float(value))`` of each pair, in order, :meth:`_key`'s common
        case inline (a tuple of str of the right length, used as given): a detector writes a
        hundred series or more per export, and a call per series cost as much as the check."""
        key, arity = self._key, len(spec.labels)
        out: list[tuple[tuple[str, ...], float]] = []
        append = out.append
        for labels, value in items:
            if labels.__class__ is tuple and len(labels) == arity:  # type: ignore[arg-type]
                for v in labels:  # type: ignore[union-attr]
                    if v.__class__ is not str:
                        break
                else:
                    append((labels, float(value)))  # type: ignore[arg-type]
                    continue
            append((key(spec, labels), float(value)))
        return out

    def _slot(self, spec: MetricSpec, key: tuple[str, ...], factory: Any) -> Any:
        """The series' value holder, created if the series cap allows; None when refused."""
        series = self._values[spec.name]
        if key in series:
            return series[key]
        if len(series) >= spec.max_series:
            refused = self._values.get("monitor_series_refused")
            if refused is not None and spec.name != "monitor_series_refused":
                k = (spec.name,)
                if k in refused or len(refused) < self._specs["monitor_series_refused"].max_series:
                    refused[k] = refused.get(k, 0.0) + 1.0
            return None
        series[key] = factory()
        return series[key]

    def set(self, name: str, value: float, labels: LabelValues = None) -> None:
        spec = self._spec(name)
        key = self._key(spec, labels)
        with self._lock:
            series = self._values[name]
            if key in series or self._slot(spec, key, float) is not None:
                series[key] = float(value)

    def set_many(self, name: str, items: Iterable[tuple[LabelValues, float]]) -> None:
        """``set(name, value, labels)`` for every ``(labels, value)`` pair, in order, with one catalog
        look-up and one lock: a detector exporting one figure per feature (or per feature and
        reason) writes hundreds of series per drained batch, and per-call overhead dominated."""
        spec = self._spec(name)
        pairs = self._pairs(spec, items)
        with self._lock:
            self._put_locked(spec, pairs)

    def write_series(self, families: Iterable[tuple[str, Sequence[LabelValues], Sequence[float], Sequence[bool]]]) -> None:
        """For each family ``(name, labels, values, present)``: the series whose ``present`` flag
        is False removed (absent, not zero), then the others set to their value: what
        :meth:`remove_many` and :meth:`set_many` of each family do, every label checked before
        anything is written, under one lock. A detector exporting per-segment figures writes
        twenty families or more per export, and two store calls per family cost as much as the
        figures' arithmetic."""
        checked = []
        for name, labels, values, present in families:
            spec = self._spec(name)
            checked.append((spec, self._pairs(spec, zip(labels, values)), present))
        with self._lock:
            for spec, pairs, present in checked:
                if not all(present):
                    self._drop_locked(spec.name, [k for (k, _), keep in zip(pairs, present) if not keep])
                self._put_locked(spec, [pair for pair, keep in zip(pairs, present) if keep])

    def _put_locked(self, spec: MetricSpec, pairs: Iterable[tuple[tuple[str, ...], float]]) -> None:
        """Set checked ``(key, value)`` pairs of one family (the lock held); a new series only
        while the family's cap has room (:meth:`_slot` counts what it refuses)."""
        series = self._values[spec.name]
        for k, value in pairs:
            if k in series or self._slot(spec, k, float) is not None:
                series[k] = value

    def _drop_locked(self, name: str, keys: Iterable[tuple[str, ...]]) -> None:
        """Remove checked series keys of one family (the lock held); absent ones are no error."""
        series = self._values[name]
        if series:
            for k in keys:
                series.pop(k, None)

    def inc_many(self, name: str, items: Iterable[tuple[LabelValues, float]]) -> None:
        """``inc(name, amount, labels)`` for every ``(labels, amount)`` pair, in order (as
        :meth:`set_many`); a negative amount is refused before anything is written."""
        spec = self._spec(name)
        pairs = self._pairs(spec, items)
        for k, amount in pairs:
            if amount < 0:
                raise ValueError(f"{name}: counters only go up (got {amount} for {k})")
        with self._lock:
            series = self._values[name]
            for k, amount in pairs:
                if k in series or self._slot(spec, k, float) is not None:
                    series[k] = series[k] + amount

    def inc(self, name: str, amount: float = 1.0, labels: LabelValues = None) -> None:
        spec = self._spec(name)
        if amount < 0:
            raise ValueError(f"{name}: counters only go up (got {amount})")
        key = self._key(spec, labels)
        with self._lock:
            series = self._values[name]
            if key in series or self._slot(spec, key, float) is not None:
                series[key] = series[key] + float(amount)

    def zero(self, name: str, labels: Iterable[LabelValues]) -> None:
        """Create each of these series of the counter ``name`` at 0, leaving those that exist as
        they are.

        A labelled counter is otherwise created at its first increment, born at 1: Prometheus'
        ``increase()`` then reads 0 for that first event (there is no earlier sample to grow
        from), so a rule such as ``increase(x[10m]) > 0`` never sees a one-off event. Prometheus'
        instrumentation guidance is to export at 0, from the start, the series whose label
        values are known in advance; this is how the callers do it.
        """
        spec = self._spec(name)
        if spec.type != COUNTER:
            raise catalog.SpecError(f"{name} is a {spec.type}, not a counter: only counters start at 0")
        keys = [self._key(spec, labels_) for labels_ in labels]
        with self._lock:
            series = self._values[name]
            for k in keys:
                if k not in series:
                    self._slot(spec, k, float)

    def observe(self, name: str, values: Any, labels: LabelValues = None) -> None:
        import numpy as np

        spec = self._spec(name)
        if spec.type != HISTOGRAM:
            raise catalog.SpecError(f"{name} is a {spec.type}, not a histogram")
        key = self._key(spec, labels)
        arr = np.asarray(values, dtype=np.float64).ravel()
        arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            return
        bounds = self._bounds.get(name)
        if bounds is None:
            bounds = self._bounds[name] = np.asarray(spec.buckets, dtype=np.float64)
        idx = np.searchsorted(bounds, arr, side="left")  # first bucket with bound >= value ("le")
        self._add_buckets(spec, key, np.bincount(idx, minlength=len(bounds) + 1), float(arr.sum()), float(arr.size))

    def observe_buckets(self, name: str, counts: Any, total: float, labels: LabelValues = None) -> None:
        """Add observations already counted per bucket of the metric's catalog buckets (the last
        one ``+Inf``) with their sum: a detector that bins its values itself hands the counts
        over instead of values the store would bin a second time."""
        import numpy as np

        spec = self._spec(name)
        if spec.type != HISTOGRAM:
            raise catalog.SpecError(f"{name} is a {spec.type}, not a histogram")
        c_in = np.asarray(counts, dtype=np.float64).ravel()
        if c_in.size != len(spec.buckets) + 1:
            raise catalog.SpecError(f"{name}: {c_in.size} bucket counts given, the catalog declares {len(spec.buckets) + 1}")
        n = float(c_in.sum())
        if n:
            self._add_buckets(spec, self._key(spec, labels), c_in, float(total), n)

    def _add_buckets(self, spec: MetricSpec, key: tuple[str, ...], counts: Any, total: float, n: float) -> None:
        import numpy as np

        with self._lock:
            hist = self._slot(spec, key, lambda: _Histogram(len(spec.buckets)))
            if hist is None:
                return
            c = hist.counts
            for i in np.flatnonzero(counts).tolist():
                c[i] += float(counts[i])
            hist.sum += total
            hist.count += n

    def remove(self, name: str, labels: LabelValues = None) -> None:
        """Make one series absent (e.g. below a figure's minimum sample size): absent, not zero."""
        spec = self._spec(name)
        key = self._key(spec, labels)
        with self._lock:
            self._values[name].pop(key, None)

    def remove_many(self, name: str, labels: Iterable[LabelValues]) -> None:
        """``remove(name, l)`` for every ``l``, with one catalog look-up and one lock (a detector
        with figures below their minimum count in every segment removes dozens at each export)."""
        spec = self._spec(name)
        keys = [k for k, _ in self._pairs(spec, ((l, 0.0) for l in labels))]
        with self._lock:
            self._drop_locked(name, keys)

    def clear(self, name: str) -> None:
        """Remove every series of a metric."""
        self._spec(name)
        with self._lock:
            self._values[name].clear()

    def replace(self, name: str, items: Iterable[tuple[LabelValues, float]]) -> None:
        """Every series of a metric replaced by ``items`` (a bounded top-k, a largest gap) under
        one lock: a scrape's snapshot sees the old series or the new, never the family emptied
        between a :meth:`clear` and the sets that follow it (a missed series restarts an
        alert's ``for:`` in the Prometheus that scraped it)."""
        spec = self._spec(name)
        pairs = self._pairs(spec, items)
        with self._lock:
            self._values[name].clear()
            self._put_locked(spec, pairs)

    # -- reading ---------------------------------------------------------------------------------
    def value(self, name: str, labels: LabelValues = None) -> Any:
        """Current value of one series (float, HistogramValue) or None when absent. For tests and CLI."""
        spec = self._spec(name)
        key = self._key(spec, labels)
        with self._lock:
            v = self._values[name].get(key)
            if isinstance(v, _Histogram):
                return HistogramValue(list(v.counts), v.sum, v.count)
            return v

    def snapshot(self, families: Collection[str] | None = None) -> list[FamilySnapshot]:
        """A consistent copy of every family with at least one series; only those named in
        ``families`` (catalog names) when given, so that a reader of one family does not copy
        the hundreds of series a model's detectors write."""
        out = []
        with self._lock:
            values = self._values
            chosen = values.items() if families is None else [(n, values[n]) for n in families if n in values]
            for name, series in chosen:
                if not series:
                    continue
                spec = self._specs[name]
                if spec.type == HISTOGRAM:
                    copy = {k: HistogramValue(list(h.counts), h.sum, h.count) for k, h in series.items()}
                else:
                    copy = dict(series)
                out.append(FamilySnapshot(spec, copy))
        return out

    def samples(self, extra_labels: Mapping[str, str] | None = None,
                families: Collection[str] | None = None) -> list[tuple[str, dict[str, str], float]]:
        """Flat Prometheus samples (as a scrape would see them), for the rule engine's store;
        ``families`` as in :meth:`snapshot`."""
        base = {"model": self.model, **(extra_labels or {})}
        out: list[tuple[str, dict[str, str], float]] = []
        for fam in self.snapshot(families):
            spec = fam.spec
            for key, v in fam.series.items():
                labels = dict(base)
                labels.update(zip(spec.labels, key))
                if spec.type == HISTOGRAM:
                    cum = 0.0
                    for bound, c in zip(spec.buckets + (float("inf"),), v.counts):
                        cum += c
                        out.append((spec.name + "_bucket", {**labels, "le": _format_le(bound)}, cum))
                    out.append((spec.name + "_sum", labels, v.sum))
                    out.append((spec.name + "_count", labels, v.count))
                else:
                    out.append((spec.exposed_name, labels, float(v)))
        return out

    # -- surviving restarts ----------------------------------------------------------------------
    def counter_state(self, exclude: Iterable[str] = ()) -> dict[str, Any]:
        """Every counter's series and every histogram's buckets, sum and count, as plain data for a
        checkpoint, so that a restarted agent continues them instead of starting at zero (rules'
        ``increase()`` and Prometheus then see no reset). Gauges are left out: whoever sets them
        recomputes them. ``exclude`` names families mirrored from a total that restarts with the
        process (the caller knows which)."""
        skip = set(exclude)
        counters: dict[str, list[list[Any]]] = {}
        histograms: dict[str, dict[str, Any]] = {}
        with self._lock:
            for name, series in self._values.items():
                if not series or name in skip:
                    continue
                spec = self._specs[name]
                if spec.type == COUNTER:
                    counters[name] = [[list(k), float(v)] for k, v in series.items()]
                elif spec.type == HISTOGRAM:
                    histograms[name] = {"buckets": list(spec.buckets),
                                        "series": [[list(k), list(h.counts), h.sum, h.count] for k, h in series.items()]}
        return {"counters": counters, "histograms": histograms}

    def load_counter_state(self, state: Mapping[str, Any]) -> list[str]:
        """Add checkpointed values (from :meth:`counter_state`) to this store's, so that counters
        and histograms continue from where the previous process stopped. Adding, not setting,
        keeps whatever was counted since this process started. A family that left the catalog or
        changed type, labels or buckets is skipped whole (never half-loaded); the series cap
        applies. Returns the names of the families skipped, for the caller to report."""
        skipped: list[str] = []
        loads: list[tuple[MetricSpec, list[tuple[tuple[str, ...], Any]]]] = []
        for name, rows in dict(state.get("counters") or {}).items():
            spec = self._specs.get(name)
            try:
                if spec is None or spec.type != COUNTER:
                    raise ValueError
                series = [(_label_key(spec, labels), _non_negative(value)) for labels, value in rows]
            except (ValueError, TypeError):
                skipped.append(name)
                continue
            loads.append((spec, series))
        for name, hist in dict(state.get("histograms") or {}).items():
            spec = self._specs.get(name)
            try:
                if spec is None or spec.type != HISTOGRAM or tuple(float(b) for b in hist["buckets"]) != tuple(spec.buckets):
                    raise ValueError
                n = len(spec.buckets) + 1
                series = []
                for labels, counts, total, count in hist["series"]:
                    if len(counts) != n:
                        raise ValueError
                    series.append((_label_key(spec, labels), ([_non_negative(c) for c in counts], float(total), _non_negative(count))))
            except (ValueError, TypeError, KeyError):
                skipped.append(name)
                continue
            loads.append((spec, series))
        with self._lock:
            for spec, series in loads:
                target = self._values[spec.name]
                if spec.type == COUNTER:
                    for key, value in series:
                        if key in target or self._slot(spec, key, float) is not None:
                            target[key] = target[key] + value
                    continue
                n_bounds = len(spec.buckets)
                for key, (counts, total, count) in series:
                    h = self._slot(spec, key, lambda: _Histogram(n_bounds))
                    if h is not None:
                        h.counts = [a + b for a, b in zip(h.counts, counts)]
                        h.sum += total
                        h.count += count
        return sorted(skipped)


def _label_key(spec: MetricSpec, labels: Any) -> tuple[str, ...]:
    key = tuple(str(v) for v in labels)
    if len(key) != len(spec.labels):
        raise ValueError(f"{spec.name}: {len(key)} label values, the catalog declares {len(spec.labels)}")
    return key


def _non_negative(value: Any) -> float:
    v = float(value)
    if not v >= 0:  # also refuses NaN
        raise ValueError(f"a counter value must be >= 0, got {value!r}")
    return v


def _format_le(bound: float) -> str:
    """Bucket bound as prometheus-client prints it (so both views of a series agree)."""
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)
