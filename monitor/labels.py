"""Joining delayed ground truth to the predictions it belongs to, in bounded memory.

Predictions that carry a request id are remembered in a columnar ring buffer of ``capacity``
rows (a classifier's log-probabilities as float32, a regression value as float64, predicted
class, segment, event time) with a dict from request id
to slot; when the ring wraps, the oldest predictions are forgotten (counted in
:attr:`LabelJoiner.evicted`). A prediction under an id still waiting for its label replaces the
earlier one, whose label would otherwise join a prediction the caller never got (a retry), and is
counted in :attr:`LabelJoiner.replaced`: ids that are not unique show there. Labels for unknown, expired or already-labelled ids are counted by
outcome, never an error: late and missing labels are normal.

A label can also come before its prediction: a prediction forwarded by another replica, or sent by
the KServe logger after its retries, while the label went straight to this agent. Such a label is
held (at most ``early`` of them, each at most ``early_wait_s`` of event time) and joined when its
prediction comes; one whose prediction never comes is counted ``unknown_id`` when it leaves.
Its wait is measured on the agent's own clock from when the label arrived, not in event time: the
newest event time seen jumps ahead with one event from a client whose clock runs minutes fast (the
intake accepts up to 10 minutes), which expired every held label at once, and stays ahead of a
backfill of older events, whose labels were then never held. Without a clock (``monitor replay``,
batch jobs: event time only) the median time of the latest events stands for the agent's clock:
the newest one moved it a day with one event stamped a day ahead (a replay of an old log lets in
what the wall clock would refuse), letting go of every held label at once.

A prediction row the agent refused (``monitor_rows_rejected_total``: NaN outputs, probabilities out of
range, a wrong shape, a timestamp far ahead...) is not held, but its request id is remembered (the last
``early`` such ids, in :meth:`LabelJoiner.refuse`): a label for it counts ``prediction_refused`` at
once, and a label held for it is let go so when the refused prediction comes. Why: such a label was
held ``early_wait`` for a prediction that had come already, then counted ``unknown_id`` with a log
line saying that none came, which sent on-call looking for lost predictions.

The count of ids is bounded by ``capacity``; their length is bounded too: an id longer than
:data:`MAX_ID_CHARS` (one sent by a client, up to the body limit) is kept as a digest of itself, so
that 100,000 remembered ids cannot hold gigabytes of text. The digest is taken of the id as
received, on both sides of the join, so a label sent with the same long id still finds its
prediction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from monitor.batch import Batch, LabeledBatch
from monitor.events import (MAX_ID_CHARS, MAX_REQUEST_ID_CHARS, CallerValueError, decimal_digits, describe_value, id_key,
                            read_label, request_id_text)
from monitor.multilabel_truth import TruthError, read_truth
from monitor.outputs import ClassIndex
from monitor.stats.uncertainty import log_probabilities

__all__ = ["LabelJoiner", "LARGE_SCORE_TABLE_BYTES", "MAX_ID_CHARS", "id_key", "is_class_label"]

log = logging.getLogger("monitor")

#: A table of held scores at least this large is said in the log when it is allocated: it is
#: ``labels.pending x classes x 4`` bytes, taken at the first prediction with a request id (a
#: 1,000-class model at the default 100,000 pending: 400 MB), which a config rarely shows.
LARGE_SCORE_TABLE_BYTES = 256 * 1024 * 1024

#: Events whose times make the clock of held labels without an agent's clock (see ``LabelJoiner._now``).
RECENT_EVENTS = 32



def _may_be_held(key: str) -> bool:
    """Whether a prediction can be held under the id ``key``: one of at most
    :data:`~monitor.events.MAX_REQUEST_ID_CHARS` characters, or a row ``<id>/<row>`` of a call
    with such an id. Why: a longer id is dropped from its prediction's rows (HTTP refuses it), so a
    label for it waited ``labels.early_wait`` as an early label, then counted ``unknown_id``."""
    if len(key) <= MAX_REQUEST_ID_CHARS:
        return True
    call, _, row = key.rpartition("/")
    return len(call) <= MAX_REQUEST_ID_CHARS and row.isdigit()


def _untaken_id(rid: Any) -> str:
    """A request id whose text cannot be taken, described for the log: an integer by its number of
    digits (``str()`` refuses one of more than 4,300), another value by its type and the error."""
    # by its type: isinstance reads a caller's object's __class__, which may raise (a proxy's lost the drain)
    if issubclass(type(rid), (int, np.integer)) and type(rid) is not bool:
        return f"of {decimal_digits(int(rid)):,} digits (an integer, whose text str() refuses)"
    try:
        str(rid)
        why = "its text cannot be taken"
    except Exception as err:  # noqa: BLE001 - what the caller's value raises
        why = f"str() raised {type(err).__name__}"
    return f"that is a {type(rid).__name__} whose text cannot be taken ({why})"


def _log_probabilities(batch: Batch, rows: np.ndarray) -> np.ndarray:
    """The log-probabilities of ``rows`` of a classifier's batch: from its logits when the model
    returns logits (exact where the probabilities underflow), else the log of its probabilities."""
    logits = batch.logits
    if logits is not None and batch.members is None and logits.shape == batch.scores.shape:
        from scipy.special import log_softmax

        return log_softmax(logits[rows], axis=1)
    return log_probabilities(batch.scores[rows])


_INVALID = object()


def _latest_times(ts: np.ndarray) -> list[float]:
    """A batch's event times as :meth:`LabelJoiner._see` takes them: its distinct times (the rows of
    one call share theirs: one event), the last :data:`RECENT_EVENTS` in the order they came, NaN left out."""
    ts = ts[ts == ts]
    if ts.size > 1:
        _, first = np.unique(ts, return_index=True)
        ts = ts[np.sort(first)[-RECENT_EVENTS:]]
    return ts.tolist()


def _read_label(label: Any, regression: bool) -> Any:
    """One label as the join keeps it (:func:`~monitor.events.read_label`, the rule the HTTP intake
    refuses by), or ``_INVALID``. Never raises: whatever a caller passes, one label is at most one
    ``invalid``."""
    try:
        value, problem = read_label(label, regression)
    except Exception:  # noqa: BLE001 - conversions of an arbitrary object: TypeError, ValueError, OverflowError...
        return _INVALID
    return _INVALID if problem is not None else value


def is_class_label(label: Any) -> bool:
    """Whether ``label`` can name one class as the join reads it (not missing, not a list or an
    array, not a number too large): the one check for "is this a class label", so that what the
    join counts ``invalid`` is never shown elsewhere as a label naming an unknown class."""
    return _read_label(label, regression=False) is not _INVALID


#: Characters at most of a multi-label truth held for its prediction (its 0/1 vector, or its label
#: names): a larger one is not held (``unknown_id`` at once), so that ``early`` labels stay small.
MAX_HELD_TRUTH_CHARS = 65_536


def _held_truth(label: Any, present: tuple[int, ...]) -> Any:
    """A multi-label truth as held for a prediction that has not come: in the form it was sent,
    compact and JSON-safe (a 0/1 vector as a text of ``0`` and ``1``, label names as a list), since
    what it was read into (column indices, a list of names unchecked while the model's labels are
    unknown) would not read back as the same truth; ``_INVALID`` when too large to hold."""
    if hasattr(label, "tolist"):  # a row of a numpy array
        label = label.tolist()
    items = list(label)
    if items and all(isinstance(v, str) for v in items):
        held: Any = sorted(set(items))
        size = sum(map(len, held))
    else:  # read_truth took it: a vector of 0 and 1 (or empty)
        on = set(present)
        held = "".join("1" if i in on else "0" for i in range(len(items)))
        size = len(held)
    return held if size <= MAX_HELD_TRUTH_CHARS else _INVALID


def _held_class(value: Any) -> Any:
    """A class label or a regression value as held for its prediction; ``_INVALID`` for a text too
    long to name a class, which would make the held labels large. Bytes are held as the text
    :meth:`~monitor.outputs.ClassIndex.lookup` reads them as: the checkpoint keeps text, not bytes."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    return _INVALID if isinstance(value, str) and len(value) > MAX_ID_CHARS else value


def _sent_truth(held: Any) -> Any:
    """The truth :func:`_held_truth` held, as :func:`~monitor.multilabel_truth.read_truth` reads it."""
    return [int(c) for c in held] if isinstance(held, str) else held


class LabelJoiner:
    """Remembers predictions by request id until their label arrives.

    Parameters
    ----------
    capacity
        Predictions remembered at most; memory is ``capacity x (classes x 4 + ~100)`` bytes.
    ttl_s
        Labels arriving more than this long (event time) after their prediction are refused as
        ``expired``.
    window_s
        The model's ``window``: a label arriving more than this long after its prediction is
        joined and handed on, but counted as ``late`` rather than ``joined``, since the windowed
        figures, which count a label in the window of its prediction, never see it. Without it
        (None) every label joined counts as ``joined``, and the outcomes have no ``late``.
    early
        Labels held at most for a prediction that has not come yet (0: none; such a label is
        ``unknown_id`` at once). Beyond it the oldest held label leaves, counted ``unknown_id``.
        Also the number of ids of refused prediction rows remembered (:meth:`refuse`; 0: none).
    early_wait_s
        How long a held label waits for its prediction, from when it arrived, before it leaves,
        counted ``unknown_id``: seconds of ``clock``.
    clock
        The agent's clock (a live monitor's, ``time.time`` unless a simulation or a test passes
        its own), on which a held label's wait is measured. None (replay, batch jobs, which move
        time only with the events): the newest event time seen.
    """

    def __init__(self, capacity: int = 100_000, ttl_s: float = 7 * 86400.0, window_s: float | None = None,
                 early: int = 10_000, early_wait_s: float = 600.0, clock: Callable[[], float] | None = None) -> None:
        self.capacity = int(capacity)
        self.ttl_s = float(ttl_s)
        self.window_s = None if window_s is None else float(window_s)
        self.early = int(early)
        self.early_wait_s = float(early_wait_s)
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        cap = self.capacity
        self._slot_of: dict[str, int] = {}
        self._ids = np.empty(cap, dtype=object)
        self._ts = np.full(cap, np.nan)
        self._predicted = np.full(cap, -1, dtype=np.int64)
        self._segment = np.empty(cap, dtype=object)
        self._scores: np.ndarray | None = None
        self._intervals: np.ndarray | None = None
        self._head = 0
        self.evicted = 0
        self.replaced = 0
        #: The last label counted ``invalid``, as text (for the log line that says what was wrong
        #: with it; ``repr`` of some values raises, e.g. an int of over 4,300 digits).
        self.invalid_example: str | None = None
        #: The first unknown id whose batch call's rows are held as ``<id>/0``, ``<id>/1``...: a
        #: label sent for the call instead of one per row (for the log line that says so).
        self.batch_id_example: str | None = None
        #: The first id of a label longer than a request id may be (:func:`_may_be_held`), or whose
        #: text cannot be taken (:func:`_untaken_id`), described for the log line that says why it
        #: joined nothing.
        self.long_id_example: str | None = None
        #: The first id of a label that stands for none (None, NaN, pandas' NA or NaT, np.ma.masked,
        #: empty text: read as no id, as a prediction's is), described for the log line that says
        #: it can join nothing.
        self.missing_id_example: str | None = None
        #: The first id of a held label that left without its prediction (it waited ``early_wait_s``,
        #: or did not fit in ``early``), and the first id labelled a second time (its first label is
        #: kept): both counted ``unknown_id``, described for the log lines that say why.
        self.unjoined_example: str | None = None
        self.relabelled_example: str | None = None
        #: Prediction rows remembered without a request id since the start (not checkpointed): with
        #: none ever held with one, a label can join nothing, which the log says at once.
        self.rows_without_id = 0
        #: Labels waiting for their prediction, oldest first: id key -> (label time, label, when it
        #: arrived on :meth:`_arrival_clock`).
        self._early: OrderedDict[str, tuple[float, Any, float]] = OrderedDict()
        #: Ids labelled whose prediction's slot the ring has not reused yet -> that slot (the id stays in
        #: ``_ids`` there): a second label for one counts ``unknown_id`` at once instead of waiting
        #: ``early_wait`` for a prediction that came already. With the waiting ids, at most ``capacity``
        #: entries: sized by ``labels.early`` instead, every labelled id was forgotten within
        #: ``early`` labels, and above ~17 labels/s a re-sent label waited its 10 minutes.
        self._labelled: dict[str, int] = {}
        #: The ids forgotten last (evicted: ``labels.pending`` full), oldest first (at most ``early``):
        #: see :meth:`_gone_recently`. This and ``_early`` are OrderedDicts: a dict whose oldest entry is popped again and again scans the
        #: holes the earlier pops left, about 4 us per labelled or forgotten prediction at 10,000.
        self._gone: OrderedDict[str, None] = OrderedDict()
        #: The request ids of prediction rows refused (monitor_rows_rejected_total), the last ``early``
        #: of them, oldest first: id key -> whether it is a call's one id (its rows, when several, are
        #: ``<id>/<row>``: a label for one of those finds it too). A label for one counts
        #: ``prediction_refused`` at once (see :meth:`refuse`). About 100 bytes an id plus its text
        #: (at most MAX_ID_CHARS: longer ones are digests), 2 MB at the default 10,000.
        self._refused: OrderedDict[str, bool] = OrderedDict()
        #: The first id of a label counted ``prediction_refused`` (for the log line that says why).
        self.refused_example: str | None = None
        #: Held labels whose prediction has just been remembered, joined at the next join (a dict: an
        #: id predicted again before it is one arrival, so at most ``early`` of them).
        self._arrived: dict[str, None] = {}
        #: Event time as the held labels' wait is measured when no ``clock`` is given: the (lower)
        #: median of the times of the latest :data:`RECENT_EVENTS` events (predictions and labels),
        #: never going back. The newest time seen moved with one event from a sender whose clock ran
        #: ahead (a day, in a replay) and let go of every held label at once.
        self._now = float("-inf")
        self._recent: deque[float] = deque(maxlen=RECENT_EVENTS)
        #: Event times more than ``early_wait_s`` ahead of that clock when they left the latest
        #: events without the clock following them (no ``clock`` only), and the last such one, with
        #: the clock then (for the log line that says so).
        self.clock_outliers = 0
        self.clock_outlier_example: tuple[float, float] | None = None
        #: Held labels of the checkpoint :meth:`load_state_dict` did not hold again (``labels.early``
        #: lowered, or 0; or their wait ran out while the agent was down): each an ``unknown_id``,
        #: which the caller counts.
        self.unheld_at_restore = 0

    @property
    def early_held(self) -> int:
        """Labels held for a prediction that has not come yet."""
        return len(self._early)

    @property
    def labelled_remembered(self) -> int:
        """Ids labelled whose prediction's slot the ring has not reused yet: a label sent again for
        one counts ``unknown_id`` at once. With :meth:`__len__`, at most ``capacity``."""
        return len(self._labelled)

    @property
    def refused_remembered(self) -> int:
        """Ids of refused prediction rows remembered (at most ``early``): see :meth:`refuse`."""
        return len(self._refused)

    @property
    def ids_seen(self) -> bool:
        """Whether a prediction with a request id was ever held (waiting, labelled or forgotten;
        restored from a checkpoint too)."""
        return bool(self._slot_of or self._labelled or self._gone or self.evicted)

    @property
    def held_example(self) -> str | None:
        """The id of the oldest label waiting for its prediction, else of the first that left
        without it."""
        return next(iter(self._early), self.unjoined_example)

    def __len__(self) -> int:
        return len(self._slot_of)

    def remember(self, batch: Batch) -> int:
        """Keep what a later label needs for every row that has a request id; returns how many
        predictions still waiting for their label this forgot (the ring was full)."""
        ids = batch.request_id
        has = np.flatnonzero(ids != None)  # noqa: E711
        n = has.size
        self.rows_without_id += len(ids) - n
        if n == 0:
            return 0
        evicted_before = self.evicted
        if n > self.capacity:
            self.evicted += n - self.capacity
            if self.early > 0:
                for key in ids[has[-self.early - self.capacity:-self.capacity]].tolist():
                    self._gone_recently(id_key(str(key)))
            has = has[-self.capacity:]
            n = has.size
        slots = (self._head + np.arange(n)) % self.capacity
        self._head = int((self._head + n) % self.capacity)
        old = self._ids[slots]
        slot_of = self._slot_of
        forgotten = []
        labelled = self._labelled
        for old_id, slot in zip(old[old != None].tolist(), slots[old != None].tolist()):  # noqa: E711
            if slot_of.get(old_id) == slot:
                del slot_of[old_id]
                forgotten.append(old_id)
            elif labelled.get(old_id) == slot:  # labelled, and now out of the ring's memory
                del labelled[old_id]
        self.evicted += len(forgotten)
        self._gone_recently(*forgotten)
        new_ids = ids[has]
        keys = new_ids.tolist()
        try:
            long = max(map(len, keys)) > MAX_ID_CHARS  # one C-level pass; long ids are rare
        except TypeError:  # ids that are not text (arrays built in code): keyed by their text, as join() looks them up
            long = True
        if long:
            keys = [id_key(k if k.__class__ is str else str(k)) for k in keys]
            new_ids = np.array(keys + [None], dtype=object)[:-1]
        self._ids[slots] = new_ids
        if self._refused:  # an id predicted again and taken: its label joins this prediction, not the refused one
            refused = self._refused
            for key in refused.keys() & keys:
                del refused[key]
        if self._early:
            early = self._early
            # a label for a batch call's id, whose rows are <id>/0, <id>/1...: joined now, it is
            # counted unknown_id with the line that says so, instead of leaving unjoined later
            self._arrived.update(dict.fromkeys(key if key in early else key[:-2] for key in keys
                                               if key in early or key[-2:] == "/0" and key[:-2] in early))
        held = len(slot_of)
        slot_of.update(zip(keys, slots.tolist()))
        self.replaced += held + n - len(slot_of)  # ids that were waiting already, or came twice
        self._ts[slots] = batch.ts[has]
        self._see(_latest_times(batch.ts[has]))
        self._segment[slots] = batch.segment[has]
        self._predicted[slots] = -1 if batch.predicted is None else batch.predicted[has]
        if batch.scores is not None:
            width = batch.scores.shape[1:] if batch.scores.ndim > 1 else ()
            # a regression value keeps its float64: rounded to float32, a prediction of 1e8 is off
            # by up to 4, and MAE / RMSE against labels measure that rounding
            dtype = np.float32 if width else np.float64
            if self._scores is None or self._scores.shape[1:] != width or self._scores.dtype != dtype:
                self._scores = self._score_table(width, dtype)
            self._scores[slots] = _log_probabilities(batch, has) if width else batch.scores[has]
        if batch.intervals is not None:
            if self._intervals is None or self._intervals.shape[1] != batch.intervals.shape[1]:
                self._intervals = np.full((self.capacity, batch.intervals.shape[1]), np.nan)
            self._intervals[slots] = batch.intervals[has]
        elif self._intervals is not None:  # slots reused by predictions without intervals: none, not the old ones'
            self._intervals[slots] = np.nan
        return self.evicted - evicted_before

    def _score_table(self, width: tuple[int, ...], dtype: type) -> np.ndarray:
        table = np.full((self.capacity,) + width, np.nan, dtype=dtype)
        if table.nbytes >= LARGE_SCORE_TABLE_BYTES:
            log.warning("the label join holds the scores of up to %d predictions (labels.pending) of %s values each: %d "
                        "MiB. Fix: lower labels.pending to about (predictions per second with a request id) x "
                        "(labelling delay in seconds), if that is less", self.capacity,
                        "x".join(map(str, width)) or "1", table.nbytes >> 20)
        return table

    def join(self, ts: float, request_ids: list[Any], labels: list[Any], classes: ClassIndex,
             regression: bool, multilabel: bool = False) -> tuple[LabeledBatch | None, dict[str, int]]:
        """Join one feedback event; returns the labelled rows and counts by outcome."""
        return self.join_many([(ts, request_ids, labels)], classes, regression, multilabel)

    def join_many(self, events: list[tuple[float, list[Any], list[Any]]], classes: ClassIndex,
                  regression: bool, multilabel: bool = False) -> tuple[LabeledBatch | None, dict[str, int]]:
        """Join several feedback events ``(label time, request ids, labels)`` at once, in order,
        into one labelled batch: as joining them one by one would (an id labelled twice keeps
        its first label, the second counts as ``unknown_id``), but the detectors then see one
        batch per drain instead of one per caller's ``feedback`` call.

        ``multilabel``: the model answers each of its labels apart (``output.kind: multilabel``),
        and a label is the row's ground truth in either form :func:`~monitor.multilabel_truth.read_truth`
        reads (a 0/1 vector, or the names of the labels present), checked against the width of
        the held predictions; the batch's ``label`` is then a 0/1 matrix of one column per label."""
        outcome = {"joined": 0, "unknown_id": 0, "invalid": 0, "expired": 0}
        width = self._scores.shape[1] if multilabel and self._scores is not None and self._scores.ndim == 2 else None
        names = classes.names[:width] if width is not None else classes.names
        window, late, refused = self.window_s, 0, 0
        slots: list[int] = []
        values: list[Any] = []
        label_ts: list[float] = []
        late_rows: list[bool] = []
        slot_of, seen_ts, ttl = self._slot_of, self._ts, self.ttl_s
        # held labels whose prediction came (remember() marked them) are taken before the sweep: swept
        # first, one whose prediction came within its wait but was joined after it (a replay's or a
        # batch job's chunk, whose later events move the event clock past the wait) was let go of as
        # unknown_id, its prediction left waiting for good
        arrivals = self._arrivals(multilabel)
        outcome["unknown_id"] += self._expire_early()  # held labels that waited long enough, by the clock so far
        for n, (ts, request_ids, labels) in enumerate(arrivals + list(events)):
            if n >= len(arrivals) and ts == ts:  # not NaN: the event clock, swept event by event as one join at a time would
                self._see((float(ts),))
                if self._clock is None:
                    outcome["unknown_id"] += self._expire_early()
            for i, (rid, label) in enumerate(zip(request_ids, labels)):
                # an unreadable label leaves its prediction waiting: the log says to fix the
                # label, and the corrected one must still find it
                if multilabel:
                    try:
                        value = read_truth(label, names, width)
                    except TruthError as err:
                        outcome["invalid"] += 1
                        self.invalid_example = f"labels[{i}] {describe_value(label)} for request id {describe_value(rid)}: {err}"
                        continue
                    except Exception:  # noqa: BLE001 - the caller's object (its str() may raise): invalid, as _read_label counts it
                        outcome["invalid"] += 1
                        self.invalid_example = f"labels[{i}] {describe_value(label)} for request id {describe_value(rid)}"
                        continue
                else:
                    value = _read_label(label, regression)
                if value is _INVALID:
                    outcome["invalid"] += 1
                    self.invalid_example = describe_value(label)
                    continue
                try:
                    key = request_id_text(rid)  # as the prediction's id was read: bytes decoded, NaN / NA none
                    if key is None and self.missing_id_example is None:
                        self.missing_id_example = describe_value(rid)  # unknown_id below: no prediction is held under none
                except CallerValueError:  # an id whose text cannot be taken (str() refuses it) finds nothing
                    key = None  # unknown_id at once: a prediction's such id is dropped from its rows, as a long one
                    if self.long_id_example is None:
                        self.long_id_example = _untaken_id(rid)
                slot = slot_of.pop(id_key(key), None) if key is not None else None
                if slot is None:
                    if key is not None and id_key(f"{key}/0") in slot_of:
                        outcome["unknown_id"] += 1
                        if self.batch_id_example is None:
                            self.batch_id_example = key  # the id of a batch call, whose rows are <id>/0, <id>/1...
                    elif key is not None and not _may_be_held(key):
                        outcome["unknown_id"] += 1  # no prediction keeps such an id: at once, not after labels.early_wait
                        if self.long_id_example is None:
                            self.long_id_example = f"of {len(key):,} characters ({key[:40]!r}...)"
                    elif key is not None and self._was_refused(key):
                        refused += 1  # its prediction came and was refused: at once, not held for one to come
                        if self.refused_example is None:
                            self.refused_example = key
                    elif key is None or not self._hold(id_key(key), ts, _held_truth(label, value) if multilabel else _held_class(value),
                                                       self._arrival_clock()):
                        outcome["unknown_id"] += 1
                    continue
                if self.early > 0:
                    self._labelled[self._ids[slot]] = slot
                else:
                    self._ids[slot] = None
                if ts - seen_ts[slot] > ttl:
                    outcome["expired"] += 1
                    continue
                is_late = window is not None and ts - seen_ts[slot] > window
                late += is_late
                late_rows.append(is_late)
                slots.append(slot)
                values.append(value)
                label_ts.append(max(ts, seen_ts[slot]))  # a label held for its prediction is used from then on
        outcome["unknown_id"] += self._expire_early()  # beyond labels.early after this call's labels
        if window is not None:
            outcome["late"] = late
        if refused:
            outcome["prediction_refused"] = refused
        if not slots:
            return None, outcome
        outcome["joined"] = len(slots) - late
        idx = np.asarray(slots, dtype=np.int64)
        kept = None if self._scores is None else self._scores[idx].astype(np.float64)  # regression values, or log-probabilities
        if regression:
            label_values = np.asarray(values, dtype=np.float64)
        elif multilabel:
            label_values = np.zeros((len(values), len(names) if width is None else width))
            for row, present in enumerate(values):
                label_values[row, list(present)] = 1.0
        else:
            # a model that returns labels only learns its classes from what it answered; a label
            # it never answered (a model collapsed onto one class) is a class all the same
            label_values = classes.lookup(np.fromiter(values, dtype=object, count=len(values)),
                                          learn=self._scores is None, from_labels=True)
        labeled = LabeledBatch(
            ts=self._ts[idx].copy(),
            label_ts=np.asarray(label_ts, dtype=np.float64),
            label=label_values,
            segment=self._segment[idx].copy(),
            scores=kept if regression or kept is None else np.exp(kept),
            log_scores=None if regression else kept,
            predicted=None if regression else self._predicted[idx].copy(),
            intervals=None if self._intervals is None else self._intervals[idx].copy(),
            classes=tuple(classes.names),
            late=np.asarray(late_rows, dtype=bool),
        )
        return labeled, outcome

    def refuse(self, ids: list[tuple[str, bool]]) -> int:
        """Remember the request ids of prediction rows the agent refused (``monitor_rows_rejected_total``),
        each ``(id key, whether it is a call's one id)`` (:func:`monitor.row_arguments.refused_ids`):
        a label for one counts ``prediction_refused`` at once instead of being held ``early_wait``
        for a prediction that came already, then counted ``unknown_id`` with a line saying none
        came. The last ``early`` of them are remembered (0: none), the oldest forgotten first; then
        a label for one is held, as for any id not seen. An id under which a prediction is waiting
        is not remembered: its label joins that prediction. Returns how many held labels this let
        go of, their prediction now come refused: each a ``prediction_refused``, which the caller counts."""
        if self.early <= 0 or not ids:
            return 0
        refused, slot_of = self._refused, self._slot_of
        ids = [(key, call) for key, call in ids if key not in slot_of]
        for key, call in ids[-self.early:]:
            if key in refused:
                refused.move_to_end(key)
                call = call or refused[key]
            refused[key] = call
        while len(refused) > self.early:
            refused.popitem(last=False)
        early, arrived = self._early, self._arrived
        if not early:
            return 0
        # a held label whose accepted prediction came in the same drain (arrived) joins that one
        gone = [key for key, _ in ids if key in early and key not in arrived]
        calls = {key for key, call in ids if call}
        if calls:  # a refused call's rows are <id>/<row>: one pass over the held labels, not one look-up per row
            for key in early:
                call, _, row = key.rpartition("/")
                if row.isdigit() and call in calls and key not in arrived:
                    gone.append(key)
        n = 0
        for key in gone:
            if early.pop(key, None) is not None:
                n += 1
                if self.refused_example is None:
                    self.refused_example = key
        return n

    def _was_refused(self, key: str) -> bool:
        """Whether the label for the request id ``key`` (as text) is for a prediction row refused
        (:meth:`refuse`): its id, or the id of its call when ``key`` is ``<call id>/<row>``."""
        refused = self._refused
        if not refused:
            return False
        if id_key(key) in refused:
            return True
        call, _, row = key.rpartition("/")
        return bool(call) and row.isdigit() and refused.get(id_key(call), False)

    def _see(self, times: tuple[float, ...] | list[float]) -> None:
        """Move the event clock with the times of events seen, in the order they came (not NaN):
        to the lower median of the latest ones, so that one event far ahead of the others moves it
        no further than they do. A gap in the events (a replay over a quiet night) moves it once
        half the latest events are past it."""
        recent = self._recent
        for t in times:
            if len(recent) == RECENT_EVENTS:
                self._left_recent(recent[0])
            recent.append(t)
        if times:
            self._now = max(self._now, sorted(recent)[(len(recent) - 1) // 2])

    def _left_recent(self, t: float) -> None:
        """Count an event time that leaves the latest events more than ``early_wait_s`` ahead of the
        clock, which did not follow it: a sender's clock running ahead (nothing to count with a ``clock``)."""
        if self._clock is None and t > self._now + self.early_wait_s:
            self.clock_outliers += 1
            self.clock_outlier_example = (t, self._now)

    def _arrival_clock(self) -> float:
        """The time on which held labels' waits are measured: the agent's ``clock``, else the
        newest event time seen."""
        return self._now if self._clock is None else float(self._clock())

    def _hold(self, key: str, ts: float, value: Any, arrived: float) -> bool:
        """Hold a label for a prediction not seen yet; False when it cannot be held (holding is
        off, the id has a label held already: an id labelled twice keeps its first label, or the
        label is too large to hold: ``_INVALID`` from :func:`_held_class` or :func:`_held_truth`),
        so that it counts as ``unknown_id`` now."""
        if isinstance(value, np.generic):  # as the checkpoint keeps it: a numpy class index is an int
            value = value.item()
        if self.early <= 0 or value is _INVALID or key in self._early or key in self._gone or key in self._labelled:
            if self.relabelled_example is None and (key in self._early or key in self._labelled):
                self.relabelled_example = key
            return False
        self._early[key] = (float(ts), value, float(arrived))
        return True

    def _gone_recently(self, *keys: str) -> None:
        """Remember that the predictions under ``keys`` were forgotten (the last ``early`` such ids;
        after a restart from a checkpoint that kept no slots of labelled ids, also those), so that a
        label for one counts ``unknown_id`` at once instead of waiting for a prediction that came already."""
        if self.early <= 0 or not keys:
            return
        gone = self._gone
        gone.update(dict.fromkeys(keys))
        while len(gone) > self.early:
            gone.popitem(last=False)

    def _expire_early(self) -> int:
        """Let go of held labels that waited longer than ``early_wait_s`` or do not fit in
        ``early``, oldest first; returns how many (each an ``unknown_id``)."""
        early, gone = self._early, 0
        while len(early) > self.early:
            key, _ = early.popitem(last=False)
            self.unjoined_example = self.unjoined_example or key
            gone += 1
        oldest = self._arrival_clock() - self.early_wait_s
        while early:
            key = next(iter(early))
            arrived = early[key][2]
            if arrived == arrived and arrived >= oldest:  # held in arrival order: the first still waiting stops the sweep
                break
            del early[key]
            self.unjoined_example = self.unjoined_example or key
            gone += 1
        return gone

    def _arrivals(self, multilabel: bool = False) -> list[tuple[float, list[Any], list[Any]]]:
        """The held labels whose predictions have come, as feedback events joined first (a
        multi-label truth in the form it was sent in, read again now that the model's labels are known)."""
        if not self._arrived:
            return []
        out = []
        for key in self._arrived:
            held = self._early.pop(key, None)
            if held is not None:
                out.append((held[0], [key], [_sent_truth(held[1]) if multilabel else held[1]]))
        self._arrived = {}
        return out

    def state_dict(self) -> dict[str, Any]:
        # the ids still waiting, as the table maps them: a slot may still hold an id that a newer
        # prediction under the same id took over (and a label then consumed), and restoring it
        # would join a second label to the old prediction
        waiting = sorted(self._slot_of.items(), key=lambda item: item[1])
        live = np.array([slot for _, slot in waiting], dtype=np.int64)
        return {
            "capacity": self.capacity,
            "ids": [key for key, _ in waiting],
            "slots": live,
            "ts": self._ts[live],
            "predicted": self._predicted[live],
            "segment": [None if s is None else str(s) for s in self._segment[live].tolist()],
            "scores": None if self._scores is None else self._scores[live],
            "log_scores": True,  # a classifier's rows are log-probabilities (before: probabilities)
            "intervals": None if self._intervals is None else self._intervals[live],
            "head": self._head,
            "evicted": self.evicted,
            "replaced": self.replaced,
            # labels waiting for their prediction, oldest first (a class label or a regression value),
            # with when each arrived on the clock named by early_clock
            "early": [[key, ts, value if isinstance(value, (str, int, float, list)) else str(value), arrived]  # lists: see _held_truth
                      for key, (ts, value, arrived) in self._early.items()],
            "early_clock": "events" if self._clock is None else "agent",
            "arrived": list(self._arrived),
            # forgotten ids, oldest first (the last labels.early); and the labelled ids with their
            # prediction's slot, remembered after a restart as long as before it: until the ring reuses it
            "gone": list(self._gone),
            "labelled": [[key, slot] for key, slot in self._labelled.items()],
            # ids of refused prediction rows, oldest first (the last labels.early): kept across a restart,
            # as the held labels and the forgotten ids are, since labels come hours after their
            # predictions and a restart (a deploy) in between would send a refused row's label back to
            # waiting labels.early_wait and unknown_id, the count and the log line this memory is for
            "refused": [[key, call] for key, call in self._refused.items()],
            "now": None if self._now == float("-inf") else self._now,
            "recent": list(self._recent),
        }

    def _saved_labelled(self, state: dict[str, Any], saved_capacity: int, taken: set[int]) -> list[tuple[str, int]]:
        """The checkpoint's labelled ids with their slots (none when ``early`` is 0, as live: a
        labelled id is then not remembered), leaving out a slot outside the saved ring or one a
        waiting prediction holds, which no checkpoint of this agent has."""
        if self.early <= 0:
            return []
        out = []
        for key, slot in state.get("labelled", ()):
            slot = int(slot)
            if 0 <= slot < saved_capacity and slot not in taken:
                out.append((str(key), slot))
                taken.add(slot)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> int:
        """Restore the predictions waiting for their label; returns how many of them a smaller
        ``capacity`` than the checkpoint's could not hold (the oldest, counted in
        :attr:`evicted`). A different capacity (``labels.pending`` changed across the restart,
        as its metric's help advises when predictions are forgotten) lays the waiting rows into
        the new ring oldest first, instead of forgetting every one of them."""
        self._reset()
        # refused ids first: a restore whose outputs changed keeps them alone (core.load_state_dict),
        # since a refused prediction is refused whatever the outputs' layout is now
        for key, call in (state or {}).get("refused", ())[-self.early:] if self.early > 0 else ():  # before it was kept: none
            self._refused[str(key)] = bool(call)
        if not state or "slots" not in state:
            return 0
        slots = np.asarray(state["slots"], dtype=np.int64)
        ids = list(state["ids"])
        saved_capacity = int(state.get("capacity", self.capacity))
        head = int(state["head"])
        labelled = self._saved_labelled(state, saved_capacity, set(slots.tolist()))
        lab_ids = [key for key, _ in labelled]
        lab_slots = np.array([slot for _, slot in labelled], dtype=np.int64)
        dropped = 0
        if saved_capacity != self.capacity:
            # waiting and labelled ids laid into the new ring together, oldest first: the newest
            # labels.pending of them are kept, as the ring of that size would hold them
            n_waiting = slots.size  # rows 0..n_waiting-1 of the order are waiting ids, the rest labelled ones
            age = np.concatenate([slots, lab_slots]) - head
            order = np.argsort(age % max(saved_capacity, 1), kind="stable")
            cut = max(order.size - self.capacity, 0)
            waiting_gone = order[:cut][order[:cut] < n_waiting]
            dropped = int(waiting_gone.size)
            for i in waiting_gone[max(dropped - self.early, 0):].tolist() if self.early > 0 else ():
                self._gone_recently(ids[i])  # their labels count unknown_id at once, as for any forgotten prediction
            order = order[cut:]
            new_slot = np.arange(order.size, dtype=np.int64)
            waiting = order < n_waiting
            rows, slots = order[waiting], new_slot[waiting]
            ids = [ids[i] for i in rows.tolist()]
            lab_ids = [lab_ids[i] for i in (order[~waiting] - n_waiting).tolist()]
            lab_slots = new_slot[~waiting]
            head = int(order.size % self.capacity)
        else:
            rows = np.arange(slots.size)
        self._ids[slots] = np.array(ids + [None], dtype=object)[:-1]
        self._ids[lab_slots] = np.array(lab_ids + [None], dtype=object)[:-1]
        self._labelled = dict(zip(lab_ids, lab_slots.tolist()))
        self._ts[slots] = np.asarray(state["ts"])[rows]
        self._predicted[slots] = np.asarray(state["predicted"])[rows]
        segments = list(state["segment"])
        self._segment[slots] = np.array([segments[i] for i in rows.tolist()] + [None], dtype=object)[:-1]
        if state.get("scores") is not None:
            sc = np.asarray(state["scores"])[rows]
            dtype = np.float32 if sc.ndim > 1 else np.float64
            if sc.ndim > 1 and not state.get("log_scores"):  # saved by an earlier release: probabilities
                sc = log_probabilities(sc.astype(np.float64))
            self._scores = self._score_table(sc.shape[1:], dtype)
            self._scores[slots] = sc
        if state.get("intervals") is not None:
            iv = np.asarray(state["intervals"], dtype=np.float64)[rows]
            self._intervals = np.full((self.capacity, iv.shape[1]), np.nan)
            self._intervals[slots] = iv
        self._slot_of = dict(zip(ids, slots.tolist()))
        self._head = head
        self.evicted = int(state["evicted"]) + dropped
        self.replaced = int(state.get("replaced", 0))
        for key in [str(key) for key in state.get("gone", ())][-self.early:] if self.early > 0 else ():
            self._gone_recently(key)  # before "labelled" was kept: the labelled ids came last, the newest labels.early kept
        self._now = float("-inf") if state.get("now") is None else float(state["now"])
        self._recent.extend(float(t) for t in state.get("recent", ())[-RECENT_EVENTS:])
        saved = state.get("early", ())
        # arrivals on another clock than ours (or none: an earlier release's, which held in event
        # time) wait from now, rather than be compared with times of another clock
        same_clock = state.get("early_clock") == ("events" if self._clock is None else "agent")
        restored_at = self._arrival_clock()
        for key, ts, value, *arrived in saved:
            self._hold(str(key), float(ts), value, float(arrived[0]) if same_clock and arrived else restored_at)
        self._expire_early()  # a smaller labels.early than the checkpoint's
        self.unheld_at_restore = len(saved) - len(self._early)
        self._arrived = dict.fromkeys(str(key) for key in state.get("arrived", ()) if str(key) in self._early)
        return dropped
