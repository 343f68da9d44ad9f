"""Per-segment reliability diagrams and recalibrating temperatures (segments detector options)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors.calibration import CalibrationDetector
from monitor.detectors.registry import create
from monitor.detectors.segments import SegmentDetector
from monitor.stats import calibration as cal
from monitor.store import MetricStore


def tempered_labels(rng: np.random.Generator, n: int, segments: dict[str, float], k: int = 5, t0: float = 0.0) -> LabeledBatch:
    """Rows of each segment whose labels are drawn from softmax(logits / T): the model's own
    probabilities (softmax(logits)) are then over-confident by exactly temperature T."""
    probs, labels, segs = [], [], []
    for name, temperature in segments.items():
        logits = rng.normal(size=(n, k)) * 3.0
        own = np.exp(logits - logits.max(axis=1, keepdims=True))
        own /= own.sum(axis=1, keepdims=True)
        true = np.exp(logits / temperature - (logits / temperature).max(axis=1, keepdims=True))
        true /= true.sum(axis=1, keepdims=True)
        labels.append((rng.random((n, 1)) > np.cumsum(true, axis=1)).sum(axis=1))
        probs.append(own)
        segs += [name] * n
    scores = np.vstack(probs)
    ts = t0 + np.arange(len(segs)) * 0.01
    return LabeledBatch(ts=ts, label_ts=ts + 1.0, label=np.concatenate(labels), segment=np.array(segs, dtype=object),
                        scores=scores, predicted=scores.argmax(axis=1))


def test_segment_reliability_bins_match_each_segments_rows() -> None:
    rng = np.random.default_rng(1)
    lab = tempered_labels(rng, 1500, {"calm": 1.0, "sharp": 2.5})
    small = tempered_labels(rng, 80, {"tiny": 1.0}, t0=100.0)
    det = SegmentDetector(window_s=1e6, min_labels_calibration=200, reliability_bins=True)
    det.update_labels(lab)
    det.update_labels(small)
    store = MetricStore("m")
    det.export(store)
    conf, correct = lab.scores.max(axis=1), (lab.predicted == lab.label).astype(float)
    edges = np.linspace(0.0, 1.0, cal.ECE_BINS + 1)
    idx = cal.bin_index(conf, edges)
    checked = 0
    for seg in ("calm", "sharp"):
        m = lab.segment == seg
        for b in range(cal.ECE_BINS):
            label = f"{b / cal.ECE_BINS:.2f}-{(b + 1) / cal.ECE_BINS:.2f}"
            rows = m & (idx == b)
            assert store.value(names.SEGMENT_RELIABILITY_COUNT, (seg, label)) == rows.sum()
            got_conf = store.value(names.SEGMENT_RELIABILITY_CONFIDENCE, (seg, label))
            got_acc = store.value(names.SEGMENT_RELIABILITY_ACCURACY, (seg, label))
            if rows.sum() >= 10:
                assert got_conf == pytest.approx(conf[rows].mean()) and got_acc == pytest.approx(correct[rows].mean())
                checked += 1
            else:  # too few labels in the bin: absent, not 0
                assert got_conf is None and got_acc is None
    assert checked >= 10
    # the over-confident segment's upper bins are less accurate than confident
    top = f"{(cal.ECE_BINS - 1) / cal.ECE_BINS:.2f}-1.00"
    assert store.value(names.SEGMENT_RELIABILITY_ACCURACY, ("sharp", top)) < store.value(names.SEGMENT_RELIABILITY_CONFIDENCE, ("sharp", top)) - 0.1
    # a segment below min_labels_calibration has no diagram at all
    assert not [s for s in store.samples() if s[0].startswith("monitor_segment_reliability") and s[1]["segment"] == "tiny"]
    # off by default: the 45 series per segment are asked for
    plain = SegmentDetector(window_s=1e6, min_labels_calibration=200)
    plain.update_labels(lab)
    other = MetricStore("m")
    plain.export(other)
    assert not [s for s in other.samples() if s[0].startswith("monitor_segment_reliability")]


def test_segment_temperature_recovers_each_segments_own_temperature() -> None:
    """Seeded: 3,000 labels per segment drawn at temperatures 1 and 2.5; each segment's fitted
    temperature is within 15% of its truth, equals the whole-window fit on that segment's rows, and
    survives a checkpoint."""
    rng = np.random.default_rng(2)
    lab = tempered_labels(rng, 3000, {"calm": 1.0, "sharp": 2.5})
    det = SegmentDetector(window_s=1e6, min_labels_calibration=200, temperature_rows=8192)
    det.update_labels(lab)
    store = MetricStore("m")
    det.export(store)
    for seg, truth in (("calm", 1.0), ("sharp", 2.5)):
        got = store.value(names.SEGMENT_TEMPERATURE, (seg,))
        assert got == pytest.approx(truth, rel=0.15)
        alone = CalibrationDetector(window_s=1e6, temperature_rows=8192)
        m = lab.segment == seg
        alone.update_labels(LabeledBatch(ts=lab.ts[m], label_ts=lab.label_ts[m], label=lab.label[m], segment=lab.segment[m],
                                         scores=lab.scores[m], predicted=lab.predicted[m]))
        assert got == pytest.approx(alone.figures().temperature, rel=1e-9)
    clone = create("segments", params={"window_s": 1e6, "min_labels_calibration": 200, "temperature_rows": 8192})
    clone.load_state_dict(det.state_dict())
    again = MetricStore("m")
    clone.export(again)
    assert again.value(names.SEGMENT_TEMPERATURE, ("sharp",)) == store.value(names.SEGMENT_TEMPERATURE, ("sharp",))


def test_segment_temperature_absent_below_minimum_and_when_not_asked() -> None:
    rng = np.random.default_rng(3)
    lab = tempered_labels(rng, 150, {"a": 1.0})
    det = SegmentDetector(window_s=1e6, min_labels_calibration=200, temperature_rows=4096)
    det.update_labels(lab)
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.SEGMENT_LABELS, ("a",)) == 150
    assert store.value(names.SEGMENT_TEMPERATURE, ("a",)) is None
    det.update_labels(tempered_labels(rng, 150, {"a": 1.0}, t0=10.0))
    det.export(store)
    assert store.value(names.SEGMENT_TEMPERATURE, ("a",)) is not None
    plain = SegmentDetector(window_s=1e6, min_labels_calibration=200)
    plain.update_labels(lab)
    plain.update_labels(tempered_labels(rng, 150, {"a": 1.0}, t0=10.0))
    other = MetricStore("m")
    plain.export(other)
    assert other.value(names.SEGMENT_TEMPERATURE, ("a",)) is None
    with pytest.raises(ValueError, match="temperature_rows"):
        SegmentDetector(temperature_rows=-1)


def test_segment_histograms_add_up_to_the_whole_windows() -> None:
    """Per-segment histograms of max probability, margin and entropy: each segment's buckets are
    its rows', and together they are the confidence detector's histograms of the same rows; rows
    not yet exported survive a checkpoint."""
    from monitor.batch import Batch
    from monitor.detectors.confidence import ConfidenceDetector

    rng = np.random.default_rng(4)
    logits = rng.normal(size=(900, 4)) * 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    seg = np.array(["a", "b", "c"] * 300, dtype=object)
    seg[:50] = None  # rows without a segment: "unset"
    batch = Batch.from_arrays(np.zeros((900, 1)), probs, ts=np.arange(900.0), segment=seg)
    det = SegmentDetector(window_s=1e6, histograms=True)
    whole = ConfidenceDetector(flush_s=0)  # histograms written at every export
    det.update(batch)
    whole.update(batch)
    mine, theirs = MetricStore("m"), MetricStore("m")
    det.export(mine)
    whole.export(theirs)

    def buckets(store: MetricStore, name: str, segment: str | None = None) -> dict[str, float]:
        return {labels["le"]: v for n, labels, v in store.samples()
                if n == name + "_bucket" and (segment is None or labels.get("segment") == segment)}

    conf = probs.max(axis=1)
    seg_names = np.array(["unset" if s is None else s for s in seg])
    for s in ("a", "b", "c", "unset"):
        got = buckets(mine, names.SEGMENT_CONFIDENCE_HISTOGRAM, s)
        assert got["0.9"] == np.sum(conf[seg_names == s] <= 0.9) and got["+Inf"] == np.sum(seg_names == s)
        total = [v for n, labels, v in mine.samples() if n == names.SEGMENT_CONFIDENCE_HISTOGRAM + "_sum" and labels["segment"] == s]
        assert total == [pytest.approx(conf[seg_names == s].sum())]
    for mine_name, whole_name in ((names.SEGMENT_CONFIDENCE_HISTOGRAM, names.CONFIDENCE),
                                  (names.SEGMENT_MARGIN_HISTOGRAM, names.MARGIN),
                                  (names.SEGMENT_ENTROPY_HISTOGRAM, names.ENTROPY)):
        per_segment = [buckets(mine, mine_name, s) for s in ("a", "b", "c", "unset")]
        summed = {le: sum(b[le] for b in per_segment) for le in per_segment[0]}
        assert summed == buckets(theirs, whole_name) and summed["+Inf"] == 900
    # observations made after the last export are in the checkpoint
    det.update(batch)
    clone = create("segments", params={"window_s": 1e6, "histograms": True})
    clone.load_state_dict(det.state_dict())
    later = MetricStore("m")
    clone.export(later)
    assert buckets(later, names.SEGMENT_CONFIDENCE_HISTOGRAM, "a")["+Inf"] == np.sum(seg_names == "a") == 283
    plain = SegmentDetector(window_s=1e6)
    plain.update(batch)
    none = MetricStore("m")
    plain.export(none)
    assert not [n for n, _, _ in none.samples() if n.startswith(names.SEGMENT_CONFIDENCE_HISTOGRAM + "_")]


def test_segment_options_survive_a_checkpoint_file(tmp_path) -> None:
    """The options' state (the labelled-row ring with its segments, the unexported histogram
    counts) goes through the checkpoint file format (no pickle) and back unchanged."""
    from monitor import checkpoint
    from monitor.batch import Batch

    rng = np.random.default_rng(5)
    lab = tempered_labels(rng, 400, {"a": 1.0, "b": 2.0})
    det = SegmentDetector(window_s=1e6, min_labels_calibration=200, histograms=True, reliability_bins=True, temperature_rows=2048)
    det.update(Batch.from_arrays(np.zeros((800, 1)), lab.scores, ts=lab.ts, segment=lab.segment))
    det.update_labels(lab)
    checkpoint.save(tmp_path / "s.ckpt", {"segments": det.state_dict()}, model="m", state_version=1)
    state, _ = checkpoint.load(tmp_path / "s.ckpt", model="m")
    clone = SegmentDetector(window_s=1e6, min_labels_calibration=200, histograms=True, reliability_bins=True, temperature_rows=2048)
    clone.load_state_dict(state["segments"])
    a, b = MetricStore("m"), MetricStore("m")
    det.export(a)
    clone.export(b)
    assert a.samples() == b.samples()
    assert b.value(names.SEGMENT_TEMPERATURE, ("b",)) is not None


def test_segment_overconfidence_pvalue_flags_the_overconfident_segment_only() -> None:
    """Each segment's over-confidence p-value (a score test of right answers against confidences,
    moments from the 15 bins). Bounds, seeded: a segment over-confident by temperature 2 at 500 labels
    is flagged (p < 0.01) in at least 95% of 300 windows; a calibrated one in at most 2% of them
    (the test is built to err towards silence on coarse bins)."""
    rng = np.random.default_rng(6)
    flagged = {"calm": 0, "sharp": 0}
    for _ in range(300):
        det = SegmentDetector(window_s=1e6, min_labels=100)
        det.update_labels(tempered_labels(rng, 500, {"calm": 1.0, "sharp": 2.0}))
        store = MetricStore("m")
        det.export(store)
        for seg in flagged:
            p = store.value(names.SEGMENT_GAP_PVALUE, (seg,))
            assert p is not None and 0.0 <= p <= 1.0
            flagged[seg] += p < 0.01
    assert flagged["sharp"] >= 285 and flagged["calm"] <= 6, flagged
    few = SegmentDetector(window_s=1e6, min_labels=100)
    few.update_labels(tempered_labels(rng, 60, {"calm": 1.0}))
    store = MetricStore("m")
    few.export(store)
    assert store.value(names.SEGMENT_GAP_PVALUE, ("calm",)) is None  # below min_labels: absent
