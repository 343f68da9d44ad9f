"""Session 42 (s42a), the confidence detectors' cost: each cheaper path gives exactly the numbers
of the computation it replaces, written out here as it was (seeded inputs, bitwise equality)."""

from __future__ import annotations

import numpy as np

from monitor.stats import calibration as cal


# -- the calibration p-value's draws, made in scratch matrices ----------------------------------
def _group_draws_fresh(s: "cal._GroupSums", rng: np.random.Generator, k: int) -> np.ndarray:
    """_GroupSums.draw as it was, every step on fresh arrays."""
    u = rng.random((k, s.groups))
    key = (u + np.arange(s.groups)).ravel()
    idx = s.guide[(np.arange(s.groups) * cal._GUIDE + np.minimum(u * cal._GUIDE, cal._GUIDE - 1).astype(np.int64)).ravel()]
    todo = np.flatnonzero(s.table[idx] <= key)
    idx[todo] += 1
    todo = todo[s.table[idx[todo]] <= key[todo]]
    idx[todo] = np.searchsorted(s.table, key[todo], side="right")
    return (idx.reshape(k, s.groups) - np.arange(s.groups) * s.size + s.low).astype(np.float64)


def _statistic_fresh(stat: "cal._DrawnStatistic", right: np.ndarray) -> np.ndarray:
    acc = right / stat.count
    var = np.where(stat.many, acc * (1.0 - acc) / stat.divisor, stat.single_var)
    return (((stat.conf - acc) ** 2 - var) * stat.weight).sum(axis=1)


def _mixed_draws_fresh(m: "cal._MixedGroupSums", rng: np.random.Generator, k: int) -> np.ndarray:
    out = np.empty((k, m.groups))
    if m.exact is not None:
        out[:, ~m.normal] = _group_draws_fresh(m.exact, rng, k)
    drawn = np.rint(m.mean[m.normal] + m.sd * rng.standard_normal((k, m.sd.size)))
    out[:, m.normal] = np.clip(drawn, 0.0, m.top[m.normal])
    return out


def test_pvalue_draws_in_scratch_matrices_are_the_fresh_arrays_numbers() -> None:
    """Draws and statistics of chunks growing and shrinking (the scratch is reused, grown when a
    chunk is larger), exact groups alone and mixed with normal ones: bitwise the numbers of the
    same steps on fresh arrays, from generators in the same state; the scratch is reused."""
    rng = np.random.default_rng(42)
    for trial in range(40):
        g = int(rng.integers(1, 16))
        n = rng.integers(1, 400 if trial % 2 else 40_000, 3 * g)
        p = rng.uniform(0.05, 1.0, 3 * g)
        starts = np.arange(0, 3 * g, 3)
        mixed = cal._MixedGroupSums(n, p, starts)
        count = np.maximum(n.reshape(g, 3).sum(axis=1), 1).astype(np.float64)
        count[rng.random(g) < 0.2] = 1.0  # groups of one row: the confidence's variance stands in
        stat = cal._DrawnStatistic(count, count * rng.uniform(0.3, 1.0, g))
        a, b = np.random.default_rng(trial), np.random.default_rng(trial)
        for k in (32, 64, 512, 17, 600):
            got = mixed.draw(a, k)
            want = _mixed_draws_fresh(mixed, b, k)
            assert np.array_equal(got, want), (trial, k)
            assert np.array_equal(stat(got * (count / np.maximum(got.max(axis=0), 1.0))),
                                  _statistic_fresh(stat, want * (count / np.maximum(want.max(axis=0), 1.0))))
    exact = cal._GroupSums(np.array([30, 50, 7]), np.array([0.6, 0.9, 1.0]), np.array([0, 2]))
    first = exact.draw(np.random.default_rng(1), 64)
    again = exact.draw(np.random.default_rng(2), 64)
    assert np.shares_memory(first, again)  # one scratch matrix, not a fresh array per draw


# -- output repeats: each row rounded once for its fingerprint and its saturation ---------------
def _awkward_outputs(rng: np.random.Generator, n: int, k: int, decimals: int) -> np.ndarray:
    """Probabilities, with values on and next to the rounding's half-way points near 0 and 1,
    signed zeros, tiny negatives, NaN, infinities and huge values mixed in."""
    x = rng.dirichlet(np.ones(k) * rng.choice([0.02, 0.3, 2.0]), size=n)
    q = 10.0 ** -decimals
    special = np.array([0.0, -0.0, 0.5 * q, np.nextafter(0.5 * q, 1.0), np.nextafter(0.5 * q, 0.0), -0.4 * q, -0.6 * q,
                        1.0, 1.0 - 0.5 * q, np.nextafter(1.0 - 0.5 * q, 0.0), 1.0 + 0.4 * q, 1.0 + 0.6 * q, np.nan, np.inf,
                        -np.inf, 1e300, -1e300, q, 1.0 - q])
    mask = rng.random(x.shape) < 0.3
    x[mask] = rng.choice(special, int(mask.sum()))
    return x


def test_rounded_outputs_are_the_fingerprints_and_saturated_rows_of_separate_roundings() -> None:
    """rounded_outputs (one rounding) gives output_fingerprints' values and saturated_rows' flags
    (np.round's), for 1 to 12 columns, every decimals from 0 to 12, and batches larger than the
    fingerprint loop's block."""
    from monitor.detectors import repetition as rep

    rng = np.random.default_rng(4242)
    saturated_seen = 0
    for trial in range(60):
        decimals = trial % 13
        k = int(rng.integers(1, 13))
        n = int(rng.choice([1, 7, 300, 5000]))
        x = _awkward_outputs(rng, n, k, decimals)
        fp, saturated = rep.rounded_outputs(x, decimals)
        assert np.array_equal(fp, rep.output_fingerprints(x, decimals))
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.round(x, decimals)
            want = ((r == 0.0) | (r == 1.0)).all(axis=1) if k >= 2 else np.zeros(n, dtype=bool)
            assert np.array_equal(saturated, rep.saturated_rows(x, decimals))
        assert np.array_equal(saturated, want), (trial, decimals, k)
        saturated_seen += int(saturated.sum())
    assert saturated_seen > 100  # the flags were put to the test, not all False


# -- bins of values in [0, 1] by a guide table ---------------------------------------------------
def _values_around(rng: np.random.Generator, edges: np.ndarray, n: int) -> np.ndarray:
    """Confidences of a 10-class model, with the edges themselves, their float neighbours, the
    cells' own bounds, values outside [0, 1], infinities, NaN and signed zeros mixed in."""
    x = rng.dirichlet(np.ones(10) * rng.choice([0.05, 0.3, 3.0]), size=n).max(axis=1)
    awkward = np.r_[edges, np.nextafter(edges, -1.0), np.nextafter(edges, 2.0), np.arange(129) / 128, 0.0, -0.0, 1.0,
                    np.nextafter(1.0, 0.0), np.nextafter(1.0, 2.0), -1e-300, 5e-324, 2.0, -2.0, np.inf, -np.inf, np.nan,
                    1.0 - 10.0 ** -np.arange(1.0, 12.0)]
    mask = rng.random(n) < 0.3
    x[mask] = rng.choice(awkward, int(mask.sum()))
    return x


def test_unit_bins_give_searchsorteds_index_for_every_value() -> None:
    """UnitBins.index is np.searchsorted's answer, both sides, for the detectors' grids (the fine
    calibration grid with its crowded tail, the ECE bins, CBPE's), random grids with repeated
    edges and edges on cell bounds, grids the table cannot take (searched), short and long arrays."""
    from monitor.stats.bins import UnitBins

    rng = np.random.default_rng(77)
    fine = cal.fine_confidence_edges()
    grids = [cal.tie_tolerant_edges(fine)[1:-1], (fine - cal.ATC_TIE_TOLERANCE)[1:-1],
             cal.tie_tolerant_edges(np.linspace(0.0, 1.0, cal.ECE_BINS + 1))[1:-1], np.array([0.5]), np.array([1.0]),
             np.array([0.0, 0.5]), np.array([-1e-6, 0.3]), np.array([0.2, 1.0 + 1e-6]), np.array([]), np.array([0.7, 0.3]),
             np.array([0.1, 0.5, 0.99, 0.999, 1.0]), np.array([0.0, 1.0])]
    for _ in range(60):
        e = np.sort(np.r_[rng.uniform(0.0, 1.0, int(rng.integers(1, 200))), rng.integers(0, 65, 4) / 64.0,
                          1.0 - 10.0 ** -rng.uniform(1.0, 9.0, 4)])
        grids.append(np.repeat(e, rng.integers(1, 3, e.size)))
    tabled = 0
    for e in grids:
        for side in ("left", "right"):
            bins = UnitBins(e, side=side)
            tabled += bins.cells > 0
            for n in (1, 50, 400, 3000):
                x = _values_around(rng, e, n)
                assert np.array_equal(bins.index(x), np.searchsorted(e, x, side=side)), (e[:5], side, n)
    assert tabled >= 100  # the table answered, not only the search


def test_unit_bins_take_the_largest_floats_without_a_warning() -> None:
    """Values near float64's largest (x * cells overflows) index as searchsorted does, silently:
    a RuntimeWarning from the worker's binning would reach the agent's log."""
    import warnings

    from monitor.stats.bins import UnitBins

    bins = UnitBins(cal.tie_tolerant_edges(cal.fine_confidence_edges())[1:-1], side="right")
    assert bins.cells > 0
    x = np.r_[np.full(500, 1.7e308), np.full(500, -1.7e308), np.linspace(0.0, 1.0, 2000), [np.inf, -np.inf, np.nan]]
    assert x.size >= bins.search_below  # the table answers, not the search
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = bins.index(x)
    assert np.array_equal(got, np.searchsorted(bins.edges, x, side="right"))


def test_bins_of_a_grid_is_bin_index() -> None:
    """cal.bins_of(edges).index(v) equals cal.bin_index(v, edges) on the detectors' grids."""
    rng = np.random.default_rng(78)
    fine = cal.fine_confidence_edges()
    for edges in (cal.tie_tolerant_edges(fine), fine - cal.ATC_TIE_TOLERANCE, fine,
                  cal.tie_tolerant_edges(np.linspace(0.0, 1.0, cal.ECE_BINS + 1))):
        bins = cal.bins_of(edges)
        assert bins.cells > 0
        for n in (10, 2000):
            x = _values_around(rng, edges, n)
            assert np.array_equal(bins.index(x), cal.bin_index(x, edges))


# -- the label-free estimates of a batch's rows, shared by the detectors that fit the same ones --
def _reference_and_batch(rng: np.random.Generator) -> tuple[object, object]:
    from monitor.batch import Batch
    from monitor.reference import Reference

    classes = [f"c{i}" for i in range(5)]
    ref_p = rng.dirichlet(np.ones(5) * 0.4, size=3000)
    ref_y = (ref_p.cumsum(axis=1) < rng.random((3000, 1))).sum(axis=1).clip(0, 4)
    reference = Reference.from_arrays(np.zeros((3000, 1)), scores=ref_p, labels=ref_y, classes=classes)
    p = rng.dirichlet(np.ones(5) * 0.4, size=2000)
    seg = np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, 2000)]
    batch = Batch.from_arrays(np.zeros((2000, 1)), p, ts=np.linspace(0.0, 50.0, 2000), segment=seg, classes=classes)
    return reference, batch


def test_segments_and_accuracy_estimation_compute_a_batchs_estimates_once(monkeypatch) -> None:
    """Fitted alike on one reference, the two detectors read one computation of each row's CBPE
    and ATC estimate per batch; fitted otherwise (ATC on the confidence), each its own; the
    estimates are those each fit gives the rows."""
    from monitor.detectors import _label_free
    from monitor.detectors._common import output_features
    from monitor.detectors.accuracy_estimation import AccuracyEstimationDetector
    from monitor.detectors.segments import SegmentDetector

    rng = np.random.default_rng(91)
    reference, batch = _reference_and_batch(rng)
    calls = []
    cbpe_rows = _label_free.LabelFreeEstimators.cbpe_rows
    monkeypatch.setattr(_label_free.LabelFreeEstimators, "cbpe_rows", lambda self, conf: calls.append(self) or cbpe_rows(self, conf))
    segments, same = SegmentDetector(reference, min_rows=10), AccuracyEstimationDetector(reference, min_rows=10)
    other = AccuracyEstimationDetector(reference, min_rows=10, atc_score="confidence")
    for det in (segments, same, other):
        det.update(batch)
    assert len(calls) == 2  # segments and `same` share one; `other` fitted another ATC score
    feats = output_features(batch)
    for det in (same, other):
        cbpe, atc = det._estimators.batch_rows(batch, feats)
        assert np.array_equal(cbpe, cbpe_rows(det._estimators, feats.conf))
        assert np.array_equal(atc, det._estimators.atc_rows(feats))
    assert same.estimates()["atc"] != other.estimates()["atc"]


# -- pending histograms of values in [0, 1] binned by the guide table -----------------------------
def test_pending_histograms_of_unit_values_count_as_the_sorted_binning() -> None:
    """A PendingHistogram on the confidence, entropy and variance buckets (bounds in [0, 1], the
    last at 1.0 for the first two) counts every value in the bucket the sorted binning gave it,
    and its sums differ from the sorted order's by float rounding only; a grouped histogram's
    buckets are searchsorted's. Other buckets (energy) keep the sorted binning, bit for bit."""
    from monitor.catalog import confidence as names
    from monitor.detectors._pending import GroupedPendingHistogram, PendingHistogram

    def sorted_binning(bounds: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.sort(v)
        nb = bounds.size + 1
        edges = np.empty(nb + 1, dtype=np.intp)
        edges[0], edges[-1] = 0, s.size
        edges[1:-1] = np.searchsorted(s, bounds, side="right")
        counts = np.diff(edges).astype(np.float64)
        sums = np.zeros(nb)
        full = counts > 0
        sums[full] = np.add.reduceat(s, edges[:-1][full])
        return counts, sums

    rng = np.random.default_rng(5)
    for buckets in (names.CONFIDENCE_BUCKETS, names.ENTROPY_BUCKETS, names.VARIANCE_BUCKETS, names.ENERGY_BUCKETS):
        bounds = np.asarray(buckets)
        for n in (3, 300, 4000):
            v = _values_around(rng, bounds, n)
            v = v[np.isfinite(v)] if buckets is names.ENERGY_BUCKETS else np.clip(np.nan_to_num(v), 0.0, 1.0)
            if buckets is names.ENERGY_BUCKETS:
                v = v * 40.0 - 30.0
            h = PendingHistogram(buckets, capacity=8192)
            h.add(v)
            counts, sums = sorted_binning(bounds, v)
            assert np.array_equal(h.counts, counts)
            if buckets is names.ENERGY_BUCKETS:
                assert h._buckets.cells == 0 and np.array_equal(h.sums, sums)
            else:
                assert h._buckets.cells > 0
                np.testing.assert_allclose(h.sums, sums, rtol=1e-13, atol=1e-13)
            g = GroupedPendingHistogram(buckets, groups=3, capacity=8192)
            group = rng.integers(0, 3, v.size)
            g.add(v, group)
            idx = np.searchsorted(bounds, v, side="left")
            assert np.array_equal(g.counts, np.bincount(group * (bounds.size + 1) + idx, minlength=3 * (bounds.size + 1))
                                  .reshape(3, -1).astype(np.float64))
            assert np.array_equal(g.sums, np.bincount(group, weights=v, minlength=3))


def test_saturation_read_on_candidate_rows_is_every_columns_check() -> None:
    """_saturated_block (the other columns read only for rows whose first value rounds to 0 or
    1, or all at once when those are most rows) flags exactly the rows whose every value does."""
    from monitor.detectors.repetition import _saturated_block

    rng = np.random.default_rng(66)
    scale = 1e6
    regimes = {"few": 0, "most": 0}
    for trial in range(200):
        k, d = int(rng.integers(1, 400)), int(rng.integers(2, 12))
        b = np.rint(rng.dirichlet(np.ones(d) * rng.choice([0.005, 0.05, 0.3, 3.0]), size=k) * scale) + 0.0
        b[rng.random((k, d)) < 0.05] = rng.choice([0.0, scale, np.nan, 1.0, scale - 1.0])
        out = np.ones(k, dtype=bool)
        _saturated_block(b, scale, out)
        assert np.array_equal(out, ((b == 0.0) | (b == scale)).all(axis=1))
        first = (b[:, 0] == 0.0) | (b[:, 0] == scale)
        regimes["most" if 2 * first.sum() > k else "few"] += 1
    assert min(regimes.values()) > 20  # both ways were taken


# -- a wide window's per-row parts added by one bincount --------------------------------------------
def _summed_part_by_part(parts: list, n: int, d: int) -> np.ndarray:
    """accumulate's single-slot sum as it was: a bincount (or a scalar) per part, in order."""
    agg = np.zeros(d)
    for pos, w in parts:
        scalar_w = isinstance(w, (int, float))
        if isinstance(pos, (int, np.integer)):
            agg[pos] += float(w) * n if scalar_w else float(w.sum())
        elif scalar_w:
            counts = np.bincount(pos, minlength=d)
            agg += counts if w == 1.0 else counts * float(w)
        else:
            agg += np.bincount(pos, weights=w, minlength=d)
    return agg


def test_a_wide_windows_parts_summed_by_one_bincount_are_the_part_by_part_sums() -> None:
    """accumulate into a window of 8,379 positions (the segments detector's labelled terms):
    bitwise the part-by-part sums, for disjoint per-row parts (one bincount), and for parts the
    one bincount must leave (overlapping ranges, a single position inside a range, a scalar weight
    other than 1), which take the part-by-part way."""
    from monitor.detectors._accumulate import WIDE, _one_bincount, accumulate
    from monitor.windows import SlidingWindow

    rng = np.random.default_rng(31)
    s, nf = 21, 132
    d = 3 * s + 3 * nf * s + s + 2  # the terms' positions, then room for a part and two single positions
    assert d >= WIDE
    joined = 0
    for trial in range(120):
        n = int(rng.integers(1, 3000))
        seg = rng.integers(0, s, n)
        fine = rng.integers(0, nf, n) * s + seg
        conf = rng.random(n)
        correct = (rng.random(n) < conf).astype(np.float64)
        diff = conf - correct
        parts = [(seg, 1.0), (seg + s, diff), (seg + 2 * s, diff * diff), (fine + 3 * s, 1.0), (fine + (3 + nf) * s, conf),
                 (fine + (3 + 2 * nf) * s, correct), (d - 1, rng.random(n) * 1e-3), (d - 2, 0.1)]
        kind = trial % 4
        if kind == 1:
            parts.append((seg + s + 1, conf))  # overlaps the second part's range
        elif kind == 2:
            parts.append((s + 3, conf * 7.0))  # a single position inside the second part's range
        elif kind == 3:
            parts.append((seg + d - s - 2, 0.3))  # a per-row part of scalar weight 0.3 (a range of its own)
        window = SlidingWindow(3600.0, (d,), 12)
        accumulate(window, np.full(n, 100.0), parts)
        assert np.array_equal(window.total(), _summed_part_by_part(parts, n, d)), kind
        joined += _one_bincount(parts, n, d) is not None
    assert joined == 30  # the disjoint trials took the one bincount, the others not
