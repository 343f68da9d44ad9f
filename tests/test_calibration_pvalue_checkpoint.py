"""A checkpoint restore gives the calibration p-values an uninterrupted agent would export.

``monitor_calibration_error_pvalue`` (calibration detector) and
``monitor_segment_calibration_error_pvalue`` (segments detector) come from resampling with a
generator of the detector's own, and are kept (:class:`~monitor.detectors._common.DearFigure`)
until the window slides or its labels double, looked at when the figures are recomputed
(:class:`~monitor.detectors._common.Refresh`). Before the generator's state, the kept values and
the refresh's count were checkpointed (state version 2), a restarted agent drew again from the
seed at once: its p-values were other draws than the uninterrupted agent's, up to a slot earlier,
and every later draw came from another point of the generator's stream.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from monitor.batch import LabeledBatch
from monitor.catalog import confidence as names
from monitor.checkpoint import decode_state, encode_state
from monitor.detectors.calibration import CalibrationDetector
from monitor.detectors.segments import SegmentDetector
from monitor.store import MetricStore

WINDOW_S, SLOTS = 1000.0, 10  # slots of 100 s
STEP_S, BATCHES = 20.0, 130  # 2,600 s: the window slides 16 times after it fills
#: segment: (labels per batch, over-confidence). "a" is miscalibrated (often every draw is made),
#: "b" calibrated (mostly a few dozen draws, then the sequential stop): draws of varied lengths.
SEGMENTS = {"a": (24, 0.06), "b": (36, 0.0)}
SEGMENT_KEYS = tuple(SEGMENTS)


def _stream(seed: int = 11, per_batch: float = 1.0, step_s: float = STEP_S, batches: int = BATCHES) -> list[tuple[float, LabeledBatch]]:
    """Seeded labelled batches, ten classes, each row's prediction right with probability its
    confidence less its segment's over-confidence, ``per_batch`` times the labels of
    :data:`SEGMENTS`; (export time, batch)."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(batches):
        t0 = j * step_s
        parts = []
        for name, (size, gap) in SEGMENTS.items():
            n = max(int(round(size * per_batch)), 1)
            conf = 0.1 + 0.9 * rng.beta(3.0, 1.5, n)
            pred = rng.integers(0, 10, n)
            right = rng.random(n) < np.clip(conf - gap, 0.0, 1.0)
            label = np.where(right, pred, (pred + rng.integers(1, 10, n)) % 10)
            parts.append((conf, pred, label, np.full(n, name, dtype=object)))
        conf, pred, label, seg = (np.concatenate(c) for c in zip(*parts))
        n = conf.size
        scores = np.repeat(((1.0 - conf) / 9.0)[:, None], 10, axis=1)
        scores[np.arange(n), pred] = conf
        ts = np.sort(rng.uniform(t0, t0 + step_s, n))
        out.append((t0 + step_s, LabeledBatch(ts=ts, label_ts=ts + 1.0, label=label, segment=seg, scores=scores, predicted=pred)))
    return out


def _detectors(window_s: float = WINDOW_S, n_slots: int = SLOTS) -> tuple[CalibrationDetector, SegmentDetector]:
    return (CalibrationDetector(window_s=window_s, n_slots=n_slots, resamples=499, seed=7),
            SegmentDetector(window_s=window_s, n_slots=n_slots, resamples=499, seed=7))


def _through_a_file(state: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint file gives back: the JSON tree and its arrays."""
    tree, arrays = encode_state(state)
    return decode_state(json.loads(json.dumps(tree, allow_nan=False)), arrays)


Exported = tuple["float | None", ...]


def _run(restart_at: int | None = None, tick: bool = True, edit: Any = None,
         stream: list[tuple[float, LabeledBatch]] | None = None, **window: Any) -> list[Exported]:
    """The p-values written (whole window, then each segment's) at every export; with
    ``restart_at``, both detectors are checkpointed before that batch and replaced by new ones
    loading the state (``edit`` may rewrite it first), exporting into a new store as a restarted
    agent does. ``tick``: a rule tick before every export (every figure exact)."""
    dets, store = _detectors(**window), MetricStore("m")
    seen: list[Exported] = []
    for i, (now, batch) in enumerate(_stream() if stream is None else stream):
        if i == restart_at:
            states = [_through_a_file(d.state_dict()) for d in dets]
            if edit is not None:
                states = [edit(s) for s in states]
            dets, store = _detectors(**window), MetricStore("m")
            for d, s in zip(dets, states):
                d.load_state_dict(s)
        for d in dets:
            d.update_labels(batch)
            d.advance(now)
            if tick:
                d.on_tick(now)
            d.export(store)
        seen.append((store.value(names.CALIBRATION_ERROR_PVALUE),
                     *(store.value(names.SEGMENT_CALIBRATION_ERROR_PVALUE, (s,)) for s in SEGMENT_KEYS)))
    return seen


@pytest.fixture(scope="module")
def uninterrupted() -> dict[bool, list[Exported]]:
    return {tick: _run(tick=tick) for tick in (True, False)}


def test_the_stream_draws_often_and_the_pvalues_vary(uninterrupted: dict[bool, list[Exported]]) -> None:
    """The comparison below means something: the p-values are present most of the run, and each
    series takes many values (redrawn as the window slides: the generator moves on)."""
    seen = uninterrupted[True]
    for column in range(1 + len(SEGMENT_KEYS)):
        values = [row[column] for row in seen if row[column] is not None]
        assert len(values) >= BATCHES // 2, column
        assert len(set(values)) >= 10, (column, sorted(set(values)))


@pytest.mark.parametrize("tick", [True, False], ids=["rule_tick_each_export", "throttled_exports"])
@pytest.mark.parametrize("restart_at", [5, 12, 49, 61, 99])
def test_a_restored_detector_exports_the_uninterrupted_pvalues(uninterrupted: dict[bool, list[Exported]], restart_at: int,
                                                             tick: bool) -> None:
    """Checkpointed before a batch (through JSON, as a checkpoint file), the new detectors
    export exactly the p-values, whole and per segment, of the ones never interrupted, at every
    export after the restart: mid-slot, the kept p-values carried over (5 and 12 while the window
    fills, 61 once it slides), or at a slot's first batch, drawn again at once from the saved
    generator state (49, 99). Slots of 100 s, a batch every 20 s: a slot starts at batches 4, 9, ...
    ``tick``: a rule tick before each export (all recomputed), or exports throttled by ``refresh``
    (the restored detector's first export recomputes everything, the other's may not)."""
    restored = _run(restart_at, tick=tick)
    assert restored == uninterrupted[tick]


#: 2 and 3 labels every 5 s into a window of two 1,000 s slots: the whole window's p-value is first
#: drawn at batch 40 (200 labels) and drawn again at 80 and 160 (doubled), segment b's at 67 and 134
SMALL = dict(per_batch=1 / 12, step_s=5.0, batches=500)
SMALL_WINDOW = dict(window_s=2000.0, n_slots=2)


@pytest.mark.parametrize("restart_at", [55, 70, 110, 130, 150, 300])
def test_with_small_batches_a_restored_detector_recomputes_when_the_uninterrupted_one_does(restart_at: int) -> None:
    """Throttled exports of 5 labels each: the figures are recomputed after 5% more labels, and a
    kept p-value drawn again when its labels doubled at that recomputation. The restored detector
    recomputes when the other does (the refresh's count is in the state; its first export writes
    the figures with the kept p-values, drawing nothing). Recomputing at once, as it did before,
    it drew at other label counts as the window filled: measured, 7 to 420 of the 500 exports
    differed when restored at 55 to 150 (none at 300, after the window's first slide)."""
    stream = _stream(**SMALL)
    uninterrupted = _run(tick=False, stream=stream, **SMALL_WINDOW)
    assert sum(row[0] is not None for row in uninterrupted) > 400 and sum(row[1] is not None for row in uninterrupted) > 300
    assert _run(restart_at, tick=False, stream=stream, **SMALL_WINDOW) == uninterrupted


def _as_saved_before(state: dict[str, Any]) -> dict[str, Any]:
    """A state of version 1: no version, no generator state, no kept p-values, no refresh."""
    old = {k: v for k, v in state.items() if k not in ("version", "draws", "refresh")}
    assert set(state) - set(old) == {"version", "draws", "refresh"}, sorted(state)
    return old


def test_a_version_1_state_loads_and_draws_afresh_from_the_seed(uninterrupted: dict[bool, list[Exported]]) -> None:
    """A state saved before the generator was checkpointed restores the windows as before; the
    p-values are drawn again at the first export from a generator fresh from the seed (as every
    restart did), so they are not the uninterrupted ones."""
    restart_at = 61
    dets = _detectors()
    for now, batch in _stream()[:restart_at]:
        for d in dets:
            d.update_labels(batch)
            d.advance(now)
    states = [_as_saved_before(_through_a_file(d.state_dict())) for d in dets]
    loaded = _detectors()
    for d, s in zip(loaded, states):
        d.load_state_dict(s)
    # fresh draws: the first p-values are those of detectors that never drew, on the same windows
    # (``dets`` were fed the same batches and never exported)
    first, fresh = MetricStore("m"), MetricStore("m")
    for d, e in zip(loaded, dets):
        d.export(first)
        e.export(fresh)
    for key in [(names.CALIBRATION_ERROR_PVALUE, None)] + [(names.SEGMENT_CALIBRATION_ERROR_PVALUE, (s,)) for s in SEGMENT_KEYS]:
        assert first.value(*key) is not None and first.value(*key) == fresh.value(*key), key
    restored = _run(restart_at, edit=_as_saved_before)
    assert restored[:restart_at] == uninterrupted[True][:restart_at]
    assert restored[restart_at:] != uninterrupted[True][restart_at:]
    # the windows were restored: the p-values are present right after the restart, as before it
    assert all(v is not None for v in restored[restart_at])


def test_a_state_of_an_unknown_version_a_foreign_generator_or_a_bad_refresh_is_refused() -> None:
    """Refused with the field named (the checkpoint restore then starts that detector empty and
    says why), not read as another layout."""
    for det in _detectors():
        state = det.state_dict()
        with pytest.raises(ValueError, match="state version 9"):
            type(det)(window_s=WINDOW_S, n_slots=SLOTS).load_state_dict({**state, "version": 9})
        for damaged in (None, "2", 2.0, True):  # not an agent's: said to be damaged, not "a newer agent"
            with pytest.raises(ValueError, match="'version' must be an integer") as err:
                type(det)(window_s=WINDOW_S, n_slots=SLOTS).load_state_dict({**state, "version": damaged})
            assert "newer agent" not in str(err.value)
        type(det)(window_s=WINDOW_S, n_slots=SLOTS).load_state_dict({**state, "version": np.int64(state["version"])})
        foreign = {**state, "draws": {**state["draws"], "rng": np.random.Philox(1).state}}
        with pytest.raises(ValueError, match="draws.rng"):
            type(det)(window_s=WINDOW_S, n_slots=SLOTS).load_state_dict(foreign)
        with pytest.raises(ValueError, match="refresh: must be"):
            type(det)(window_s=WINDOW_S, n_slots=SLOTS).load_state_dict({**state, "refresh": "soon"})


@pytest.mark.parametrize("field, value", [
    ("kept", 5), ("kept", None), ("kept", {"abcd": 1}), ("kept", [3]), ("kept", [[None, "x", 1, 0.5]]),
    ("kept", [[None, 1.0, 1, None]]),
    ("refresh", [1.0, 2.0, float("nan")]), ("refresh", [1.0, 2.0, float("inf")]),
])
def test_a_corrupted_kept_pvalue_or_refresh_count_is_refused_with_the_field_named(field: str, value: Any) -> None:
    """A kept p-value list that is not one, an entry that is not [key, slot end, labels, value]
    of numbers, or a refresh count that is not a whole number: refused as ValueError naming the
    field and the fix (they raised TypeError, OverflowError or float()'s bare message)."""
    for det in _detectors():
        state = _through_a_file(det.state_dict())
        if field == "kept":
            state = {**state, "draws": {**state["draws"], "kept": value}}
            where = "draws.kept"
        else:
            state = {**state, "refresh": value}
            where = "refresh"
        with pytest.raises(ValueError, match=rf"{det.kind}: {where}: .*Fix: drop"):
            type(det)(window_s=WINDOW_S, n_slots=SLOTS).load_state_dict(state)
