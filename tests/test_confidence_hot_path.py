"""The per-batch helpers the classifier detectors share on the worker's hot path: each must give
what the straightforward computation gives (the speed-ups of issue 3's cost target change how,
never what)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch, LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors._accumulate import accumulate
from monitor.detectors._common import label_features, output_features, put_figures, time_span
from monitor.detectors._pending import PendingHistogram
from monitor.detectors.calibration import CalibrationDetector
from monitor.detectors.segments import SegmentDetector
from monitor.stats import calibration as cal
from monitor.stats import uncertainty as unc
from monitor.stats.univariate import chi2_test
from monitor.store import MetricStore
from monitor.windows import SlidingWindow


def _labeled(rng: np.random.Generator, n: int, k: int = 4, unknown: int = 0) -> LabeledBatch:
    scores = rng.dirichlet(np.ones(k), size=n)
    label = rng.integers(0, k, n)
    label[:unknown] = np.where(np.arange(unknown) % 2 == 0, -1, k)  # below and above the classes
    ts = rng.uniform(0.0, 50.0, n)
    return LabeledBatch(ts=ts, label_ts=ts + 5.0, label=label, segment=np.array([f"s{i % 3}" for i in range(n)], dtype=object),
                        scores=scores, predicted=scores.argmax(axis=1))


def test_bin_index_matches_search_then_clip_at_and_beyond_the_edges() -> None:
    edges = cal.fine_confidence_edges()
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(500), edges, [-1.0, -1e-300, 1.0 + 1e-12, 7.0, np.nan]])
    expected = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    assert np.array_equal(cal.bin_index(values, edges), expected)
    assert cal.bin_index(np.array([0.3]), np.array([0.0, 1.0])).tolist() == [0]  # one bin: everything in it


def test_normalized_entropy_is_the_clipped_shannon_entropy() -> None:
    rng = np.random.default_rng(0)
    p = np.vstack([rng.dirichlet(np.full(6, 0.3), size=200), np.eye(6)[:2], np.full((1, 6), 1 / 6)])
    raw = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1) / np.log(6)
    h = unc.normalized_entropy(p)
    assert np.array_equal(h, np.clip(raw, 0.0, 1.0))
    assert h[-3] == 0.0 and h[-1] == pytest.approx(1.0) and 0.0 <= h.min() and h.max() <= 1.0


def test_pending_histogram_buffer_gives_the_counts_of_direct_binning() -> None:
    rng = np.random.default_rng(1)
    bounds = (0.1, 0.5, 0.9)
    h = PendingHistogram(bounds, capacity=64)
    chunks = [rng.random(n) for n in (10, 50, 3, 200, 1, 64)]  # fills the buffer, then one chunk larger than it
    for c in chunks:
        h.add(c)
    allv = np.concatenate(chunks)
    direct = np.bincount(np.searchsorted(bounds, allv, side="left"), minlength=4)
    assert h.pending == allv.size
    assert h.counts.tolist() == direct.tolist()
    assert h.total == pytest.approx(allv.sum(), rel=1e-12)


def test_pending_histogram_state_includes_buffered_values_and_flush_forgets_them() -> None:
    h = PendingHistogram(names.CONFIDENCE_BUCKETS, capacity=100)
    h.add(np.array([0.2, 0.7, 0.4]))  # buffered, not yet binned
    state = h.state_dict()
    expected = np.zeros(len(names.CONFIDENCE_BUCKETS) + 1)
    expected[[1, 3, 6]] = 1.0  # "le" buckets: 0.2 in (0.1, 0.2], 0.4 in (0.3, 0.4], 0.7 in (0.6, 0.7]
    assert state["counts"].tolist() == expected.tolist()
    other = PendingHistogram(names.CONFIDENCE_BUCKETS, capacity=100)
    other.load_state_dict(state)
    assert other.pending == 3 and other.counts.tolist() == expected.tolist()
    store = MetricStore("m")
    other.flush(store, names.CONFIDENCE)
    hist = store.value(names.CONFIDENCE)
    assert hist.count == 3 and hist.sum == pytest.approx(1.3) and hist.counts == expected.tolist()
    assert other.pending == 0 and not other.counts.any()
    other.flush(store, names.CONFIDENCE)  # nothing pending: nothing written twice
    assert store.value(names.CONFIDENCE).count == 3


def test_accumulate_with_a_given_span_equals_accumulate_without() -> None:
    rng = np.random.default_rng(2)
    for lo, hi in ((10.0, 20.0), (10.0, 95.0)):  # one slot, several slots
        ts = rng.uniform(lo, hi, 40)
        pos = rng.integers(0, 3, 40)
        parts = [(pos, 1.0), (3, rng.random(40)), (pos + 4, rng.random(40))]
        a, b = SlidingWindow(120.0, (7,), 6), SlidingWindow(120.0, (7,), 6)
        accumulate(a, ts, parts)
        accumulate(b, ts, parts, (float(ts.min()), float(ts.max())))
        assert np.array_equal(a.total(), b.total())


def test_batch_features_are_computed_once_and_entropy_only_on_demand() -> None:
    rng = np.random.default_rng(3)
    scores = rng.dirichlet(np.ones(5), size=30)
    batch = Batch.from_arrays(np.zeros((30, 1)), scores)
    feats = output_features(batch)
    assert feats is not None and output_features(batch) is feats
    assert "entropy" not in feats.__dict__  # not computed until a detector asks
    assert np.array_equal(feats.conf, scores.max(axis=1))
    assert np.array_equal(feats.entropy, unc.normalized_entropy(scores))
    assert time_span(batch) == (float(batch.ts.min()), float(batch.ts.max()))


def test_label_features_keep_known_classes_and_are_shared() -> None:
    rng = np.random.default_rng(4)
    lb = _labeled(rng, 40, unknown=6)
    lab = label_features(lb)
    assert lab is not None and label_features(lb) is lab
    assert lab.unknown == 6 and lab.known is not None and lab.known.sum() == 34
    keep = lab.known
    assert np.array_equal(lab.ts, lb.ts[keep]) and np.array_equal(lab.label, lb.label[keep])
    assert np.array_equal(lab.conf, lb.scores[keep].max(axis=1))
    assert np.array_equal(lab.correct, (lb.predicted[keep] == lb.label[keep]).astype(float))
    assert np.array_equal(lab.brier, cal.brier_terms(lb.scores[keep], lb.label[keep]))
    assert np.array_equal(lab.log_loss, cal.log_loss_terms(lb.scores[keep], lb.label[keep]))
    assert label_features(LabeledBatch(ts=np.zeros(2), label_ts=np.zeros(2), label=np.zeros(2, dtype=np.int64),
                                       segment=np.full(2, None, dtype=object))) is None  # no scores


def test_calibration_and_segments_score_a_shared_labelled_batch_as_separate_copies() -> None:
    rng = np.random.default_rng(5)
    lb = _labeled(rng, 300, unknown=30)
    shared_cal, shared_seg = CalibrationDetector(window_s=1000.0, min_labels=10), SegmentDetector(window_s=1000.0, min_labels=10)
    shared_cal.update_labels(lb)
    shared_seg.update_labels(lb)  # reuses the features cached on ``lb`` by the calibration detector
    alone_cal, alone_seg = CalibrationDetector(window_s=1000.0, min_labels=10), SegmentDetector(window_s=1000.0, min_labels=10)
    alone_cal.update_labels(_labeled(np.random.default_rng(5), 300, unknown=30))
    alone_seg.update_labels(_labeled(np.random.default_rng(5), 300, unknown=30))
    stores = []
    for a, b in ((shared_cal, alone_cal), (shared_seg, alone_seg)):
        sa, sb = MetricStore("m"), MetricStore("m")
        a.export(sa)
        b.export(sb)
        assert sorted(sa.samples(), key=repr) == sorted(sb.samples(), key=repr)
        stores.append(sa)
    assert stores[0].value(names.LABELS_IN_WINDOW) == 270 and stores[0].value(names.LABELS_SKIPPED, ("unknown_class",)) == 30
    assert sum(stores[1].value(names.SEGMENT_LABELS, (seg,)) for seg in ("s0", "s1", "s2")) == 270


def test_put_figures_writes_present_values_and_removes_absent_ones() -> None:
    store = MetricStore("m")
    for label in ("0.00-0.07", "0.07-0.13", "0.13-0.20"):
        store.set(names.RELIABILITY_ACCURACY, 0.5, (label,))
    put_figures(store, names.RELIABILITY_ACCURACY, [(("0.00-0.07",), 0.25), (("0.07-0.13",), None), (("0.13-0.20",), float("nan"))])
    assert store.value(names.RELIABILITY_ACCURACY, ("0.00-0.07",)) == 0.25
    assert store.value(names.RELIABILITY_ACCURACY, ("0.07-0.13",)) is None
    assert store.value(names.RELIABILITY_ACCURACY, ("0.13-0.20",)) is None


def test_chi2_test_pvalue_is_scipys_survival_function() -> None:
    from scipy.stats import chi2

    res = chi2_test([120, 80, 50, 10], [100, 90, 40, 30])
    assert res.df == 3 and res.pvalue == chi2.sf(res.statistic, 3)


def _split(lb: LabeledBatch, parts: int) -> list[LabeledBatch]:
    cuts = np.array_split(np.arange(len(lb)), parts)
    return [LabeledBatch(ts=lb.ts[c], label_ts=lb.label_ts[c], label=lb.label[c], segment=lb.segment[c], scores=lb.scores[c],
                         predicted=lb.predicted[c]) for c in cuts]


@pytest.mark.parametrize("kind", [CalibrationDetector, SegmentDetector])
def test_labels_waiting_to_be_folded_are_in_every_reading_of_the_window(kind: type) -> None:
    """Small labelled batches wait before reaching the window; export, figures and saved state
    must see them all, with the figures of one batch holding the same rows."""
    rng = np.random.default_rng(6)
    whole = _labeled(rng, 600, unknown=12)
    params = {"window_s": 1000.0, "min_labels": 10}
    one, many = kind(**params), kind(**params)
    one.update_labels(whole)
    for part in _split(whole, 40):
        many.update_labels(part)
    restored = kind(**params)
    restored.load_state_dict(many.state_dict())  # saved while rows were waiting
    stores = []
    for det in (one, many, restored):
        store = MetricStore("m")
        det.export(store)
        stores.append({(name, tuple(labels.items())): value for name, labels, value in store.samples()})
    assert stores[0].keys() == stores[1].keys() == stores[2].keys()
    for key, value in stores[0].items():  # equal up to the association of floating-point sums
        assert stores[1][key] == pytest.approx(value, rel=1e-12, abs=1e-15) and stores[2][key] == stores[1][key]
    if kind is SegmentDetector:
        assert many.gaps() == restored.gaps()
    else:
        assert many.figures().labels == 588


def test_pending_rows_fold_when_capacity_rows_wait() -> None:
    from monitor.detectors._accumulate import PendingRows

    w = SlidingWindow(60.0, (2,), 6)
    rows = PendingRows(w, lambda c: [(c["cls"], 1.0)], capacity=5)
    rows.add(np.array([1.0, 2.0, 3.0]), cls=np.array([0, 1, 1]))
    assert len(rows) == 3 and w.total().tolist() == [0.0, 0.0]
    rows.add(np.array([4.0, 5.0]), cls=np.array([0, 0]))  # reaches the capacity: folded
    assert len(rows) == 0 and w.total().tolist() == [3.0, 2.0]


def test_buffered_histograms_hand_over_the_catalog_buckets_and_exact_sums():
    """Pending histograms give the store their counts per catalog bucket: the result equals
    observing the values themselves, and each histogram's buckets are its metric's."""
    from monitor import catalog
    from monitor.detectors._pending import PendingHistogram
    from monitor.detectors.confidence import ConfidenceDetector
    from monitor.detectors.context import DetectorContext
    from monitor.schema import OutputSpec, Schema
    from monitor.store import MetricStore

    det = ConfidenceDetector.from_config(reference=None, context=DetectorContext(Schema.numeric(["a"]), OutputSpec("logits", ("x", "y"))))
    for name, hist in det._hist.items():
        assert tuple(hist.bounds.tolist()) == tuple(catalog.get(name).buckets), name
    rng = np.random.default_rng(3)
    values = rng.random(1000)
    values[:10] = [0.1, 0.2, 0.5, 0.9, 0.95, 1.0, 0.0, 0.999, 0.995, 0.3]  # on the bounds
    direct, buffered = MetricStore("m"), MetricStore("m")
    direct.observe(names.CONFIDENCE, values)
    h = PendingHistogram(catalog.get(names.CONFIDENCE).buckets, capacity=64)
    for part in np.array_split(values, 7):
        h.add(part)
    h.flush(buffered, names.CONFIDENCE)
    a, b = direct.value(names.CONFIDENCE), buffered.value(names.CONFIDENCE)
    assert a.counts == b.counts and a.count == b.count == 1000
    assert b.sum == pytest.approx(a.sum, rel=1e-15)
    with pytest.raises(catalog.SpecError, match="bucket counts given"):
        buffered.observe_buckets(names.CONFIDENCE, np.ones(3), 1.0)


@pytest.mark.parametrize("seed", range(4))
def test_pending_histogram_bins_as_a_search_of_every_value_among_the_bounds(seed: int) -> None:
    """The buffered values are binned by sorting them (the bounds are searched among the values):
    each bucket's count is exactly, and its sum up to rounding, what searching every value among
    the bounds gives, for values on the bounds, outside them and infinite, whatever the capacity."""
    from monitor.detectors._pending import PendingHistogram

    rng = np.random.default_rng(seed)
    bounds = names.CONFIDENCE_BUCKETS
    for _ in range(40):
        n = int(rng.integers(0, 6000))
        v = rng.random(n) ** rng.uniform(0.1, 3.0)
        on = rng.random(n) < 0.1
        v[on] = rng.choice(np.array(bounds + (0.0, 7.0, -3.0, np.inf, -np.inf)), size=int(on.sum()))
        h = PendingHistogram(bounds, capacity=int(rng.integers(1, 5000)))
        for part in np.array_split(v, int(rng.integers(1, 6))):
            h.add(part)
        idx = np.searchsorted(np.asarray(bounds), v, side="left")
        assert np.array_equal(h.counts, np.bincount(idx, minlength=len(bounds) + 1))
        finite = np.isfinite(v)
        want = np.bincount(idx[finite], weights=v[finite], minlength=len(bounds) + 1)
        got = h.sums.copy()
        for i in np.unique(idx[~finite]).tolist():  # infinite values: the sum is infinite alike
            assert np.isinf(got[i])
            got[i] = want[i]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_slots", [3, 12, 24])
@pytest.mark.parametrize("width", [9, 4096])
def test_window_total_is_the_masked_sum_of_its_live_slots_to_the_last_bit(n_slots: int, width: int) -> None:
    """:meth:`SlidingWindow.total` sums a full window without masking its slots first: the
    figures must be those of the masked sum, bit for bit, at every fill (one live slot, some,
    all) and after slots expire."""
    rng = np.random.default_rng(5)
    w = SlidingWindow(float(n_slots), (width,), n_slots)
    for t in np.arange(0.0, 3.0 * n_slots, 0.37):
        w.add(np.array([t, t]), rng.integers(0, width, 2), rng.random(2) * 10.0 ** rng.integers(-8, 8, 2))
        w.add_summed(t, rng.random(width))
        masked = w._data[w._slot_ids > w._head - w.n_slots].sum(axis=0)
        assert np.array_equal(w.total(), masked)
    w.advance(10.0 * n_slots)  # every slot expired
    assert np.array_equal(w.total(), np.zeros(width))


def test_rows_outside_a_window_are_counted_as_by_the_per_row_pass() -> None:
    """:meth:`SlidingWindow.outside` answers "none" from the oldest row and the latest end when
    it can: the counts are those of the per-row pass, with and without arrival times, and
    with NaN among them."""
    rng = np.random.default_rng(12)
    w = SlidingWindow(60.0, (), 6)
    w.advance(600.0)
    def per_row(ts: np.ndarray, now: np.ndarray | None) -> int:
        head = w._head if now is None else np.maximum(w._head, np.floor(now / w._slot_s))
        return int(np.count_nonzero(np.floor(ts / w._slot_s) <= head - w.n_slots))
    for _ in range(300):
        ts = rng.uniform(450.0, 700.0, 5)
        now = None if rng.random() < 0.3 else ts + rng.uniform(0.0, 120.0, 5)
        if rng.random() < 0.1:
            (ts if now is None or rng.random() < 0.5 else now)[0] = np.nan
        assert w.outside(ts, now) == per_row(ts, now)
