"""Data quality against the reference: missing, inf, out-of-range, unseen, wrong type, stuck."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.data_quality import DataQualityDetector, stuck_threshold
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.store import MetricStore


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=4000), rng.integers(0, 2, 4000), rng.gamma(2.0, 1.0, 4000)])
    x[rng.random(4000) < 0.05, 2] = np.nan  # 5% missing in the reference itself
    cats = rng.choice(["a", "b", "c"], size=(4000, 1)).astype(object)
    return Reference.from_arrays(x, numeric_names=["x", "bit", "g"], categorical=cats, categorical_names=["city"])


def batch(rng: np.random.Generator, n: int, t0: float, *, corrupt=None) -> Batch:
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.gamma(2.0, 1.0, n)])
    x[rng.random(n) < 0.05, 2] = np.nan
    cats = rng.choice(["a", "b", "c"], size=(n, 1)).astype(object)
    if corrupt is not None:
        corrupt(x, cats)
    return Batch.from_arrays(x, numeric_names=("x", "bit", "g"), categorical=cats, categorical_names=("city",),
                             ts=t0 + np.arange(n) * 0.01)


def test_clean_stream_matches_reference_rates(reference: Reference) -> None:
    det = DataQualityDetector(reference)
    rng = np.random.default_rng(1)
    for i in range(20):
        det.update(batch(rng, 1000, i * 10.0))
    assert det.ratio("g", "missing") == pytest.approx(0.05, abs=0.01)
    assert det.ratio("x", "missing") == 0.0
    assert det.ratio("x", "out_of_range") <= 0.002  # expected 2/(n+1) = 0.0005
    assert det.ratio("city", "unseen_category") == 0.0
    assert not any(det.stuck(f) for f in ("x", "bit", "g"))


def test_corruptions_are_counted_by_reason(reference: Reference) -> None:
    det = DataQualityDetector(reference)
    rng = np.random.default_rng(2)

    def corrupt(x: np.ndarray, cats: np.ndarray) -> None:
        x[:100, 0] = np.nan
        x[100:150, 0] = np.inf
        x[150:250, 0] = 1e6
        cats[:70, 0] = "zzz"
        cats[70:80, 0] = 7  # a number where a string code was expected
        cats[80:90, 0] = None

    det.update(batch(rng, 1000, 0.0, corrupt=corrupt))
    assert det.ratio("x", "missing") == pytest.approx(0.1)
    assert det.ratio("x", "inf") == pytest.approx(0.05)
    assert det.ratio("x", "out_of_range") >= 0.1
    assert det.ratio("city", "unseen_category") == pytest.approx(70 / 990)  # of the rows where city is present
    assert det.ratio("city", "wrong_type") == pytest.approx(0.01)
    assert det.ratio("city", "missing") == pytest.approx(0.01)
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_data_invalid_rows", ("x", "missing")) == 100
    assert store.value("monitor_data_reference_invalid_ratio", ("g", "missing")) == pytest.approx(0.05, abs=0.01)
    # the 99.9% quantile of Beta(2, n - 1), the out-of-range probability given n = 4000 reference values
    assert store.value("monitor_data_reference_invalid_ratio", ("x", "out_of_range")) == pytest.approx(9.2335 / 4001, rel=1e-3)
    det.update(batch(rng, 1000, 10.0))
    det.export(store)
    assert store.value("monitor_data_invalid_rows", ("x", "missing")) == 100  # counter: nothing new


def test_ratios_absent_below_min_rows(reference: Reference) -> None:
    det = DataQualityDetector(reference, min_rows=500)
    det.update(batch(np.random.default_rng(3), 100, 0.0))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_data_invalid_ratio", ("x", "missing")) is None
    assert store.value("monitor_data_window_rows") == 100


def test_stuck_thresholds_follow_the_reference(reference: Reference) -> None:
    det = DataQualityDetector(reference)
    thr = {f: det._num_ref[f]["stuck_after"] for f in ("x", "bit")}
    assert thr["x"] == 5 and thr["bit"] > 20  # a binary feature repeats legitimately
    rng = np.random.default_rng(4)
    for i in range(50):  # 50,000 clean rows: the binary feature never looks stuck
        det.update(batch(rng, 1000, i * 10.0))
        assert not det.stuck("bit") and not det.stuck("x")

    def freeze(x: np.ndarray, cats: np.ndarray) -> None:
        x[-3:, 0] = 1.25

    det.update(batch(rng, 100, 600.0, corrupt=freeze))
    assert not det.stuck("x")  # 3 equal values: not yet

    def freeze_all(x: np.ndarray, cats: np.ndarray) -> None:
        x[:, 0] = 1.25

    det.update(batch(rng, 3, 601.0, corrupt=freeze_all))  # the run continues across batches: 6
    assert det.stuck("x")
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_data_stuck", ("x",)) == 1.0
    assert store.value("monitor_data_stuck_run_rows", ("x",)) == 6
    assert stuck_threshold(1.0, 3, 1e6) > 10**9


def test_without_reference_and_state_round_trip() -> None:
    det = create("data_quality", reference=None)
    rng = np.random.default_rng(5)

    def miss(x: np.ndarray, cats: np.ndarray) -> None:
        x[:300, 1] = np.nan

    det.update(batch(rng, 1000, 0.0, corrupt=miss))
    assert det.ratio("bit", "missing") == pytest.approx(0.3)
    other = DataQualityDetector()
    other.load_state_dict(det.state_dict())
    for d in (det, other):
        d.update(batch(np.random.default_rng(6), 500, 5.0, corrupt=miss))
    sa, sb = MetricStore("m"), MetricStore("m")
    det.export(sa)
    other.export(sb)
    key = lambda s: (s[0], sorted(s[1].items()), s[2])  # noqa: E731
    assert sorted(sa.samples(), key=key) == sorted(sb.samples(), key=key)


def test_a_categorical_feature_gets_stuck_too(reference: Reference) -> None:
    """city is uniform over 3 values (q = 1/3): the threshold is the shortest run with
    4 features x q^(L-1) <= 1e-6, i.e. 15 rows; 50,000 clean rows never reach it, a feed that
    repeats one city does, across batches, and a missing value breaks the run (opt-in: rows of a
    batch often share a category legitimately)."""
    off = DataQualityDetector(reference)
    off.update(batch(np.random.default_rng(5), 200, 0.0, corrupt=lambda x, cats: cats.__setitem__((slice(None), 0), "b")))
    assert not off.stuck("city") and "city" not in off._run
    det = DataQualityDetector(reference, stuck_categorical=True)
    after = det._cat_ref["city"]["stuck_after"]
    assert stuck_threshold(1 / 3, 4, 1e6) == 15 and 14 <= after <= 16  # q is estimated from 4,000 rows
    rng = np.random.default_rng(5)
    for i in range(50):
        det.update(batch(rng, 1000, i * 10.0))
        assert not det.stuck("city")

    def freeze(x: np.ndarray, cats: np.ndarray) -> None:
        cats[-10:, 0] = "b"

    def freeze_all(x: np.ndarray, cats: np.ndarray) -> None:
        cats[:, 0] = "b"

    det.update(batch(rng, 100, 600.0, corrupt=freeze))
    assert det._run["city"] >= 10 and not det.stuck("city")
    det.update(batch(rng, after, 601.0, corrupt=freeze_all))
    assert det.stuck("city")
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_data_stuck", ("city",)) == 1.0
    state = det.state_dict()
    restored = DataQualityDetector(reference, stuck_categorical=True)
    restored.load_state_dict(state)
    assert restored.stuck("city")

    def missing_last(x: np.ndarray, cats: np.ndarray) -> None:
        cats[:, 0] = "b"
        cats[-1, 0] = None

    det.update(batch(rng, 5, 700.0, corrupt=missing_last))
    assert not det.stuck("city") and det._run["city"] == 0


def test_categorical_repeat_probability_from_the_profile() -> None:
    from monitor.detectors.data_quality import _categorical_repeat_prob
    from monitor.profile import profile_of

    rng = np.random.default_rng(6)
    cats = rng.choice(["a", "b"], p=[0.9, 0.1], size=(20000, 1)).astype(object)
    prof = profile_of(Reference.from_arrays(np.zeros((20000, 1)), numeric_names=["z"], categorical=cats,
                                            categorical_names=["k"]))
    q = _categorical_repeat_prob(prof.categorical[0])
    assert q == pytest.approx(0.9**2 + 0.1**2, abs=0.01)


def test_out_of_range_expectation_covers_the_spread_between_references() -> None:
    """Over 2,000 references of 50 values from a continuous distribution, the probability that a new
    value falls outside the reference range exceeds the exported bound for about 0.1% of them
    (at most 0.5% here), while the plain mean 2/(n+1) is exceeded by far more than half of that."""
    from monitor.detectors.data_quality import out_of_range_bound

    rng = np.random.default_rng(9)
    u = np.sort(rng.random((2000, 50)), axis=1)  # uniform values: the outside probability is min + (1 - max)
    outside = u[:, 0] + (1.0 - u[:, -1])
    bound = out_of_range_bound(50)
    assert (outside > bound).mean() <= 0.005
    assert (outside > 2 / 51).mean() > 0.3
