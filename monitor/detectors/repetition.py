"""Repeated answers: the share of rows whose exact output was recently given to *other* inputs.

A model that collapses onto a few canned answers, or that returns outputs it memorised for
inputs it has never seen, produces output vectors that repeat exactly (to the rounding below)
while the inputs differ. Predicted-class diversity does not see this when the repeated answers
spread over several classes; this detector does.

Every row's output vector (class probabilities or regression value), rounded to
``10**-decimals``, and its input row are reduced to 64-bit fingerprints. A fixed-size,
direct-mapped table of ``table_size`` slots remembers, for each recent distinct output (up to
collisions, where the newer output evicts the older), the input that last produced it and when
(row position). A row counts as a *repeat* when the same output was given within the previous
``horizon_rows`` rows to a different input, unless the output is saturated (at least two
columns, every one rounding to 0 or 1: :func:`saturated_rows`): a softmax pushed far from its
reference (a shifted input, an over-confident model) gives ``[1, 0, 0]`` to thousands of
different inputs honestly, so its repeats say nothing of a cache, and paged ModelOutputsRepeated
beside the drift and calibration alerts of the same cause (a canned one-class answer is
ModelOutputCollapse's). Memory is ``3 * table_size`` integers plus the
window, whatever the stream length.

Over a sliding event-time window the detector exports the share of repeats (at least
``min_rows`` rows), and, when the reference holds the model's outputs, the same share measured
on the reference rows (see :meth:`OutputRepeatDetector._reference_share`): models with discrete outputs (trees,
rules, heavily rounded scores) repeat legitimately, and the alert compares the two.

Examples
--------
>>> import numpy as np
>>> from monitor.batch import Batch
>>> det = OutputRepeatDetector(min_rows=1, window_s=1e6)
>>> x = np.arange(8.0)[:, None]                        # eight different inputs
>>> p = np.array([[0.9, 0.1]] * 4 + [[0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5]])
>>> det.update(Batch.from_arrays(x, p))
>>> det.repeat_ratio                                   # rows 2..4 repeat row 1's answer
0.375
"""

from __future__ import annotations

import zlib
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import Refresh, config_params, load_windows_state, put_figure, windows_state, RefreshingDetector
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["OutputRepeatDetector", "output_fingerprints", "rounded_outputs", "input_fingerprints", "saturated_rows", "RepeatTable"]

_ROWS, _REPEATS = 0, 1
_EMPTY = np.uint64(0)
_MASK63 = np.uint64((1 << 63) - 1)
_ONE = np.uint64(1)


_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """Finaliser of splitmix64, in place on ``h`` (uint64 array; products wrap, which numpy does
    silently for arrays): every input bit affects every output bit."""
    t = h >> _S30
    h ^= t
    h *= _M1
    np.right_shift(h, _S27, out=t)
    h ^= t
    h *= _M2
    np.right_shift(h, _S31, out=t)
    h ^= t
    return h


_MULTIPLIERS: dict[int, np.ndarray] = {}
#: Version of the fingerprint functions, saved with the table: a table saved with another version
#: holds keys that no new row can match, so it is not restored (the window is).
FINGERPRINT_VERSION = 2
#: Words per block of the fingerprint loops: their scratch arrays (128 KiB) are reused over a
#: batch; full-size temporaries were fresh memory at every batch, and faulting it in cost more
#: than the arithmetic (here 8,192 x 30 features: 5.9 ms against 0.5 ms).
_BLOCK_WORDS = 16384


def _multipliers(d: int) -> np.ndarray:
    """The ``d`` random odd 64-bit constants of a row of ``d`` words (fixed: fingerprints are checkpointed)."""
    mult = _MULTIPLIERS.get(d)
    if mult is None:
        mult = _MULTIPLIERS[d] = np.random.default_rng(0x6A09E667 + d).integers(0, 1 << 63, d, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return mult


def _finish(h: np.ndarray, salt: int) -> np.ndarray:
    h ^= np.uint64(salt)
    h = _mix(h)
    h |= _ONE  # never 0: 0 marks an empty table slot
    return h


def _float_sums(x: np.ndarray, mult: np.ndarray, scale: float | None = None, saturated: np.ndarray | None = None) -> np.ndarray:
    """Per row, the wrapping sum of the columns' folded words times ``mult`` (see :func:`_fold`),
    the words being the bits of the values made canonical: ``-0.0`` is ``0.0`` (adding 0.0 does
    it) and every NaN is one NaN. With ``scale``, values are first multiplied by it and rounded
    to integers (as floats: no cast that could overflow); with ``saturated`` too (bool ``(n,)``),
    whether each row's every rounded value is 0 or ``scale`` is written there, from the same
    rounding (:func:`saturated_rows`' figure: ``np.round(x, decimals)`` is that rounding divided
    by ``scale``, which is 0 or 1 exactly when the rounded integer is 0 or ``scale``)."""
    n, d = x.shape
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    rows = max(1, min(n, _BLOCK_WORDS // max(d, 1)))
    buf = np.empty((rows, d), dtype=np.float64)
    bits = buf.view(np.uint64)
    folded = np.empty_like(bits)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        k = stop - start
        b, w, f = buf[:k], bits[:k], folded[:k]
        if scale is None:
            np.add(x[start:stop], 0.0, out=b)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                np.multiply(x[start:stop], scale, out=b)
            np.rint(b, out=b)
            b += 0.0
            if saturated is not None:
                _saturated_block(b, scale, saturated[start:stop])
        nan = np.isnan(b)
        if nan.any():  # NaN payloads differ (no BLAS dot here: its threads would spin on the worker's CPU)
            b[nan] = np.nan
        np.right_shift(w, _S32, out=f)
        f ^= w
        np.einsum("ij,j->i", f, mult, out=out[start:stop])  # wrapping integer sums; einsum's loop is the fastest
    return out


def _saturated_block(b: np.ndarray, scale: float, out: np.ndarray) -> None:
    """Whether each row of rounded values ``b`` (``(k, d)``, ``d >= 2``) is all 0 or ``scale``,
    into ``out``: only the rows whose first value is (a few percent of a softmax's rows, which
    are rarely saturated) have their other columns read, unless they are most rows (a model
    nearly one-hot everywhere), whose columns are then all read at once, as gathering them
    would cost more."""
    first = b[:, 0]
    candidates = np.flatnonzero((first == 0.0) | (first == scale))
    if 2 * candidates.size > first.size:
        np.logical_or(b == 0.0, b == scale).all(axis=1, out=out)
        return
    out[:] = False
    if candidates.size:
        rest = b[candidates, 1:]
        out[candidates] = ((rest == 0.0) | (rest == scale)).all(axis=1)


def _fold(words: np.ndarray, salt: int) -> np.ndarray:
    """One 64-bit fingerprint per row of a 2-D uint64 array (order-sensitive over columns).

    Each word's high half is first folded into its low half (``w ^ (w >> 32)``, a bijection);
    each column is then multiplied by its own random odd constant and the products summed
    (wrapping; one integer matrix-vector product), and the sum is scrambled by the splitmix64
    finaliser: a multilinear hash that costs one pass over the words whatever their number.

    Without the first step, words that differ only in their high bits -- a float's sign and
    exponent -- differed by multiples of a large power of two, and such differences cancel in a
    sum modulo 2**64: ``(a, b)`` and ``(-a, -b)`` always collided, and rows of small integers
    shared a fingerprint three at a time (86,572 distinct rows of five features in 0..9 gave
    29,257 fingerprints), so repeats between different inputs went unseen. With it, a
    difference reaches the low half, and two different rows collide with probability about
    ``2**-32`` or less.
    """
    folded = words >> _S32
    folded ^= words
    return _finish(np.einsum("ij,j->i", folded, _multipliers(words.shape[1])), salt)


def output_fingerprints(scores: np.ndarray, decimals: int = 6) -> np.ndarray:
    """Fingerprint of each output row rounded to ``10**-decimals`` (uint64 ``(n,)``).

    The rounded values are hashed as floats, not cast to integers: the cast overflowed above
    ``9.2e18 / 10**decimals`` (9.2e12 at the default 6), where every output, NaN and the
    infinities included, became one word, so distinct large regression outputs all counted as
    repeats. ``-0.0`` rounds to the same answer as ``0.0``; NaN is one value; only values beyond
    about ``1.8e308 / 10**decimals`` collapse (into the infinity of their sign).
    """
    return rounded_outputs(scores, decimals)[0]


def rounded_outputs(scores: np.ndarray, decimals: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """:func:`output_fingerprints` and :func:`saturated_rows` of the same rows from one rounding
    of them (each rounded its own way, every value was multiplied and rounded twice, and divided
    once: about a sixth of the detector's cost per row)."""
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    saturated = np.zeros(x.shape[0], dtype=bool)
    scale = 10.0**decimals  # np.round's factor (exact up to 10**22)
    fp = _finish(_float_sums(x, _multipliers(x.shape[1]), scale, saturated if x.shape[1] >= 2 else None), 0x5EED0)
    return fp, saturated


def saturated_rows(scores: np.ndarray, decimals: int = 6) -> np.ndarray:
    """Rows (bool ``(n,)``) of at least two columns whose every value rounds, to ``10**-decimals``,
    to 0 or 1: the answers a saturated model gives any input of a region, not repeats of one
    answer. A single column (a regression value) is never saturated."""
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        return np.zeros(x.shape[0] if x.ndim else 0, dtype=bool)
    with np.errstate(invalid="ignore"):
        r = np.round(x, decimals)
        return ((r == 0.0) | (r == 1.0)).all(axis=1)


def input_fingerprints(numeric: np.ndarray | None, categorical: np.ndarray | None = None) -> np.ndarray:
    """Fingerprint of each input row: the bits of the numeric values (``-0.0`` read as ``0.0``,
    one NaN: values a model cannot tell apart are one input), and a CRC-32 of each categorical
    value's text (stable across processes, so checkpoints restore the same fingerprints; a number
    and its text are one value, as the agent's intake makes them). The hash is :func:`_fold`'s
    over the row's numeric words then its categorical codes."""
    num = None if numeric is None or not numeric.size else np.asarray(numeric, dtype=np.float64)
    cat = None if categorical is None or not categorical.size else categorical
    if num is None and cat is None:  # rows without features (formerly no fingerprint at all for them)
        return np.ones(numeric.shape[0] if numeric is not None else 0 if categorical is None else categorical.shape[0],
                       dtype=np.uint64)
    d_num = 0 if num is None else num.shape[1]
    mult = _multipliers(d_num + (0 if cat is None else cat.shape[1]))
    h = None if num is None else _float_sums(num, mult[:d_num])
    if cat is not None:
        codes = np.stack([_text_codes(cat[:, j]) for j in range(cat.shape[1])], axis=1)  # < 2**32: folding leaves them
        part = np.einsum("ij,j->i", codes, mult[d_num:])
        h = part if h is None else h + part
    assert h is not None
    return _finish(h, 0x1A9)


_CODES: dict[str, int] = {}
_CODES_CAP = 100_000
#: Values whose text is longer than this are hashed at every sight, never memoised: the cap bounds
#: the number of entries, this their size (a categorical value comes from the caller's inputs).
_CODES_KEY_CHARS = 256


def _text_codes(values: np.ndarray) -> np.ndarray:
    """CRC-32 of each value's text, memoised for strings (categorical values are few; one C-level
    lookup for the whole column when all are known).

    Only strings are memoised: ``1``, ``1.0`` and ``True`` are equal dict keys, so a memo keyed
    by any value gave ``True`` the code of ``"1"`` (or the reverse) depending on which came
    first. Other values are hashed by their text at every sight (the intake gives detectors text).
    """
    items = values.tolist()
    try:
        found = itemgetter(*items)(_CODES) if items else ()
        return np.array([found] if len(items) == 1 else found, dtype=np.uint64)
    except (KeyError, TypeError):
        pass
    if len(_CODES) > _CODES_CAP:
        _CODES.clear()
    out = np.empty(len(items), dtype=np.uint64)
    for i, v in enumerate(items):
        code = _CODES.get(v) if type(v) is str else None
        if code is None:
            text = str(v)
            code = zlib.crc32(text.encode())
            if type(v) is str and len(text) <= _CODES_KEY_CHARS:
                _CODES[v] = code
        out[i] = code
    return out


class RepeatTable:
    """Direct-mapped table: output fingerprint -> (last input fingerprint, last row position).

    A row is a repeat when the same output was given, within the last ``horizon`` rows, to a
    different input. Recency is counted in rows (not in table turnover) so that the share is a
    stationary property of the traffic, and the same figure measured on the reference rows is
    comparable whatever the lengths of the two streams. Two outputs that map to the same slot
    evict each other (a missed repeat); ``size`` several times ``horizon`` keeps that rare, and
    it biases the live and the reference figure alike.
    """

    def __init__(self, size: int, horizon: int) -> None:
        if size < 1 or horizon < 1:
            raise ValueError(f"output_repeats: table_size and horizon_rows must be at least 1, got {size} and {horizon}")
        self.size = int(size)
        self.horizon = int(horizon)
        self.keys = np.zeros(self.size, dtype=np.uint64)
        self.inputs = np.zeros(self.size, dtype=np.uint64)
        self.positions = np.full(self.size, -(1 << 62), dtype=np.int64)
        self.count = 0

    def repeats(self, out_fp: np.ndarray, in_fp: np.ndarray) -> np.ndarray:
        """Mark rows whose output was recently given to a different input; then remember the batch.

        The flags are exactly those of the rows processed one by one, whatever the batching
        (replayed and live traffic drain differently): each row is compared with the previous
        row of the batch that maps to the same table slot (a stable sort by slot groups them),
        and the first of each group with the table, so that an output evicted by another one
        sharing its slot is evicted within a batch as it would be between batches.
        """
        n = out_fp.shape[0]
        if n == 0:
            return np.zeros(0, dtype=bool)
        pos = self.count + np.arange(n, dtype=np.int64)
        self.count += n
        slot = self._slots(out_fp)
        # stable order by slot: sorting the distinct keys (slot, row) packed in one integer needs
        # no stable sort
        bits = n.bit_length()
        key = slot << bits
        key |= np.arange(n, dtype=np.int64)
        key.sort()
        order = key & ((1 << bits) - 1)
        s = key >> bits
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(s[1:], s[:-1], out=first[1:])
        if first.all():  # no two rows share a slot: each meets the table only
            return self._distinct(slot, out_fp, in_fp, pos)
        o, i, p = out_fp[order], in_fp[order], pos[order]
        # the slot's previous occupant: the group's previous row, or the table for the first
        head = s[first]
        prev_o, prev_i, prev_p = np.empty_like(o), np.empty_like(i), np.empty_like(p)
        prev_o[1:], prev_i[1:], prev_p[1:] = o[:-1], i[:-1], p[:-1]
        prev_o[first], prev_i[first], prev_p[first] = self.keys[head], self.inputs[head], self.positions[head]
        rep = np.empty(n, dtype=bool)
        rep[order] = (prev_o == o) & (prev_i != i) & (p - prev_p <= self.horizon)
        last = np.empty(n, dtype=bool)
        last[-1] = True
        np.not_equal(s[1:], s[:-1], out=last[:-1])
        tail = s[last]  # each slot keeps the latest row that mapped to it
        self.keys[tail], self.inputs[tail], self.positions[tail] = o[last], i[last], p[last]
        return rep

    def _slots(self, out_fp: np.ndarray) -> np.ndarray:
        """Table slot of each output fingerprint (its low 63 bits modulo the size; a mask when the
        size is a power of two, the same numbers without a division)."""
        if self.size & (self.size - 1) == 0:
            return (out_fp & np.uint64(self.size - 1)).astype(np.int64)
        return ((out_fp & _MASK63) % np.uint64(self.size)).astype(np.int64)

    def _distinct(self, slot: np.ndarray, out_fp: np.ndarray, in_fp: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """:meth:`repeats` for a batch whose rows all map to different slots (the usual case for
        continuous scores and small batches): each row is compared with the table only."""
        rep = self.keys[slot] == out_fp
        rep &= self.inputs[slot] != in_fp
        rep &= pos - self.positions[slot] <= self.horizon
        self.keys[slot] = out_fp
        self.inputs[slot] = in_fp
        self.positions[slot] = pos
        return rep


class OutputRepeatDetector(RefreshingDetector):
    """Share of rows whose rounded output exactly repeats one recently given to other inputs.

    Parameters
    ----------
    reference
        Held-out data with the model's outputs (``reference.scores``): the same share is
        measured on it, in its row order, as the baseline. Optional.
    horizon_rows
        "Recently": the same output given within this many previous rows counts as a repeat.
    table_size
        Slots of the fingerprint table (24 bytes each); several times ``horizon_rows`` so that
        distinct outputs rarely evict each other.
    decimals
        Outputs are rounded to ``10**-decimals`` before comparison (float noise of the same
        computation does not hide a repeat).
    window_s, n_slots
        Sliding event-time window and its resolution.
    min_rows
        Minimum rows in the window for the share (absent below).
    refresh
        Relative change of the window's row count that triggers recomputing at export.
    """

    kind: ClassVar[str] = "output_repeats"
    #: The repeat table gives every row the flag it would get alone, whatever the batching, and the
    #: window keeps sums: rows may come late (see :attr:`Detector.deferrable`).
    deferrable: ClassVar[bool] = True

    def __init__(
        self,
        reference: "Reference | None" = None,
        horizon_rows: int = 1000,
        table_size: int = 8192,
        decimals: int = 6,
        window_s: float = 3600.0,
        n_slots: int = 12,
        min_rows: int = 200,
        refresh: float = 0.05,
    ) -> None:
        if not 0 <= decimals <= 12:
            raise ValueError(f"output_repeats: decimals must be in 0..12, got {decimals}")
        self.horizon_rows = int(horizon_rows)
        self.table_size = int(table_size)
        self.decimals = int(decimals)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_rows = int(min_rows)
        self.refresh = float(refresh)
        self._reference_ratio: float | None = None
        scores = None if reference is None else reference.scores
        if scores is not None and len(reference) > self.horizon_rows and len(reference) == np.asarray(scores).shape[0]:  # type: ignore[arg-type]
            self._reference_ratio = self._reference_share(reference)
        elif scores is not None and len(reference) <= self.horizon_rows:  # type: ignore[arg-type]
            import logging

            logging.getLogger("monitor").warning(
                "output_repeats: the reference has %d rows, not more than horizon_rows (%d): the share of repeated "
                "outputs is not measured on it (monitor_output_repeat_reference_ratio absent, so ModelOutputsRepeated "
                "cannot fire). Fix: a reference of more than %d rows, or the entry {kind: output_repeats, horizon_rows: "
                "%d} in detectors: (below its length; a detectors: list replaces the defaults, so name the other "
                "detectors to run in it too)",
                len(reference), self.horizon_rows, self.horizon_rows, max(1, len(reference) // 2))  # type: ignore[arg-type]
        self._reset()

    def _reference_share(self, reference: "Reference") -> float:
        """The share on the reference rows taken as a cycle: a first pass fills the table, the
        second is measured, so every row has ``horizon_rows`` predecessors as a live row has
        (and, the reference being longer than the horizon, never meets its own first copy)."""
        out_fp, saturated = rounded_outputs(reference.scores, self.decimals)  # type: ignore[arg-type]
        in_fp = input_fingerprints(reference.numeric, reference.categorical)
        table = RepeatTable(self.table_size, self.horizon_rows)
        table.repeats(out_fp, in_fp)
        rep = table.repeats(out_fp, in_fp) & ~saturated
        return float(rep.mean())

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "OutputRepeatDetector":
        return cls(reference, **config_params(cls, context, params, window_s="window_s"))

    def _reset(self) -> None:
        self._table = RepeatTable(self.table_size, self.horizon_rows)
        self._window = SlidingWindow(self.window_s, (2,), self.n_slots)
        self._refresh = Refresh(self.refresh)

    def update(self, batch: "Batch") -> None:
        scores = batch.scores
        if scores is None or scores.shape[0] == 0:
            return  # label-only outputs repeat by nature; nothing to fingerprint
        out_fp, saturated = rounded_outputs(scores, self.decimals)
        rep = self._table.repeats(out_fp, input_fingerprints(batch.numeric, batch.categorical))
        rep &= ~saturated
        self._refresh.add(len(rep))
        accumulate(self._window, batch.ts, [(_ROWS, 1.0), (_REPEATS, rep.astype(np.float64))])

    def advance(self, now: float) -> None:
        self._window.advance(now)

    # -- results ------------------------------------------------------------------------------
    @property
    def repeat_ratio(self) -> float | None:
        """Share of repeats in the window, or None below ``min_rows`` rows."""
        rows, repeats = self._window.total()
        return float(repeats / rows) if rows >= max(self.min_rows, 1) else None

    @property
    def reference_ratio(self) -> float | None:
        """Share of repeats on the reference rows, or None without reference outputs."""
        return self._reference_ratio

    def export(self, out: "MetricWriter") -> None:
        slot_end = self._window.newest_slot_end
        if not self._refresh.due(slot_end):
            return
        self._refresh.done(slot_end, float(self._window.total()[_ROWS]))
        put_figure(out, names.OUTPUT_REPEAT, self.repeat_ratio)
        put_figure(out, names.OUTPUT_REPEAT_REFERENCE, self._reference_ratio)

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "windows": windows_state({"rows": self._window}),
            "keys": self._table.keys.copy(),
            "inputs": self._table.inputs.copy(),
            "positions": self._table.positions.copy(),
            "count": self._table.count,
            "fingerprint_version": FINGERPRINT_VERSION,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        load_windows_state({"rows": self._window}, state["windows"])
        keys, inputs = np.asarray(state["keys"], dtype=np.uint64), np.asarray(state["inputs"], dtype=np.uint64)
        if keys.shape != (self.table_size,) or inputs.shape != (self.table_size,):
            raise ValueError("output_repeats state was saved with another table_size")
        if state.get("fingerprint_version") != FINGERPRINT_VERSION:
            # keys of another hash match no new row: the table refills over horizon_rows rows
            # (repeats of outputs given before the restart are missed meanwhile), the window stays
            self._table.count = int(state["count"])
            return
        self._table.keys[:] = keys
        self._table.inputs[:] = inputs
        self._table.positions[:] = np.asarray(state["positions"], dtype=np.int64)
        self._table.count = int(state["count"])
