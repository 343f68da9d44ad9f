"""Every series the segments detector exports, pinned across a refactor of its cost.

The segments detector's recomputation was made cheaper (the over-confidence p-value of all
segments at once, window totals read once, series keys built once): none of that may change an
exported value. These seeded streams run the detector through the situations that decide which
series exist (segments below ``min_rows`` / ``min_labels`` / ``min_labels_calibration``, the
overflow segment ``other``, rows without a segment, logit outputs, windows sliding so that
series come and go, reliability bins, temperatures, histograms, a labels-only model) and compare
the whole store after every export, names, labels and values to 1e-12, with the snapshot taken on
the code before the refactor (``tests/data/segments_export_pinned.json``).

This is a regression pin, not a statement of correctness (each figure's correctness is tested
against its definition in the other ``test_segments_*`` files). When a change is *meant* to
change a figure, regenerate the file on the changed code with
``python tests/test_segments_export_pinned.py --write`` and say why in the commit.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.batch import Batch, LabeledBatch
from monitor.detectors.segments import SegmentDetector
from monitor.reference import Reference
from monitor.store import MetricStore

PINNED = Path(__file__).resolve().parent / "data" / "segments_export_pinned.json.gz"
K = 10


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _outputs(rng: np.random.Generator, n: int, sharp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, probabilities and labels drawn from them (``sharp`` > 1: over-confident outputs)."""
    logits = rng.normal(0.0, 1.0, (n, K)) + 3.0 * np.eye(K)[rng.integers(0, K, n)]
    probs = _softmax(logits)
    truth = _softmax(logits / sharp)
    labels = (truth.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, K - 1)
    return logits * sharp, _softmax(logits * sharp) if sharp != 1.0 else probs, labels


def _store_rows(store: MetricStore) -> list[list[Any]]:
    # histogram buckets left out (their counts and sums stay): the flush is not what changed
    rows = [[name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "model") + "}", value]
            for name, labels, value in store.samples() if not name.endswith("_bucket")]
    return sorted(rows)


def _scored_run() -> list[list[list[Any]]]:
    """A 10-class model with logits, a labelled reference, 9 segment values for a cap of 6
    (three fold into ``other``), rows without a segment, a small segment and a segment whose
    labels never come; exports as the window fills, slides and empties of one segment."""
    rng = np.random.default_rng(20261130)
    ref_logits, ref_probs, ref_y = _outputs(rng, 2000, 1.0)
    reference = Reference.from_arrays(np.zeros((2000, 1)), scores=ref_probs, labels=ref_y, classes=[f"c{i}" for i in range(K)])
    det = SegmentDetector(reference, segment_cap=6, window_s=600.0, n_slots=6, min_rows=100, min_labels=50,
                          min_labels_calibration=200, refresh=0.0, histograms=True, reliability_bins=True,
                          temperature_rows=3000)
    store = MetricStore("m")
    values = np.array(["eu", "us", "apac", "tiny", "nolabel", None, "x1", "x2", "x3"], dtype=object)
    weights = np.array([0.25, 0.2, 0.15, 0.01, 0.1, 0.1, 0.07, 0.06, 0.06])
    snapshots = []
    for step in range(24):
        t0 = step * 60.0
        n = 400
        seg = values[rng.choice(len(values), n, p=weights)]
        if step >= 14:  # "us" stops sending: its figures leave as the window slides
            seg = np.where(seg == "us", "eu", seg)
        sharp = np.where(seg == "apac", 1.8, 1.0) if step >= 6 else np.ones(n)
        logits, probs, y = _outputs(rng, n, 1.0)
        bad_logits, bad_probs, bad_y = _outputs(rng, n, 1.8)
        worse = sharp > 1.0
        logits[worse], probs[worse], y[worse] = bad_logits[worse], bad_probs[worse], bad_y[worse]
        ts = t0 + np.sort(rng.uniform(0.0, 60.0, n))
        det.update(Batch.from_arrays(np.zeros((n, 1)), probs, ts=ts, segment=seg, logits=logits))
        labelled = (rng.random(n) < 0.6) & (seg != "nolabel")
        y = np.where(rng.random(n) < 0.01, K + 3, y)  # a few labels naming no class
        det.update_labels(LabeledBatch(ts=ts[labelled], label_ts=ts[labelled] + 5.0, label=y[labelled],
                                       segment=seg[labelled], scores=probs[labelled], predicted=probs[labelled].argmax(axis=1)))
        det.advance(t0 + 60.0)
        if step % 3 == 2:
            det.on_tick(t0 + 60.0)
        det.export(store)
        snapshots.append(_store_rows(store))
    return snapshots


def _labels_only_run() -> list[list[list[Any]]]:
    """A model returning labels only: row counts, positive rates, accuracies and their gaps."""
    rng = np.random.default_rng(7)
    det = SegmentDetector(segment_cap=4, window_s=300.0, n_slots=5, min_rows=50, min_labels=30, refresh=0.0)
    store = MetricStore("m")
    classes = ("no", "yes")
    snapshots = []
    for step in range(10):
        n = 300
        seg = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)[rng.integers(0, 6, n)]
        rate = np.where(seg == "b", 0.7, 0.3)
        predicted = (rng.random(n) < rate).astype(np.int64)
        ts = step * 30.0 + np.sort(rng.uniform(0.0, 30.0, n))
        det.update(Batch.from_arrays(np.zeros((n, 1)), None, ts=ts, segment=seg, predicted=predicted, classes=classes))
        y = np.where(rng.random(n) < 0.8, predicted, 1 - predicted)
        det.update_labels(LabeledBatch(ts=ts, label_ts=ts + 1.0, label=y, segment=seg, predicted=predicted, classes=classes))
        det.advance(step * 30.0 + 30.0)
        det.export(store)
        snapshots.append(_store_rows(store))
    return snapshots


def _runs() -> dict[str, list[list[list[Any]]]]:
    return {"scored": _scored_run(), "labels_only": _labels_only_run()}


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("run", ["scored", "labels_only"])
def test_every_exported_series_is_as_pinned(run: str) -> None:
    pinned = json.loads(gzip.decompress(PINNED.read_bytes()))[run]
    now = _runs()[run]
    assert len(now) == len(pinned)
    families = set()
    for step, (got, want) in enumerate(zip(now, pinned)):
        got_keys = [r[0] for r in got]
        want_keys = [r[0] for r in want]
        assert got_keys == want_keys, f"{run}, export {step}: series differ: {set(got_keys) ^ set(want_keys)}"
        for g, w in zip(got, want):
            assert _same(float(g[1]), float(w[1])), f"{run}, export {step}: {g[0]} = {g[1]!r}, pinned {w[1]!r}"
        families |= {r[0].split("{")[0] for r in got}
    # the pin covers what it says: the per-segment families of the run, not an empty store
    expected = {"monitor_segment_rows", "monitor_segment_accuracy", "monitor_segment_max_gap"}
    if run == "scored":
        expected |= {"monitor_segment_overconfidence_pvalue", "monitor_segment_calibration_error",
                     "monitor_segment_max_calibration_error", "monitor_segment_estimated_accuracy",
                     "monitor_segment_energy", "monitor_segment_recalibration_temperature",
                     "monitor_segment_reliability_labels", "monitor_segment_overconfidence_gap_lower"}
    missing = {f for f in expected if not any(name.startswith(f) for name in families)}
    assert not missing, f"{run}: no series of {sorted(missing)} in any export"


if __name__ == "__main__" and "--write" in sys.argv:
    PINNED.parent.mkdir(exist_ok=True)
    PINNED.write_bytes(gzip.compress((json.dumps(_runs(), separators=(",", ":")) + "\n").encode(), mtime=0))
    print(f"wrote {PINNED}")
