"""What the worker does with a drained batch of events, synchronously.

Kept apart from the thread (:mod:`monitor.worker`) so that the same code runs live, in
``flush()``, and in ``monitor replay`` at full speed: event time only, no wall clock, so a replayed
log gives the same metrics and alerts as the live traffic did.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.batch import LabeledBatch
from monitor.cell_values import COMPLEX_SCALARS
from monitor.events import ERROR, FEEDBACK, MAX_REQUEST_ID_CHARS, PREDICTION, describe_value
from monitor.holding import HeldBatches
from monitor.ingest import BatchBuilder, MixedOutputWidths, guess_rows
from monitor.windows import rows_outside_window
from monitor.labels import LabelJoiner, is_class_label
from monitor.multilabel_truth import FORMS
from monitor.float_errors import quiet_float_errors
from monitor.log_model import names_its_model
from monitor.once import Once
from monitor.outputs import LABEL_CLASSES_MAX
from monitor.row_arguments import refused_ids
from monitor.store import MetricStore

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.base import Detector

__all__ = ["DETECTOR_FAILURE_LOG_S", "HOLD_ROWS", "INTERNAL_ERROR_STAGES", "MAX_CATCH_UP_TICKS", "MAX_FUTURE_S", "Pipeline", "detector_label", "latency_seconds"]

#: Seconds between two log lines of the same detector failure (the first is logged at once; every
#: one is counted in ``monitor_detector_errors_total``).
DETECTOR_FAILURE_LOG_S = 600.0

log = logging.getLogger("monitor")

#: The fixes of the outputs refused for a generative model (``output.kind: text``), whose answers are
#: one text per row: the other kinds' fixes (labels, scores) would send its user elsewhere.
_TEXT_HINTS: dict[str, str] = {
    "rows_mismatch": "return one generated text per input row (a list of strings; one string for a one-row call), or "
                     "pick them with watch(..., outputs=lambda result: [r['text'] for r in result])",
    "non_numeric_output": "return the generated texts as strings (or bytes), or pick them with watch(..., "
                          "outputs=lambda result: [r['text'] for r in result]); answers that are no text (boxes, "
                          "token ids, embeddings) need output.kind: none, whose inputs alone are monitored",
}

#: What to change when rows are refused for a reason that usually means a configuration mistake
#: rather than a bad client (logged with the first refusal of that reason).
REJECTION_HINTS: dict[str, str] = {
    "non_numeric_output": "for a model that returns class labels (predict rather than predict_proba) set "
                          "output.kind: labels in the config; for one that returns a dict or an object, pick its "
                          "scores with watch(..., outputs=lambda result: ...) (through the sidecar: "
                          "server.proxy.oip_output names the output); text that is no class of its row (generated "
                          "text, a label per token) and answers that are no scores (boxes, rankings, embeddings) are "
                          "not monitored as outputs (as labels each answer would be a class): set output.kind: none "
                          "to watch the inputs alone, or, to also watch a figure of each answer, output.kind: "
                          "regression with watch(..., outputs=lambda out: [len(o) for o in out])",
    "labels_as_probabilities": "decorate the function that returns probabilities (predict_proba), or for a model "
                               "that returns class labels set output.kind: labels in the config",
    "probabilities_not_normalised": "rows of probabilities must sum to 1; for a multi-label model (each column an "
                                    "independent probability, a sigmoid per label) set output.kind: multilabel; for "
                                    "raw scores set output.kind: logits",
    "probability_out_of_range": "probabilities must lie in [0, 1]; for raw scores set output.kind: logits, for a "
                                "regression model's values output.kind: regression (output: {kind: regression} in "
                                "monitor.yaml, config={\"output\": {\"kind\": \"regression\"}} in code)",
    "output_shape": "check output.kind and output.classes against what the model returns; a model whose answers are no "
                    "scores (lists of boxes, top-k ids, embeddings, tokens) needs output.kind: none (inputs only; to "
                    "also watch a figure of each answer, output.kind: regression with watch(..., outputs=lambda out: "
                    "[len(o) for o in out]))",
    "wrong_shape": "check the features in the config against the model's inputs",
    "too_many_classes": "list the classes under output.classes",
    "nan_output": "return a finite number for every score or value of these rows (a missing one, None or JSON null, "
                  "is read as NaN, and a NaN or infinite one is no score): look at the inputs that produced them "
                  "(missing values the model does not handle), at the model's numerics, or at what the outputs= "
                  "extractor picks",
    "output_too_large": "a regression model's outputs (values, interval bounds, quantiles) are refused beyond 1e150 in "
                        "size, as labels are: look at the inputs that produced them and at the model's numerics, and "
                        "return NaN (counted nan_output) rather than a huge number where the model has no prediction",
    "reversed_interval": "regression outputs of three columns are read as (value, lower, upper): a lower bound above "
                         "its upper bound means the columns come in another order; pick them in that order with "
                         "watch(..., outputs=lambda result: ...) or fix the model's output",
    "rows_mismatch": "predict must return one output per input row; if it returns more (a dict, a tuple), pick the "
                     "per-row outputs with watch(..., outputs=lambda result: ...); a model whose answers are not "
                     "monitored (generated text, boxes, rankings, or observe(x, None)) needs output.kind: none, whose "
                     "rows are the inputs' alone",
    "wrong_type": "send numeric rows (a 2-D array or a list of lists) or objects of feature name to value (a list of texts, "
                  "one per output row, is rows of one text feature), and declare codes and labels as kind: categorical, "
                  "free text as kind: text under features in the config; a decorated predict whose argument "
                  "is a request object, not the rows, needs watch(..., inputs=lambda req: req.rows)",
    "future_timestamp": "send Unix seconds in UTC (not milliseconds, not local time read as UTC) and keep the "
                        "sender's clock synchronised (NTP); more than 10 minutes ahead of the agent's clock is refused, "
                        "as one such row would move event time there and empty every window",
    "invalid_timestamp": "send a finite Unix time in seconds (a number, or RFC 3339 text in an event)",
}

#: Distinct exception type names kept as label values before folding into "other".
MAX_EXCEPTION_TYPES = 40
#: A gap in event time of more rule intervals than this (a first event stamped 0, timestamps in
#: milliseconds, a log resumed after months) is not evaluated tick by tick, which would take hours
#: of CPU: only its last ticks are (hours of event time, enough for every window and ``for:`` to
#: settle), the others are counted in ``monitor_rule_ticks_skipped_total``.
MAX_CATCH_UP_TICKS = 1_000
#: Events stamped further ahead of the wall clock are refused (``future_timestamp``): one of them
#: would move event time there and expire every window, so that a single client whose clock is an
#: hour ahead (a time zone read as UTC) would blind every windowed figure for an hour. Ten minutes,
#: as Loki's and Mimir's ``creation_grace_period``, covers clocks that drift without a sync.
MAX_FUTURE_S = 600.0
#: Rows (predicted and labelled) held for the deferrable detectors before they are handed over
#: without waiting for an export (see :mod:`monitor.holding`): past a few thousand rows a batch's
#: fixed cost is small against its rows, and the held arrays stay a few megabytes.
HOLD_ROWS = 4096


#: Every stage ``monitor_internal_errors_total`` counts a model's failures under: the worker's cycle
#: hook (``cycle``), a drain or the held rows (``pipeline``), advancing the clock (``clock``), an
#: export for a scrape (``export``), rule evaluation (``rules``), converting events (``ingest``). The
#: pipeline exports each at 0 from its start, so that a one-off failure is an increase the rule
#: MonitorInternalErrors sees (a counter born at 1 is none); a test keeps this list complete.
INTERNAL_ERROR_STAGES: tuple[str, ...] = ("cycle", "pipeline", "clock", "export", "rules", "ingest")


def _label_text(label: Any) -> str:
    """A label as the unknown-class line quotes it: its text, at most 50 characters, or what it is
    when ``str()`` raises (a caller's object: the line's failure lost the whole drain's events as
    an internal error, every call in it)."""
    try:
        return str(label)[:50]
    except Exception:  # noqa: BLE001 - the caller's object's own error
        return describe_value(label)


def detector_label(det: "Detector") -> str:
    """The ``detector`` label of ``det``'s series in ``monitor_detector_errors_total``: its name,
    else its kind, else its class name."""
    return getattr(det, "name", None) or det.kind or type(det).__name__


def latency_seconds(value: Any) -> float:
    """One call's ``latency_s`` as a float, NaN when it is not one number of seconds (a
    :class:`~monitor.forwarding.ForwardingMonitor` sends it so read): a duration
    (``datetime.timedelta``, numpy's ``timedelta64``, which ``float()`` reads as a count of its unit:
    5 ms was 5 s) is its seconds; a complex number (whose real part ``float()`` of numpy's kept,
    with a ComplexWarning on the user's stderr), a point in time, or an object whose ``float()``
    raises anything is none."""
    try:
        several = getattr(value, "ndim", 0) != 0
    except Exception:  # noqa: BLE001 - the caller's object: its __getattr__ may raise anything (the drain was lost)
        return float("nan")
    kind = type(value)  # not isinstance: it reads a caller's object's __class__, which may raise (the drain was lost)
    if several or issubclass(kind, COMPLEX_SCALARS):
        return float("nan")
    if issubclass(kind, _DURATIONS):
        from monitor.temporal import temporal_seconds

        return float(temporal_seconds(value))
    if issubclass(kind, _POINTS_IN_TIME):
        return float("nan")
    try:
        return float(value)
    except Exception:  # noqa: BLE001 - the caller's object: its __float__ may raise anything (a RuntimeError lost the drain)
        return float("nan")


#: Durations and points in time as a latency (see :func:`latency_seconds`)
_DURATIONS = (datetime.timedelta, np.timedelta64)
_POINTS_IN_TIME = (datetime.date, np.datetime64)


def _rows_of(event: tuple[Any, ...], one_feature: bool = False) -> int:
    """Rows an event stands for: a prediction's input rows (a flat input of a ``one_feature``
    model: one per value), a feedback event's labels, else 1."""
    if event[0] == PREDICTION:
        return guess_rows(event[2], one_feature)
    if event[0] == FEEDBACK:
        try:
            return max(len(event[2]), 1)
        except TypeError:
            return 1
    return 1


class Pipeline:
    """Events in, metrics out (plus a tick callback for rule evaluation at event-time intervals).

    Parameters
    ----------
    store
        The metric store everything is written to.
    builder
        Converts prediction events to batches.
    detectors
        Detector instances, updated in order.
    tick_s
        Event-time interval at which ``on_tick(t)`` is called (rule evaluation); 0 disables it.
    on_tick
        Called with each tick time ``t`` after every event with time < t has been processed.
    export_interval_s
        Wall-clock seconds between the detectors' exports after processed chunks. Exporting
        writes every detector's figures (dozens of series each), a cost per export rather than
        per event, so a busy worker draining small batches would pay it hundreds of times a second
        for a scrape that comes every 15 s. 0 exports after every chunk. Rule ticks and
        :meth:`export_pending` (``Monitor.flush``) always export, so rules and tests see exact
        figures; only a scrape may see figures up to this interval old.
    wall
        Monotonic clock for ``export_interval_s`` (injected in tests).
    now
        The time events are judged against for :data:`MAX_FUTURE_S` (the later of it and the
        wall clock): a monitor whose clock runs ahead of real time (a simulation) passes its own.

    Detectors that declare themselves :attr:`~monitor.detectors.base.Detector.deferrable`
    receive their batches when the pipeline exports (timer, scrape, rule tick, flush), when a
    checkpoint is taken (:meth:`settle`) or when ``HOLD_ROWS`` rows wait, rather than after every
    drain: what they export is the same, and at low traffic they pay their per-batch cost once
    for several drains. The others receive every batch at once.
    """

    def __init__(
        self,
        store: MetricStore,
        builder: BatchBuilder,
        detectors: Sequence["Detector"] = (),
        *,
        joiner: LabelJoiner | None = None,
        tick_s: float = 0.0,
        on_tick: Callable[[float], None] | None = None,
        export_interval_s: float = 0.0,
        wall: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        live_ticks: bool = False,
        window_s: float | None = None,
    ) -> None:
        self.store = store
        #: The model's window: prediction rows older than it when taken are counted
        #: (``monitor_rows_outside_window_total``), as the detectors' windows drop them unsaid.
        self.window_s = window_s
        if window_s is not None:
            store.zero("monitor_rows_outside_window", [()])
        self.builder = builder
        store.zero("monitor_internal_errors", [(stage,) for stage in INTERNAL_ERROR_STAGES])
        self.detectors = list(detectors)
        self.joiner = joiner if joiner is not None else LabelJoiner()  # an empty joiner is falsy (len 0)
        self.tick_s = float(tick_s)
        self.on_tick = on_tick
        self.next_tick: float | None = None
        self.clock = float("-inf")  # event time: the newest event's, or the wall clock's while idle
        self.last_event: float | None = None  # the newest event's time (checkpointed for its gauge)
        self._exception_types: set[str] = set()
        self._ingest_error_logged = -1e9  # monotonic time of the last logged conversion failure
        #: (detector, stage, exception type) -> [monotonic time last logged, failures since]
        self._detector_failures_logged: dict[tuple[str, str, str], list[float]] = {}
        self._rejections_logged = Once(64)  # reasons of monitor_rows_rejected logged (once each)
        self._overflow_said = False  # rows folded into segment "other" logged (see _say_segment_overflow)
        #: where decorated functions read their rows from (see ``watch``), said with the first
        #: ``wrong_type`` refusal: the parameter read is the first place to look
        self.input_notes: list[str] = []
        #: Whether the first decoded batch of a ``logits`` model is still to be checked for
        #: probabilities (see :meth:`_check_logits`).
        self._logits_unchecked = builder.output.kind == "logits"
        self.export_interval_s = float(export_interval_s)
        self._wall = wall
        self._now = now
        #: A live agent's rule ticks wait for the clock (the later of ``now`` and the wall clock):
        #: one event stamped minutes ahead (a sender's clock; MAX_FUTURE_S lets up to 10 min in)
        #: evaluated every tick up to its time at once, so that an alert's ``for:`` passed in a
        #: moment (a page whose startsAt lay in the future), and none came for those minutes while
        #: the clock caught up: a firing alert could not resolve, nor a new one fire.
        self._live_ticks = live_ticks
        self._last_export = float("-inf")
        self._dirty = False  # processed since the last export
        self._held = HeldBatches(HOLD_ROWS)  # rows not yet handed to the deferrable detectors

    @property
    def detectors(self) -> list["Detector"]:
        """The detectors, updated in order. Setting them (at start, or when a restore rebuilds
        them on an adopted reference) exports each one's ``monitor_detector_errors_total`` series
        at 0, so that MonitorDetectorFailing sees its first failure as an increase."""
        return self._detectors

    @detectors.setter
    def detectors(self, detectors: Sequence["Detector"]) -> None:
        self._detectors = list(detectors)
        self.store.zero("monitor_detector_errors", [(detector_label(det),) for det in self._detectors])

    # -- clock -----------------------------------------------------------------------------------
    @names_its_model
    @quiet_float_errors
    def advance(self, now: float) -> None:
        """Move event time to ``now`` without events (idle live agent): expire windows, fire ticks,
        let go of held labels that waited ``labels.early_wait`` on the agent's clock."""
        if self.joiner.early_held:
            self._process_feedback([])
        self._ticks_through(now)
        if now > self.clock:
            self.clock = now
            self._advance_all(now)
            self._dirty = True  # windows may have slid: the next export (timer, scrape) shows it

    def _advance_all(self, now: float) -> None:
        """Advance the detectors to ``now``; the deferrable ones wait while rows are held for
        them (:meth:`settle` advances them once it has handed the rows over)."""
        held = len(self._held) > 0
        for det in self.detectors:
            if not (held and getattr(det, "deferrable", False)):
                self._guard(det, det.advance, now)

    @property
    def _ticking(self) -> bool:
        return bool(self.tick_s) and self.on_tick is not None

    def _ticks_through(self, now: float) -> None:
        """Fire every tick ``t <= now`` (each sees exactly the events with time < t)."""
        if not self._ticking:
            return
        if self.next_tick is None:
            self.next_tick = float((np.floor(now / self.tick_s) + 1) * self.tick_s)
            return
        due = (now - self.next_tick) // self.tick_s + 1
        if due > MAX_CATCH_UP_TICKS:
            skipped = due - MAX_CATCH_UP_TICKS
            self.next_tick += skipped * self.tick_s
            self.store.inc("monitor_rule_ticks_skipped", skipped)
        while self.next_tick <= now:
            t = self.next_tick
            self.next_tick = t + self.tick_s
            self.export(t)
            try:
                self.on_tick(t)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - a broken rule must not stop the worker
                log.exception("rule evaluation failed at t=%s", t)
                self.store.inc("monitor_internal_errors", labels=("rules",))

    # -- processing ------------------------------------------------------------------------------
    @names_its_model
    @quiet_float_errors
    def process(self, events: list[tuple[Any, ...]]) -> None:
        """Process events in event-time order, calling ``on_tick`` at every interval boundary."""
        if not events:
            return
        times = np.fromiter((e[1] for e in events), dtype=np.float64, count=len(events))
        limit = max(time.time(), self._now()) + MAX_FUTURE_S
        finite = np.isfinite(times)
        keep = finite & (times <= limit)
        if not keep.all():
            # a NaN or infinite time would stall the ticks or expire every window; counted in rows,
            # as every other reason of monitor_rows_rejected
            store = self.store
            for reason, refused in (("invalid_timestamp", ~finite), ("future_timestamp", finite & ~keep)):
                where = np.flatnonzero(refused).tolist()
                rows = sum(_rows_of(events[i], self.builder.one_feature) for i in where)
                if rows:
                    # logged before it is counted, once per reason (the runbook of ModelInputsUnreadable
                    # sends on-call to that line), with an example: only the count said it before
                    ts = float(times[where[0]])
                    lead = ts - limit + MAX_FUTURE_S
                    shown = f"{lead:.0f}" if lead < 1e12 else f"{lead:.3g}"  # :.0f of 1e300 wrote 301 digits
                    ahead = f", {shown} s ahead of the agent's clock" if reason == "future_timestamp" else ""
                    self._log_rejection(reason, rows, f"e.g. timestamp {ts!r}{ahead}")
                    store.inc("monitor_rows_rejected", float(rows), labels=(reason,))
                    self._refused_rows(refused_ids([events[i] for i in where]))
            events = [e for e, k in zip(events, keep.tolist()) if k]
            times = times[keep]
            if not events:
                return
        if not self._ticking:
            self._process_chunk(events, times)
            return
        if len(events) > 1 and (np.diff(times) < 0).any():
            order = np.argsort(times, kind="stable")
            times = times[order]
            events = [events[i] for i in order.tolist()]
        # (an explicit advance() moves the ticks as far as it is told; events only up to the clock)
        ceiling = max(time.time(), self._now()) if self._live_ticks else float("inf")
        if self.next_tick is None:
            self._ticks_through(min(float(times[0]), ceiling))
        start, n = 0, len(events)
        while start < n:
            cut = int(np.searchsorted(times, self.next_tick, side="left"))
            if cut > start:
                self._process_chunk(events[start:cut], times[start:cut])
                start = cut
            if start < n:
                self._ticks_through(min(float(times[start]), ceiling))
                if self.next_tick <= times[start]:  # ticks wait for the clock (live): the rest at once
                    self._process_chunk(events[start:], times[start:])
                    break

    def _process_chunk(self, events: list[tuple[Any, ...]], times: np.ndarray) -> None:
        """Process events whose times (``times``, the same order) lie before the next tick."""
        t0 = time.perf_counter()
        store = self.store
        preds = [e for e in events if e[0] == PREDICTION]
        if len(preds) == len(events):  # the common drain: predictions only
            errors: list[tuple[Any, ...]] = []
            feedback: list[tuple[Any, ...]] = []
        else:
            errors = [e for e in events if e[0] == ERROR]
            feedback = [e for e in events if e[0] == FEEDBACK]
        newest = float(times.max())
        if preds:
            self._process_predictions(preds)
        for e in errors:
            name = e[2] if (e[2] in self._exception_types or len(self._exception_types) < MAX_EXCEPTION_TYPES) else "other"
            self._exception_types.add(name)
            store.inc("monitor_errors", labels=(name,))
            store.inc("monitor_calls")
        if errors:
            self._observe_latencies([e[3] for e in errors if e[3] is not None])
        if feedback:
            self._process_feedback(feedback)
        if self.last_event is None or newest > self.last_event:
            self.last_event = newest
            store.set("monitor_last_event_timestamp_seconds", newest)
        if newest > self.clock:
            self.clock = newest
        self._advance_all(self.clock)
        self._dirty = True
        self.export_if_due()
        store.observe("monitor_processing_seconds", time.perf_counter() - t0)
        store.observe("monitor_worker_rows_per_batch", len(events))

    def _log_rejection(self, reason: str, n: int, detail: str | None, fix: str | None = None) -> None:
        """Log the first rejection of each reason once, with what to change: a model whose every
        row is refused (a decorated ``predict`` that returns labels, raw scores where
        probabilities are expected) otherwise shows nothing but a counter nobody looks at yet."""
        if not self._rejections_logged.first(reason):
            return
        hint = fix or REJECTION_HINTS.get(reason)
        if not fix and self.builder.output.is_text and reason in _TEXT_HINTS:  # the other kinds' fixes name scores
            hint = _TEXT_HINTS[reason]
        if reason == "wrong_type" and self.input_notes:
            detail = "; ".join(([detail] if detail else []) + self.input_notes)
        log.warning("model %r: %d row(s) refused (%s)%s%s; counted in monitor_rows_rejected_total{reason=\"%s\"}, "
                    "further ones are counted without a log line", self.store.model, n, reason,
                    f": {detail}" if detail else "", f". Fix: {hint}" if hint else "", reason)

    def _observe_latencies(self, values: list[Any]) -> None:
        """The calls' ``latency_s`` into the latency histogram; those that are not a finite,
        non-negative number of seconds (``observe(latency_s="fast")``, NaN, -1, inf) left out,
        counted once per call in ``monitor_row_arguments_dropped_total{argument="latency_s"}`` and
        said once. Why: read as they were, one string failed the whole drain (every event in it
        lost as internal_error) and an infinite one made the histogram's sum infinite for good."""
        if not values:
            return
        try:
            given = np.asarray(values)  # numbers (the usual): one conversion, as with a dtype
        except Exception:  # noqa: BLE001 - ragged, or an object's own conversion failing: read one by one
            given = np.empty(0)
        if given.shape == (len(values),) and given.dtype.kind in "fiub":
            seconds = given.astype(np.float64, copy=False)
        else:  # another value among them (text, a list, a duration, a complex number): one by one
            seconds = np.array([latency_seconds(v) for v in values], dtype=np.float64)
        valid = np.isfinite(seconds) & (seconds >= 0)
        if not valid.all():
            bad = int(len(values) - valid.sum())
            self.store.inc("monitor_row_arguments_dropped", bad, labels=("latency_s",))
            if self._rejections_logged.first("argument:latency_s"):
                example = next(v for v, ok in zip(values, valid.tolist()) if not ok)
                log.warning("model %r: latency_s: %d call(s) gave a latency that is not a finite, non-negative number of "
                            "seconds (e.g. %.40s): their rows are processed without it; counted in "
                            "monitor_row_arguments_dropped_total{argument=\"latency_s\"}. Fix: pass latency_s as seconds "
                            "(a float, e.g. time.perf_counter() differences), or leave it out", self.store.model, bad,
                            describe_value(example))  # the caller's value: its repr may raise (the drain was lost)
            seconds = seconds[valid]
        if len(seconds):
            self.store.observe("monitor_latency_seconds", seconds)

    def _process_predictions(self, preds: list[tuple[Any, ...]]) -> None:
        store = self.store
        try:
            result = self.builder.build(preds)
        except MixedOutputWidths as mixed:  # each width is valid: one batch per width
            for group in mixed.groups:
                self._process_predictions(group)
            return
        except Exception:  # noqa: BLE001 - never let a conversion bug kill the worker
            if len(preds) > 1:
                # one event broke the drain's conversion: convert them one at a time, so that only
                # the event that fails is lost (and counted)
                for event in preds:
                    self._process_predictions([event])
                return
            now = time.monotonic()
            if now - self._ingest_error_logged >= 10.0:  # counted every time, logged at most every 10 s
                self._ingest_error_logged = now
                log.exception("could not convert %d events", len(preds))
            store.inc("monitor_internal_errors", labels=("ingest",))
            # the event's rows, as every other reason counts them (one per event before: a 500-row
            # call lost to a conversion bug was one row of the accounting)
            one = self.builder.one_feature
            refused = float(sum(_rows_of(e, one) for e in preds))
            store.inc("monitor_rows_rejected", refused, labels=("internal_error",))
            self._refused_rows(refused_ids(preds))
            return
        store.inc("monitor_calls", len(preds))
        self._observe_latencies([e[4] for e in preds if e[4] is not None])
        rows = np.asarray(result.rows_per_event, dtype=np.float64)
        store.observe("monitor_batch_size_rows", rows[rows > 0])
        for reason, n in result.rejected.items():
            store.inc("monitor_rows_rejected", n, labels=(reason,))
            if reason not in self._rejections_logged:
                self._log_rejection(reason, n, result.details.get(reason), result.fixes.get(reason))
        for argument, n in result.arguments_dropped.items():
            store.inc("monitor_row_arguments_dropped", n, labels=(argument,))
            if self._rejections_logged.first(f"argument:{argument}"):
                from monitor.row_arguments import ARGUMENT_DROPPED_MESSAGES

                log.warning("model %r: %s: %s, %s; counted in monitor_row_arguments_dropped_total", store.model, argument,
                            result.details.get(f"argument:{argument}", "a per-row list of another length than the call's rows"),
                            ARGUMENT_DROPPED_MESSAGES[argument])
        if self.builder.renamed_keys is not None and self._rejections_logged.first("renamed_keys"):
            log.warning("model %r: %s", store.model, self.builder.renamed_keys)
        if self.builder.unreadable_values is not None and self._rejections_logged.first("unreadable_values"):
            log.warning("model %r: %s", store.model, self.builder.unreadable_values)
        batch = result.batch
        if batch is None:
            self._refused_rows(result.refused_ids)
            return
        if self._logits_unchecked and batch.logits is not None:
            self._check_logits(batch.logits)
        store.inc("monitor_predictions", len(batch))
        if self.window_s is not None:
            outside = rows_outside_window(batch.ts, max(self.clock, float(batch.ts.max())), self.window_s)
            if outside:
                store.inc("monitor_rows_outside_window", float(outside))
        if batch.predicted is not None:
            counts = np.bincount(batch.predicted[batch.predicted >= 0], minlength=0)
            names = batch.classes
            for idx in np.flatnonzero(counts).tolist():
                name = names[idx] if idx < len(names) else str(idx)
                store.inc("monitor_predicted_class", float(counts[idx]), labels=(name,))
        if not self.builder.output.scored:  # output.kind: none or text: no answer a label could be compared with
            self._deliver(batch)
            return
        replaced, outliers = self.joiner.replaced, self.joiner.clock_outliers
        evicted = self.joiner.remember(batch)
        self._count_clock_outliers(outliers)
        if evicted:
            store.inc("monitor_labels_evicted", evicted)
        if self.joiner.replaced > replaced:
            store.inc("monitor_labels_replaced", self.joiner.replaced - replaced)
        store.set("monitor_labels_pending", len(self.joiner))
        self._deliver(batch)
        self._refused_rows(result.refused_ids)  # after remember(): an id taken in the same drain keeps its label
        if self.joiner.early_held:  # labels that came before these predictions join now; or waited too long
            self._process_feedback([])

    def _refused_rows(self, ids: list[tuple[str, bool]]) -> None:
        """Tell the label join the request ids of refused prediction rows (worker side, and only
        when some were refused: the hot path never pays for it), so that their labels count
        ``prediction_refused``; labels held for them already are counted so now."""
        if not ids or not self.builder.output.scored:  # none or text: every label is refused as invalid
            return
        resolved = self.joiner.refuse(ids)
        if resolved:
            self.store.inc("monitor_feedback_labels", resolved, labels=("prediction_refused",))
            self.store.set("monitor_labels_early", self.joiner.early_held)
            self._say_refused_labels()

    def _say_refused_labels(self) -> None:
        self._say_unjoined("prediction_refused", self.joiner.refused_example,
                           "model %r: a label came for request id %.80r, whose prediction came but was refused (counted in "
                           "monitor_rows_rejected_total; the line logged for its reason says why and what to change), so "
                           "it joins nothing; counted in monitor_feedback_labels_total{outcome=\"prediction_refused\"}, "
                           "further ones without a log line")

    def _check_logits(self, logits: np.ndarray) -> None:
        """Say once when a model configured with ``output.kind: logits`` returns probabilities
        (``predict_proba`` where ``decision_function`` was meant): nothing refuses those rows, they
        are softmaxed a second time and every confidence flattens towards 1/k, so the figures are
        wrong without a word. The first batch decides (raw scores almost never all lie in [0, 1]
        with rows summing to one); later batches are not checked."""
        from monitor.outputs import are_probabilities

        self._logits_unchecked = False
        if logits.shape[1] >= 2 and are_probabilities(logits):
            log.warning("model %r: output.kind is logits but the model's outputs look like probabilities (every row in "
                        "[0, 1] and summing to 1): softmaxed again, every confidence flattens towards 1/%d and the "
                        "confidence and calibration figures are wrong. Fix: set output.kind: probabilities, or return "
                        "the raw scores (decision_function)", self.store.model, logits.shape[1])

    def _say_unjoined(self, key: str, example: str | None, message: str, *args: Any) -> None:
        """Say once why labels joined no prediction: ``message`` with the model, the joiner's
        first ``example`` of such an id and ``args``, when there is one."""
        if example is not None and self._rejections_logged.first(key):
            log.warning(message, self.store.model, example, *args)

    def _process_feedback(self, events: list[tuple[Any, ...]]) -> None:
        """Join the chunk's feedback events together: the detectors see one labelled batch."""
        kind = self.builder.output.kind
        if not self.builder.output.scored:  # output.kind: none or text
            self._refuse_feedback(events)
            return
        outliers = self.joiner.clock_outliers
        labeled, outcome = self.joiner.join_many([(e[1], e[2], e[3]) for e in events], self.builder.classes,
                                                 regression=kind == "regression", multilabel=kind == "multilabel")
        self._count_clock_outliers(outliers)
        for name, n in outcome.items():
            if n:
                self.store.inc("monitor_feedback_labels", n, labels=(name,))
        self.store.set("monitor_labels_pending", len(self.joiner))
        self.store.set("monitor_labels_early", self.joiner.early_held)
        batch_id = self.joiner.batch_id_example
        self._say_unjoined("batch_request_id", batch_id,
                           "model %r: a label for request id %.80r found no prediction under that id, but its call's rows are "
                           "held as %.80r, %.80r...: one request id for a call of several rows names each row <id>/<row>. Fix: "
                           "send one label per row with those ids (or one id per row with the call); counted in "
                           "monitor_feedback_labels_total{outcome=\"unknown_id\"}", f"{batch_id}/0", f"{batch_id}/1")
        self._say_unjoined("long_request_id", self.joiner.long_id_example,
                           "model %r: a label came for a request id %s: a prediction's id over the %s characters a request "
                           "id may have (or whose text cannot be taken) is dropped from its rows "
                           "(monitor_row_arguments_dropped_total{argument=\"request_id\"}; refused over HTTP), so no label "
                           "can join it. Fix: send the id the prediction is known by (a UUID, a key), not the request or "
                           "its text; counted in monitor_feedback_labels_total{outcome=\"unknown_id\"}, further ones "
                           "without a log line", f"{MAX_REQUEST_ID_CHARS:,}")
        self._say_unjoined("missing_request_id", self.joiner.missing_id_example,
                           "model %r: a label came for request id %s, read as no id (None, NaN, pandas' NA and NaT, "
                           "numpy's masked and empty text are, a prediction's too), so it can join no prediction. Fix: "
                           "send each label with the request id its "
                           "prediction was made with (request_id= of watch/observe, the event's request_id); a NaN id is "
                           "what pandas holds for a missing one: drop the labels of rows without an id; counted in "
                           "monitor_feedback_labels_total{outcome=\"unknown_id\"}, further ones without a log line")
        self._say_labels_without_predictions(outcome["unknown_id"])
        if outcome.get("prediction_refused"):
            self._say_refused_labels()
        if outcome["invalid"] and self._rejections_logged.first("invalid_label"):
            what = ("one finite number per request id (at most 1e150 in size)" if kind == "regression" else
                    f"per request id {FORMS}" if kind == "multilabel" else
                    "one class per request id (a name from output.classes or a column index), not a list, a one-hot row "
                    "or None")
            log.warning("model %r: %d label(s) refused as invalid (e.g. %s): a label must be %s; counted in "
                        "monitor_feedback_labels_total{outcome=\"invalid\"}, further ones are counted without a log line",
                        self.store.model, outcome["invalid"], self.joiner.invalid_example, what)
        if labeled is not None:
            if "unknown_class" not in self._rejections_logged and kind not in ("regression", "multilabel"):
                self._log_unknown_labels(labeled, events)
            self._deliver(labeled)

    def _say_labels_without_predictions(self, unknown: int) -> None:
        """Say once why labels found no prediction under their id, the common causes the other
        lines do not name: predictions made without request ids (said as soon as a label waits,
        not ``labels.early_wait`` later), labels whose predictions never came, an id labelled twice.
        Why: these were counted ``unknown_id`` without a word, a label held for its prediction
        only after 10 minutes, so that a decorator without ``request_id=`` looked like labels lost."""
        joiner = self.joiner
        if not joiner.ids_seen and joiner.rows_without_id and (unknown or joiner.early_held):
            self._say_unjoined("no_prediction_ids", joiner.held_example,
                               "model %r: a label came for request id %.80r, but none of the %s prediction row(s) so far "
                               "carried a request id, so no label can join one (it is held for labels.early_wait, then "
                               "counted in monitor_feedback_labels_total{outcome=\"unknown_id\"}). Fix: give the predictions "
                               "the ids their labels are sent with: watch(..., request_id=\"request_id\") naming the "
                               "argument that holds them (or a function of the call's arguments, one id per row), "
                               "observe(..., request_id=ids), the event's request_id; further ones without a log line",
                               f"{joiner.rows_without_id:,}")
            return
        self._say_unjoined("unjoined_label", joiner.unjoined_example,
                           "model %r: a label for request id %.80r waited %s for a prediction under that id and none came "
                           "(or more labels than labels.early, %s, waited); not one refused (a label for a refused "
                           "prediction counts prediction_refused, while its id is among the last labels.early refused). Fix: send "
                           "each label with the request id its prediction was made with; a label that comes after its "
                           "prediction was forgotten (monitor_labels_evicted_total: labels.pending full) counts so too; "
                           "counted in monitor_feedback_labels_total{outcome=\"unknown_id\"}, further ones without a log line",
                           f"{joiner.early_wait_s:g} s", f"{joiner.early:,}")
        self._say_unjoined("relabelled", joiner.relabelled_example,
                           "model %r: a second label came for request id %.80r, labelled already (or its first label is "
                           "still waiting for the prediction): an id's first label is kept, the others are counted in "
                           "monitor_feedback_labels_total{outcome=\"unknown_id\"}. Fix: send each label once (a "
                           "retried or re-sent labelling batch counts its labels again); further ones without a log line")

    def _count_clock_outliers(self, before: int) -> None:
        """Count the events the held labels' clock did not follow (see
        :attr:`~monitor.labels.LabelJoiner.clock_outliers`), said once with an example."""
        n = self.joiner.clock_outliers - before
        if not n:
            return
        if self._rejections_logged.first("clock_outlier") and self.joiner.clock_outlier_example is not None:
            t, clock = self.joiner.clock_outlier_example
            log.warning("model %r: an event stamped %.0f s after the events around it (time %r) did not move the clock on "
                        "which labels held for their predictions wait (labels.early_wait): taken as it, it let go of every "
                        "held label at once. Its sender's clock is likely wrong; counted in "
                        "monitor_labels_clock_outliers_total, further ones without a log line", self.store.model,
                        t - clock, t)
        self.store.inc("monitor_labels_clock_outliers", n)

    def _refuse_feedback(self, events: list[tuple[Any, ...]]) -> None:
        """Count the labels of a model whose outputs are no scores (``output.kind: none`` or
        ``text``) as invalid, said once with the fix: a label is compared with the model's answer, and none is
        kept. Never raised to the caller, as any refused label."""
        n = sum(len(e[3]) for e in events)
        if not n:
            return
        self.store.inc("monitor_feedback_labels", n, labels=("invalid",))
        if self._rejections_logged.first("invalid_label"):
            kind = self.builder.output.kind
            other = ("set the output.kind its answers have (for a figure of each answer: output.kind: regression with "
                     "watch(..., outputs=lambda out: [len(o) for o in out]))" if kind == "none" else
                     "rate the answers in a figure of their own (a score per answer, sent as a model of output.kind: "
                     "regression): the answers' length and vocabulary are watched already, as output.*")
            log.warning("model %r: %d label(s) refused as invalid: output.kind is %s, so the model's outputs are no "
                        "scores a label could be compared with. Fix: stop sending feedback for this model, or %s; "
                        "counted in monitor_feedback_labels_total{outcome=\"invalid\"}, further ones are counted "
                        "without a log line", self.store.model, n, kind, other)

    def _log_unknown_labels(self, labeled: LabeledBatch, events: list[tuple[Any, ...]]) -> None:
        """Say once when joined labels name no class of the model's outputs: ``feedback(ids,
        ["fraud"])`` for a model whose columns are only known as 0 and 1 is joined, then skipped by
        every labelled figure (``monitor_calibration_labels_skipped_total``), which nothing else
        tells the user."""
        width = labeled.scores.shape[1] if labeled.scores is not None and labeled.scores.ndim == 2 else None
        label = np.asarray(labeled.label)
        if label.dtype.kind not in "iu":
            return
        # a labels-only model has no score columns: a label is unknown when no class could be
        # learned for it (LABEL_CLASSES_MAX learned from labels): it was skipped with no line at all
        bad = (label < 0) if width is None else (label < 0) | (label >= width)
        if not bad.any():
            return
        if not self._rejections_logged.first("unknown_class"):
            return
        known = self.builder.classes.names if width is None else labeled.classes[:width]
        names = list(known) or [str(i) for i in range(width or 0)]
        # labels refused as invalid (None, NaN) were counted and said apart: not examples here
        values = [v for e in events for v in e[3] if is_class_label(v)]
        index = self.builder.classes.lookup(np.fromiter(values, dtype=object, count=len(values)), learn=False)
        refused = (index < 0) if width is None else (index < 0) | (index >= width)  # (1.0 is column 1, not an example)
        shown = list(dict.fromkeys(_label_text(v) for v, r in zip(values, refused.tolist()) if r))[:3]
        listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        fix = ("give each label as one of those classes (a column index when output.classes is not configured), or "
               "list the class names under output.classes in the config, in the order of the score columns (in code, "
               "for a scikit-learn model: Monitor(..., config={\"output\": {\"classes\": list(clf.classes_)}}), or "
               f"monitor.get_monitor({self.store.model!r}, config=...) before the decorator runs)" if width is not None else
               f"a labels-only model learns at most {LABEL_CLASSES_MAX} classes from labels beyond its own answers: "
               "send the labels as the class names the model answers (not free text), or list the classes under "
               "output.classes in the config")
        shifted = ""
        if width is not None and names == [str(i) for i in range(width)] and refused.any() and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                or isinstance(v, float) and v.is_integer() for v, r in zip(values, refused.tolist()) if r):
            # classes 1..k (scikit-learn's classes_ of a model fitted on 1, 2, 3): the labels below k
            # were joined to the column after their class, and accuracy read 0.04 for a model of 0.95
            shifted = (" The labels are integers and the columns have no class names, so every label was read as a "
                       "column index (0 to %d): if they are the model's classes (scikit-learn's classes_, e.g. 1 to "
                       "%d), the labels within range were joined to the wrong column as well, and accuracy and "
                       "calibration read wrong." % (width - 1, width))
        log.warning("model %r: %d joined label(s) name no class of the model's outputs (e.g. %s; its classes: %s): the "
                    "labelled figures skip them (monitor_calibration_labels_skipped_total{reason=\"unknown_class\"}).%s "
                    "Fix: %s", self.store.model, int(bad.sum()), ", ".join(map(repr, shown)) or "none in this batch",
                    listed, shifted, fix)

    def _deliver(self, batch: "Batch | LabeledBatch") -> None:
        """Hand a batch of predictions or labels to the detectors: now to those that need it
        now, through the held batches to the deferrable ones."""
        held = False
        for det in self.detectors:
            if getattr(det, "deferrable", False):
                if not held:
                    if not self._held.hold(batch):  # columns that do not stack: hand over what waits
                        self.settle()
                        self._held.hold(batch)
                    held = True
            else:
                self._guard(det, det.update_labels if isinstance(batch, LabeledBatch) else det.update, batch)
        if self._held.full:
            self.settle()

    @names_its_model
    @quiet_float_errors
    def settle(self) -> None:
        """Hand the held rows to the deferrable detectors (before anything reads their state:
        exports, checkpoints, restores), then advance them to the clock."""
        if not len(self._held):
            return
        try:
            batch, labeled = self._held.take()
        except Exception:  # noqa: BLE001 - rows that cannot be joined are lost and counted, never fatal
            log.exception("could not join the held batches")
            self.store.inc("monitor_internal_errors", labels=("pipeline",))
            return
        for det in self.detectors:
            if getattr(det, "deferrable", False):
                if batch is not None:
                    self._guard(det, det.update, batch)
                if labeled is not None:
                    self._guard(det, det.update_labels, labeled)
                if self.clock > float("-inf"):
                    self._guard(det, det.advance, self.clock)

    @names_its_model
    @quiet_float_errors
    def export_if_due(self) -> bool:
        """Export if something was processed and ``export_interval_s`` has passed since the last
        export; returns whether it exported."""
        if self._dirty and self._wall() - self._last_export >= self.export_interval_s:
            self.export(None)
            return True
        return False

    @names_its_model
    @quiet_float_errors
    def export_exact(self) -> None:
        """Export every figure as of exactly the rows processed so far, as a rule tick sees them
        (:meth:`Detector.on_tick`: pending probing queries analysed, throttled figures
        recomputed): what ``Monitor.flush()`` promises a batch job or a test."""
        self.settle()
        if self.clock > float("-inf"):
            for det in self.detectors:
                on_tick = getattr(det, "on_tick", None)  # detectors passed in code may lack it
                if on_tick is not None:
                    self._guard(det, on_tick, self.clock)
        self.export(None)

    def mark_changed(self) -> None:
        """The detectors' state changed outside a batch (a checkpoint was restored): the next
        export (flush, scrape, timer) writes their figures, even before any new event."""
        self._dirty = True

    @names_its_model
    @quiet_float_errors
    def export_pending(self) -> None:
        """Export now if anything was processed since the last export (flush, shutdown)."""
        if self._dirty:
            self.export(None)

    @names_its_model
    @quiet_float_errors
    def export(self, now: float | None) -> None:
        """Let every detector write its figures (before a snapshot or at the end of a chunk)."""
        self.settle()
        self._dirty = False
        self._last_export = self._wall()
        if now is not None:
            for det in self.detectors:
                self._guard(det, det.advance, now)
                self._guard(det, det.on_tick, now)
        for det in self.detectors:
            self._guard(det, det.export, self.store)
        if not self._overflow_said:
            self._say_segment_overflow()

    def _say_segment_overflow(self) -> None:
        """Log, once, that rows were folded into the segment ``other`` (past ``segments.cap``
        distinct values): counted only, a segment of unbounded values (a user id sent as the
        segment, in code, in events or in ``server.segment_header``) hid every value past the cap
        under ``other`` without a word."""
        overflow = self.store.value("monitor_segment_overflow_rows")
        if not overflow:
            return
        self._overflow_said = True
        log.warning("model %r: rows came with more distinct segment values than segments.cap holds; those of the values "
                    "beyond it are counted under segment=\"other\" (monitor_segment_overflow_rows_total: %d rows so far), "
                    "further ones without a log line. Fix: give the segment a low-cardinality attribute (a region, a "
                    "tenant, a model version; not a user or request id, in code, in events or in server.segment_header), "
                    "or raise segments.cap (at most 199)", self.store.model, int(overflow))

    def _guard(self, det: "Detector", fn: Callable[..., Any], arg: Any) -> None:
        try:
            fn(arg)
        except Exception as exc:  # noqa: BLE001 - a detector bug is counted, never fatal
            label = detector_label(det)
            self.store.inc("monitor_detector_errors", labels=(label,))
            self._log_detector_failure(det, label, getattr(fn, "__name__", str(fn)), exc)

    def _log_detector_failure(self, det: "Detector", label: str, stage: str, exc: Exception) -> None:
        """Log a detector's failure with its traceback the first time, then at most every
        :data:`DETECTOR_FAILURE_LOG_S` per detector, stage and exception type with how many came
        between: a failure that repeats on every batch (reference scores of another width) logged
        a traceback per batch and detector, flooding the log; each one is still counted."""
        key = (label, stage, type(exc).__name__)
        now = time.monotonic()
        seen = self._detector_failures_logged.get(key)
        if seen is not None and now - seen[0] < DETECTOR_FAILURE_LOG_S:
            seen[1] += 1
            return
        if seen is None and len(self._detector_failures_logged) >= 256:
            return  # bounded: past that many kinds of failure, they are counted only
        since = "" if seen is None else (f" ({int(seen[1])} more such failure(s) since the last log line, counted in "
                                         "monitor_detector_errors_total)")
        self._detector_failures_logged[key] = [now, 0.0]
        log.error("detector %s failed in %s%s; the batch is left out of its figures, further such failures are logged "
                  "at most every %d s", type(det).__name__, stage, since, int(DETECTOR_FAILURE_LOG_S), exc_info=exc)
