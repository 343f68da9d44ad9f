"""Which categories of a many-valued categorical feature get bins of their own is chosen on half of
the reference's rows, their expected counts taken from the other half (session 26 audit).

Chosen and counted on the same rows, the kept categories were those whose counts came out high (a
winner's curse): with 200 equally common categories and 2,000 reference rows, 40,000 unchanged
live rows gave input_drift's windowed p-value 0.001 and ``monitor_drift_detected`` 1 on every
seed, so ModelInputDrift paged on unchanged traffic.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.registry import create
from monitor.profile import Profile
from monitor.store import MetricStore


def _rows(rng: np.random.Generator, n: int, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    cats = rng.choice(k, size=n, p=weights)
    return np.array([f"z{c}" for c in cats], dtype=object)[:, None]


def _run(seed: int, k: int, live_rows: int = 40_000) -> MetricStore:
    return _run_weights(seed, k, None, None, live_rows=live_rows)


def _run_weights(seed: int, k: int, ref_weights: np.ndarray | None, live_weights: np.ndarray | None, *,
                 live_k: int | None = None, live_rows: int = 40_000) -> MetricStore:
    rng = np.random.default_rng(seed)
    ref = Profile.from_arrays(rng.normal(size=(2000, 1)), numeric_names=("a",), categorical=_rows(rng, 2000, k, ref_weights),
                              categorical_names=("zip",), scores=np.full((2000, 2), 0.5))
    det = create("input_drift", reference=ref, params={})
    store, t = MetricStore("m"), 1000.0
    for _ in range(live_rows // 500):
        live = _rows(rng, 500, live_k or k, live_weights)
        b = Batch.from_arrays(rng.normal(size=(500, 1)), np.full((500, 2), 0.5), ts=t + np.arange(500) * 0.01,
                              numeric_names=("a",), categorical=live, categorical_names=("zip",))
        t += 5
        det.advance(t)
        det.update(b)
    det.on_tick(t)
    det.export(store)
    return store


def test_many_equally_common_categories_raise_no_false_alarm() -> None:
    """Four seeds (each failed before): the windowed p-value of the unchanged feature above 0.01,
    no drift detected."""
    for seed in range(4):
        store = _run(seed, 200)
        p = store.value("monitor_drift_feature_pvalue", ("input_drift", "zip", "chi2"))
        assert p is not None and p > 0.01, (seed, p)
        assert store.value("monitor_drift_detected", ("input_drift",)) == 0.0, seed


def _zipf(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1)
    return w / w.sum()


def test_shifts_the_chosen_bins_see_are_still_caught() -> None:
    """A skewed feature (60 categories, shares 1/rank: the most frequent 21%) whose most frequent
    category vanishes from live traffic, and the uniform one flooded by a value the reference
    never held (10% of rows): detected on every seed. Half the reference's rows still single out
    the clearly frequent categories."""
    gone = _zipf(60)
    gone[0] = 0.0
    for seed in range(3):
        store = _run_weights(seed, 60, _zipf(60), gone / gone.sum())
        assert store.value("monitor_drift_feature_pvalue", ("input_drift", "zip", "chi2")) <= 0.001, seed
        assert store.value("monitor_drift_detected", ("input_drift",)) == 1.0, seed
    flood = np.append(np.full(200, 0.9 / 200), 0.1)  # index 200: a category the reference never held
    for seed in range(3):
        store = _run_weights(seed, 200, None, flood, live_k=201)
        assert store.value("monitor_drift_detected", ("input_drift",)) == 1.0, seed


def test_the_chosen_bins_are_checked_on_restore() -> None:
    rng = np.random.default_rng(3)
    ref = Profile.from_arrays(rng.normal(size=(2000, 1)), numeric_names=("a",), categorical=_rows(rng, 2000, 200),
                              categorical_names=("zip",), scores=np.full((2000, 2), 0.5))
    det = create("input_drift", reference=ref, params={})
    state = det.state_dict()
    again = create("input_drift", reference=ref, params={})
    again.load_state_dict(state)  # the same choice (seeded by the feature's name): restored
    assert again.state_dict()["category_bins"] == state["category_bins"]
    del state["category_bins"]  # an older agent's state: its bins held the most frequent categories
    with pytest.raises(ValueError, match="zip"):
        again.load_state_dict(state)
    few = Profile.from_arrays(rng.normal(size=(500, 1)), numeric_names=("a",), categorical=_rows(rng, 500, 5),
                              categorical_names=("c",), scores=np.full((500, 2), 0.5))
    det = create("input_drift", reference=few, params={})
    old = det.state_dict()
    del old["category_bins"]
    create("input_drift", reference=few, params={}).load_state_dict(old)  # few categories: unchanged bins, restored


def test_a_feature_of_unique_values_reads_new_ones_as_expected() -> None:
    """A reference column of unique values (request ids, timestamps read as text) expects every
    live value to be unseen (Good-Turing: singletons over present rows = 1). The unseen bin's
    pseudo-count was added on top of the singletons' own rows, so it expected half of them unseen
    and read 20,000 new ids as drift (p 0, monitor_drift_detected 1) on every seed."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        ids = np.array([f"id{i}" for i in range(800)], dtype=object)[:, None]
        ref = Profile.from_arrays(rng.normal(size=(800, 1)), numeric_names=("a",), categorical=ids,
                                  categorical_names=("rid",), scores=np.full((800, 2), 0.5))
        det = create("input_drift", reference=ref, params={})
        store, t = MetricStore("m"), 1000.0
        for j in range(40):
            live = np.array([f"new{j}-{i}" for i in range(500)], dtype=object)[:, None]
            det.advance(t := t + 5)
            det.update(Batch.from_arrays(rng.normal(size=(500, 1)), np.full((500, 2), 0.5), ts=t + np.arange(500) * 0.01,
                                         numeric_names=("a",), categorical=live, categorical_names=("rid",)))
        det.on_tick(t)
        det.export(store)
        assert store.value("monitor_drift_feature_pvalue", ("input_drift", "rid", "chi2")) > 0.01, seed
        assert store.value("monitor_drift_detected", ("input_drift",)) == 0.0, seed


def test_a_rare_category_growing_is_caught_in_its_bucket() -> None:
    """One of 200 equally common categories grown to a fifth of live traffic: in one bin with the
    180 other rare ones its share barely moved (p 0.1-0.3, nothing detected); hashed into one of
    8 buckets it moves that bucket's share from about 11% to 29%, on every seed."""
    w = np.ones(200)
    w[7] = 50.0
    for seed in range(3):
        store = _run_weights(seed, 200, None, w / w.sum())
        assert store.value("monitor_drift_feature_pvalue", ("input_drift", "zip", "chi2")) <= 0.001, seed
        assert store.value("monitor_drift_detected", ("input_drift",)) == 1.0, seed
        top = [lab for name, lab, _ in store.samples() if name == "monitor_drift_top_feature"]
        assert top and top[0]["feature"] == "zip", top
        # the bucket alone named nothing to act on: the value behind it is named, with its share
        # of recent rows (50 / 249 = 20% of live traffic)
        change = top[0]["change"]
        assert change.startswith("'other (") and ", most often 'z7' (" in change, change
        share = float(change.rsplit("(", 1)[1].split("%")[0])
        assert 15 <= share <= 25, change


def test_new_values_are_named_with_their_share() -> None:
    """Live traffic from 260 categories where the reference had 200: the unseen bin grows, and
    the explanation names the most frequent new value, at its (small) share."""
    store = _run_weights(0, 200, None, None, live_k=260)
    (top,) = [lab for name, lab, _ in store.samples() if name == "monitor_drift_top_feature"]
    change = top["change"]
    assert change.startswith("unseen categories ") and ", most often 'z" in change, change
    value = change.split("most often '")[1].split("'")[0]
    assert int(value[1:]) >= 200 and float(change.rsplit("(", 1)[1].split("%")[0]) <= 3, change
