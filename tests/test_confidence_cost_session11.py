"""Session 11, the confidence detectors' cost at low traffic: the segments export's largest gaps
weighed in Python floats for a few groups give exactly the array computation's figures."""

from __future__ import annotations

import math

import numpy as np

from monitor.stats import gaps


def _same(a: tuple | None, b: tuple | None) -> bool:
    if a is None or b is None:
        return a is b
    return a[:3] == b[:3] and (a[3] == b[3] or (math.isnan(a[3]) and math.isnan(b[3])))


def test_largest_gap_in_floats_equals_the_array_computation() -> None:
    rng = np.random.default_rng(11)
    scalar = 0
    for t in range(4000):
        k = int(rng.integers(2, 12))
        counts = rng.integers(1, 500, size=k).astype(float) if t % 3 else rng.integers(1, 50, size=k)
        values = rng.uniform(0, 1, size=k) if t % 5 else np.round(rng.uniform(0, 1, size=k), 1)  # ties too
        variances = None if t % 2 else rng.uniform(0, 0.3, size=k)
        if t % 7 == 0 and variances is not None:
            variances[0] = 0.0
        ok = rng.random(k) < 0.8
        z_min = float(rng.choice([gaps.GAP_Z, 1.0, 0.5]))
        idx = np.flatnonzero(ok)
        expected = gaps._largest_gap_arrays(values, counts, ok, variances, z_min, idx) if idx.size >= 2 else None
        assert _same(gaps.largest_gap(values, counts, ok, variances, z_min), expected), (values, counts, ok, variances, z_min)
        scalar += idx.size >= 2
    assert scalar > 3000  # the float path was taken (the groups are fewer than its bound)


def test_largest_gap_takes_the_arrays_for_values_floats_cannot_weigh() -> None:
    # a NaN variance: the arrays read its z as infinite (no spread), which the float path would
    # not; the data are such that the two paths disagree (the final review found that the first
    # data gave one answer on both paths, so the test passed without the guard)
    values, counts = np.array([0.2, 0.5, 0.6]), np.array([100.0, 100.0, 100.0])
    variances = np.array([100.0, np.nan, 100.0])
    ok = np.ones(3, dtype=bool)
    expected = gaps._largest_gap_arrays(values, counts, ok, variances, gaps.GAP_Z, np.flatnonzero(ok))
    assert expected is not None and expected[:2] == (1, 0) and math.isinf(expected[3])
    assert _same(gaps.largest_gap(values, counts, ok, variances), expected)


def test_per_series_figures_have_one_writer() -> None:
    """put_columns (arrays, one mask) leaves the store as put_figures (pairs) does, and every
    detector writing per-segment figures goes through them (no writer of its own)."""
    from pathlib import Path

    from monitor.catalog import confidence as names
    from monitor.detectors import _common
    from monitor.store import MetricStore

    rng = np.random.default_rng(3)
    keys = [(f"s{i}",) for i in range(9)]
    for _ in range(50):
        values = rng.normal(size=9)
        values[rng.random(9) < 0.2] = np.nan
        ok = rng.random(9) < 0.7
        a, b = MetricStore("m"), MetricStore("m")
        for store in (a, b):
            store.set_many(names.SEGMENT_CONFIDENCE, [(k, 1.0) for k in keys])  # stale series to remove
        _common.put_figures(a, names.SEGMENT_CONFIDENCE, [(k, float(v) if o else None) for k, v, o in zip(keys, values, ok)])
        _common.put_columns(b, names.SEGMENT_CONFIDENCE, keys, values, ok)
        assert a.snapshot() == b.snapshot()
    root = Path(_common.__file__).parent
    for module in ("segments", "regression", "confidence_drift"):  # (prediction_drift removes top-class labels that changed)
        text = (root / f"{module}.py").read_text()
        assert "remove_many" not in text and "compress(" not in text, module  # removing absent series is write_families' job


def test_welch_variance_written_once() -> None:
    from monitor.detectors import regression, segments

    assert regression.group_means is gaps.group_means and segments.group_means is gaps.group_means


def test_batched_family_writes_leave_the_store_as_per_family_calls_do() -> None:
    """MetricStore.write_series (one lock, every family of an export) leaves the store as
    remove_many then set_many of each family (what a writer without it gets), including the
    series cap: a refused series is counted, not written."""
    from monitor.catalog import confidence as names
    from monitor.detectors import _common
    from monitor.store import MetricStore

    class PerFamily:  # a writer without write_series: the fallback path
        def __init__(self, store: MetricStore) -> None:
            self.remove_many, self.set_many = store.remove_many, store.set_many

    rng = np.random.default_rng(4)
    keys = [(f"s{i}",) for i in range(9)]
    pair_keys = [(f"s{i}", label) for i in range(9) for label in ("cbpe", "atc")]
    for _ in range(50):
        a, b = MetricStore("m"), MetricStore("m")
        for store in (a, b):
            store.set_many(names.SEGMENT_CONFIDENCE, [(k, 1.0) for k in keys])  # stale series to remove
        families = [
            _common.column_family(names.SEGMENT_CONFIDENCE, keys, rng.normal(size=9), rng.random(9) < 0.6),
            _common.column_family(names.SEGMENT_ESTIMATED_ACCURACY, pair_keys, rng.random(18), rng.random(18) < 0.8),
            *_common.figure_families([(names.ACCURACY, float(rng.random()), None), (names.BRIER, None, None),
                                      (names.CALIBRATION_ERROR, float("nan"), ("ece_equal_width",)),
                                      (names.CALIBRATION_ERROR, 0.1, ("debiased_l2_equal_mass",))]),
        ]
        _common.write_families(a, families)
        _common.write_families(PerFamily(b), families)  # type: ignore[arg-type]
        assert a.snapshot() == b.snapshot()
    from monitor import catalog

    capped = MetricStore("m")
    spec = catalog.CATALOG[names.SEGMENT_CONFIDENCE]
    many = [(f"x{i}",) for i in range(spec.max_series + 3)]
    capped.write_series([(names.SEGMENT_CONFIDENCE, many, [1.0] * len(many), [True] * len(many))])
    assert len(capped.snapshot([names.SEGMENT_CONFIDENCE])[0].series) == spec.max_series
    assert capped.value("monitor_series_refused", (names.SEGMENT_CONFIDENCE,)) == 3.0


def test_families_sharing_one_key_list_are_written_as_per_family_calls_write_them() -> None:
    """write_series checks a list of keys shared by several families (the per-segment figures)
    once, and sets the series of a family that all exist by one update: the store must hold the
    same series, values and order as remove_many then set_many of each family, over exports that
    add, keep and remove series, with keys as text and as numbers (turned into text)."""
    from monitor.catalog import confidence as names
    from monitor.detectors import _common
    from monitor.store import MetricStore

    class PerFamily:  # a writer without write_series: the fallback path
        def __init__(self, store: MetricStore) -> None:
            self.remove_many, self.set_many = store.remove_many, store.set_many

    rng = np.random.default_rng(9)
    a, b = MetricStore("m"), MetricStore("m")
    figures = (names.SEGMENT_CONFIDENCE, names.SEGMENT_ABSTAIN, names.SEGMENT_ACCURACY, names.SEGMENT_GAP)
    for export in range(30):
        shown = int(rng.integers(1, 14))
        keys: list = [(f"s{i}",) for i in range(shown)] if export % 5 != 4 else [(i,) for i in range(shown)]
        families = [(name, keys, rng.normal(size=shown).tolist(), (rng.random(shown) < 0.8).tolist()) for name in figures]
        families.append((names.SEGMENT_ROWS, keys, rng.random(shown).tolist(), [True] * shown))
        _common.write_families(a, families)
        _common.write_families(PerFamily(b), families)  # type: ignore[arg-type]
        snap_a, snap_b = a.snapshot(), b.snapshot()
        assert [f.spec.name for f in snap_a] == [f.spec.name for f in snap_b]
        for fa, fb in zip(snap_a, snap_b):
            assert list(fa.series.items()) == list(fb.series.items())
